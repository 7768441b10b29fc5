"""The two verbs of a running operation: apply one step, then check that step's health.

Each call is re-entrant in the way gitops-engine's `Sync()` is: it reads the operation's recorded
progress and the live state, does at most one step's worth of work, records what it did with a
compare-and-set on the progress sequence number, and names its successor. A redelivered task either
redoes an idempotent step (server-side apply, create-if-absent) or finds the chain has moved on and
stops. Nothing here sleeps: waiting is a successor with a countdown.
"""

from __future__ import annotations

import contextvars
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

from shared.cluster.kube_errors import KubeInvalid
from shared.core.errors import WaitingError, WaveCDError
from shared.core.models import Application, parse_duration
from shared.core.resources import WAVE_TIMEOUT_ANNOTATION, ResourceKey, annotation
from shared.core.tracking import check_ownership
from shared.health import HealthStatusCode, assess
from shared.operation.model import (
    FAILED,
    FINAL_PHASES,
    STAGE_APPLY,
    STAGE_WAIT,
    SUCCEEDED,
    may_retry,
    now_iso,
    public_view,
    record_result,
    retry_delay,
)
from shared.pipeline import project_gate
from shared.pipeline.desired_state import load_desired
from shared.pipeline.reconcile import StepCall, publish_status
from shared.state.app_lock import LockToken
from shared.state.app_store import StaleWriterError
from shared.sync import hooks
from shared.sync.plan import managed_namespace_object
from shared.telemetry import log_context

if TYPE_CHECKING:
    from shared.cluster.client import Cluster
    from shared.pipeline.desired_state import DesiredState
    from shared.pipeline.services import Services

log = logging.getLogger(__name__)

TERMINATED_MESSAGE = "Operation terminated"


@dataclass
class StepOutcome:
    summary: str
    next: StepCall | None = None
    finished: bool = False          # the lock was released: the caller handles the pending refresh


@dataclass
class _Ctx:
    svc: Services
    token: LockToken
    op: dict[str, Any]
    seq: int
    app: Application | None = None
    cluster: Cluster | None = None
    desired: DesiredState | None = None

    @property
    def progress(self) -> dict[str, Any]:
        return self.op["progress"]

    def load(self) -> None:
        doc = self.svc.store.get_app(self.token.app)
        if doc is None:
            raise WaveCDError("the Application was deleted during the operation")
        self.app = Application.parse(doc)
        self.cluster = self.svc.clusters.for_destination(self.app.spec.destination)

    def load_desired(self) -> DesiredState:
        if self.desired is None:
            assert self.app is not None and self.cluster is not None
            self.desired = load_desired(self.svc, self.app, self.op["syncResult"]["revision"], self.cluster)
        return self.desired


def _enter(svc: Services, token: LockToken, op_id: str, seq: int) -> _Ctx | StepOutcome:
    """Common entry: own the lock, find the operation, check the chain position."""
    if not svc.locks.renew(token):
        return StepOutcome("lock lost: another operation or a recovery owns the app now; stopping")
    op = svc.store.operation(token.app)
    if op is None or op.get("id") != op_id:
        return StepOutcome(f"operation {op_id} is no longer current; stopping")
    if op.get("phase") in FINAL_PHASES:
        return StepOutcome(f"operation {op_id} already ended ({op['phase']})")
    log_context.bind(operation=op_id, revision=(op.get("syncResult") or {}).get("revision"))
    if int(op["progress"].get("seq", 0)) != seq:
        return StepOutcome(f"operation {op_id} moved on (seq {op['progress'].get('seq')} != {seq}); stopping")
    return _Ctx(svc, token, op, seq)


def _advance(ctx: _Ctx, task: str, step: int, countdown: float = 0.0) -> StepOutcome:
    ctx.progress["seq"] = ctx.seq + 1
    ctx.progress["step"] = step
    ctx.progress["stage"] = STAGE_APPLY if task == "wave_apply" else STAGE_WAIT
    if task == "wave_apply" or ctx.progress.get("stageStep") != step:
        ctx.progress["stepStartedAt"] = time.time()
        ctx.progress["stageStep"] = step
    if not ctx.svc.store.transition(ctx.token, ctx.op, ctx.seq):
        return StepOutcome("operation moved on meanwhile; stopping")
    return StepOutcome(f"{task} step {step}",
                       StepCall(task, ctx.token.app, ctx.op["id"], step, ctx.token.encode(), ctx.seq + 1,
                                countdown))


