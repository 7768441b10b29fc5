"""The operation's state machine, pure: retry and its backoff, entry checks against stale deliveries,
advance, finish, terminate, resume, the wave gate's decisions and the status an operation leaves.

Backoff rules come from Argo CD and are tested from tests/testdata/operation/backoff/, one case per file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from shared.core.models import Application, RetryStrategy
from shared.operation import machine
from shared.operation.machine import Chain, Task, WaveVerdict
from shared.operation.model import Operation, Phase, Stage, Step, StepObject, SyncRequest, new_operation

BACKOFF = sorted((Path(__file__).parents[1] / "testdata" / "operation" / "backoff").glob("*.yaml"))
CHAIN = Chain("demo", "owner:7")
NOW = 1_700_000_000.0


@pytest.mark.parametrize("path", BACKOFF, ids=[p.stem for p in BACKOFF])
def test_retry_backoff_case(path: Path) -> None:
    case = yaml.safe_load(path.read_text())
    strategy = None if case["backoff"] is None else RetryStrategy.model_validate({"backoff": case["backoff"]})
    for attempt, delay in case["delays"].items():
        assert machine.retry_delay(strategy, int(attempt)) == float(delay), attempt


def _app(policy: dict[str, Any] | None = None) -> Application:
    return Application.model_validate({
        "metadata": {"name": "demo"},
        "spec": {"source": {"repoURL": "https://example.com/r.git", "path": "."},
                 "destination": {"namespace": "dest"}, "syncPolicy": policy or {}}})


def _op(steps: int = 2, *, automated: bool = False, policy: dict[str, Any] | None = None,
        dry_run: bool = False) -> Operation:
    planned = [Step(phase="Sync", wave=w, objects=[StepObject(kind="Pod", namespace="dest", name=f"p{w}",
                                                               api_version="v1", action="apply")])
               for w in range(steps)]
    return new_operation(_app(policy), revision="abc", tree_id="t", source_path=".", steps=planned,
                         sync_fail_steps=[], request=SyncRequest(dry_run=dry_run), automated=automated, now=NOW)


def test_new_operation_retry_limit() -> None:
    assert _op().operation.retry.limit == 0                       # a manual sync is not retried by default
    assert _op(automated=True).operation.retry.limit == 5         # an automated one 5 times
    assert _op(policy={"retry": {"limit": 2}}).operation.retry.limit == 2


def test_dump_keeps_argo_cd_field_names() -> None:
    doc = _op().dump()
    assert doc["operation"]["sync"]["revision"] == "abc"
    assert doc["operation"]["initiatedBy"] == {"username": "wavecd"}
    assert {"syncResult", "startedAt", "retryCount", "phase", "message"} <= set(doc)
    assert "finishedAt" not in doc
    assert doc["progress"]["steps"][0]["objects"][0]["apiVersion"] == "v1"
    assert Operation.model_validate(doc) == _op().model_copy(update={"id": doc["id"]})  # round trip
    assert "progress" not in _op().public_view()


def test_entry_refuses_stale_deliveries() -> None:
    op = _op()
    assert machine.check_entry(op, op.id, 0) is None
    assert "no longer current" in str(machine.check_entry(op, "another", 0))  # a superseding operation
    assert "moved on" in str(machine.check_entry(op, op.id, 1))                # a stale seq
    assert "not at stage" in str(machine.check_entry(op, op.id, 0, stage=Stage.WAIT, step=0))
    ended = machine.finish(op, CHAIN, Phase.SUCCEEDED, "ok", now=NOW, retry=None).op
    assert "already ended" in str(machine.check_entry(ended, op.id, ended.progress.seq))
    assert "no longer current" in str(machine.check_entry(None, op.id, 0))


def test_advance_moves_seq_and_names_the_call() -> None:
    op = _op()
    moved = machine.advance(op, CHAIN, Task.HEALTH_CHECK, 0, now=NOW + 5, countdown=2)
    assert op.progress.seq == 0  # pure: the input is not changed
    assert moved.op.progress.seq == 1 and moved.op.progress.stage == Stage.WAIT
    assert moved.call == machine.StepCall(Task.HEALTH_CHECK, "demo", op.id, 0, "owner:7", 1, 2)
    assert moved.call.kwargs() == {"app": "demo", "operation": op.id, "step": 0, "token": "owner:7", "seq": 1}
    assert machine.resume(moved.op, Chain("demo", "new:8")).task == Task.HEALTH_CHECK
    assert machine.resume(op, CHAIN).task == Task.WAVE_APPLY


def test_wave_gate_clock_starts_when_the_step_is_applied() -> None:
    op = machine.advance(_op(), CHAIN, Task.WAVE_APPLY, 1, now=NOW).op
    gated = machine.advance(op, CHAIN, Task.HEALTH_CHECK, 1, now=NOW + 50).op
    again = machine.advance(gated, CHAIN, Task.HEALTH_CHECK, 1, now=NOW + 100).op
    assert again.progress.step_started_at == NOW  # waiting does not restart the step's clock


def test_finish_retries_then_fails() -> None:
    op = _op(policy={"retry": {"limit": 1, "backoff": {"duration": "4s"}}})
    retry = _app({"retry": {"limit": 1, "backoff": {"duration": "4s"}}}).spec.sync_policy.retry
    first = machine.finish(op, CHAIN, Phase.FAILED, "boom", now=NOW, retry=retry)
    assert not first.final and first.call is not None
    assert (first.call.task, first.call.step, first.call.countdown) == (Task.WAVE_APPLY, 0, 4.0)
    assert first.op.phase == Phase.RUNNING and first.op.retry_count == 1
    assert first.op.message == "Retrying attempt #1 in 4s: boom"
    second = machine.finish(first.op, CHAIN, Phase.FAILED, "boom", now=NOW, retry=retry)
    assert second.final and second.call is None and second.op.phase == Phase.FAILED
    assert second.op.finished_at is not None and second.op.progress.seq == first.op.progress.seq + 1


def test_unlimited_retry() -> None:
    op = _op(policy={"retry": {"limit": -1}})
    op.retry_count = 1000
    assert machine.may_retry(op)


def test_terminate_is_never_retried_and_runs_no_sync_fail_hooks() -> None:
    op = _op(automated=True)
    op.progress.sync_fail_steps = [Step(phase="SyncFail", wave=0, objects=[])]
    ended = machine.terminate(op, CHAIN, now=NOW)
    assert ended.final and ended.op.phase == Phase.FAILED and ended.op.message == machine.TERMINATED_MESSAGE
    assert not ended.run_sync_fail
    failed = machine.finish(op.model_copy(update={"retry_count": 5}), CHAIN, Phase.FAILED, "x", now=NOW,
                            retry=None)
    assert failed.run_sync_fail  # an ordinary failure, retries used up, runs them


def test_after_wait_decisions() -> None:
    op = _op()
    degraded = machine.after_wait(op, CHAIN, 0, WaveVerdict(failed=["Pod dest/p0: crash"]), now=NOW, timeout=60,
                                  poll=2, step_delay=1, retry=None)
    assert degraded.final and "degraded: Pod dest/p0: crash" in degraded.op.message
    waiting = machine.after_wait(op, CHAIN, 0, WaveVerdict(waiting=["Pod dest/p0 (Progressing)"],
                                                          waiting_on=[{"name": "p0"}]),
                                 now=NOW + 10, timeout=60, poll=2, step_delay=1, retry=None)
    assert waiting.call is not None and waiting.call.task == Task.HEALTH_CHECK and waiting.call.countdown == 2
    assert waiting.op.progress.waiting_on is not None and waiting.op.progress.waiting_on.step == 0
    late = machine.after_wait(op, CHAIN, 0, WaveVerdict(waiting=["Pod dest/p0 (Progressing)"]),
                              now=NOW + 61, timeout=60, poll=2, step_delay=1, retry=None)
    assert late.final and "timed out after 61s" in late.op.message
    healthy = machine.after_wait(op, CHAIN, 0, WaveVerdict(), now=NOW, timeout=60, poll=2, step_delay=1, retry=None)
    assert healthy.call is not None and (healthy.call.task, healthy.call.step, healthy.call.countdown) == \
        (Task.WAVE_APPLY, 1, 1)
    last = machine.after_wait(healthy.op, CHAIN, 1, WaveVerdict(), now=NOW, timeout=60, poll=2, step_delay=1,
                              retry=None)
    assert last.final and last.op.phase == Phase.SUCCEEDED


def test_apply_waiting_is_bounded_by_the_timeout() -> None:
    op = _op()
    first = machine.apply_waiting(op, CHAIN, 0, "old hook going", now=NOW, timeout=30, poll=2, retry=None)
    assert first.call is not None and first.call.task == Task.WAVE_APPLY and first.summary == "waiting: old hook going"
    again = machine.apply_waiting(first.op, CHAIN, 0, "old hook going", now=NOW + 20, timeout=30, poll=2, retry=None)
    assert again.op.progress.apply_waiting_since == NOW
    late = machine.apply_waiting(again.op, CHAIN, 0, "old hook going", now=NOW + 31, timeout=30, poll=2, retry=None)
    assert late.final and "timed out: old hook going" in late.op.message


def test_dry_run_walks_every_step_without_gates() -> None:
    op = _op(dry_run=True)
    moved = machine.after_apply(op, CHAIN, 0, failures=[], now=NOW, retry=None)
    assert moved.call is not None and (moved.call.task, moved.call.step) == (Task.WAVE_APPLY, 1)
    done = machine.after_apply(moved.op, CHAIN, 1, failures=[], now=NOW, retry=None)
    assert done.final and done.op.message == "successfully synced (dry run)"


def test_settle_status_inventory_and_history() -> None:
    op = _op()
    op.progress.applied = [{"apiVersion": "v1", "group": "", "kind": "Pod", "namespace": "dest", "name": "p0"}]
    op.progress.pruned = [{"group": "", "kind": "Pod", "namespace": "dest", "name": "old"}]
    ended = machine.finish(op, CHAIN, Phase.SUCCEEDED, "ok", now=NOW, retry=None).op
    before = {"inventory": [{"apiVersion": "v1", "group": "", "kind": "Pod", "namespace": "dest", "name": "old"}],
              "history": [{"id": i, "revision": f"r{i}"} for i in range(3)]}
    status = machine.settle_status(before, ended, history_limit=3, now=NOW)
    assert [i["name"] for i in status["inventory"]] == ["p0"]
    assert [h["id"] for h in status["history"]] == [1, 2, 3]
    assert status["history"][-1]["revision"] == "abc"
    assert status["operationState"]["phase"] == "Succeeded"
    failed = machine.finish(op, CHAIN, Phase.FAILED, "x", now=NOW, retry=None, allow_retry=False).op
    assert "history" not in machine.settle_status({}, failed, history_limit=3, now=NOW)
