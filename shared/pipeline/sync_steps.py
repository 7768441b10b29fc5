"""The two verbs of a running operation, as the I/O shell around `shared.operation.machine`.

`wave_apply` applies one step's objects (server-side apply, hooks, prunes) and `health_check` reads
their health; each gathers those facts from the cluster and the rendered manifests, asks the machine
what follows (advance, wait, retry, finish, terminate), stores the new operation with a compare-and-set
on its sequence number, and returns the next call for the task layer to send. Each call is re-entrant in
the way gitops-engine's `Sync()` is: a redelivered task either redoes an idempotent step (server-side
apply, create-if-absent) or finds the chain has moved on and stops. Nothing here sleeps: waiting is a
successor with a countdown. The clock is a parameter, so tests drive a whole chain in-process.
"""

from __future__ import annotations

import contextvars
import logging
import time
from collections.abc import Callable
from concurrent.futures import wait as futures_wait
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NoReturn

from pydantic import ValidationError

from shared.cluster.kube_errors import KubeInvalid
from shared.core.errors import WaitingError, WaveCDError
from shared.core.models import Application, RetryStrategy, parse_duration
from shared.core.resources import WAVE_TIMEOUT_ANNOTATION, ResourceKey, annotation
from shared.core.thread_pools import thread_pool
from shared.core.tracking import check_ownership
from shared.health import HealthStatusCode, assess
from shared.operation import machine
from shared.operation.machine import Chain, StepCall, Task, Transition, WaveVerdict
from shared.operation.model import (
    HookPhase,
    Operation,
    Phase,
    ResourceResult,
    ResultStatus,
    Stage,
    Step,
    StepAction,
    StepObject,
)
from shared.pipeline import project_gate
from shared.pipeline.desired_state import load_desired
from shared.pipeline.diff_step import publish_status
from shared.state.app_lock import LockToken
from shared.state.app_store import StaleWriterError
from shared.sync import hooks
from shared.sync.options import SyncOptions
from shared.sync.plan import managed_namespace_object
from shared.telemetry import log_context

if TYPE_CHECKING:
    from shared.cluster.client import Cluster
    from shared.pipeline.desired_state import DesiredState
    from shared.pipeline.services import Services

log = logging.getLogger(__name__)

TERMINATED_MESSAGE = machine.TERMINATED_MESSAGE

Clock = Callable[[], float]


@dataclass
class StepOutcome:
    summary: str
    next: StepCall | None = None
    finished: bool = False          # the lock was released: the caller handles the pending refresh


@dataclass
class _Ctx:
    svc: Services
    token: LockToken
    op: Operation
    seq: int
    clock: Clock
    app: Application | None = None
    cluster: Cluster | None = None
    desired: DesiredState | None = None
    app_options: SyncOptions = field(default_factory=SyncOptions)
    doc: dict[str, Any] | None = None   # the Application as the step read it on entry (StepView)

    @property
    def chain(self) -> Chain:
        return Chain(self.token.app, self.token.encode())

    def load(self) -> None:
        doc, self.doc = self.doc or self.svc.store.get_app(self.token.app), None
        if doc is None:
            raise WaveCDError("the Application was deleted during the operation")
        self.app = Application.parse(doc)
        self.cluster = self.svc.clusters.for_destination(self.app.spec.destination)
        # The app-wide options (FailOnSharedResource, PrunePropagationPolicy...) are not in the steps'
        # per-object options: the step reads them here, typed, as the operation started them.
        options = SyncOptions.from_policy(self.app.spec.sync_policy)
        if self.op.operation.sync.sync_options:
            options = options.merged_with(",".join(self.op.operation.sync.sync_options))
        self.app_options = options

    def load_desired(self) -> DesiredState:
        if self.desired is None:
            assert self.app is not None and self.cluster is not None
            self.desired = load_desired(self.svc, self.app, self.op.revision, self.cluster)
        return self.desired

    def options(self, obj: StepObject) -> SyncOptions:
        """The object's effective sync options: the app's, overridden by the object's own."""
        return SyncOptions({**self.app_options.values, **obj.options})

    @property
    def retry(self) -> RetryStrategy | None:
        return self.app.spec.sync_policy.retry if self.app is not None else None


