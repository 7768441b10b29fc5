"""The operation's one state machine: enter, advance, finish, retry, resume, terminate.

Pure: every function takes the current `Operation` and the facts a step found (what failed, what is
still progressing, the clock's reading) and returns the next `Operation` and the next call (which task,
which keyword arguments, after how long). It never touches Redis, the cluster or the clock itself;
`shared.pipeline.sync_steps` is the I/O shell that gathers the facts, stores the new operation with a
compare-and-set, and hands the call to the task layer. So every rule of the chain (retry and its
backoff, terminate, wave timeouts, SyncFail, a stale delivery) is unit-tested without a worker.

A chain is single because every transition increments `progress.seq`: a call carries the `seq` it was
issued for, and a call whose `seq` no longer matches the stored operation stops (`check_entry`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from shared.core.backoff import backoff_delay
from shared.core.models import RetryStrategy, parse_duration
from shared.core.resources import ResourceKey
from shared.operation.model import (
    Operation,
    Phase,
    Stage,
    Step,
    StepAction,
    StepObject,
    WaitingOn,
    now_iso,
)

TERMINATED_MESSAGE = "Operation terminated"

DEFAULT_BACKOFF = ("5s", 2, "3m")  # Argo CD's retry backoff: duration, factor, maxDuration


class Task(StrEnum):
    """The chain's two tasks (their short names; the task catalogue in workers/ names them fully)."""

    WAVE_APPLY = "wave_apply"
    HEALTH_CHECK = "health_check"


STAGE_TASK: dict[Stage, Task] = {Stage.APPLY: Task.WAVE_APPLY, Stage.WAIT: Task.HEALTH_CHECK}
TASK_STAGE: dict[Task, Stage] = {task: stage for stage, task in STAGE_TASK.items()}


@dataclass(frozen=True)
class StepCall:
    """The next task of an operation chain: which step, with which lock token, after how long."""

    task: Task
    app: str
    operation: str
    step: int
    token: str  # the app lock's owner token as text: it travels along the chain
    seq: int
    countdown: float = 0.0

    def kwargs(self) -> dict[str, Any]:
        """The task's keyword arguments."""
        return {"app": self.app, "operation": self.operation, "step": self.step, "token": self.token,
                "seq": self.seq}


@dataclass(frozen=True)
class Chain:
    """Who drives the operation: the app and its lock token (as text)."""

    app: str
    token: str


@dataclass
class Transition:
    """What a step decided: the operation to store, the call to send next (None when the chain ends),
    and what the shell must still do around storing it."""

    op: Operation
    call: StepCall | None
    summary: str
    final: bool = False           # the operation ended: publish status, release the lock
    run_sync_fail: bool = False   # SyncFail hooks start before the failure is stored


# --------------------------------------------------------------------------------------------------
# backoff


def retry_delay(strategy: RetryStrategy | None, attempt: int) -> float:
    """Argo CD's sync retry backoff before retry number `attempt` (1-based): duration * factor^(attempt-1),
    capped at maxDuration (defaults 5s, 2, 3m)."""
    duration, factor, cap = DEFAULT_BACKOFF
    if strategy is not None:
        duration, factor, cap = (strategy.backoff.duration, strategy.backoff.factor,
                                 strategy.backoff.max_duration)
    return backoff_delay(attempt - 1, base=parse_duration(duration), factor=float(factor),
                         cap=parse_duration(cap))


def may_retry(op: Operation) -> bool:
    limit = op.operation.retry.limit
    return limit < 0 or op.retry_count < limit


# --------------------------------------------------------------------------------------------------
# entering a step


def check_entry(op: Operation | None, op_id: str, seq: int, *, stage: Stage | None = None,
                step: int | None = None) -> str | None:
    """Why a delivered call must stop (the operation moved on or ended), or None to go ahead."""
    if op is None or op.id != op_id:
        return f"operation {op_id} is no longer current; stopping"
    if op.ended:
        return f"operation {op_id} already ended ({op.phase})"
    if op.progress.seq != seq:
        return f"operation {op_id} moved on (seq {op.progress.seq} != {seq}); stopping"
    if stage is not None and (op.progress.stage != stage or op.progress.step != step):
        return f"step {step} is not at stage {stage}; stopping"
    return None


def first_call(op: Operation, chain: Chain) -> StepCall:
    """The call that starts a fresh operation: apply its first step."""
    return StepCall(Task.WAVE_APPLY, chain.app, op.id, 0, chain.token, op.progress.seq)


def resume(op: Operation, chain: Chain) -> StepCall:
    """The call that picks up an operation left Running by a chain whose lock expired: the stage it
    recorded decides the task, at the step and seq it recorded."""
    return StepCall(STAGE_TASK[op.progress.stage], chain.app, op.id, op.progress.step, chain.token,
                    op.progress.seq)


