"""A sync interrupted by a fault finishes (issue #17, point 2): real workers, a real Redis we restart.

Each test has its own `redis-server` (tests.fixtures.faults), so restarting it disturbs no other test.
"""

from __future__ import annotations

import dataclasses
import signal
from collections.abc import Iterator

import pytest

from shared.state.coalesce import Coalescer
from tests.fixtures.faults import RestartableRedis
from tests.pipeline.harness import Harness, manifests
from tests.pipeline.objects import cm, job_hook
from workers.catalogue import HealthCheck

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture()
def fh(harness: Harness, fault_redis: RestartableRedis) -> Iterator[Harness]:
    """The usual harness (its namespaces and cluster), talking to the restartable Redis."""
    yield dataclasses.replace(harness, redis_url=fault_redis.url)


def _slow_app(git_factory, name: str):  # noqa: ANN001, ANN202 - fixtures' own types
    slow = job_hook("migrate", "PreSync")
    slow["spec"]["template"]["spec"]["containers"][0]["command"] = ["sleep", "4"]
    return git_factory.create(name, {"app/a.yaml": manifests(slow, cm("after-hook"))})


def _mid_wave(fh: Harness, app: str) -> None:
    def waiting() -> bool:
        op = fh.operation(app)
        return op is not None and op["phase"] == "Running" and op["progress"]["stage"] == "wait"
    fh.wait("the operation to wait on its PreSync hook", waiting, describe=lambda: fh.operation(app))


def _one_operation(fh: Harness, app: str) -> None:
    starts = [e for e in fh.store.operation_log(app) if e["event"] == "start"]
    assert len(starts) == 1, starts


@pytest.mark.parametrize("wipe", [False, True], ids=["aof-kept", "data-wiped"])
def test_a_redis_restart_mid_sync_does_not_stop_the_sync(fh: Harness, fault_redis: RestartableRedis,
                                                         git_factory, celery_workers, wipe: bool) -> None:
    repo = _slow_app(git_factory, "redisfault")
    env = fh.worker_env(WAVECD_REDIS_URL=fault_redis.url)
    workers = celery_workers.start(2, concurrency=1, env=env)
    fh.application("redisfault", repo.url, "app")
    _mid_wave(fh, "redisfault")

    fault_redis.restart(signal.SIGKILL, wipe=wipe, down_for=1.0)

    fh.wait_synced("redisfault", revision=repo.head(), timeout=90)
    assert all(w.poll() is None for w in workers), "a worker died with Redis"
    assert fh.core.read_namespaced_config_map("after-hook", fh.dest_namespace).data == {"k": "v"}
    if not wipe:
        assert fh.operation("redisfault")["phase"] == "Succeeded"
        _one_operation(fh, "redisfault")


def test_a_lost_chain_is_repaired_past_a_stale_queued_mark(fh: Harness, fault_redis: RestartableRedis,
                                                           git_factory, celery_workers) -> None:
    """Every message of the operation is lost and a refresh's queued mark promises a message that never
    comes: the tick's repair still resumes the operation once the lock lapses and the mark is stale."""
    repo = _slow_app(git_factory, "lostchain")
    env = fh.worker_env(WAVECD_REDIS_URL=fault_redis.url, WAVECD_LOCK_TTL="4", WAVECD_LOCK_QUEUE_GRACE="2",
                        WAVECD_REFRESH_QUEUED_STALE="3")
    first = celery_workers.start(1, concurrency=1, env=env)
    fh.application("lostchain", repo.url, "app")
    _mid_wave(fh, "lostchain")
    op_id = fh.operation("lostchain")["id"]
    for proc in first:
        celery_workers.kill(proc)
    # The messages die with the worker: its held ones and everything still queued.
    fh.redis.delete("unacked", "unacked_index", "wavecd:unacked-owner", *fh.redis.keys("git*"),
                    *fh.redis.keys("apply*"), *fh.redis.keys("health*"))
    assert Coalescer(fh.redis, 600).claim_enqueue("lostchain")   # a refresh whose message is lost too

    celery_workers.start(1, concurrency=1, env=env)
    op = fh.wait_operation("lostchain", "Succeeded", timeout=90)   # the queued mark alone would hold 600 s
    assert op["id"] == op_id, "the operation was resumed from its recorded progress, not replaced"
    _one_operation(fh, "lostchain")