def _commit(ctx: _Ctx, moved: Transition) -> StepOutcome:
    """Store what the machine decided (compare-and-set on seq), then settle an operation that ended."""
    if moved.run_sync_fail:
        ctx.op = moved.op
        _run_sync_fail_hooks(ctx)
    if not ctx.svc.store.transition(ctx.token, moved.op, ctx.seq):
        return StepOutcome("operation moved on meanwhile; stopping")
    if moved.final:
        return _settle(ctx, moved.op, moved.summary)
    return StepOutcome(moved.summary, moved.call)


def _finish(ctx: _Ctx, phase: Phase, message: str, *, allow_retry: bool = True) -> StepOutcome:
    return _commit(ctx, machine.finish(ctx.op, ctx.chain, phase, message, now=ctx.clock(), retry=ctx.retry,
                                       allow_retry=allow_retry and ctx.app is not None))


def _run(svc: Services, token: LockToken, op_id: str, step: int, seq: int, stage: Stage,
         body: Callable[[_Ctx, int], StepOutcome], clock: Clock) -> StepOutcome:
    """What both verbs share: own the lock, find the operation at this position, honour terminate, map
    errors."""
    if not svc.locks.renew(token):
        return StepOutcome("lock lost: another operation or a recovery owns the app now; stopping")
    view = svc.store.step_view(token.app)
    try:
        op = Operation.load(view.operation)
    except ValidationError as exc:  # a damaged record: no step can go on from it
        svc.store.write(token, "operation", machine.unreadable(svc.store.operation(token.app) or {},
                                                               machine.unreadable_reason(exc), now=clock()))
        svc.store.clear_running(token.app)
        svc.coalescer.mark_pending(token.app)
        svc.locks.release(token)
        return StepOutcome("the operation's record could not be read: ended as Error", finished=True)
    stop = machine.check_entry(op, op_id, seq)
    if stop is not None:
        return StepOutcome(stop)
    assert op is not None
    log_context.bind(operation=op_id, revision=op.revision)
    ctx = _Ctx(svc, token, op, seq, clock, doc=view.doc)
    try:
        if view.terminate:
            return _terminate(ctx)
        stop = machine.check_entry(op, op_id, seq, stage=stage, step=step)
        if stop is not None:
            return StepOutcome(stop)
        ctx.load()
        return body(ctx, step)
    except StaleWriterError as exc:
        return StepOutcome(str(exc))
    except WaveCDError as exc:
        return _finish(ctx, Phase.FAILED, str(exc))


# --------------------------------------------------------------------------------------------------
# wave_apply


def wave_apply(svc: Services, token: LockToken, op_id: str, step: int, seq: int, *,
               clock: Clock = time.time) -> StepOutcome:
    return _run(svc, token, op_id, step, seq, Stage.APPLY, _apply_step, clock)


def _apply_step(ctx: _Ctx, step: int) -> StepOutcome:
    progress = ctx.op.progress
    if step == 0 and (refused := project_gate.refuse_plan(ctx.svc, ctx.app, ctx.cluster, progress.dump(),
                                                          ctx.load_desired)):
        return _finish(ctx, Phase.FAILED, refused, allow_retry=False)  # the project refuses a planned object
    if not progress.steps:
        return _finish(ctx, Phase.SUCCEEDED, "successfully synced (no resources)")
    record = progress.steps[step]
    desired = ctx.load_desired()
    failures: list[str] = []
    try:
        for group in _apply_groups(record.objects):
            failures.extend(_apply_group(ctx, record, group, desired))
    except WaitingError as exc:
        # Something this step needs is still going away (a hook being deleted for re-creation): apply the
        # step again after a countdown, bounded by the step timeout. Every action here is idempotent.
        return _commit(ctx, machine.apply_waiting(ctx.op, ctx.chain, step, str(exc), now=ctx.clock(),
                                                  timeout=_step_timeout(ctx, record),
                                                  poll=ctx.svc.settings.health_poll_interval, retry=ctx.retry))
    progress.apply_waiting_since = None
    return _commit(ctx, machine.after_apply(ctx.op, ctx.chain, step, failures=failures, now=ctx.clock(),
                                            retry=ctx.retry))


