"""The `diff` step: compare what git wants with what the cluster has, record it, decide on a sync.

A reconcile is a run of sub-steps with early return (as Flux's reconcilers are): validate the spec,
resolve the revision, render, read live state, compare, assess health, store status, and finally
decide whether an operation starts. Each failure is typed and lands as a condition on this app only.
The caller holds the app's lock; when an operation starts, the lock passes on to the operation chain.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import random
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shared.core.errors import WaveCDError
from shared.core.models import Application
from shared.core.resources import (
    COMPARE_OPTIONS_ANNOTATION,
    SYNC_OPTIONS_ANNOTATION,
    ResourceKey,
    parse_options,
    tracking_app_of,
)
from shared.diff.compare import compare
from shared.health import HealthStatus, HealthStatusCode, aggregate, assess, is_health_ignored
from shared.operation import machine
from shared.operation.machine import Chain, StepCall
from shared.operation.model import (
    FINAL_PHASES,
    RUNNING,
    Operation,
    ResourceResult,
    ResultStatus,
    Step,
    SyncRequest,
    new_operation,
    now_iso,
    public_view,
)
from shared.pipeline import project_gate
from shared.pipeline.app_index import spec_hash
from shared.pipeline.desired_state import DesiredState, load_desired, resolve_commit
from shared.pipeline.revision_metadata import record_revision
from shared.state.app_lock import LockToken
from shared.sync.options import SyncOptions
from shared.sync.plan import plan_sync, sync_wave
from shared.telemetry import log_context

if TYPE_CHECKING:
    from shared.cluster.client import Cluster
    from shared.pipeline.services import Services

log = logging.getLogger(__name__)

SYNCED, OUT_OF_SYNC, UNKNOWN = "Synced", "OutOfSync", "Unknown"


@dataclass
class RefreshOutcome:
    summary: str
    next: StepCall | None = None


def diff_key(app: str) -> str:
    return f"wavecd:diff:{app}"


# --------------------------------------------------------------------------------------------------
# comparison


@dataclass
class Comparison:
    desired: DesiredState
    live: dict[ResourceKey, dict[str, Any]]
    resources: list[dict[str, Any]]
    sync_status: str
    health: HealthStatus
    diffs: dict[str, str]
    in_sync: set[ResourceKey]
    to_prune: list[dict[str, Any]]
    conditions: list[dict[str, Any]]


def inventory_of(status: dict[str, Any]) -> list[dict[str, str]]:
    return list(status.get("inventory") or [])


def compare_app(svc: Services, app: Application, commit: str, cluster: Cluster,
                inventory: list[dict[str, str]], *, hard: bool = False) -> Comparison:
    desired = load_desired(svc, app, commit, cluster, hard=hard)
    managed = desired.managed
    wanted: list[tuple[str, ResourceKey]] = [
        (str(o.get("apiVersion")), ResourceKey.from_object(o)) for o in managed]
    wanted_keys = {k for _, k in wanted}
    extra = [(str(i.get("apiVersion", "")), ResourceKey.from_dict(i)) for i in inventory]
    extra = [(v, k) for v, k in extra if k not in wanted_keys]
    live = cluster.live_for(wanted + extra)
    global_ignores = svc.settings.global_ignore_differences()
    resources: list[dict[str, Any]] = []
    diffs: dict[str, str] = {}
    in_sync: set[ResourceKey] = set()
    health_inputs: list[HealthStatus | None] = []
    conditions: list[dict[str, Any]] = []
    server_side = server_side_diff_enabled(svc, app)
    for obj in managed:
        key = ResourceKey.from_object(obj)
        live_obj = live.get(key)
        owner = tracking_app_of(live_obj) if live_obj else None
        if owner and owner != app.name:
            conditions.append({"type": "SharedResourceWarning",
                               "message": f"{key} is part of applications {app.name} and {owner}"})
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
        if live_obj is None:
            entry["health"] = {"status": HealthStatusCode.MISSING.value}
            health_inputs.append(HealthStatus(HealthStatusCode.MISSING))
        else:
            health = assess(live_obj, svc.lua)
            if health is not None:
                entry["health"] = {"status": health.status.value, "message": health.message}
                if not is_health_ignored(live_obj):
                    health_inputs.append(health)
        resources.append(entry)
    to_prune = []
    for api_version, key in extra:
        live_obj = live.get(key)
        if live_obj is None or tracking_app_of(live_obj) not in (app.name, None):
            continue
        options = parse_options(((live_obj.get("metadata") or {}).get("annotations") or {})
                                .get(SYNC_OPTIONS_ANNOTATION))
        entry = {**key.to_dict(), "version": api_version.rsplit("/", 1)[-1], "status": OUT_OF_SYNC,
                 "requiresPruning": options.get("Prune", "").lower() != "false"}
        resources.append(entry)
        diffs[str(key)] = compare(None, live_obj).diff_text()
        to_prune.append(live_obj)
    sync_status = SYNCED if all(r["status"] == SYNCED for r in resources) else OUT_OF_SYNC
    if not resources:
        health = HealthStatus(HealthStatusCode.HEALTHY)
    else:
        health = aggregate(health_inputs, ignore_missing=True) if health_inputs \
            else HealthStatus(HealthStatusCode.HEALTHY)
    return Comparison(desired, live, resources, sync_status, health, diffs, in_sync, to_prune, conditions)


def server_side_diff_enabled(svc: Services, app: Application) -> bool:
    options = parse_options(app.annotations.get(COMPARE_OPTIONS_ANNOTATION))
    if "ServerSideDiff" in options:
        return options["ServerSideDiff"].lower() == "true"
    return svc.settings.server_side_diff


# --------------------------------------------------------------------------------------------------
# status


def status_digest(status: dict[str, Any]) -> str:
    material = {k: v for k, v in status.items() if k not in ("reconciledAt", "observedAt")}
    return hashlib.sha1(json.dumps(material, sort_keys=True, default=str).encode()).hexdigest()


def publish_status(svc: Services, token: LockToken, status: dict[str, Any]) -> None:
    """Store status in Redis (fenced) and mirror it onto the Application when it materially changed."""
    svc.store.write(token, "status", status)
    digest = status_digest(status)
    key = f"wavecd:published:{token.app}"
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
# the step


def refresh_app(svc: Services, token: LockToken) -> RefreshOutcome:
    """Run one reconcile of `token.app` under its lock. Returns the summary and the next chain step."""
    name = token.app
    store = svc.store
    doc = store.get_app(name)
    if doc is None:
        return RefreshOutcome("app no longer exists")
    previous = store.status(name)
    status: dict[str, Any] = {k: previous[k] for k in ("history", "operationState", "inventory")
                              if k in previous}
    status["reconciledAt"] = now_iso()

    op = store.operation(name)
    try:
        app = Application.parse(doc)
        source = app.spec.primary_source
        status["sync"] = {"status": UNKNOWN, "comparedTo": {"source": source.dump(),
                                                            "destination": app.spec.destination.dump()}}
        admitted = project_gate.admit(svc, app)  # the app's project permits its sources and destination
        cluster = svc.clusters.for_destination(app.spec.destination)
    except WaveCDError as exc:
        status.update(sync={"status": UNKNOWN}, health={"status": HealthStatusCode.UNKNOWN.value},
                      conditions=[_condition("InvalidSpecError", str(exc))])
        publish_status(svc, token, status)
        return RefreshOutcome(f"invalid spec: {exc}")

    # An operation left Running by a chain whose lock expired: resume it where it stopped.
    if op is not None and op.get("phase") in (RUNNING, "Terminating"):
        return _resume(svc, token, op)

    request = store.take_sync_request(name)
    revision = (request or {}).get("revision") or None
    try:
        project_gate.ensure_reachable(svc, admitted)  # a cluster found down is not waited on
        hard = store.take_hard_refresh(name)
        if hard:
            svc.repos.fetch(source.repo_url, force=True)
            revision = revision or source.target_revision
        commit = _commit_for(svc, name, doc, app, revision)
        log_context.bind(revision=commit)
        record_revision(svc, source.repo_url, commit)  # author and subject, for views that never read git
        comparison = compare_app(svc, app, commit, cluster, inventory_of(previous), hard=hard)
    except WaveCDError as exc:
        status["health"] = previous.get("health") or {"status": HealthStatusCode.UNKNOWN.value}
        status["conditions"] = [_condition("ComparisonError", str(exc))]
        publish_status(svc, token, status)
        return RefreshOutcome(f"comparison failed: {exc}")

    status["sync"]["status"] = comparison.sync_status
    status["sync"]["revision"] = commit
    status["health"] = {"status": comparison.health.status.value, "message": comparison.health.message}
    status["resources"] = comparison.resources
    status["sourceType"] = "Kustomize" if comparison.desired.renderer == "kustomize" else "Directory"
    status["conditions"] = [_condition(c["type"], c["message"]) for c in comparison.conditions]
    svc.redis.set(diff_key(name), json.dumps(comparison.diffs), ex=86400)

    if comparison.health.status == HealthStatusCode.PROGRESSING:
        # A roll-out under way is compared again soon even if no watch event arrives. A Missing app is
        # not: nothing changes until it is synced, and a sync's own chain and the watch follow it.
        store.schedule(name, time.time() + svc.settings.progressing_recheck)
    project_gate.warn_orphans(svc, admitted, app, cluster, status)  # the project's orphanedResources warning
    start = _decide_sync(svc, app, comparison, request, status)
    start = project_gate.window_gate(admitted, app, start, status)  # sync windows hold syncs back
    if start is None:
        publish_status(svc, token, status)
        return RefreshOutcome(f"{comparison.sync_status}/{comparison.health.status.value} at {commit[:12]}")
    request, automated = start
    try:
        op = _start_operation(svc, app, cluster, comparison, request, automated)
    except WaveCDError as exc:
        status["conditions"].append(_condition("SyncError", str(exc)))
        publish_status(svc, token, status)
        return RefreshOutcome(f"sync not started: {exc}")
    # A terminate left over from an earlier operation goes before this one becomes visible: cleared after
    # it, a terminate asked for the new operation in between would be lost (seen on a real cluster, where
    # publishing the status takes a request).
    store.clear_terminate(name)
    svc.store.write_operation(token, op)
    log_context.bind(operation=op.id)
    store.log_operation(name, op.id, "start")
    status["operationState"] = public_view(op)
    publish_status(svc, token, status)
    store.mark_running(name)
    return RefreshOutcome(f"sync {op.id} started at {commit[:12]}",
                          machine.first_call(op, Chain(name, token.encode())))


def _commit_for(svc: Services, name: str, doc: dict[str, Any], app: Application, revision: str | None) -> str:
    """The commit the last fetch resolved for this app (any host), else resolve it here."""
    if revision is None:
        seen = svc.store.source(name)
        if seen and seen.get("commit") and seen.get("spec") == spec_hash(doc):
            return str(seen["commit"])
    return resolve_commit(svc, app, revision)


def _resume(svc: Services, token: LockToken, doc: dict[str, Any]) -> RefreshOutcome:
    """An operation left Running by a chain whose lock expired: the new token claims it (a fenced write)
    and the chain goes on at the stage and step it recorded."""
    op = Operation.model_validate(doc)
    svc.store.write_operation(token, op)
    return RefreshOutcome(f"resumed operation {op.id} at step {op.progress.step}",
                          machine.resume(op, Chain(token.app, token.encode())))


def _decide_sync(svc: Services, app: Application, comparison: Comparison, request: dict[str, Any] | None,
                 status: dict[str, Any]) -> tuple[dict[str, Any], bool] | None:
    """A requested sync always runs; otherwise Argo CD's automated-sync rules decide."""
    if request is not None:
        return request, False
    if not app.spec.automated or comparison.sync_status != OUT_OF_SYNC:
        if comparison.sync_status == SYNCED:
            svc.redis.delete(f"wavecd:selfheal:{app.name}")
        return None
    auto = app.spec.sync_policy.automated
    assert auto is not None
    commit = comparison.desired.commit
    last = status.get("operationState") or {}
    last_revision = (last.get("syncResult") or {}).get("revision")
    if last_revision == commit and last.get("phase") in FINAL_PHASES:
        if last.get("phase") != "Succeeded":
            status["conditions"].append(_condition(
                "SyncError", f"automated sync of {commit[:12]} already failed; waiting for a new commit"))
            return None
        if not auto.self_heal:
            return None
        # Self-heal: the same revision drifted. Back off 2 s, x3, capped at 300 s (settings).
        key = f"wavecd:selfheal:{app.name}"
        state = json.loads(svc.redis.get(key) or b'{"attempts":0,"next":0}')
        if time.time() < state["next"]:
            # Backing off: compare again when the back-off ends, not at the next reconcile period.
            svc.store.schedule(app.name, float(state["next"]))
            return None
        s = svc.settings
        delay = min(s.self_heal_backoff_cap, s.self_heal_backoff_base * s.self_heal_backoff_factor
                    ** state["attempts"])
        svc.redis.set(key, json.dumps({"attempts": state["attempts"] + 1, "next": time.time() + delay}),
                      ex=3600)
    if auto.prune and not auto.allow_empty and comparison.resources and not comparison.desired.managed:
        status["conditions"].append(_condition(
            "SyncError", "auto-sync will wipe out all resources: refusing (set allowEmpty to allow it)"))
        return None
    return {"prune": auto.prune}, True