# --------------------------------------------------------------------------------------------------
# moving on


def advance(op: Operation, chain: Chain, task: Task, step: int, *, now: float,
            countdown: float = 0.0) -> Transition:
    """Record that the chain moves to `task` at `step` and name that call."""
    new = op.model_copy(deep=True)
    progress = new.progress
    progress.seq = op.progress.seq + 1
    progress.step = step
    progress.stage = TASK_STAGE[task]
    if task == Task.WAVE_APPLY or progress.stage_step != step:
        progress.step_started_at = now
        progress.stage_step = step
    call = StepCall(task, chain.app, op.id, step, chain.token, progress.seq, countdown)
    return Transition(new, call, f"{task} step {step}")


def finish(op: Operation, chain: Chain, phase: Phase, message: str, *, now: float,
           retry: RetryStrategy | None, allow_retry: bool = True) -> Transition:
    """End the operation as `phase`, or, for a failure the retry policy allows, start it again from step 0
    after the backoff (Argo CD counts `retryCount` and says `Retrying attempt #n`)."""
    if phase == Phase.FAILED and allow_retry and may_retry(op):
        return retry_from_start(op, chain, message, now=now, retry=retry)
    new = op.model_copy(deep=True)
    new.phase = phase
    new.message = message
    new.finished_at = now_iso(now)
    new.progress.seq = op.progress.seq + 1
    sync_fail = phase == Phase.FAILED and message != TERMINATED_MESSAGE and bool(op.progress.sync_fail_steps)
    return Transition(new, None, f"operation {op.id} {phase}: {message}", final=True, run_sync_fail=sync_fail)


def retry_from_start(op: Operation, chain: Chain, message: str, *, now: float,
                     retry: RetryStrategy | None) -> Transition:
    """Start a failed operation again from its first step after the backoff; the operation stays Running
    and its message says so, as Argo CD's does."""
    new = op.model_copy(deep=True)
    new.retry_count = op.retry_count + 1
    delay = retry_delay(retry, new.retry_count)
    new.message = f"Retrying attempt #{new.retry_count} in {delay:.0f}s: {message}"
    new.progress.hooks_created = []
    new.progress.apply_waiting_since = None
    new.progress.stage_step = None
    moved = advance(new, chain, Task.WAVE_APPLY, 0, now=now, countdown=delay)
    moved.summary = new.message
    return moved


def unreadable(doc: dict[str, Any], reason: str, *, now: float) -> dict[str, Any]:
    """A stored operation the model cannot read (damaged by hand or by a bug) ends as Argo CD's phase Error,
    its document otherwise kept as it was: no chain can safely go on from a record it cannot read."""
    return {**doc, "phase": Phase.ERROR.value, "message": f"the operation's record could not be read: {reason}",
            "finishedAt": now_iso(now)}


def unreadable_reason(exc: Exception) -> str:
    """A short reason from a pydantic ValidationError (field paths and messages, never values)."""
    errors = getattr(exc, "errors", None)
    if not callable(errors):
        return str(exc)
    return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors()[:3])


def terminate(op: Operation, chain: Chain, *, now: float) -> Transition:
    """A terminate asked for: the operation ends Failed "Operation terminated", with no retry and no
    SyncFail hooks (the shell deletes the hooks still running, `running_hooks`)."""
    return finish(op, chain, Phase.FAILED, TERMINATED_MESSAGE, now=now, retry=None, allow_retry=False)


def after_apply(op: Operation, chain: Chain, step: int, *, failures: list[str], now: float,
                retry: RetryStrategy | None) -> Transition:
    """A step's objects were applied (or some failed): fail, go to the wave gate, or finish."""
    steps = op.progress.steps
    if failures:
        return finish(op, chain, Phase.FAILED, "one or more objects failed to apply: " + "; ".join(failures[:5]),
                      now=now, retry=retry)
    if op.dry_run:
        if step + 1 < len(steps):
            return advance(op, chain, Task.WAVE_APPLY, step + 1, now=now)
        return finish(op, chain, Phase.SUCCEEDED, "successfully synced (dry run)", now=now, retry=retry)
    simple = len(steps) == 1 and all(o.action == StepAction.APPLY for o in steps[step].objects)
    if simple:
        return finish(op, chain, Phase.SUCCEEDED, "successfully synced (all tasks run)", now=now, retry=retry)
    return advance(op, chain, Task.HEALTH_CHECK, step, now=now)