def _desired_object(ctx: _Ctx, item: StepObject, desired: DesiredState) -> dict[str, Any]:
    """The body to apply for a planned object: from the rendered manifests, or the namespace that
    CreateNamespace=true makes (it is in no manifest)."""
    if item.managed_namespace:
        # Not stamped with the app's tracking id: the namespace holds the app but is not one of its
        # resources, so it is neither compared nor pruned (nor deleted with the app), as in Argo CD.
        return managed_namespace_object(item.name, ctx.op.progress.managed_namespace_metadata)
    obj = _find(desired, item.key, hook=False)
    if obj is None:
        raise WaveCDError(f"{item.key} is no longer in the rendered manifests")
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
    return _find(desired, key, True, phase=phase, revision=ctx.op.revision,
                 started_at=ctx.op.progress.started_at_unix)


def _result(item: StepObject, record: Step, status: ResultStatus, message: str, *, name: str | None = None,
            hook: bool = False, hook_phase: HookPhase | None = None) -> ResourceResult:
    return ResourceResult(group=item.group, kind=item.kind, namespace=item.namespace, name=name or item.name,
                          version=item.api_version.rsplit("/", 1)[-1], status=status, message=message,
                          sync_phase=record.phase, hook_type=record.phase if hook else None,
                          hook_phase=hook_phase)


APPLY_PARALLELISM = 8  # concurrent requests within one step, as Argo CD's kubectl parallelism limit


def _apply_groups(items: list[StepObject]) -> list[list[StepObject]]:
    """The step's objects in runs that may go to the server together: consecutive plain applies of one kind
    (the plan orders a step by kind, so a Namespace or CRD is applied before what needs it); every hook and
    prune on its own."""
    groups: list[list[StepObject]] = []
    for item in items:
        last = groups[-1] if groups else None
        if last and item.action == StepAction.APPLY and last[0].action == StepAction.APPLY \
                and (item.group, item.kind) == (last[0].group, last[0].kind):
            last.append(item)
        else:
            groups.append([item])
    return groups


def _apply_group(ctx: _Ctx, record: Step, group: list[StepObject], desired: DesiredState) -> list[str]:
    """Apply one run of objects, concurrently when there are several; results stay in plan order."""
    if len(group) == 1:
        error = _apply_object(ctx, record, group[0], desired)
        return [error] if error else []
    pool = thread_pool("apply", APPLY_PARALLELISM)
    # Each request runs in a copy of this task's context, so logs and metrics still name the app.
    futures = [pool.submit(contextvars.copy_context().run, _apply_object, ctx, record, item, desired)
               for item in group]
    try:
        errors = [future.result() for future in futures]
    except BaseException:  # a time limit, say: nothing of this step goes on applying after the task ends
        futures_wait(futures)
        raise
    order = {(i.group, i.kind, i.namespace, i.name): n for n, i in enumerate(group)}
    results = ctx.op.sync_result.resources
    ours = [r for r in results if (r.group, r.kind, r.namespace, r.name) in order and r.sync_phase == record.phase]
    ours.sort(key=lambda r: order[(r.group, r.kind, r.namespace, r.name)])
    mine = {id(result) for result in ours}
    positions = [n for n, r in enumerate(results) if id(r) in mine]
    for position, result in zip(positions, ours, strict=True):
        results[position] = result
    return [e for e in errors if e]


