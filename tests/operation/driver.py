"""An in-process driver for operation chains: the real step functions, a real Redis, a fake cluster and a
fake clock, so a whole sync (waves, hooks, retries, terminate, timeouts) runs in milliseconds.

`Driver.run(call)` is the task layer without Celery: `while call: call = step(call)`, where each call's
countdown moves the fake clock forward instead of being waited for. The fake cluster keeps objects in a
dict and plays the controllers a test needs: an object's `test.wavecd.io/outcome` annotation says what
becomes of it once created (`succeed`: a Job completes, a Pod runs; `fail`; `never`: it stays
progressing); `test.wavecd.io/deletion: slow` makes a delete leave the object terminating until the next
step (a controller's garbage collection between two task deliveries); and `test.wavecd.io/immutable:
"true"` on a live object makes the server refuse an apply that changes it (422, as for a Job's template).
Every cluster write is recorded in `cluster.log` for order assertions.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from shared.cluster.kube_errors import KubeInvalid
from shared.core.models import Application
from shared.core.resources import ResourceKey
from shared.core.settings import Settings
from shared.core.tracking import ANNOTATION, TRACKING_ANNOTATION, stamp
from shared.operation import machine
from shared.operation.machine import Chain, StepCall, Task
from shared.operation.model import Operation
from shared.pipeline import project_gate, reconcile, sync_steps
from shared.pipeline.desired_state import DesiredState
from shared.pipeline.diff_result import Comparison
from shared.pipeline.services import Services
from shared.pipeline.sync_steps import StepOutcome
from shared.state.app_lock import LockToken
from shared.sync import hooks

OUTCOME = "test.wavecd.io/outcome"
DELETION = "test.wavecd.io/deletion"
IMMUTABLE = "test.wavecd.io/immutable"
START = 1_700_000_000.0


@dataclass
class FakeClock:
    now: float = START

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += max(0.0, seconds)


def _status_for(obj: dict[str, Any]) -> dict[str, Any] | None:
    """What a controller would have written by now, from the object's outcome annotation."""
    outcome = ((obj.get("metadata") or {}).get("annotations") or {}).get(OUTCOME, "succeed")
    kind = obj.get("kind")
    if kind == "Job":
        if outcome == "succeed":
            return {"conditions": [{"type": "Complete", "status": "True", "message": "done"}], "succeeded": 1}
        if outcome == "fail":
            return {"conditions": [{"type": "Failed", "status": "True", "message": "BackoffLimitExceeded"}],
                    "failed": 1}
        return {"active": 1}
    if kind == "Pod":
        if outcome == "succeed":
            return {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}],
                    "containerStatuses": [{"name": "c", "ready": True, "restartCount": 0,
                                           "state": {"running": {}}}]}
        if outcome == "fail":
            return {"phase": "Failed", "message": "the pod failed"}
        return {"phase": "Pending"}
    return None


