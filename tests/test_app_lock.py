"""The per-app lock, fenced status writes, the operation CAS and refresh coalescing, on a real Redis."""

from __future__ import annotations

import time

import pytest

from shared.operation.model import Operation
from shared.state.app_lock import AppLocks, LockToken, lease_scope
from shared.state.app_store import AppStore, StaleWriterError
from shared.state.coalesce import Coalescer, queued_key


@pytest.fixture()
def locks(redis_client):
    return AppLocks(redis_client, ttl_seconds=0.5)


@pytest.fixture()
def store(redis_client):
    return AppStore(redis_client)


def test_one_holder_at_a_time_with_increasing_fences(locks):
    first = locks.acquire("web")
    assert first is not None and first.fence == 1
    assert locks.acquire("web") is None
    assert locks.release(first)
    second = locks.acquire("web")
    assert second is not None and second.fence == 2
    assert locks.acquire("api") is not None  # another app is independent


def test_only_the_owner_renews_or_releases(locks):
    token = locks.acquire("web")
    assert token is not None
    impostor = LockToken("web", "someone-else", token.fence)
    assert not locks.renew(impostor)
    assert not locks.release(impostor)
    assert locks.renew(token)
    assert locks.owns(token)


def test_an_expired_lock_is_taken_over_and_the_old_token_is_powerless(locks):
    old = locks.acquire("web")
    assert old is not None
    time.sleep(0.7)
    new = locks.acquire("web")
    assert new is not None and new.fence > old.fence
    assert not locks.renew(old)
    assert not locks.release(old)
    assert locks.holder("web") == new


def test_token_text_round_trip(locks):
    token = locks.acquire("web")
    assert token is not None
    assert LockToken.decode("web", token.encode()) == token


def test_status_writes_are_fenced(locks, store):
    old = locks.acquire("web")
    assert old is not None
    store.write(old, "status", {"sync": {"status": "Synced"}})
    time.sleep(0.7)
    new = locks.acquire("web")
    assert new is not None
    with pytest.raises(StaleWriterError):
        store.write(old, "status", {"sync": {"status": "OutOfSync"}})
    store.write(new, "status", {"sync": {"status": "OutOfSync"}})
    assert store.status("web") == {"sync": {"status": "OutOfSync"}}


def _operation(op_id: str = "op1", seq: int = 0, **extra: object) -> Operation:
    return Operation.model_validate({"id": op_id, "phase": "Running", "progress": {"seq": seq}, **extra})


def test_operation_transition_is_a_compare_and_set(locks, store):
    token = locks.acquire("web")
    assert token is not None
    store.write_operation(token, _operation(seq=0))
    moved = _operation(seq=1)
    assert store.transition(token, moved, expected_seq=0)
    # A second delivery of the same task (still expecting seq 0) does not move the chain again.
    assert not store.transition(token, _operation(seq=1, message="dup"), expected_seq=0)
    assert store.current_operation("web") == moved
    assert not store.transition(token, _operation("other", seq=2), expected_seq=1)


def test_coalescing_keeps_one_queued_and_never_loses_a_request(redis_client):
    co = Coalescer(redis_client, queued_ttl=60)
    assert co.claim_enqueue("web")          # first trigger enqueues
    assert not co.claim_enqueue("web")      # the next 999 coalesce
    co.started("web")                       # the task starts: requests may queue again
    assert co.claim_enqueue("web")
    co.got_lock("web")
    assert not co.take_pending("web")       # nobody asked while we held the lock...
    co.mark_pending("web")                  # ...until a refresh found the app busy
    assert co.take_pending("web")
    assert not co.take_pending("web")


def test_an_urgent_refresh_is_never_coalesced_behind_a_routine_one(redis_client):
    co = Coalescer(redis_client, queued_ttl=60)
    assert co.claim_enqueue("web", routine=True)       # the app was merely due
    assert not co.claim_enqueue("web", routine=True)   # more routine triggers coalesce
    assert co.claim_enqueue("web")                     # a push does not wait behind the routine queue
    assert not co.claim_enqueue("web")                 # further pushes coalesce into the urgent one
    assert not co.claim_enqueue("web", routine=True)   # and a routine trigger does not downgrade it
    co.started("web")
    assert co.claim_enqueue("web", routine=True)


def test_terminate_marks_a_running_operation_terminating_and_nothing_else(locks, store):
    token = locks.acquire("web")
    assert token is not None
    op = _operation(seq=3, syncResult={"resources": [{"kind": "Job", "name": "h", "status": "Synced",
                                                      "hookPhase": "Running"}]})
    store.write_operation(token, op)
    store.request_terminate("web")
    assert store.terminate_requested("web")
    after = store.operation("web")
    assert after["phase"] == "Terminating"
    assert after["syncResult"]["resources"][0]["hookPhase"] == "Running"  # only the operation's own phase
    assert after["progress"] == op.dump()["progress"]
    store.write_operation(token, op.model_copy(update={"phase": "Failed"}))
    store.request_terminate("web")
    assert store.operation("web")["phase"] == "Failed"  # a finished operation is left alone