def _apply_object(ctx: _Ctx, record: Step, item: StepObject, desired: DesiredState) -> str | None:
    """Apply, create (hook) or prune one object; record its result. Returns an error text or None."""
    assert ctx.cluster is not None and ctx.app is not None
    cluster, app, op = ctx.cluster, ctx.app, ctx.op
    dry_run = op.dry_run
    key = item.key
    options = ctx.options(item)
    try:
        if item.action == StepAction.APPLY:
            obj = _desired_object(ctx, item, desired)
            if dry_run and key.namespace and key.namespace == op.progress.namespace_to_create:
                # The server cannot dry-run into a namespace that does not exist yet; a real sync
                # creates it first (as Argo CD does, the dry run skips these objects).
                op.record_result(_result(item, record, ResultStatus.SYNCED,
                                         f"{key.kind.lower()}/{key.name} created (dry run; namespace "
                                         f"{key.namespace} will be created)"))
                return None
            # The watch-fed cache, as the comparison used: one request per object (the apply) instead of two.
            live = cluster.get(key, api_version=item.api_version)
            reason = check_ownership(live, app.name, options.fail_on_shared_resource) if live is not None else None
            if reason:
                op.record_result(_result(item, record, ResultStatus.SYNCED, f"skipped: {reason}"))
                return None
            force = options.force and not dry_run
            if force:
                live = _force_gone_or_live(cluster, key, item.api_version)
            if options.replace:
                if force and live is not None:  # `kubectl replace --force`: delete, then create afresh
                    _recreate(cluster, key, item.api_version)
                applied = cluster.replace(obj, dry_run=dry_run)
            else:
                try:
                    applied = cluster.apply(obj, dry_run=dry_run)
                except KubeInvalid:
                    if not force or live is None:
                        raise
                    # `kubectl apply --force`: a change the server refuses in place (an immutable field)
                    # deletes the object and creates it again.
                    _recreate(cluster, key, item.api_version)
            verb = "configured" if live is not None else "created"
            if live is not None and not dry_run and (applied.get("metadata") or {}).get("resourceVersion") \
                    == (live.get("metadata") or {}).get("resourceVersion"):
                verb = "unchanged"  # as kubectl: the server found nothing to change
            op.record_result(_result(item, record, ResultStatus.SYNCED, f"{key.kind.lower()}/{key.name} {verb}"))
            if not dry_run and not item.managed_namespace:
                _add_inventory(ctx, item)
        elif item.action == StepAction.HOOK:
            if dry_run:
                op.record_result(_result(item, record, ResultStatus.SYNCED, "hook skipped (dry run)", hook=True))
                return None
            _run_hook(ctx, record, item, desired)
        elif item.action in (StepAction.PRUNE, StepAction.PRUNE_SKIPPED):
            if item.action == StepAction.PRUNE_SKIPPED or options.prune_disabled or options.delete_disabled:
                op.record_result(_result(item, record, ResultStatus.PRUNE_SKIPPED, "ignored (requires pruning)"))
                return None
            live = cluster.get(key, api_version=item.api_version, fresh=True)
            if live is not None:
                reason = check_ownership(live, app.name, False)
                if reason:
                    op.record_result(_result(item, record, ResultStatus.PRUNE_SKIPPED, reason))
                    return None
                cluster.delete(item.api_version, key, propagation=options.prune_propagation_policy.capitalize(),
                               dry_run=dry_run)
            op.record_result(_result(item, record, ResultStatus.PRUNED, "pruned"))
            if not dry_run:
                _drop_inventory(ctx, key)
        return None
    except WaitingError:
        raise
    except WaveCDError as exc:
        op.record_result(_result(item, record, ResultStatus.SYNC_FAILED, str(exc)))
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