# --------------------------------------------------------------------------------------------------
# wave_apply


def _run(svc: Services, token: LockToken, op_id: str, step: int, seq: int, stage: str,
         body: Callable[[_Ctx, int], StepOutcome]) -> StepOutcome:
    """What both verbs share: enter the chain, honour terminate, check the stage, map errors."""
    entered = _enter(svc, token, op_id, seq)
    if isinstance(entered, StepOutcome):
        return entered
    ctx = entered
    try:
        if svc.store.terminate_requested(token.app):
            return _terminate(ctx)
        if ctx.progress["stage"] != stage or int(ctx.progress["step"]) != step:
            return StepOutcome(f"step {step} is not at stage {stage}; stopping")
        ctx.load()
        return body(ctx, step)
    except StaleWriterError as exc:
        return StepOutcome(str(exc))
    except WaveCDError as exc:
        return _finish(ctx, FAILED, str(exc))


def wave_apply(svc: Services, token: LockToken, op_id: str, step: int, seq: int) -> StepOutcome:
    return _run(svc, token, op_id, step, seq, STAGE_APPLY, _apply_step)


def _apply_step(ctx: _Ctx, step: int) -> StepOutcome:
    steps = ctx.progress["steps"]
    if step == 0 and (refused := project_gate.refuse_plan(ctx.svc, ctx.app, ctx.cluster, ctx.progress,
                                                          ctx.load_desired)):
        return _finish(ctx, FAILED, refused, allow_retry=False)  # the project refuses a planned object
    dry_run = bool(ctx.op["operation"]["sync"].get("dryRun"))
    if not steps:
        return _finish(ctx, SUCCEEDED, "successfully synced (no resources)")
    record = steps[step]
    desired = ctx.load_desired()
    failures: list[str] = []
    try:
        for group in _apply_groups(record["objects"]):
            failures.extend(_apply_group(ctx, record, group, desired, dry_run))
    except WaitingError as exc:
        # Something this step needs is still going away (a hook being deleted for re-creation): apply the
        # step again after a countdown, bounded by the step timeout. Every action here is idempotent.
        since = float(ctx.progress.setdefault("applyWaitingSince", time.time()))
        if time.time() - since > _step_timeout(ctx, record):
            return _finish(ctx, FAILED, f"step {record['phase']} wave {record['wave']} timed out: {exc}")
        outcome = _advance(ctx, "wave_apply", step, ctx.svc.settings.health_poll_interval)
        outcome.summary = f"waiting: {exc}"
        return outcome
    ctx.progress.pop("applyWaitingSince", None)
    if failures:
        return _finish(ctx, FAILED, "one or more objects failed to apply: " + "; ".join(failures[:5]))
    if dry_run:
        if step + 1 < len(steps):
            return _advance(ctx, "wave_apply", step + 1)
        return _finish(ctx, SUCCEEDED, "successfully synced (dry run)")
    simple = len(steps) == 1 and all(o["action"] == "apply" for o in record["objects"])
    if simple:
        return _finish(ctx, SUCCEEDED, "successfully synced (all tasks run)")
    return _advance(ctx, "health_check", step)


def _desired_object(ctx: _Ctx, item: dict[str, Any], key: ResourceKey, desired: DesiredState) -> dict[str, Any]:
    """The body to apply for a planned object: from the rendered manifests, or the namespace that
    CreateNamespace=true makes (it is in no manifest)."""
    if item.get("managedNamespace"):
        # Not stamped with the app's tracking id: the namespace holds the app but is not one of its
        # resources, so it is neither compared nor pruned (nor deleted with the app), as in Argo CD.
        return managed_namespace_object(key.name, ctx.progress.get("managedNamespaceMetadata"))
    obj = _find(desired, key, hook=False)
    if obj is None:
        raise WaveCDError(f"{key} is no longer in the rendered manifests")
    return obj


