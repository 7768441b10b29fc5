"""One operation per app across many worker processes, and recovery when a worker dies mid-wave."""

from __future__ import annotations

import threading
import time

import pytest

from tests.pipeline.harness import Harness, manifests
from tests.pipeline.objects import cm, job_hook

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _intervals(log: list[dict]) -> list[tuple[float, float, str]]:
    starts: dict[str, float] = {}
    spans = []
    for entry in log:
        if entry["event"] == "start":
            starts[entry["op"]] = entry["at"]
        elif entry["event"] == "end" and entry["op"] in starts:
            spans.append((starts.pop(entry["op"]), entry["at"], entry["op"]))
    assert not starts, f"operations that never ended: {starts}"
    return sorted(spans)


def test_concurrent_triggers_never_overlap_and_the_last_commit_wins(harness: Harness, git_factory,
                                                                    celery_workers):
    def files(n: int) -> dict[str, str]:
        return {"app/a.yaml": manifests(cm("first", wave=0, n=str(n)), cm("second", wave=1, n=str(n)),
                                        cm("third", wave=2, n=str(n)))}
    repo = git_factory.create("storm", files(0))
    celery_workers.start(4, concurrency=1, env=harness.worker_env())
    harness.application("storm", repo.url, "app")
    harness.wait_synced("storm", revision=repo.head())

    stop = threading.Event()

    def hammer() -> None:
        while not stop.is_set():
            harness.fetch(repo.url, due=["storm"])
            harness.diff("storm")
            time.sleep(0.01)

    threads = [threading.Thread(target=hammer, daemon=True) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        for n in range(1, 6):
            repo.commit(files(n))
            time.sleep(0.4)
    finally:
        stop.set()
        for t in threads:
            t.join()
    last = repo.head()
    harness.fetch(repo.url, due=["storm"])
    status = harness.wait_synced("storm", revision=last, timeout=90)
    assert status["history"][-1]["revision"] == last
    assert harness.core.read_namespaced_config_map("third", harness.dest_namespace).data == {"n": "5"}
    spans = _intervals(harness.store.operation_log("storm"))
    assert len(spans) >= 2
    for (_s1, e1, op1), (s2, _e2, op2) in zip(spans, spans[1:], strict=False):
        assert e1 <= s2, f"operations {op1} and {op2} overlapped"
    # Coalescing: far fewer operations than triggers (each trigger round sent 2 tasks per 10 ms).
    assert len(spans) < 40


def test_killed_worker_mid_wave_the_operation_still_completes(harness: Harness, git_factory, celery_workers):
    slow = job_hook("migrate", "PreSync")
    slow["spec"]["template"]["spec"]["containers"][0]["command"] = ["sleep", "4"]
    repo = git_factory.create("crash", {"app/a.yaml": manifests(slow, cm("after-hook"))})
    env = harness.worker_env(WAVECD_LOCK_TTL="15", WAVECD_VISIBILITY_TIMEOUT="12", WAVECD_TASK_TIME_LIMIT="10")
    first = celery_workers.start(2, concurrency=1, env=env)
    harness.application("crash", repo.url, "app")

    def mid_wave() -> bool:
        op = harness.operation("crash")
        return op is not None and op["phase"] == "Running" and op["progress"]["stage"] == "wait"
    harness.wait("the operation to wait on its PreSync hook", mid_wave, describe=lambda: harness.operation("crash"))
    op_id = harness.operation("crash")["id"]
    for proc in first:
        celery_workers.kill(proc)          # kill -9 the whole worker, pool children included
    celery_workers.start(1, concurrency=2, env=env)
    op = harness.wait_operation("crash", "Succeeded", timeout=90)
    assert op["id"] == op_id, "the operation was resumed, not replaced"
    assert harness.core.read_namespaced_config_map("after-hook", harness.dest_namespace).data == {"k": "v"}
    harness.wait("the lock to be released", lambda: not harness.redis.exists("wavecd:lock:crash"))
    starts = [e for e in harness.store.operation_log("crash") if e["event"] == "start"]
    assert len(starts) == 1