def test_a_step_moving_on_keeps_a_terminate_that_came_in_meanwhile(locks, store):
    token = locks.acquire("web")
    assert token is not None
    op = _operation(seq=3, syncResult={"resources": [{"kind": "Job", "name": "h", "status": "Synced",
                                                      "hookPhase": "Running"}]})
    store.write_operation(token, op)
    read_by_the_chain = store.current_operation("web")
    assert read_by_the_chain is not None
    store.request_terminate("web")  # between the chain's read and its compare-and-set
    moved = read_by_the_chain.model_copy(deep=True)
    moved.progress.seq = 4
    assert store.transition(token, moved, expected_seq=3)
    after = store.operation("web")
    assert after["phase"] == "Terminating" and after["progress"]["seq"] == 4
    assert after["syncResult"]["resources"][0]["hookPhase"] == "Running"


def test_a_stale_queued_mark_no_longer_swallows_refreshes(redis_client):
    """Issue #17: a queued mark whose message was lost blocked refresh, hard refresh and repair for 600 s."""
    co = Coalescer(redis_client, queued_ttl=600, stale_after=15)
    assert co.claim_enqueue("web")
    assert not co.claim_enqueue("web")      # fresh: a refresh really is on its way
    assert co.is_queued("web")
    redis_client.pexpire(queued_key("web"), (600 - 20) * 1000)   # the mark has now existed for 20 s
    assert co.queued_ages(["web", "other"])[0] >= 19.9
    assert co.queued_ages(["web", "other"])[1] is None
    assert not co.is_queued("web")
    assert co.claim_enqueue("web")          # stale: the claimer enqueues a new refresh...
    assert not co.claim_enqueue("web")      # ...and the mark starts over
    assert co.is_queued("web")


def test_a_lease_lives_while_its_task_runs_and_lapses_after(locks, redis_client):
    """Issue #17: a short lease renewed while its owner lives, instead of a long TTL a dead owner leaves."""
    with lease_scope():
        token = locks.acquire("web")
        assert token is not None
        held_until = time.monotonic() + 6 * locks.ttl
        while time.monotonic() < held_until:   # six lease lengths: only the keeper can have renewed it
            assert locks.owns(token)
            time.sleep(0.05)
    deadline = time.monotonic() + 10
    while locks.owns(token):                    # the task ended: nobody renews, the lease lapses
        assert time.monotonic() < deadline, "the lease outlived its task"
        time.sleep(0.05)


def test_a_lease_handed_over_covers_the_wait_and_the_next_task_takes_it_back(locks, redis_client):
    token = locks.acquire("web")
    assert token is not None
    with lease_scope():
        assert locks.renew(token)
        assert locks.hand_over(token, 30)        # the next step waits out its countdown and its queue
        assert redis_client.pttl("wavecd:lock:web") > 29_000
        time.sleep(3 * locks.ttl)                # keeper rounds: they never shorten a handed-over lease
        assert redis_client.pttl("wavecd:lock:web") > 27_000
    assert locks.renew(token)                    # the next task starts: one lease from now
    assert redis_client.pttl("wavecd:lock:web") <= locks.ttl * 1000
    other = LockToken("web", "someone-else", token.fence)
    assert not locks.hand_over(other, 30)


def test_a_hand_over_names_its_step_until_the_step_starts(locks):
    token = locks.acquire("web")
    assert token is not None
    before = time.time()
    assert locks.hand_over(token, 30, task_id="task-1", countdown=2)
    assert locks.overdue_handovers(before) == []                    # not due yet
    [handover] = locks.overdue_handovers(time.time() + 3)
    assert (handover.token, handover.task_id) == (token, "task-1")
    assert before + 2 <= handover.due <= time.time() + 2
    assert locks.renew(token)                                       # the step started: nothing is overdue
    assert locks.overdue_handovers(time.time() + 60) == []


def test_breaking_a_lost_hand_over_frees_the_app_only_while_nothing_moved_on(locks):
    token = locks.acquire("web")
    assert token is not None
    assert locks.hand_over(token, 30, task_id="task-1")
    [lost] = locks.overdue_handovers(time.time() + 1)
    assert locks.hand_over(token, 30, task_id="task-2")             # the chain went on meanwhile
    assert not locks.break_handover(lost)
    assert locks.owns(token)
    [lost] = locks.overdue_handovers(time.time() + 1)
    assert lost.task_id == "task-2"
    assert locks.break_handover(lost)                               # the step the broker lost: the app is free
    assert not locks.owns(token)
    assert locks.overdue_handovers(time.time() + 60) == []
    assert not locks.renew(token)                                   # the lost step, should it come back, stops
    successor = locks.acquire("web")
    assert successor is not None and successor.fence > token.fence


def test_a_new_owner_or_a_release_drops_a_past_hand_over(locks, redis_client):
    token = locks.acquire("web")
    assert token is not None
    assert locks.hand_over(token, 0, task_id="task-1")
    redis_client.delete("wavecd:lock:web")                          # the lease lapsed
    successor = locks.acquire("web")
    assert successor is not None
    assert locks.overdue_handovers(time.time() + 60) == []
    assert locks.hand_over(successor, 30, task_id="task-2")
    assert locks.release(successor)
    assert locks.overdue_handovers(time.time() + 60) == []