def test_a_terminated_operation_that_applied_nothing_does_not_block_automated_sync(harness: Harness, git_factory,
                                                                                  celery_workers) -> None:
    """Issue #17: an operation stuck by a fault and then terminated had applied nothing of its commit, yet
    automated sync refused that commit as "already failed" until a new commit came."""
    repo = git_factory.create("interrupted", {"app/a.yaml": manifests(cm("config", n="0"))})
    celery_workers.start(1, concurrency=1, env=harness.worker_env())
    harness.application("interrupted", repo.url, "app")
    harness.wait_synced("interrupted", revision=repo.head())
    head = repo.commit({"app/a.yaml": manifests(cm("config", n="1"))})
    # What the terminated operation left: Failed "Operation terminated" at `head`, with no resource touched.
    status = harness.status("interrupted")
    status["operationState"] = {"phase": "Failed", "message": "Operation terminated",
                                "operation": {"initiatedBy": {"automated": True}, "sync": {"revision": head}},
                                "syncResult": {"revision": head, "resources": []},
                                "startedAt": "2026-01-01T00:00:00Z", "finishedAt": "2026-01-01T00:00:05Z"}
    harness.store.write_unfenced("interrupted", "status", status)
    harness.fetch(repo.url, urgent=["interrupted"])
    harness.wait_synced("interrupted", revision=head, timeout=90)
    assert harness.core.read_namespaced_config_map("config", harness.dest_namespace).data == {"n": "1"}


def test_a_step_that_comes_back_after_its_successor_was_lost_resumes_the_operation(
        fh: Harness, fault_redis: RestartableRedis, git_factory, celery_workers) -> None:
    """Redis went away between a step recording its move and sending the next step's message: only the
    step itself comes back (restored unacknowledged), finds its operation moved past it, and used to stop,
    leaving the operation to wait out the whole lease (here made longer than any test)."""
    repo = _slow_app(git_factory, "orphan")
    env = fh.worker_env(WAVECD_REDIS_URL=fault_redis.url, WAVECD_LOCK_TTL="600", WAVECD_LOCK_QUEUE_GRACE="600")
    first = celery_workers.start(1, concurrency=1, env=env)
    fh.application("orphan", repo.url, "app")
    _mid_wave(fh, "orphan")
    for proc in first:
        celery_workers.kill(proc)
    op = fh.operation("orphan")
    token = fh.redis.get("wavecd:lock:orphan").decode()
    fh.redis.delete("unacked", "unacked_index", "wavecd:unacked-owner", *fh.redis.keys("git*"),
                    *fh.redis.keys("apply*"), *fh.redis.keys("health*"))   # the successor is lost...
    progress = op["progress"]
    fh.send(HealthCheck(app="orphan", operation=op["id"], step=progress["step"], token=token,
                        seq=progress["seq"] - 1))                          # ...the step before it comes back
    celery_workers.start(1, concurrency=1, env=env)
    done = fh.wait_operation("orphan", "Succeeded", timeout=90)
    assert done["id"] == op["id"], "the operation was resumed from its recorded progress, not replaced"
    _one_operation(fh, "orphan")


def test_a_step_the_broker_lost_is_resumed_without_waiting_out_the_lease(
        fh: Harness, fault_redis: RestartableRedis, git_factory, celery_workers) -> None:
    """A worker killed between popping a step's message and recording it unacknowledged loses it outright
    (issue #17: a kill -9 of a worker's main process took 60-69 s). The hand-over's lease is made longer
    than the test here, so only the tick's question to the broker (is the overdue step still anywhere?)
    can resume the operation."""
    repo = _slow_app(git_factory, "loststep")
    env = fh.worker_env(WAVECD_REDIS_URL=fault_redis.url, WAVECD_LOCK_TTL="4", WAVECD_LOCK_QUEUE_GRACE="600",
                        WAVECD_HEALTH_POLL_INTERVAL="6", WAVECD_STEP_OVERDUE_CHECK="1")
    first = celery_workers.start(1, concurrency=1, env=env)
    fh.application("loststep", repo.url, "app")
    _mid_wave(fh, "loststep")
    fh.wait("the chain to hand its next step over", lambda: fh.redis.hexists("wavecd:handover:task", "loststep"),
            tick=False, describe=lambda: fh.redis.pttl("wavecd:lock:loststep"))
    for proc in first:
        celery_workers.kill(proc)
    fh.redis.delete("unacked", "unacked_index", "wavecd:unacked-owner", *fh.redis.keys("health*"),
                    *fh.redis.keys("apply*"))                      # the step handed over is gone
    assert fh.redis.pttl("wavecd:lock:loststep") > 300_000          # the lease alone would hold the app
    op_id = fh.operation("loststep")["id"]

    celery_workers.start(1, concurrency=1, env=env)
    done = fh.wait_operation("loststep", "Succeeded", timeout=90)
    assert done["id"] == op_id, "the operation was resumed from its recorded progress, not replaced"
    _one_operation(fh, "loststep")
