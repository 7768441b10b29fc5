"""The `diff` step: compare what git wants with what the cluster has, record it, decide on a sync.

One name for one step: the task `wavecd.diff` calls `diff()`, which answers a `DiffOutcome`.

A diff is an ordered list of sub-steps (`SUB_STEPS`) over one `DiffRun`, with early return, as Flux's
source-controller reconciles: load the app, resume an operation left running, resolve the commit, render
the desired objects, read live, pair and compare, assess health, record status, decide on a sync, start it.
A sub-step returns None (go on), returns a `DiffOutcome` (done: nothing more to do), or raises a typed error.
Whatever happened, the status is published once at the end (Flux's deferred summarize-and-patch).

`decide()` is the one place an error becomes the app's condition and what follows. The condition is Argo
CD's name for where it failed (InvalidSpecError while reading the spec, ComparisonError while comparing,
SyncError while starting a sync: each sub-step says which); what follows is decided by the error's kind
(`shared.core.errors.next_action`): stop (stalling, configuration: the condition stays until the input
changes, and the reconcile period looks again), wait (not a failure: compare again after a countdown), or
retry (transient: after a jittered backoff, at most TRANSIENT_ATTEMPTS times in a row, then stop). Nothing
here waits: the outcome's `requeue_in` tells the task after how long to enqueue the app's diff again.
The caller holds the app's lock; when an operation starts, the lock passes on to the operation chain.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from shared.core.backoff import backoff_delay, jittered
from shared.core.errors import NextAction, WaitingError, WaveCDError, next_action
from shared.core.models import Application
from shared.core.resources import COMPARE_OPTIONS_ANNOTATION, ResourceKey, parse_options
from shared.diff.compare import compare
from shared.diff.pairing import Pairing, pair_objects
from shared.health import HealthStatus, HealthStatusCode, aggregate, assess, is_health_ignored
from shared.operation import machine
from shared.operation.machine import Chain
from shared.operation.model import ACTIVE_PHASES, FINAL_PHASES, now_iso, public_view
from shared.pipeline import project_gate
from shared.pipeline.app_index import spec_hash
from shared.pipeline.desired_state import DesiredState, load_desired, resolve_commit
from shared.pipeline.diff_result import Comparison, DiffOutcome
from shared.pipeline.reconcile import _resume, _start_operation
from shared.pipeline.revision_metadata import record_revision
from shared.state import keys
from shared.state.app_lock import LockToken
from shared.sync.plan import sync_wave
from shared.telemetry import log_context

if TYPE_CHECKING:
    from shared.cluster.client import Cluster
    from shared.pipeline.project_gate import Admitted
    from shared.pipeline.services import Services
    from shared.state.app_store import AppSnapshot

log = logging.getLogger(__name__)

SYNCED, OUT_OF_SYNC, UNKNOWN = "Synced", "OutOfSync", "Unknown"

# Argo CD's condition types for the three places a diff can fail.
INVALID_SPEC, COMPARISON_ERROR, SYNC_ERROR = "InvalidSpecError", "ComparisonError", "SyncError"
_SUMMARY = {INVALID_SPEC: "invalid spec", COMPARISON_ERROR: "comparison failed", SYNC_ERROR: "sync not started"}

# Transient errors: 2 s, 4 s, 8 s, 16 s, 32 s (each jittered to half..full), then the reconcile period.
TRANSIENT_ATTEMPTS = 5
TRANSIENT_BACKOFF = {"base": 2.0, "factor": 2.0, "cap": 60.0}
WAIT_DEFAULT = 5.0  # a WaitingError that does not say how long


def inventory_of(status: dict[str, Any]) -> list[dict[str, str]]:
    return list(status.get("inventory") or [])


# --------------------------------------------------------------------------------------------------
# errors -> condition and what follows


@dataclass(frozen=True)
class Decision:
    """What a failed sub-step leaves: the condition to record (None: nothing failed, it is only waiting),
    and after how many seconds the diff runs again (None: at the next reconcile period)."""

    condition: str | None
    action: NextAction
    requeue_in: float | None = None


def decide(exc: WaveCDError, condition: str, attempt: int, rng: random.Random | None = None) -> Decision:
    """The one mapping from an error to the app's condition and to retry / wait / stop.

    `condition` is the sub-step's (Argo CD's type for where it failed); `attempt` counts the transient
    failures before this one (0 for the first).
    """
    action = next_action(exc)
    if action is NextAction.WAIT:
        after = exc.after if isinstance(exc, WaitingError) and exc.after is not None else WAIT_DEFAULT
        return Decision(None, action, after)
    if action is NextAction.RETRY:
        if attempt >= TRANSIENT_ATTEMPTS:
            return Decision(condition, NextAction.STOP)
        return Decision(condition, action, jittered(backoff_delay(attempt, **TRANSIENT_BACKOFF), rng))
    return Decision(condition, NextAction.STOP)


# --------------------------------------------------------------------------------------------------
# comparison


def server_side_diff_enabled(svc: Services, app: Application) -> bool:
    options = parse_options(app.annotations.get(COMPARE_OPTIONS_ANNOTATION))
    if "ServerSideDiff" in options:
        return options["ServerSideDiff"].lower() == "true"
    return svc.settings.server_side_diff


def read_live(cluster: Cluster, desired: DesiredState,
              inventory: list[dict[str, str]]) -> tuple[dict[ResourceKey, dict[str, Any]], dict[ResourceKey, str]]:
    """Live objects of the desired keys and of the inventory's others; the inventory's apiVersions."""
    wanted = [(str(o.get("apiVersion")), ResourceKey.from_object(o)) for o in desired.managed]
    wanted_keys = {k for _, k in wanted}
    extra = [(str(i.get("apiVersion", "")), ResourceKey.from_dict(i)) for i in inventory]
    extra = [(v, k) for v, k in extra if k not in wanted_keys]
    return cluster.live_for(wanted + extra), {k: v for v, k in extra}


def compare_pairs(svc: Services, app: Application, cluster: Cluster, desired: DesiredState, pairing: Pairing,
                  live: dict[ResourceKey, dict[str, Any]], versions: dict[ResourceKey, str]) -> Comparison:
    """Compare each pair (git's objects, then the prune candidates); health is `assess_health`'s."""
    global_ignores = svc.settings.global_ignore_differences()
    resources: list[dict[str, Any]] = []
    diffs: dict[str, str] = {}
    in_sync: set[ResourceKey] = set()
    conditions: list[dict[str, Any]] = []
    server_side = server_side_diff_enabled(svc, app)
    for pair in pairing.pairs:
        key, obj, live_obj = pair.key, pair.desired, pair.live
        assert obj is not None
        if pair.foreign_owner:
            conditions.append({"type": "SharedResourceWarning",
                               "message": f"{key} is part of applications {app.name} and {pair.foreign_owner}"})
        target = obj
        if server_side and live_obj is not None:
            # What the API server would make of our apply (defaults, webhooks, field ownership).
            target = cluster.dry_run_apply(obj)
        result = compare(target, live_obj, ignore=[*app.spec.ignore_differences, *global_ignores])
        entry: dict[str, Any] = {**key.to_dict(), "version": obj["apiVersion"].rsplit("/", 1)[-1],
                                 "status": result.status}
        with contextlib.suppress(WaveCDError):  # Argo CD's ResourceStatus.syncWave; a bad one fails the plan
            entry["syncWave"] = sync_wave(obj)
        if result.status == SYNCED:
            in_sync.add(key)
        else:
            diffs[str(key)] = result.diff_text()
        resources.append(entry)
    to_prune = []
    for pair in pairing.prune:
        assert pair.live is not None
        resources.append({**pair.key.to_dict(), "version": versions[pair.key].rsplit("/", 1)[-1],
                          "status": OUT_OF_SYNC, "requiresPruning": pair.requires_pruning})
        diffs[str(pair.key)] = compare(None, pair.live).diff_text()
        to_prune.append(pair.live)
    sync_status = SYNCED if all(r["status"] == SYNCED for r in resources) else OUT_OF_SYNC
    return Comparison(desired, live, resources, sync_status, HealthStatus(HealthStatusCode.UNKNOWN), diffs,
                      in_sync, to_prune, conditions)


def assess_health(svc: Services, pairing: Pairing, comparison: Comparison) -> None:
    """Each of git's objects' health onto its resource entry, and the app's aggregate."""
    inputs: list[HealthStatus | None] = []
    for pair, entry in zip(pairing.pairs, comparison.resources, strict=False):
        if pair.live is None:
            entry["health"] = {"status": HealthStatusCode.MISSING.value}
            inputs.append(HealthStatus(HealthStatusCode.MISSING))
            continue
        health = assess(pair.live, svc.lua)
        if health is not None:
            entry["health"] = {"status": health.status.value, "message": health.message}
            if not is_health_ignored(pair.live):
                inputs.append(health)
    if not comparison.resources or not inputs:
        comparison.health = HealthStatus(HealthStatusCode.HEALTHY)
    else:
        comparison.health = aggregate(inputs, ignore_missing=True)


# --------------------------------------------------------------------------------------------------
# status


def status_digest(status: dict[str, Any]) -> str:
    material = {k: v for k, v in status.items() if k not in ("reconciledAt", "observedAt")}
    return hashlib.sha1(json.dumps(material, sort_keys=True, default=str).encode()).hexdigest()


def publish_status(svc: Services, token: LockToken, status: dict[str, Any]) -> None:
    """Store status in Redis (fenced) and mirror it onto the Application when it materially changed."""
    svc.store.write(token, "status", status)
    digest = status_digest(status)
    key = keys.published(token.app)
    if svc.redis.get(key) == digest.encode():
        return
    settings = svc.settings
    cr_status = {k: v for k, v in status.items() if k not in ("inventory",)}
    try:
        svc.clusters.default().patch_application_status(
            settings.app_api_group, settings.app_api_version, settings.app_namespace, token.app, cr_status)
        svc.redis.set(key, digest, ex=86400)
    except Exception as exc:  # noqa: BLE001 - the CR mirror is best effort; Redis holds the truth
        log.warning("app %s: could not write status to the Application: %s", token.app, exc)


def _condition(kind: str, message: str) -> dict[str, Any]:
    return {"type": kind, "message": message, "lastTransitionTime": now_iso()}


# --------------------------------------------------------------------------------------------------
# the run and its sub-steps


@dataclass
class DiffRun:
    """What the sub-steps of one diff hand on to each other."""

    svc: Services
    token: LockToken
    snap: AppSnapshot | None = None           # the app's state as the diff began (one round trip)
    publish: bool = False                     # the status is published at the end (once it was started)
    doc: dict[str, Any] = field(default_factory=dict)
    previous: dict[str, Any] = field(default_factory=dict)
    status: dict[str, Any] = field(default_factory=dict)
    app: Application | None = None
    admitted: Admitted | None = None
    cluster: Cluster | None = None
    request: dict[str, Any] | None = None
    revision: str | None = None
    hard: bool = False
    commit: str = ""
    desired: DesiredState | None = None
    live: dict[ResourceKey, dict[str, Any]] = field(default_factory=dict)
    versions: dict[ResourceKey, str] = field(default_factory=dict)
    pairing: Pairing | None = None
    comparison: Comparison | None = None
    start: tuple[dict[str, Any], bool] | None = None
    started: bool = False                     # an operation started: the app is marked running after publishing

    @property
    def name(self) -> str:
        return self.token.app

    def parts(self) -> tuple[Application, Cluster]:
        assert self.app is not None and self.cluster is not None
        return self.app, self.cluster


@dataclass(frozen=True)
class SubStep:
    name: str
    condition: str                            # the app condition this sub-step's errors become
    run: Callable[[DiffRun], DiffOutcome | None]


def load_app(run: DiffRun) -> DiffOutcome | None:
    """The Application, its project's admission and its destination cluster."""
    run.snap = snap = run.svc.store.snapshot(run.name)
    if snap.doc is None:
        return DiffOutcome("app no longer exists")
    run.doc = doc = snap.doc
    run.previous = snap.status
    run.status = {k: run.previous[k] for k in ("history", "operationState", "inventory") if k in run.previous}
    run.status["reconciledAt"] = now_iso()
    run.publish = True
    app = Application.parse(doc)
    source = app.spec.primary_source
    run.status["sync"] = {"status": UNKNOWN, "comparedTo": {"source": source.dump(),
                                                            "destination": app.spec.destination.dump()}}
    # the app's project permits its sources and destination
    run.admitted = project_gate.admit(run.svc, app, snap.operation)
    run.cluster = run.svc.clusters.for_destination(app.spec.destination)
    run.app = app
    return None


def resume_running(run: DiffRun) -> DiffOutcome | None:
    """An operation left Running by a chain whose lock expired: resume it where it stopped."""
    assert run.snap is not None
    op = run.snap.operation
    if op is None or op.get("phase") not in ACTIVE_PHASES:
        return None
    run.publish = False
    return _resume(run.svc, run.token, op)


def resolve_revision(run: DiffRun) -> DiffOutcome | None:
    """The commit to compare: a sync request's revision, else the one the last fetch resolved."""
    app, _ = run.parts()
    assert run.admitted is not None and run.snap is not None
    svc, store, source, snap = run.svc, run.svc.store, app.spec.primary_source, run.snap
    run.request = store.take_sync_request(run.name) if snap.sync_requested else None
    revision = (run.request or {}).get("revision") or None
    project_gate.ensure_reachable(svc, run.admitted)  # a cluster found down is not waited on
    run.hard = snap.hard_refresh and store.take_hard_refresh(run.name)
    if run.hard:
        svc.repos.fetch(source.repo_url, force=True)
        revision = revision or source.target_revision
    run.commit = _commit_for(svc, snap.source, run.doc, app, revision)
    log_context.bind(revision=run.commit)
    record_revision(svc, source.repo_url, run.commit)  # author and subject, for views that never read git
    return None


def render_desired(run: DiffRun) -> DiffOutcome | None:
    app, cluster = run.parts()
    run.desired = load_desired(run.svc, app, run.commit, cluster, hard=run.hard)
    return None


def read_live_state(run: DiffRun) -> DiffOutcome | None:
    _, cluster = run.parts()
    assert run.desired is not None
    run.live, run.versions = read_live(cluster, run.desired, inventory_of(run.previous))
    return None


def pair_and_compare(run: DiffRun) -> DiffOutcome | None:
    app, cluster = run.parts()
    assert run.desired is not None
    run.pairing = pair_objects(run.desired.managed, run.live, app=app.name, inventory=list(run.versions))
    run.comparison = compare_pairs(run.svc, app, cluster, run.desired, run.pairing, run.live, run.versions)
    return None


def health(run: DiffRun) -> DiffOutcome | None:
    assert run.pairing is not None and run.comparison is not None
    assess_health(run.svc, run.pairing, run.comparison)
    return None


def record_status(run: DiffRun) -> DiffOutcome | None:
    """Sync and health status, resources, conditions, the diffs; a roll-out under way is looked at soon."""
    app, cluster = run.parts()
    comparison, status, svc = run.comparison, run.status, run.svc
    assert comparison is not None and run.admitted is not None
    status["sync"]["status"] = comparison.sync_status
    status["sync"]["revision"] = run.commit
    status["health"] = {"status": comparison.health.status.value, "message": comparison.health.message}
    status["resources"] = comparison.resources
    status["sourceType"] = "Kustomize" if comparison.desired.renderer == "kustomize" else "Directory"
    status["conditions"] = [_condition(c["type"], c["message"]) for c in comparison.conditions]
    svc.redis.set(keys.diff(run.name), json.dumps(comparison.diffs), ex=86400)
    if comparison.health.status == HealthStatusCode.PROGRESSING:
        # A roll-out under way is compared again soon even if no watch event arrives. A Missing app is
        # not: nothing changes until it is synced, and a sync's own chain and the watch follow it.
        svc.store.schedule(run.name, time.time() + svc.settings.progressing_recheck)
    project_gate.warn_orphans(svc, run.admitted, app, cluster, status)  # the project's orphanedResources warning
    return None


def decide_sync(run: DiffRun) -> DiffOutcome | None:
    """Whether an operation starts: a request, or the automated policy; sync windows may hold it back."""
    app, _ = run.parts()
    comparison = run.comparison
    assert comparison is not None and run.admitted is not None
    start = _decide_sync(run.svc, app, comparison, run.request, run.status)
    run.start = project_gate.window_gate(run.admitted, app, start, run.status)  # sync windows hold syncs back
    if run.start is None:
        return DiffOutcome(f"{comparison.sync_status}/{comparison.health.status.value} at {run.commit[:12]}")
    return None


def start_operation(run: DiffRun) -> DiffOutcome | None:
    app, cluster = run.parts()
    assert run.comparison is not None and run.start is not None
    store, name = run.svc.store, run.name
    request, automated = run.start
    op = _start_operation(run.svc, app, cluster, run.comparison, request, automated)
    # A terminate left over from an earlier operation goes before this one becomes visible: cleared after
    # it, a terminate asked for the new operation in between would be lost (seen on a real cluster, where
    # publishing the status takes a request).
    store.clear_terminate(name)
    store.write_operation(run.token, op)
    log_context.bind(operation=op.id)
    store.log_operation(name, op.id, "start")
    run.status["operationState"] = public_view(op)
    run.started = True
    return DiffOutcome(f"sync {op.id} started at {run.commit[:12]}",
                       machine.first_call(op, Chain(name, run.token.encode())))


SUB_STEPS: tuple[SubStep, ...] = (
    SubStep("load app", INVALID_SPEC, load_app),
    SubStep("resume running operation", INVALID_SPEC, resume_running),
    SubStep("resolve commit", COMPARISON_ERROR, resolve_revision),
    SubStep("render desired", COMPARISON_ERROR, render_desired),
    SubStep("read live", COMPARISON_ERROR, read_live_state),
    SubStep("pair and compare", COMPARISON_ERROR, pair_and_compare),
    SubStep("health", COMPARISON_ERROR, health),
    SubStep("record status", COMPARISON_ERROR, record_status),
    SubStep("decide sync", SYNC_ERROR, decide_sync),
    SubStep("start operation", SYNC_ERROR, start_operation),
)


def on_error(run: DiffRun, step: SubStep, exc: WaveCDError, rng: random.Random | None = None) -> DiffOutcome:
    """Record what `decide` says about `exc` on the status, and say when the diff runs again."""
    key = keys.diff_retry(run.name)
    attempt = run.snap.retries if run.snap is not None else int(run.svc.redis.get(key) or 0)
    decision = decide(exc, step.condition, attempt, rng)
    log.info("app %s: %s: %s (%s, %s)", run.name, step.name, exc, exc.kind, decision.action)
    if decision.action is NextAction.RETRY:
        run.svc.redis.set(key, attempt + 1, ex=3600)
    if decision.condition is None:  # only waiting: the last status stands
        run.publish = False
        return DiffOutcome(f"waiting: {exc}", requeue_in=decision.requeue_in)
    status = run.status
    if decision.condition == INVALID_SPEC:
        status.update(sync={"status": UNKNOWN}, health={"status": HealthStatusCode.UNKNOWN.value},
                      conditions=[_condition(INVALID_SPEC, str(exc))])
    elif decision.condition == COMPARISON_ERROR:
        status["health"] = run.previous.get("health") or {"status": HealthStatusCode.UNKNOWN.value}
        status["conditions"] = [_condition(COMPARISON_ERROR, str(exc))]
    else:
        status.setdefault("conditions", []).append(_condition(decision.condition, str(exc)))
    return DiffOutcome(f"{_SUMMARY.get(decision.condition, decision.condition)}: {exc}",
                       requeue_in=decision.requeue_in)


def diff(svc: Services, token: LockToken, steps: tuple[SubStep, ...] = SUB_STEPS) -> DiffOutcome:
    """One diff of `token.app` under its lock: the sub-steps in order until one returns an outcome or fails,
    then the status published once. Returns the summary, the next chain step and when to diff again."""
    run = DiffRun(svc, token)
    outcome: DiffOutcome | None = None
    failed = False
    for step in steps:
        try:
            outcome = step.run(run)
        except WaveCDError as exc:
            outcome, failed = on_error(run, step, exc), True
        if outcome is not None:
            break
    if outcome is None:
        outcome = DiffOutcome("nothing to do")
    if not failed and (run.snap is None or run.snap.retries):
        svc.redis.delete(keys.diff_retry(run.name))  # got through: the next transient failure starts again at 0
    if run.publish:
        publish_status(svc, token, run.status)
    if run.started:
        svc.store.mark_running(run.name)
    return outcome


# --------------------------------------------------------------------------------------------------
# helpers of the sub-steps


def _commit_for(svc: Services, seen: dict[str, Any] | None, doc: dict[str, Any], app: Application,
                revision: str | None) -> str:
    """The commit the last fetch resolved for this app (`seen`, by any host), else resolve it here."""
    if revision is None:
        if seen and seen.get("commit") and seen.get("spec") == spec_hash(doc):
            return str(seen["commit"])
    return resolve_commit(svc, app, revision)


def _decide_sync(svc: Services, app: Application, comparison: Comparison, request: dict[str, Any] | None,
                 status: dict[str, Any]) -> tuple[dict[str, Any], bool] | None:
    """A requested sync always runs; otherwise Argo CD's automated-sync rules decide."""
    if request is not None:
        return request, False
    if not app.spec.automated or comparison.sync_status != OUT_OF_SYNC:
        if comparison.sync_status == SYNCED:
            svc.redis.delete(keys.selfheal(app.name))
        return None
    auto = app.spec.sync_policy.automated
    assert auto is not None
    commit = comparison.desired.commit
    last = status.get("operationState") or {}
    last_revision = (last.get("syncResult") or {}).get("revision")
    # A terminate that ended an operation before it touched anything (stuck by a fault, issue #17) tried
    # nothing of the commit: it does not count as a failed attempt, as a failure to apply it would.
    never_ran = (last.get("message") == machine.TERMINATED_MESSAGE
                 and not (last.get("syncResult") or {}).get("resources"))
    if last_revision == commit and last.get("phase") in FINAL_PHASES and not never_ran:
        if last.get("phase") != "Succeeded":
            status["conditions"].append(_condition(
                SYNC_ERROR, f"automated sync of {commit[:12]} already failed; waiting for a new commit"))
            return None
        if not auto.self_heal:
            return None
        # Self-heal: the same revision drifted. Back off 2 s, x3, capped at 300 s (settings).
        key = keys.selfheal(app.name)
        state = json.loads(svc.redis.get(key) or b'{"attempts":0,"next":0}')
        if time.time() < state["next"]:
            # Backing off: compare again when the back-off ends, not at the next reconcile period.
            svc.store.schedule(app.name, float(state["next"]))
            return None
        s = svc.settings
        delay = backoff_delay(state["attempts"], base=s.self_heal_backoff_base, factor=s.self_heal_backoff_factor,
                              cap=s.self_heal_backoff_cap)
        svc.redis.set(key, json.dumps({"attempts": state["attempts"] + 1, "next": time.time() + delay}),
                      ex=3600)
    if auto.prune and not auto.allow_empty and comparison.resources and not comparison.desired.managed:
        status["conditions"].append(_condition(
            SYNC_ERROR, "auto-sync will wipe out all resources: refusing (set allowEmpty to allow it)"))
        return None
    return {"prune": auto.prune}, True