def _start_operation(svc: Services, app: Application, cluster: Cluster, comparison: Comparison,
                     request: dict[str, Any], automated: bool) -> Operation:
    asked = SyncRequest.model_validate(request)
    options = SyncOptions.from_policy(app.spec.sync_policy)
    if asked.sync_options:
        options = options.merged_with(",".join(asked.sync_options))
    prune = asked.prune or bool(app.spec.sync_policy.automated and automated
                                and app.spec.sync_policy.automated.prune)
    only = None
    if asked.resources:
        only = {ResourceKey(r.get("group", ""), r["kind"], r.get("namespace") or
                            app.spec.destination.namespace, r["name"]) for r in asked.resources}
    destination_ns = app.spec.destination.namespace
    create_ns = None
    if options.create_namespace and destination_ns and not cluster.namespace_exists(destination_ns):
        create_ns = destination_ns
    now = time.time()
    plan = plan_sync(comparison.desired.objects, live_tracked=comparison.to_prune, prune=prune,
                     options=options, in_sync=comparison.in_sync, only=only,
                     default_namespace=destination_ns, create_namespace=create_ns,
                     revision=comparison.desired.commit, started_at=int(now))
    versions = dict(comparison.desired.api_versions)
    for obj in comparison.to_prune:
        versions[ResourceKey.from_object(obj)] = str(obj.get("apiVersion", ""))
    op = new_operation(app, revision=comparison.desired.commit, tree_id=comparison.desired.tree_id,
                       source_path=app.spec.primary_source.path,
                       steps=[Step.from_plan(s.to_dict(), versions) for s in plan.steps],
                       sync_fail_steps=[Step.from_plan(s.to_dict(), versions) for s in plan.sync_fail_steps],
                       request=asked.model_copy(update={"prune": prune}), automated=automated, now=now)
    op.progress.namespace_to_create = create_ns
    op.progress.managed_namespace_metadata = app.spec.sync_policy.managed_namespace_metadata
    op.progress.jitter = random.random()
    for skipped in plan.prune_skipped:
        op.record_result(ResourceResult(**skipped.key.to_dict(), status=ResultStatus.PRUNE_SKIPPED,
                                        message="ignored (requires pruning)", sync_phase="Sync"))
    return op
