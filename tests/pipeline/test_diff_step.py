"""The `diff` step's decisions without Celery: which condition an error becomes and whether the diff stops,
waits or retries (`decide`), and the runner (`diff`) that records it, publishes the status once and says when
to come back. Real Redis and the real AppStore and lock; the cluster mirror of the status is a recorder."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import redis

from shared.core.backoff import backoff_delay, jittered
from shared.core.errors import (
    ConfigurationError,
    ErrorKind,
    NextAction,
    StallingError,
    TransientError,
    WaitingError,
    WaveCDError,
    next_action,
)
from shared.core.models import Application
from shared.core.resources import ResourceKey
from shared.core.settings import Settings
from shared.diff.pairing import pair_objects
from shared.pipeline import diff_step
from shared.pipeline.desired_state import DesiredState
from shared.pipeline.diff_result import DiffOutcome
from shared.pipeline.diff_step import (
    COMPARISON_ERROR,
    INVALID_SPEC,
    SYNC_ERROR,
    TRANSIENT_ATTEMPTS,
    DiffRun,
    SubStep,
    decide,
    diff,
)
from shared.pipeline.project_gate import ClusterUnreachable
from shared.pipeline.services import Services
from shared.state import keys
from shared.state.app_lock import LockToken

APP = "shop"


# --------------------------------------------------------------------------------------------------
# the mapping, pure


@pytest.mark.parametrize(("error", "action"), [
    (StallingError("broken manifest"), NextAction.STOP),
    (ConfigurationError("no such revision"), NextAction.STOP),
    (WaveCDError("plain"), NextAction.STOP),
    (TransientError("git fetch timed out"), NextAction.RETRY),
    (ClusterUnreachable("cluster 'x' is unreachable"), NextAction.RETRY),
    (WaitingError("still converging"), NextAction.WAIT),
])
def test_next_action_reads_kind_and_retryable(error: WaveCDError, action: NextAction) -> None:
    assert next_action(error) is action


def test_a_new_error_class_is_decided_by_its_kind_not_its_name() -> None:
    class Flaky(WaveCDError):
        kind = ErrorKind.TRANSIENT
        retryable = True

    class NotReally(TransientError):
        retryable = False  # a subclass may opt out of retries

    assert next_action(Flaky("x")) is NextAction.RETRY
    assert next_action(NotReally("x")) is NextAction.STOP


def test_stalling_is_recorded_and_never_retried() -> None:
    decision = decide(StallingError("bad yaml"), COMPARISON_ERROR, attempt=0)
    assert (decision.condition, decision.action, decision.requeue_in) == (COMPARISON_ERROR, NextAction.STOP, None)


def test_waiting_is_no_condition_and_comes_back_after_its_countdown() -> None:
    decision = decide(WaitingError("a deletion is under way", after=7.5), COMPARISON_ERROR, attempt=3)
    assert (decision.condition, decision.action, decision.requeue_in) == (None, NextAction.WAIT, 7.5)
    assert decide(WaitingError("no countdown given"), SYNC_ERROR, 0).requeue_in == diff_step.WAIT_DEFAULT


def test_transient_retries_with_the_one_backoff_then_stops() -> None:
    rng = random.Random(4)
    delays = []
    for attempt in range(TRANSIENT_ATTEMPTS):
        decision = decide(TransientError("503"), COMPARISON_ERROR, attempt, rng)
        assert decision.condition == COMPARISON_ERROR and decision.action is NextAction.RETRY
        full = backoff_delay(attempt, **diff_step.TRANSIENT_BACKOFF)
        assert decision.requeue_in is not None and full / 2 <= decision.requeue_in <= full
        delays.append(full)
    assert delays == sorted(delays) and delays[0] < delays[-1]
    spent = decide(TransientError("503"), COMPARISON_ERROR, TRANSIENT_ATTEMPTS, rng)
    assert (spent.action, spent.requeue_in) == (NextAction.STOP, None)


def test_backoff_helper() -> None:
    assert [backoff_delay(a, base=2, factor=3, cap=300) for a in range(6)] == [2, 6, 18, 54, 162, 300]
    assert backoff_delay(-1, base=2, factor=3, cap=300) == 2
    rng = random.Random(1)
    assert all(5 <= jittered(10, rng) <= 10 for _ in range(100))


# --------------------------------------------------------------------------------------------------
# the runner, with real Redis


@dataclass
class MirrorRecorder:
    """Stands for the cluster registry: records the status patched onto the Application."""

    patches: list[dict[str, Any]] = field(default_factory=list)

    def default(self) -> MirrorRecorder:
        return self

    def patch_application_status(self, group: str, version: str, namespace: str, name: str,
                                 status: dict[str, Any]) -> None:
        self.patches.append(status)


@pytest.fixture()
def svc(redis_client: redis.Redis) -> Iterator[Services]:
    services = Services(settings=Settings(), redis_client=redis_client)
    services.__dict__["clusters"] = MirrorRecorder()
    yield services


@pytest.fixture()
def token(svc: Services) -> Iterator[LockToken]:
    held = svc.locks.acquire(APP)
    assert held is not None
    yield held
    svc.locks.release(held)


def _started(run: DiffRun) -> None:
    """What load_app leaves when the app exists: a status to publish, the last one as `previous`."""
    run.previous = {"health": {"status": "Healthy"}}
    run.status = {"sync": {"status": "Unknown"}, "conditions": [{"type": "SharedResourceWarning", "message": "m"}]}
    run.publish = True


def _steps(*raising: tuple[str, WaveCDError | None]) -> tuple[SubStep, ...]:
    def start(run: DiffRun) -> DiffOutcome | None:
        _started(run)
        return None

    def make(error: WaveCDError | None) -> Any:  # noqa: ANN401
        def step(run: DiffRun) -> DiffOutcome | None:
            if error is not None:
                raise error
            run.status["sync"]["status"] = "Synced"
            return None
        return step

    return (SubStep("start", INVALID_SPEC, start),
            *(SubStep(f"step {i}", condition, make(error)) for i, (condition, error) in enumerate(raising)))


def test_a_stalling_comparison_error_is_published_and_not_requeued(svc: Services, token: LockToken) -> None:
    outcome = diff(svc, token, _steps((COMPARISON_ERROR, StallingError("bad.yaml:3: not a mapping"))))
    assert outcome.summary == "comparison failed: bad.yaml:3: not a mapping"
    assert outcome.requeue_in is None and outcome.next is None
    status = svc.store.status(APP)
    assert [c["type"] for c in status["conditions"]] == [COMPARISON_ERROR]
    assert status["health"] == {"status": "Healthy"}, "a comparison error keeps the last known health"
    assert svc.clusters.patches[-1]["conditions"][0]["message"] == "bad.yaml:3: not a mapping"


def test_an_invalid_spec_resets_sync_and_health(svc: Services, token: LockToken) -> None:
    outcome = diff(svc, token, _steps((INVALID_SPEC, StallingError("spec.destination: field required"))))
    assert outcome.summary.startswith("invalid spec: ")
    status = svc.store.status(APP)
    assert status["sync"] == {"status": "Unknown"} and status["health"] == {"status": "Unknown"}
    assert [c["type"] for c in status["conditions"]] == [INVALID_SPEC]


def test_a_sync_error_is_added_to_the_comparison_conditions(svc: Services, token: LockToken) -> None:
    outcome = diff(svc, token, _steps((COMPARISON_ERROR, None), (SYNC_ERROR, StallingError("bad wave"))))
    assert outcome.summary == "sync not started: bad wave"
    status = svc.store.status(APP)
    assert status["sync"]["status"] == "Synced"
    assert [c["type"] for c in status["conditions"]] == ["SharedResourceWarning", SYNC_ERROR]


def test_transient_errors_requeue_with_backoff_until_the_bound(svc: Services, token: LockToken) -> None:
    steps = _steps((COMPARISON_ERROR, TransientError("the API server answered 503")))
    delays = []
    for attempt in range(TRANSIENT_ATTEMPTS):
        outcome = diff(svc, token, steps)
        assert outcome.requeue_in is not None, f"attempt {attempt} is retried"
        delays.append(outcome.requeue_in)
        assert int(svc.redis.get(keys.diff_retry(APP))) == attempt + 1
        assert svc.store.status(APP)["conditions"][0]["type"] == COMPARISON_ERROR  # the user sees why
    assert delays[-1] > delays[0]
    spent = diff(svc, token, steps)
    assert spent.requeue_in is None, "bounded: then the reconcile period takes over"
    diff(svc, token, _steps((COMPARISON_ERROR, None)))
    assert svc.redis.get(keys.diff_retry(APP)) is None, "a diff that gets through starts the count again"


def test_waiting_requeues_and_leaves_the_status_alone(svc: Services, token: LockToken) -> None:
    before = len(svc.clusters.patches)
    outcome = diff(svc, token, _steps((COMPARISON_ERROR, WaitingError("namespace terminating", after=3))))
    assert outcome == DiffOutcome("waiting: namespace terminating", None, 3)
    assert svc.store.status(APP) == {} and len(svc.clusters.patches) == before
    assert svc.redis.get(keys.diff_retry(APP)) is None


def test_an_unexpected_exception_is_not_swallowed(svc: Services, token: LockToken) -> None:
    def boom(run: DiffRun) -> DiffOutcome | None:
        raise KeyError("a bug")

    with pytest.raises(KeyError):
        diff(svc, token, (SubStep("boom", COMPARISON_ERROR, boom),))


def test_early_return_skips_the_later_sub_steps(svc: Services, token: LockToken) -> None:
    seen: list[str] = []

    def done(run: DiffRun) -> DiffOutcome | None:
        seen.append("done")
        _started(run)
        return DiffOutcome("Synced/Healthy at abc")

    def later(run: DiffRun) -> DiffOutcome | None:
        seen.append("later")
        return None

    outcome = diff(svc, token, (SubStep("done", COMPARISON_ERROR, done), SubStep("later", SYNC_ERROR, later)))
    assert outcome.summary == "Synced/Healthy at abc" and seen == ["done"]
    assert svc.store.status(APP)["sync"] == {"status": "Unknown"}


# --------------------------------------------------------------------------------------------------
# real sub-steps


def test_load_app_of_a_deleted_app_publishes_nothing(svc: Services, token: LockToken) -> None:
    outcome = diff(svc, token)
    assert outcome == DiffOutcome("app no longer exists")
    assert svc.store.status(APP) == {} and svc.clusters.patches == []


def test_load_app_of_an_invalid_spec_is_an_invalid_spec_error(svc: Services, token: LockToken) -> None:
    svc.store.put_app(APP, {"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
                            "metadata": {"name": APP}, "spec": {"destination": {}}})
    outcome = diff(svc, token)
    assert outcome.summary.startswith("invalid spec: ") and outcome.requeue_in is None
    status = svc.store.status(APP)
    assert status["conditions"][0]["type"] == INVALID_SPEC and "reconciledAt" in status


def _application(annotations: dict[str, str] | None = None) -> Application:
    return Application.parse({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
        "metadata": {"name": APP, "annotations": annotations or {}},
        "spec": {"project": "default", "source": {"repoURL": "https://git.example.com/a.git", "path": "."},
                 "destination": {"server": "https://kubernetes.default.svc", "namespace": "shop"}}})


def _cm(name: str, annotations: dict[str, str] | None = None, **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": "shop", "annotations": annotations or {}}, "data": data}


def _deployment(name: str, ready: int) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": "shop",
                                                                        "generation": 1},
            "spec": {"replicas": 2},
            "status": {"observedGeneration": 1, "replicas": 2, "updatedReplicas": 2, "readyReplicas": ready,
                       "availableReplicas": ready}}


def test_compare_and_health_sub_steps_on_a_pairing(svc: Services) -> None:
    """pair and compare, then health: per-resource status, prune candidates from the inventory with their
    version and requiresPruning, the shared-resource warning, Missing and Progressing health."""
    desired = DesiredState("c" * 40, "t", "directory",
                           [_cm("same", a="1"), _cm("changed", a="2"), _cm("absent", a="1"), _deployment("web", 2),
                            _cm("billing")])
    live_objects = [
        _cm("same", a="1"), _cm("changed", a="1"), _deployment("web", 1),
        _cm("billing", {"argocd.argoproj.io/tracking-id": "other:/ConfigMap:shop/billing"}),
        _cm("old", {"argocd.argoproj.io/sync-options": "Prune=false"}),
    ]
    live = {ResourceKey.from_object(o): o for o in live_objects}
    versions = {ResourceKey("", "ConfigMap", "shop", "old"): "v1",
                ResourceKey("", "ConfigMap", "shop", "billing"): "v1"}
    pairing = pair_objects(desired.managed, live, app=APP, inventory=list(versions))
    comparison = diff_step.compare_pairs(svc, _application(), None, desired, pairing, live, versions)  # type: ignore[arg-type]
    statuses = {(r["name"], r["status"], r.get("requiresPruning")) for r in comparison.resources}
    assert statuses == {("same", "Synced", None), ("changed", "OutOfSync", None), ("absent", "OutOfSync", None),
                        ("web", "Synced", None), ("billing", "Synced", None), ("old", "OutOfSync", False)}
    assert comparison.conditions == [{"type": "SharedResourceWarning",
                                      "message": "ConfigMap shop/billing is part of applications shop and other"}]
    assert comparison.sync_status == "OutOfSync" and comparison.to_prune == [live[ResourceKey("", "ConfigMap",
                                                                                                  "shop", "old")]]
    assert next(r for r in comparison.resources if r["name"] == "old")["version"] == "v1"
    assert set(comparison.diffs) == {"ConfigMap shop/changed", "ConfigMap shop/absent", "ConfigMap shop/old"}
    assert comparison.in_sync == {ResourceKey("", "ConfigMap", "shop", "same"),
                                  ResourceKey("", "ConfigMap", "shop", "billing"),
                                  ResourceKey("apps", "Deployment", "shop", "web")}

    diff_step.assess_health(svc, pairing, comparison)
    health = {r["name"]: r.get("health", {}).get("status") for r in comparison.resources}
    assert health == {"same": None, "changed": None, "absent": "Missing", "web": "Progressing", "billing": None,
                      "old": None}  # a ConfigMap has no health, as in Argo CD
    assert comparison.health.status.value == "Progressing"


def test_health_of_an_app_without_resources_is_healthy(svc: Services) -> None:
    desired = DesiredState("c" * 40, "t", "directory", [])
    pairing = pair_objects([], {}, app=APP, inventory=[])
    comparison = diff_step.compare_pairs(svc, _application(), None, desired, pairing, {}, {})  # type: ignore[arg-type]
    diff_step.assess_health(svc, pairing, comparison)
    assert comparison.sync_status == "Synced" and comparison.health.status.value == "Healthy"