def _find(desired: DesiredState, key: ResourceKey, hook: bool, *, phase: str = "", revision: str = "",
          started_at: int = 0) -> dict[str, Any] | None:
    """The desired object behind a planned key; a hook matches by the name the planner gave it."""
    if not hook:
        return desired.index.get(key)
    for obj in desired.objects:
        if not hooks.is_hook(obj):
            continue
        found = ResourceKey.from_object(obj)
        if (found.group, found.kind, found.namespace) != (key.group, key.kind, key.namespace):
            continue
        if hooks.hook_name(obj, phase, revision=revision, started_at=started_at) == key.name:
            return obj
    return None


def _find_hook(ctx: _Ctx, desired: DesiredState, key: ResourceKey, phase: str) -> dict[str, Any] | None:
    return _find(desired, key, True, phase=phase, revision=ctx.op["syncResult"]["revision"],
                 started_at=int(ctx.progress.get("startedAtUnix", 0)))


def _result(item: dict[str, Any], record: dict[str, Any], status: str, message: str,
            **extra: Any) -> dict[str, Any]:  # noqa: ANN401
    base = {k: item[k] for k in ("group", "kind", "namespace", "name")}
    return {**base, "version": str(item.get("apiVersion", "")).rsplit("/", 1)[-1], "status": status,
            "message": message, "syncPhase": record["phase"], **extra}


APPLY_PARALLELISM = 8  # concurrent requests within one step, as Argo CD's kubectl parallelism limit