def apply_waiting(op: Operation, chain: Chain, step: int, reason: str, *, now: float, timeout: float,
                  poll: float, retry: RetryStrategy | None) -> Transition:
    """Something the step needs is still going away (a hook being deleted for re-creation, Force=true):
    apply the step again after `poll`, bounded by the step's timeout."""
    record = op.progress.steps[step]
    since = op.progress.apply_waiting_since if op.progress.apply_waiting_since is not None else now
    if now - since > timeout:
        return finish(op, chain, Phase.FAILED, f"step {record.phase} wave {record.wave} timed out: {reason}",
                      now=now, retry=retry)
    waiting = op.model_copy(deep=True)
    waiting.progress.apply_waiting_since = since
    moved = advance(waiting, chain, Task.WAVE_APPLY, step, now=now, countdown=poll)
    moved.summary = f"waiting: {reason}"
    return moved


@dataclass
class WaveVerdict:
    """What a step's health gate found: objects Degraded, objects still progressing (with the entries the
    dashboard shows)."""

    failed: list[str] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)
    waiting_on: list[dict[str, str]] = field(default_factory=list)


def after_wait(op: Operation, chain: Chain, step: int, verdict: WaveVerdict, *, now: float, timeout: float,
               poll: float, step_delay: float, retry: RetryStrategy | None) -> Transition:
    """The wave gate: fail on Degraded, come back while progressing (bounded by the timeout), else go on
    to the next step or finish."""
    record = op.progress.steps[step]
    if verdict.failed:
        return finish(op, chain, Phase.FAILED, "one or more resources are degraded: " + "; ".join(verdict.failed[:5]),
                      now=now, retry=retry)
    if verdict.waiting:
        started = op.progress.step_started_at or now
        elapsed = now - started
        if elapsed > timeout:
            return finish(op, chain, Phase.FAILED, f"step {record.phase} wave {record.wave} timed out after "
                                                   f"{int(elapsed)}s waiting for: " + ", ".join(verdict.waiting[:10]),
                          now=now, retry=retry)
        waiting = op.model_copy(deep=True)
        waiting.progress.waiting_on = WaitingOn(step=step, resources=verdict.waiting_on)
        moved = advance(waiting, chain, Task.HEALTH_CHECK, step, now=now, countdown=poll)
        moved.summary = "waiting for " + ", ".join(verdict.waiting[:5])
        return moved
    if step + 1 < len(op.progress.steps):
        return advance(op, chain, Task.WAVE_APPLY, step + 1, now=now, countdown=step_delay)
    return finish(op, chain, Phase.SUCCEEDED, "successfully synced (all tasks run)", now=now, retry=retry)


# --------------------------------------------------------------------------------------------------
# hooks


def hook_done(op: Operation, step: Step, name: str) -> bool:
    result = op.result_for(name, step.phase)
    return result is not None and result.hook_phase == "Succeeded"


def running_hooks(op: Operation) -> list[tuple[StepObject, ResourceKey]]:
    """The hooks this operation created that have not succeeded: terminate deletes them."""
    found = []
    for step in op.progress.steps:
        for obj in step.objects:
            if obj.action != StepAction.HOOK:
                continue
            name = op.progress.hook_name(step, obj)
            if name and not hook_done(op, step, name):
                found.append((obj, obj.named(name)))
    return found


def hooks_to_delete(op: Operation, step: Step, policy: str) -> list[tuple[StepObject, ResourceKey]]:
    """The step's hooks whose delete policy is `policy` (HookSucceeded, HookFailed), by the name they ran as."""
    return [(obj, obj.named(op.progress.hook_name(step, obj) or obj.name)) for obj in step.objects
            if obj.action == StepAction.HOOK and policy in obj.delete_policies]


# --------------------------------------------------------------------------------------------------
# the app's status after an operation


def settle_status(status: dict[str, Any], op: Operation, *, history_limit: int, now: float) -> dict[str, Any]:
    """The app's status once `op` ended: its inventory updated with what it applied and pruned, its
    `operationState`, and (for a real sync that succeeded) a history entry for rollback."""
    status = dict(status)
    inventory = list(status.get("inventory") or [])
    for entry in op.progress.applied:
        if entry not in inventory:
            inventory.append(entry)
    pruned = op.progress.pruned
    status["inventory"] = [i for i in inventory
                           if {k: i[k] for k in ("group", "kind", "namespace", "name")} not in pruned]
    status["operationState"] = op.public_view()
    if op.phase == Phase.SUCCEEDED and not op.dry_run:
        history = list(status.get("history") or [])
        next_id = max((h.get("id", 0) for h in history), default=-1) + 1
        history.append({"id": next_id, "revision": op.revision, "deployedAt": now_iso(now),
                        "deployStartedAt": op.started_at, "source": op.sync_result.source,
                        "initiatedBy": op.operation.initiated_by.dump()})
        status["history"] = history[-max(1, history_limit):]
    return status