@dataclass
class FakeCluster:
    """Just the calls the steps make of `shared.cluster.client.Cluster`, over a dict of objects."""

    objects: dict[ResourceKey, dict[str, Any]] = field(default_factory=dict)
    log: list[str] = field(default_factory=list)
    deletes: list[tuple[ResourceKey, str]] = field(default_factory=list)
    app_status: dict[str, Any] = field(default_factory=dict)
    app_patches: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    version: int = 0

    def _store(self, obj: dict[str, Any]) -> dict[str, Any]:
        self.version += 1
        body = copy.deepcopy(obj)
        body.setdefault("metadata", {})["resourceVersion"] = str(self.version)
        status = _status_for(body)
        if status is not None:
            body["status"] = status
        self.objects[ResourceKey.from_object(body)] = body
        return copy.deepcopy(body)

    def get(self, key: ResourceKey, *, api_version: str | None = None, fresh: bool = False
            ) -> dict[str, Any] | None:
        found = self.objects.get(key)
        return copy.deepcopy(found) if found is not None else None

    def apply(self, obj: dict[str, Any], *, dry_run: bool = False, force: bool = True) -> dict[str, Any]:
        key = ResourceKey.from_object(obj)
        if dry_run:
            return copy.deepcopy(obj)
        live = self.objects.get(key)
        if live is not None and (live["metadata"].get("annotations") or {}).get(IMMUTABLE) == "true" \
                and live.get("spec") != obj.get("spec"):
            raise KubeInvalid(f"{key}: spec: Invalid value: field is immutable")
        self.log.append(f"apply {key}")
        return self._store(obj)

    def replace(self, obj: dict[str, Any], *, dry_run: bool = False) -> dict[str, Any]:
        self.log.append(f"replace {ResourceKey.from_object(obj)}")
        return obj if dry_run else self._store(obj)

    def create(self, obj: dict[str, Any], *, dry_run: bool = False) -> dict[str, Any]:
        key = ResourceKey.from_object(obj)
        assert key not in self.objects, f"create over a live {key}"
        self.log.append(f"create {key}")
        return obj if dry_run else self._store(obj)

    def delete(self, api_version: str, key: ResourceKey, *, propagation: str = "Foreground",
               dry_run: bool = False) -> bool:
        live = self.objects.get(key)
        if live is None or dry_run:
            return live is not None
        self.log.append(f"delete {key}")
        self.deletes.append((key, propagation))
        if ((live.get("metadata") or {}).get("annotations") or {}).get(DELETION) == "slow":
            live["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
        else:
            del self.objects[key]
        return True

    def finish_deletions(self) -> None:
        for key in [k for k, o in self.objects.items() if o["metadata"].get("deletionTimestamp")]:
            del self.objects[key]

    def namespace_exists(self, name: str) -> bool:
        return ResourceKey("", "Namespace", "", name) in self.objects

    def patch_application(self, group: str, version: str, namespace: str, name: str,
                          patch: dict[str, Any]) -> None:
        self.app_patches.append((name, patch))

    def patch_application_status(self, group: str, version: str, namespace: str, name: str,
                                 status: dict[str, Any]) -> None:
        self.app_status[name] = status


@dataclass
class FakeClusters:
    cluster: FakeCluster

    def for_destination(self, destination: Any) -> FakeCluster:  # noqa: ANN401
        return self.cluster

    def default(self) -> FakeCluster:
        return self.cluster


def services(redis_client: Any, cluster: FakeCluster, **settings: Any) -> Services:  # noqa: ANN401
    svc = Services(settings=Settings(**{"step_timeout": 600.0, "health_poll_interval": 2.0, "step_delay": 2.0,
                                        **settings}), redis_client=redis_client)
    svc.__dict__["clusters"] = FakeClusters(cluster)  # a cached_property: set before first use
    return svc


def application(name: str, namespace: str = "dest", sync_policy: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
            "metadata": {"name": name, "namespace": "argocd"},
            "spec": {"project": "default",
                     "source": {"repoURL": "https://example.com/repo.git", "path": ".", "targetRevision": "HEAD"},
                     "destination": {"server": "https://kubernetes.default.svc", "namespace": namespace},
                     "syncPolicy": sync_policy or {}}}


def placed(objects: list[dict[str, Any]], app: str, namespace: str) -> list[dict[str, Any]]:
    """The objects as the pipeline renders them: in the destination namespace, stamped with the app."""
    out = []
    for obj in copy.deepcopy(objects):
        meta = obj.setdefault("metadata", {})
        if obj.get("kind") != "Namespace":
            meta.setdefault("namespace", namespace)
        tracked = TRACKING_ANNOTATION in (meta.get("annotations") or {})  # a case may give another app's mark
        if not hooks.is_hook(obj) and meta.get("name") and not tracked:
            stamp(obj, app, ANNOTATION, ResourceKey.from_object(obj))
        out.append(obj)
    return out


STEPS: dict[Task, Callable[..., StepOutcome]] = {Task.WAVE_APPLY: sync_steps.wave_apply,
                                                 Task.HEALTH_CHECK: sync_steps.health_check}


@dataclass
class Driver:
    """Runs operation chains in-process. `world` runs before every step (a controller, a user)."""

    svc: Services
    cluster: FakeCluster
    clock: FakeClock
    name: str = "demo"
    desired: DesiredState | None = None
    calls: list[StepCall] = field(default_factory=list)
    outcomes: list[StepOutcome] = field(default_factory=list)
    world: Callable[[Driver, StepCall], None] | None = None

    def put_app(self, manifests: list[dict[str, Any]], *, sync_policy: dict[str, Any] | None = None,
                commit: str = "c0ffee" * 6 + "abcd") -> Application:
        doc = application(self.name, sync_policy=sync_policy)
        self.svc.store.put_app(self.name, doc)
        app = Application.parse(self.svc.store.get_app(self.name))
        objects = placed(manifests, self.name, app.spec.destination.namespace)
        self.desired = DesiredState(commit=commit, tree_id="tree", renderer="directory", objects=objects,
                                    api_versions={ResourceKey.from_object(o): str(o["apiVersion"]) for o in objects})
        return app

    def start(self, request: dict[str, Any] | None = None, *, automated: bool = False,
              to_prune: list[dict[str, Any]] | None = None) -> StepCall:
        """What the `diff` step does when it starts an operation: plan, store, name the first call."""
        assert self.desired is not None
        app = Application.parse(self.svc.store.get_app(self.name))
        comparison = Comparison(self.desired, {}, [], "OutOfSync", None, {}, set(), list(to_prune or []), [])  # type: ignore[arg-type]
        op = reconcile._start_operation(self.svc, app, self.cluster, comparison, dict(request or {}),  # noqa: SLF001
                                        automated)
        token = self.svc.locks.acquire(self.name)
        assert token is not None
        self.svc.store.clear_terminate(self.name)
        self.svc.store.write_operation(token, op)
        self.svc.store.mark_running(self.name)
        return machine.first_call(op, Chain(self.name, token.encode()))

    def step(self, call: StepCall) -> StepCall | None:
        self.clock.advance(call.countdown)
        self.cluster.finish_deletions()
        if self.world is not None:
            self.world(self, call)
        outcome = STEPS[call.task](self.svc, LockToken.decode(call.app, call.token), call.operation, call.step,
                                   call.seq, clock=self.clock)
        self.calls.append(call)
        self.outcomes.append(outcome)
        return outcome.next

    def run(self, call: StepCall | None, *, limit: int = 1000) -> Operation:
        """`while call: call = step(call)`; the operation as stored at the end."""
        for _ in range(limit):
            if call is None:
                break
            call = self.step(call)
        else:
            raise AssertionError(f"the chain did not end in {limit} steps: {self.outcomes[-3:]}")
        op = self.operation()
        assert op is not None
        return op

    def operation(self) -> Operation | None:
        return self.svc.store.current_operation(self.name)


def patch_pipeline(monkeypatch: Any, driver_ref: Callable[[], Driver]) -> None:  # noqa: ANN401
    """Point the steps' two git/project look-ups at the driver: rendered manifests come from
    `Driver.desired`, and the project admits every planned object (tests/project covers refusals)."""
    monkeypatch.setattr(sync_steps, "load_desired", lambda svc, app, commit, cluster, **_: driver_ref().desired)
    monkeypatch.setattr(project_gate, "refuse_plan", lambda *args, **kwargs: None)