def _apply_groups(items: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """The step's objects in runs that may go to the server together: consecutive plain applies of one kind
    (the plan orders a step by kind, so a Namespace or CRD is applied before what needs it); every hook and
    prune on its own."""
    groups: list[list[dict[str, Any]]] = []
    for item in items:
        last = groups[-1] if groups else None
        if last and item["action"] == "apply" and last[0]["action"] == "apply" \
                and (item["group"], item["kind"]) == (last[0]["group"], last[0]["kind"]):
            last.append(item)
        else:
            groups.append([item])
    return groups


def _apply_group(ctx: _Ctx, record: dict[str, Any], group: list[dict[str, Any]], desired: DesiredState,
                 dry_run: bool) -> list[str]:
    """Apply one run of objects, concurrently when there are several; results stay in plan order."""
    if len(group) == 1:
        error = _apply_object(ctx, record, group[0], desired, dry_run)
        return [error] if error else []
    with ThreadPoolExecutor(max_workers=min(APPLY_PARALLELISM, len(group))) as pool:
        # Each request runs in a copy of this task's context, so logs and metrics still name the app.
        futures = [pool.submit(contextvars.copy_context().run, _apply_object, ctx, record, item, desired, dry_run)
                   for item in group]
        errors = [future.result() for future in futures]
    order = {(i["group"], i["kind"], i["namespace"], i["name"]): n for n, i in enumerate(group)}
    results = ctx.op["syncResult"]["resources"]
    ours = [r for r in results if (r.get("group", ""), r["kind"], r.get("namespace", ""), r["name"]) in order
            and r.get("syncPhase") == record["phase"]]
    ours.sort(key=lambda r: order[(r.get("group", ""), r["kind"], r.get("namespace", ""), r["name"])])
    mine = {id(result) for result in ours}
    positions = [n for n, r in enumerate(results) if id(r) in mine]
    for position, result in zip(positions, ours, strict=True):
        results[position] = result
    return [e for e in errors if e]


def _apply_object(ctx: _Ctx, record: dict[str, Any], item: dict[str, Any], desired: DesiredState,
                  dry_run: bool) -> str | None:
    """Apply, create (hook) or prune one object; record its result. Returns an error text or None."""
    assert ctx.cluster is not None and ctx.app is not None
    cluster, app = ctx.cluster, ctx.app
    key = ResourceKey.from_dict(item)
    options = item.get("options") or {}
    action = item["action"]
    try:
        if action == "apply":
            obj = _desired_object(ctx, item, key, desired)
            if dry_run and key.namespace and key.namespace == ctx.progress.get("namespaceToCreate"):
                # The server cannot dry-run into a namespace that does not exist yet; a real sync
                # creates it first (as Argo CD does, the dry run skips these objects).
                record_result(ctx.op, _result(item, record, "Synced",
                                              f"{key.kind.lower()}/{key.name} created (dry run; namespace "
                                              f"{key.namespace} will be created)"))
                return None
            # The watch-fed cache, as the comparison used: one request per object (the apply) instead of two.
            live = cluster.get(key, api_version=item["apiVersion"])
            fail_shared = str(options.get("FailOnSharedResource", "")).lower() == "true"
            reason = check_ownership(live, app.name, fail_shared) if live is not None else None
            if reason:
                record_result(ctx.op, _result(item, record, "Synced", f"skipped: {reason}"))
                return None
            force = str(options.get("Force", "")).lower() == "true" and not dry_run
            if force:
                live = _force_gone_or_live(cluster, key, item["apiVersion"])
            if str(options.get("Replace", "")).lower() == "true":
                if force and live is not None:  # `kubectl replace --force`: delete, then create afresh
                    _recreate(cluster, key, item["apiVersion"])
                applied = cluster.replace(obj, dry_run=dry_run)
            else:
                try:
                    applied = cluster.apply(obj, dry_run=dry_run)
                except KubeInvalid:
                    if not force or live is None:
                        raise
                    # `kubectl apply --force`: a change the server refuses in place (an immutable field)
                    # deletes the object and creates it again.
                    _recreate(cluster, key, item["apiVersion"])
            verb = "configured" if live is not None else "created"
            if live is not None and not dry_run and (applied.get("metadata") or {}).get("resourceVersion") \
                    == (live.get("metadata") or {}).get("resourceVersion"):
                verb = "unchanged"  # as kubectl: the server found nothing to change
            record_result(ctx.op, _result(item, record, "Synced", f"{key.kind.lower()}/{key.name} {verb}"))
            if not dry_run and not item.get("managedNamespace"):
                _add_inventory(ctx, item)
        elif action == "hook":
            if dry_run:
                record_result(ctx.op, _result(item, record, "Synced", "hook skipped (dry run)",
                                              hookType=record["phase"]))
                return None
            _run_hook(ctx, record, item, desired)
        elif action in ("prune", "prune-skipped"):
            disabled = action == "prune-skipped" or str(options.get("Prune", "")).lower() == "false" \
                or str(options.get("Delete", "")).lower() == "false"
            if disabled:
                record_result(ctx.op, _result(item, record, "PruneSkipped", "ignored (requires pruning)"))
                return None
            live = cluster.get(key, api_version=item["apiVersion"], fresh=True)
            if live is not None:
                reason = check_ownership(live, app.name, False)
                if reason:
                    record_result(ctx.op, _result(item, record, "PruneSkipped", reason))
                    return None
                policy = str(options.get("PrunePropagationPolicy", "foreground")).capitalize()
                cluster.delete(item["apiVersion"], key, propagation=policy, dry_run=dry_run)
            record_result(ctx.op, _result(item, record, "Pruned", "pruned"))
            if not dry_run:
                _drop_inventory(ctx, key)
        return None
    except WaitingError:
        raise
    except WaveCDError as exc:
        record_result(ctx.op, _result(item, record, "SyncFailed", str(exc)))
        return f"{key}: {exc}"


def _force_gone_or_live(cluster: Cluster, key: ResourceKey, api_version: str) -> dict[str, Any] | None:
    """With Force=true the object may be on its way out from an earlier attempt: wait until it is gone."""
    live = cluster.get(key, api_version=api_version, fresh=True)
    if live is not None and (live.get("metadata") or {}).get("deletionTimestamp"):
        raise WaitingError(f"{key} is being deleted to be created again (Force=true)")
    return live


def _recreate(cluster: Cluster, key: ResourceKey, api_version: str) -> NoReturn:
    """Delete the object for Force=true and come back (a WaitingError) once deletion has finished: the step
    runs again and creates it, as every action of a step is idempotent."""
    cluster.delete(api_version, key, propagation="Background")
    raise WaitingError(f"{key} deleted to be created again (Force=true)")


def _run_hook(ctx: _Ctx, record: dict[str, Any], item: dict[str, Any], desired: DesiredState) -> None:
    assert ctx.cluster is not None
    key = ResourceKey.from_dict(item)
    obj = _find_hook(ctx, desired, key, record["phase"])
    if obj is None:
        raise WaveCDError(f"hook {key} is no longer in the rendered manifests")
    name = key.name
    hook_key = key
    names = ctx.progress.setdefault("hookNames", {})
    names[f"{record['phase']}:{key}"] = name
    policies = item.get("deletePolicies") or ["BeforeHookCreation"]
    live = ctx.cluster.get(hook_key, api_version=item["apiVersion"], fresh=True)
    created_here = ctx.progress.setdefault("hooksCreated", [])
    marker = f"{ctx.op['id']}:{record['phase']}:{hook_key}"
    if live is not None and marker in created_here:
        pass  # a redelivered apply: this operation already created it
    else:
        terminating = live is not None and bool((live.get("metadata") or {}).get("deletionTimestamp"))
        if live is not None and (terminating or "BeforeHookCreation" in policies):
            # Deletion is asynchronous on a real cluster (finalizers, foreground propagation from a
            # HookFailed delete): the new hook is created once the old one is gone, never over it.
            if not terminating:
                ctx.cluster.delete(item["apiVersion"], hook_key, propagation="Background")
            if ctx.cluster.get(hook_key, api_version=item["apiVersion"], fresh=True) is not None:
                raise WaitingError(f"the previous {hook_key} is still being deleted")
        body = {**obj, "metadata": {**obj["metadata"], "name": name}}
        body["metadata"].pop("generateName", None)
        ctx.cluster.create(body)
        created_here.append(marker)
    record_result(ctx.op, _result({**item, "name": name}, record, "Synced", "hook created",
                                  hookType=record["phase"], hookPhase="Running"))


def _add_inventory(ctx: _Ctx, item: dict[str, Any]) -> None:
    applied = ctx.progress.setdefault("applied", [])
    entry = {k: item[k] for k in ("apiVersion", "group", "kind", "namespace", "name")}
    if entry not in applied:
        applied.append(entry)


def _drop_inventory(ctx: _Ctx, key: ResourceKey) -> None:
    pruned = ctx.progress.setdefault("pruned", [])
    if key.to_dict() not in pruned:
        pruned.append(key.to_dict())


# --------------------------------------------------------------------------------------------------
# health_check


def health_check(svc: Services, token: LockToken, op_id: str, step: int, seq: int) -> StepOutcome:
    return _run(svc, token, op_id, step, seq, STAGE_WAIT, _check_step)


def _check_step(ctx: _Ctx, step: int) -> StepOutcome:
    assert ctx.cluster is not None
    record = ctx.progress["steps"][step]
    waiting: list[str] = []
    waiting_on: list[dict[str, str]] = []  # what the wave gate waits for, with health messages (dashboard)
    failed: list[str] = []
    for item in record["objects"]:
        key = ResourceKey.from_dict(item)
        action = item["action"]
        if action == "prune":
            if str((item.get("options") or {}).get("Prune", "")).lower() == "false":
                continue
            if ctx.cluster.get(key, api_version=item["apiVersion"], fresh=True) is not None:
                waiting.append(f"{key} (pruning)")
            continue
        if action == "prune-skipped":
            continue
        if action == "hook":
            name = ctx.progress.get("hookNames", {}).get(f"{record['phase']}:{key}", key.name)
            key = ResourceKey(key.group, key.kind, key.namespace, name)
        live = ctx.cluster.get(key, api_version=item["apiVersion"], fresh=True)
        if live is None:
            if action == "hook" and _hook_done(ctx, record, name):
                continue
            waiting.append(f"{key} (missing)")
            waiting_on.append({**key.to_dict(), "health": HealthStatusCode.MISSING.value, "message": ""})
            continue
        health = assess(live, ctx.svc.lua)
        code = health.status if health is not None else HealthStatusCode.HEALTHY
        if action == "hook":
            _record_hook(ctx, record, item, key.name, code, health.message if health else "")
        if code in (HealthStatusCode.HEALTHY, HealthStatusCode.SUSPENDED):
            continue
        if code == HealthStatusCode.DEGRADED:
            failed.append(f"{key}: {health.message if health else 'Degraded'}")
        else:
            waiting.append(f"{key} ({code.value})")
            waiting_on.append({**key.to_dict(), "health": code.value, "message": health.message if health else ""})
    if failed:
        _delete_hooks(ctx, record, "HookFailed")
        return _finish(ctx, FAILED, "one or more resources are degraded: " + "; ".join(failed[:5]))
    if waiting:
        elapsed = time.time() - float(ctx.progress.get("stepStartedAt", time.time()))
        if elapsed > _step_timeout(ctx, record):
            return _finish(ctx, FAILED, f"step {record['phase']} wave {record['wave']} timed out after "
                                        f"{int(elapsed)}s waiting for: " + ", ".join(waiting[:10]))
        ctx.progress["waitingOn"] = {"step": step, "resources": waiting_on}
        outcome = _advance(ctx, "health_check", step, ctx.svc.settings.health_poll_interval)
        outcome.summary = "waiting for " + ", ".join(waiting[:5])
        return outcome
    _delete_hooks(ctx, record, "HookSucceeded")
    if step + 1 < len(ctx.progress["steps"]):
        return _advance(ctx, "wave_apply", step + 1, ctx.svc.settings.step_delay)
    return _finish(ctx, SUCCEEDED, "successfully synced (all tasks run)")


def _hook_done(ctx: _Ctx, record: dict[str, Any], name: str) -> bool:
    for result in ctx.op["syncResult"]["resources"]:
        if result.get("name") == name and result.get("syncPhase") == record["phase"]:
            return result.get("hookPhase") == "Succeeded"
    return False


def _record_hook(ctx: _Ctx, record: dict[str, Any], item: dict[str, Any], name: str,
                 code: HealthStatusCode, message: str) -> None:
    phase = {HealthStatusCode.HEALTHY: "Succeeded", HealthStatusCode.DEGRADED: "Failed"}.get(code, "Running")
    text = message or f"hook {phase.lower()}"
    record_result(ctx.op, _result({**item, "name": name}, record, "Synced", text,
                                  hookType=record["phase"], hookPhase=phase))


def _step_timeout(ctx: _Ctx, record: dict[str, Any]) -> float:
    """The settings' step timeout, or the largest `wavecd.io/wave-timeout` among the step's objects."""
    timeout = ctx.svc.settings.step_timeout
    desired = ctx.load_desired()
    found = []
    for item in record["objects"]:
        key = ResourceKey.from_dict(item)
        obj = _find_hook(ctx, desired, key, record["phase"]) if item["action"] == "hook" \
            else _find(desired, key, False)
        text = annotation(obj, WAVE_TIMEOUT_ANNOTATION) if obj else None
        if text:
            try:
                found.append(parse_duration(text))
            except ValueError:
                log.warning("ignoring invalid %s=%r", WAVE_TIMEOUT_ANNOTATION, text)
    return max(found) if found else timeout


def _delete_hooks(ctx: _Ctx, record: dict[str, Any], policy: str) -> None:
    assert ctx.cluster is not None
    for item in record["objects"]:
        if item["action"] != "hook" or policy not in (item.get("deletePolicies") or []):
            continue
        key = ResourceKey.from_dict(item)
        name = ctx.progress.get("hookNames", {}).get(f"{record['phase']}:{key}", key.name)
        try:
            ctx.cluster.delete(item["apiVersion"], ResourceKey(key.group, key.kind, key.namespace, name),
                               propagation="Background")
        except WaveCDError as exc:
            log.warning("could not delete hook %s: %s", name, exc)


# --------------------------------------------------------------------------------------------------
# ending


def _terminate(ctx: _Ctx) -> StepOutcome:
    ctx.svc.store.clear_terminate(ctx.token.app)
    try:
        if ctx.cluster is None:
            ctx.load()
        for record in ctx.progress["steps"]:
            for item in record["objects"]:
                if item["action"] != "hook":
                    continue
                key = ResourceKey.from_dict(item)
                name = ctx.progress.get("hookNames", {}).get(f"{record['phase']}:{key}")
                if name and not _hook_done(ctx, record, name):
                    assert ctx.cluster is not None
                    hook_key = ResourceKey(key.group, key.kind, key.namespace, name)
                    ctx.cluster.delete(item["apiVersion"], hook_key, propagation="Background")
    except WaveCDError as exc:
        log.warning("terminate: could not delete running hooks: %s", exc)
    return _finish(ctx, FAILED, TERMINATED_MESSAGE, allow_retry=False)


def _run_sync_fail_hooks(ctx: _Ctx) -> None:
    """SyncFail hooks run when an operation fails; they are created and not waited for."""
    if not ctx.progress.get("syncFailSteps") or ctx.cluster is None:
        return
    try:
        desired = ctx.load_desired()
        for record in ctx.progress["syncFailSteps"]:
            for item in record["objects"]:
                _run_hook(ctx, record, item, desired)
    except WaveCDError as exc:
        log.warning("SyncFail hook failed to start: %s", exc)


def _finish(ctx: _Ctx, phase: str, message: str, *, allow_retry: bool = True) -> StepOutcome:
    svc, op, token = ctx.svc, ctx.op, ctx.token
    if phase == FAILED and allow_retry and may_retry(op) and ctx.app is not None:
        op["retryCount"] = int(op.get("retryCount", 0)) + 1
        delay = retry_delay(ctx.app, op["retryCount"])
        op["message"] = f"Retrying attempt #{op['retryCount']} in {delay:.0f}s: {message}"
        ctx.progress.update(step=0, stage=STAGE_APPLY, stepStartedAt=time.time() + delay, hooksCreated=[])
        return _advance(ctx, "wave_apply", 0, delay)
    if phase == FAILED and message != TERMINATED_MESSAGE:
        _run_sync_fail_hooks(ctx)
    op.update(phase=phase, message=message, finishedAt=now_iso())
    ctx.progress["seq"] = ctx.seq + 1
    if not svc.store.transition(token, op, ctx.seq):
        return StepOutcome("operation moved on meanwhile; stopping")
    status = svc.store.status(token.app)
    inventory = [i for i in status.get("inventory") or []]
    for entry in ctx.progress.get("applied", []):
        if entry not in inventory:
            inventory.append(entry)
    pruned = ctx.progress.get("pruned", [])
    inventory = [i for i in inventory if {k: i[k] for k in ("group", "kind", "namespace", "name")}
                 not in pruned]
    status["inventory"] = inventory
    status["operationState"] = public_view(op)
    if phase == SUCCEEDED and not op["operation"]["sync"].get("dryRun"):
        history = list(status.get("history") or [])
        next_id = (max((h.get("id", 0) for h in history), default=-1)) + 1
        history.append({"id": next_id, "revision": op["syncResult"]["revision"], "deployedAt": now_iso(),
                        "deployStartedAt": op["startedAt"], "source": op["syncResult"].get("source"),
                        "initiatedBy": op["operation"].get("initiatedBy")})
        limit = ctx.app.spec.revision_history_limit if ctx.app is not None else 10
        status["history"] = history[-max(1, limit):]
    try:
        publish_status(svc, token, status)
    except StaleWriterError as exc:
        return StepOutcome(str(exc))
    svc.store.clear_running(token.app)
    svc.store.log_operation(token.app, op["id"], "end", phase)
    svc.coalescer.mark_pending(token.app)  # a fresh comparison after every operation
    svc.locks.release(token)
    return StepOutcome(f"operation {op['id']} {phase}: {message}", finished=True)
