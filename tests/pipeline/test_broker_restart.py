"""A worker rides out a Redis restart and runs the messages it held unacknowledged (issue #17, point 1).

Before `workers.redis_transport`, Celery died with "Unrecoverable error: AttributeError('NoneType'
object has no attribute 'hostname')" while "Restoring N unacknowledged message(s)", and the messages
came back only after the 600 s visibility timeout. Here a real worker holds countdown tasks (late acks:
unacknowledged, stored in kombu's unacked hash) when its Redis is stopped and started again.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
import uuid

import pytest
from celery import Celery

from tests.fixtures.celery import WorkerPool
from tests.fixtures.faults import RestartableRedis
from workers.catalogue import Fetch, send
from workers.celery_app import TASK_ROUTES

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _publisher(url: str) -> Celery:
    app = Celery("wavecd-fault-test", broker=url)
    app.conf.task_routes = TASK_ROUTES
    app.conf.task_serializer = "json"
    return app


def _wait(what: str, check, timeout: float, pool: WorkerPool) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}\n{pool.logs()}")
        time.sleep(0.1)


def _delivered(fault_redis: RestartableRedis, task_id: str) -> bool:
    client = fault_redis.client()
    try:
        return bool(client.exists(f"wavecd:deliveries:{task_id}:0"))  # workers.base counts each run
    finally:
        client.close()


@pytest.mark.parametrize(("sig", "wipe"), [(signal.SIGTERM, False), (signal.SIGKILL, False), (signal.SIGKILL, True)],
                         ids=["sigterm", "sigkill", "sigkill-wiped"])
def test_worker_survives_a_redis_restart_and_runs_what_it_held(fault_redis: RestartableRedis,
                                                               celery_workers: WorkerPool, sig: int,
                                                               wipe: bool) -> None:
    (worker,) = celery_workers.start(1, env={"WAVECD_REDIS_URL": fault_redis.url})
    publisher = _publisher(fault_redis.url)
    held = [str(uuid.uuid4()) for _ in range(2)]
    for task_id in held:
        # A countdown task waits in the worker, unacknowledged, until its time comes.
        send(publisher, Fetch(repo="file:///nowhere/fault-test.git"), task_id=task_id, countdown=8)
    client = fault_redis.client()
    _wait("the worker to hold both messages", lambda: client.hlen("unacked") == 2, 30, celery_workers)
    client.close()

    fault_redis.restart(sig, wipe=wipe, down_for=1.0)

    after = str(uuid.uuid4())
    send(_publisher(fault_redis.url), Fetch(repo="file:///nowhere/fault-test.git"), task_id=after)
    _wait("a task sent after the restart to run", lambda: _delivered(fault_redis, after), 60, celery_workers)
    assert worker.poll() is None, celery_workers.logs()
    log = celery_workers.log_of[worker.pid].read_text(errors="replace")
    assert "Unrecoverable error" not in log
    if not wipe:
        # Redis kept the unacked hash: the held messages run again, long before any visibility timeout.
        _wait("the held messages to run", lambda: all(_delivered(fault_redis, t) for t in held), 60,
              celery_workers)
        client = fault_redis.client()
        _wait("kombu's unacked hash to empty", lambda: client.hlen("unacked") == 0, 30, celery_workers)
        client.close()


def test_messages_held_by_a_killed_worker_go_to_a_live_one(fault_redis: RestartableRedis,
                                                         celery_workers: WorkerPool) -> None:
    env = {"WAVECD_REDIS_URL": fault_redis.url}
    (doomed,) = celery_workers.start(1, env=env)
    publisher = _publisher(fault_redis.url)
    held = [str(uuid.uuid4()) for _ in range(2)]
    for task_id in held:
        send(publisher, Fetch(repo="file:///nowhere/fault-test.git"), task_id=task_id, countdown=3)
    client = fault_redis.client()
    _wait("the first worker to hold both messages", lambda: client.hlen("unacked") == 2, 30, celery_workers)
    try:
        os.kill(doomed.pid, signal.SIGKILL)  # the main process only, as `kill -9 <pid>` does
        doomed.wait(30)
        celery_workers.start(1, env=env)
        # kombu alone would leave them in its unacked hash for the whole visibility timeout (600 s).
        _wait("the live worker to run the dead one's messages",
              lambda: all(_delivered(fault_redis, t) for t in held), 90, celery_workers)
        _wait("kombu's unacked hash to empty", lambda: client.hlen("unacked") == 0, 30, celery_workers)
    finally:
        client.close()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(doomed.pid, signal.SIGKILL)  # its orphaned pool children


def test_a_channel_closed_while_redis_is_down_requeues_its_messages_on_reconnect(
        fault_redis: RestartableRedis) -> None:
    """The transport itself, without Celery: the restore that fails while Redis is down is retried by the next
    channel, whichever of Celery's two close paths met the outage (workers.redis_transport)."""
    from kombu import Connection

    from workers.redis_transport import orphaned_tags

    with Connection(fault_redis.url) as conn:
        assert type(conn.transport).__module__ == "workers.redis_transport"
        queue = conn.SimpleQueue("fault-probe")
        queue.put({"n": 1})
        message = queue.get(timeout=5)           # delivered, not acknowledged: held in kombu's unacked hash
        assert message.payload == {"n": 1}
        fault_redis.stop(signal.SIGKILL)
        with contextlib.suppress(Exception):
            queue.channel.close()                 # kombu tries to restore now, and Redis refuses
        assert message.delivery_tag in orphaned_tags()
        fault_redis.start()
    with Connection(fault_redis.url) as conn:
        queue = conn.SimpleQueue("fault-probe")  # a new channel restores what the old one held
        again = queue.get(timeout=5)
        assert again.payload == {"n": 1}
        again.ack()
        assert message.delivery_tag not in orphaned_tags()


def test_the_broker_tells_which_tasks_it_still_holds(fault_redis: RestartableRedis) -> None:
    """What the tick asks before it frees the app of a chain whose next step is overdue (issue #17): a task
    queued at any priority or held unacknowledged by a worker is still coming; one acknowledged or never
    sent is not."""
    from kombu import Connection

    from workers.catalogue import LOW_PRIORITY
    from workers.redis_transport import OWNER_KEY, tasks_in_broker

    publisher = _publisher(fault_redis.url)
    routine, urgent, never_sent = (str(uuid.uuid4()) for _ in range(3))
    send(publisher, Fetch(repo="file:///srv/routine.git"), priority=LOW_PRIORITY, task_id=routine)
    send(publisher, Fetch(repo="file:///srv/urgent.git"), task_id=urgent)
    client = fault_redis.client()
    try:
        assert tasks_in_broker(client, [routine, urgent, never_sent]) == {routine, urgent}
        with Connection(fault_redis.url) as conn:
            queue = conn.SimpleQueue("git")
            held = queue.get(timeout=5)                     # priority 0 first: the urgent one, unacknowledged
            assert held.headers["id"] == urgent
            assert client.hget(OWNER_KEY, held.delivery_tag) is not None  # its holder recorded with it
            assert tasks_in_broker(client, [routine, urgent, never_sent]) == {routine, urgent}
            held.ack()
            assert tasks_in_broker(client, [routine, urgent, never_sent]) == {routine}
            queue.close()
    finally:
        client.close()