def _run_hook(ctx: _Ctx, record: Step, item: StepObject, desired: DesiredState) -> None:
    assert ctx.cluster is not None
    op = ctx.op
    key = item.key
    obj = _find_hook(ctx, desired, key, record.phase)
    if obj is None:
        raise WaveCDError(f"hook {key} is no longer in the rendered manifests")
    name = key.name
    op.progress.hook_names[f"{record.phase}:{key}"] = name
    policies = item.delete_policies or ["BeforeHookCreation"]
    live = ctx.cluster.get(key, api_version=item.api_version, fresh=True)
    marker = f"{op.id}:{record.phase}:{key}"
    if live is not None and marker in op.progress.hooks_created:
        pass  # a redelivered apply: this operation already created it
    else:
        terminating = live is not None and bool((live.get("metadata") or {}).get("deletionTimestamp"))
        if live is not None and (terminating or "BeforeHookCreation" in policies):
            # Deletion is asynchronous on a real cluster (finalizers, foreground propagation from a
            # HookFailed delete): the new hook is created once the old one is gone, never over it.
            if not terminating:
                ctx.cluster.delete(item.api_version, key, propagation="Background")
            if ctx.cluster.get(key, api_version=item.api_version, fresh=True) is not None:
                raise WaitingError(f"the previous {key} is still being deleted")
        body = {**obj, "metadata": {**obj["metadata"], "name": name}}
        body["metadata"].pop("generateName", None)
        ctx.cluster.create(body)
        op.progress.hooks_created.append(marker)
    op.record_result(_result(item, record, ResultStatus.SYNCED, "hook created", name=name, hook=True,
                             hook_phase=HookPhase.RUNNING))


def _add_inventory(ctx: _Ctx, item: StepObject) -> None:
    entry = {"apiVersion": item.api_version, **item.key.to_dict()}
    if entry not in ctx.op.progress.applied:
        ctx.op.progress.applied.append(entry)


def _drop_inventory(ctx: _Ctx, key: ResourceKey) -> None:
    if key.to_dict() not in ctx.op.progress.pruned:
        ctx.op.progress.pruned.append(key.to_dict())


# --------------------------------------------------------------------------------------------------
# health_check


def health_check(svc: Services, token: LockToken, op_id: str, step: int, seq: int, *,
                 clock: Clock = time.time) -> StepOutcome:
    return _run(svc, token, op_id, step, seq, Stage.WAIT, _check_step, clock)


def _check_step(ctx: _Ctx, step: int) -> StepOutcome:
    assert ctx.cluster is not None
    record = ctx.op.progress.steps[step]
    verdict = WaveVerdict()
    for item in record.objects:
        key = item.key
        if item.action == StepAction.PRUNE:
            options = ctx.options(item)
            if options.prune_disabled or options.delete_disabled:
                continue
            if ctx.cluster.get(key, api_version=item.api_version, fresh=True) is not None:
                verdict.waiting.append(f"{key} (pruning)")
            continue
        if item.action == StepAction.PRUNE_SKIPPED:
            continue
        if item.action == StepAction.HOOK:
            key = item.named(ctx.op.progress.hook_name(record, item) or key.name)
        live = ctx.cluster.get(key, api_version=item.api_version, fresh=True)
        if live is None:
            if item.action == StepAction.HOOK and machine.hook_done(ctx.op, record, key.name):
                continue
            verdict.waiting.append(f"{key} (missing)")
            verdict.waiting_on.append({**key.to_dict(), "health": HealthStatusCode.MISSING.value, "message": ""})
            continue
        health = assess(live, ctx.svc.lua)
        code = health.status if health is not None else HealthStatusCode.HEALTHY
        message = health.message if health is not None else ""
        if item.action == StepAction.HOOK:
            _record_hook(ctx, record, item, key.name, code, message)
        if code in (HealthStatusCode.HEALTHY, HealthStatusCode.SUSPENDED):
            continue
        if code == HealthStatusCode.DEGRADED:
            verdict.failed.append(f"{key}: {message or 'Degraded'}")
        else:
            verdict.waiting.append(f"{key} ({code.value})")
            verdict.waiting_on.append({**key.to_dict(), "health": code.value, "message": message})
    if verdict.failed:
        _delete_hooks(ctx, record, "HookFailed")
    elif not verdict.waiting:
        _delete_hooks(ctx, record, "HookSucceeded")
    settings = ctx.svc.settings
    timeout = _step_timeout(ctx, record) if verdict.waiting and not verdict.failed else 0.0
    return _commit(ctx, machine.after_wait(ctx.op, ctx.chain, step, verdict, now=ctx.clock(), timeout=timeout,
                                           poll=settings.health_poll_interval, step_delay=settings.step_delay,
                                           retry=ctx.retry))


