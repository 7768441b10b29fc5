"""Supersede-style races, driven in-process against a real Redis: a redelivered call, a call of an
operation that is no longer current, a chain whose lock another token took, a terminate that lands
between a step's read and its write, and a chain resumed by a new lock holder."""

from __future__ import annotations

from typing import Any

import pytest

from shared.operation.machine import Task
from shared.operation.model import Phase
from shared.pipeline import reconcile
from shared.state.app_lock import LockToken, lock_key
from shared.state.app_store import StaleWriterError
from tests.operation.driver import Driver

TWO_WAVES: list[dict[str, Any]] = [
    {"apiVersion": "v1", "kind": "Pod",
     "metadata": {"name": "web", "annotations": {"test.wavecd.io/outcome": "never"}}},
    {"apiVersion": "v1", "kind": "ConfigMap",
     "metadata": {"name": "after", "annotations": {"argocd.argoproj.io/sync-wave": "1"}}},
]


def test_a_redelivered_call_finds_the_chain_moved_on(driver: Driver) -> None:
    driver.put_app(TWO_WAVES)
    first = driver.start()
    following = driver.step(first)
    assert following is not None and following.task == Task.HEALTH_CHECK
    stored = driver.operation()
    assert stored is not None
    again = driver.step(first)  # the broker delivers the first call a second time
    assert again is None and "moved on" in driver.outcomes[-1].summary
    assert driver.operation() == stored  # nothing changed
    assert driver.cluster.log == ["apply Pod dest/web"]


def test_a_call_of_a_superseded_operation_stops(driver: Driver) -> None:
    driver.put_app(TWO_WAVES)
    first = driver.start()
    following = driver.step(first)
    assert following is not None
    # The lock expires (a worker died); a new `diff` takes the app and starts another operation.
    driver.svc.redis.delete(lock_key(driver.name))
    second = driver.start()
    assert second.operation != first.operation
    assert driver.step(following) is None
    assert "lock lost" in driver.outcomes[-1].summary
    stale = following.__class__(following.task, following.app, following.operation, following.step,
                                second.token, following.seq)
    assert driver.step(stale) is None  # the old operation's call, even with the new token
    assert "no longer current" in driver.outcomes[-1].summary
    op = driver.operation()
    assert op is not None and op.id == second.operation and op.progress.seq == 0


def test_a_terminate_between_read_and_write_stays_visible(driver: Driver) -> None:
    driver.put_app(TWO_WAVES)
    call = driver.start()
    op = driver.operation()
    assert op is not None
    driver.svc.store.request_terminate(driver.name)  # lands while the step works on its copy (Running)
    assert driver.svc.store.current_operation(driver.name).phase == Phase.TERMINATING  # type: ignore[union-attr]
    moved = op.model_copy(deep=True)
    moved.progress.seq = 1
    token = LockToken.decode(driver.name, call.token)
    assert driver.svc.store.transition(token, moved, 0)
    assert driver.svc.store.current_operation(driver.name).phase == Phase.TERMINATING  # type: ignore[union-attr]
    assert not driver.svc.store.transition(token, moved, 0)  # the compare-and-set: seq 0 is gone


def test_a_chain_resumed_by_a_new_lock_holder_finishes(driver: Driver) -> None:
    driver.put_app(TWO_WAVES)
    driver.cluster.objects.clear()
    following = driver.step(driver.start())
    assert following is not None and following.task == Task.HEALTH_CHECK
    # The worker holding the chain dies; its lock expires; a `diff` finds the operation Running.
    driver.svc.redis.delete(lock_key(driver.name))
    token = driver.svc.locks.acquire(driver.name)
    assert token is not None
    doc = driver.svc.store.operation(driver.name)
    resumed = reconcile._resume(driver.svc, token, doc)  # type: ignore[arg-type]  # noqa: SLF001
    assert resumed.next is not None
    assert (resumed.next.task, resumed.next.step, resumed.next.seq) == (following.task, following.step,
                                                                        following.seq)
    assert driver.step(following) is None and "lock lost" in driver.outcomes[-1].summary  # the old chain stops

    def ready(d: Driver, _: object) -> None:  # the Pod becomes ready
        pod = next(o for o in d.cluster.objects.values() if o["kind"] == "Pod")
        pod["metadata"]["annotations"]["test.wavecd.io/outcome"] = "succeed"
        d.cluster._store(pod)  # noqa: SLF001

    driver.world = ready
    op = driver.run(resumed.next)
    assert op.phase == Phase.SUCCEEDED
    assert driver.cluster.log[-1] == "apply ConfigMap dest/after"


def test_waiting_polls_without_sleeping(driver: Driver) -> None:
    driver.put_app(TWO_WAVES)
    driver.svc.settings.step_timeout = 20.0
    op = driver.run(driver.start())
    polls = [c for c in driver.calls if c.task == Task.HEALTH_CHECK]
    assert op.phase == Phase.FAILED and "timed out" in op.message
    assert len(polls) == 12 and all(c.countdown == 2.0 for c in polls[1:])  # 2 s polls until 20 s passed


def test_a_writer_that_lost_the_lock_is_refused(driver: Driver) -> None:
    driver.put_app(TWO_WAVES)
    call = driver.start()
    op = driver.operation()
    assert op is not None
    stale = LockToken.decode(driver.name, call.token)
    driver.svc.redis.delete(lock_key(driver.name))
    newer = driver.svc.locks.acquire(driver.name)
    assert newer is not None and newer.fence > stale.fence
    moved = op.model_copy(update={"message": "from the stale chain"}, deep=True)
    moved.progress.seq = 1
    with pytest.raises(StaleWriterError):
        driver.svc.store.transition(stale, moved, 0)
    with pytest.raises(StaleWriterError):
        driver.svc.store.write_operation(stale, moved)
    assert driver.operation() == op  # untouched