def _record_hook(ctx: _Ctx, record: Step, item: StepObject, name: str, code: HealthStatusCode,
                 message: str) -> None:
    phase = {HealthStatusCode.HEALTHY: HookPhase.SUCCEEDED,
             HealthStatusCode.DEGRADED: HookPhase.FAILED}.get(code, HookPhase.RUNNING)
    text = message or f"hook {phase.value.lower()}"
    ctx.op.record_result(_result(item, record, ResultStatus.SYNCED, text, name=name, hook=True, hook_phase=phase))


def _step_timeout(ctx: _Ctx, record: Step) -> float:
    """The settings' step timeout, or the largest `wavecd.io/wave-timeout` among the step's objects."""
    timeout = ctx.svc.settings.step_timeout
    desired = ctx.load_desired()
    found = []
    for item in record.objects:
        obj = _find_hook(ctx, desired, item.key, record.phase) if item.action == StepAction.HOOK \
            else _find(desired, item.key, False)
        text = annotation(obj, WAVE_TIMEOUT_ANNOTATION) if obj else None
        if text:
            try:
                found.append(parse_duration(text))
            except ValueError:
                log.warning("ignoring invalid %s=%r", WAVE_TIMEOUT_ANNOTATION, text)
    return max(found) if found else timeout


def _delete_hooks(ctx: _Ctx, record: Step, policy: str) -> None:
    assert ctx.cluster is not None
    for item, key in machine.hooks_to_delete(ctx.op, record, policy):
        try:
            ctx.cluster.delete(item.api_version, key, propagation="Background")
        except WaveCDError as exc:
            log.warning("could not delete hook %s: %s", key.name, exc)


# --------------------------------------------------------------------------------------------------
# ending


def _terminate(ctx: _Ctx) -> StepOutcome:
    ctx.svc.store.clear_terminate(ctx.token.app)
    try:
        if ctx.cluster is None:
            ctx.load()
        assert ctx.cluster is not None
        for item, key in machine.running_hooks(ctx.op):
            ctx.cluster.delete(item.api_version, key, propagation="Background")
    except WaveCDError as exc:
        log.warning("terminate: could not delete running hooks: %s", exc)
    return _commit(ctx, machine.terminate(ctx.op, ctx.chain, now=ctx.clock()))


def _run_sync_fail_hooks(ctx: _Ctx) -> None:
    """SyncFail hooks run when an operation fails; they are created and not waited for."""
    if not ctx.op.progress.sync_fail_steps or ctx.cluster is None:
        return
    try:
        desired = ctx.load_desired()
        for record in ctx.op.progress.sync_fail_steps:
            for item in record.objects:
                _run_hook(ctx, record, item, desired)
    except WaveCDError as exc:
        log.warning("SyncFail hook failed to start: %s", exc)


def _settle(ctx: _Ctx, op: Operation, summary: str) -> StepOutcome:
    """The operation ended: its result goes into the app's status, and the lock is released."""
    svc, token = ctx.svc, ctx.token
    limit = ctx.app.spec.revision_history_limit if ctx.app is not None else 10
    status = machine.settle_status(svc.store.status(token.app), op, history_limit=limit, now=ctx.clock())
    try:
        publish_status(svc, token, status)
    except StaleWriterError as exc:
        return StepOutcome(str(exc))
    svc.store.clear_running(token.app)
    svc.store.log_operation(token.app, op.id, "end", op.phase)
    svc.coalescer.mark_pending(token.app)  # a fresh comparison after every operation
    svc.locks.release(token)
    return StepOutcome(summary, finished=True)


__all__ = ["TERMINATED_MESSAGE", "StepCall", "StepOutcome", "Task", "health_check", "wave_apply"]
