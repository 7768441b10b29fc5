"""Flower watches WaveCD's workers: readable task names and arguments, and never a Secret's value.

Flower is started as operators start it (`celery -A workers.celery_app flower`) against the test Redis,
before the workers, so it receives every task event of the sync. `--broker_api` is not passed: it names
RabbitMQ's management API, and with a Redis broker Flower reads the broker directly.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fixtures.redis import free_port
from tests.pipeline.harness import ROOT, Harness, manifests

pytestmark = pytest.mark.integration

SECRET_VALUE = "fl0wer-must-n0t-see-this"
STEP_TASKS = ("wavecd.fetch", "wavecd.diff", "wavecd.wave_apply", "wavecd.health_check")


@dataclass
class Flower:
    url: str
    log: Path

    def get(self, path: str) -> Any:  # noqa: ANN401 - JSON
        response = httpx.get(self.url + path, timeout=10)
        response.raise_for_status()
        return response.json()


@pytest.fixture()
def flower(redis_url: str, tmp_path: Path) -> Iterator[Flower]:
    port = free_port()
    log = tmp_path / "flower.log"
    env = {**os.environ, "WAVECD_REDIS_URL": redis_url, "WAVECD_HOME": str(tmp_path / "flower-home"),
           "FLOWER_UNAUTHENTICATED_API": "true", "PYTHONPATH": str(ROOT)}
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "workers.celery_app", "flower", f"--port={port}",
             "--address=127.0.0.1"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    flower = Flower(f"http://127.0.0.1:{port}", log)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(flower.url + "/healthcheck", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"Flower did not start:\n{log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.2)
        yield flower
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


def _app_in(task: dict[str, Any], app: str) -> bool:
    return app in str(task.get("args")) or app in str(task.get("kwargs"))


def test_flower_shows_the_sync_tasks_by_app_without_secret_values(harness: Harness, git_factory,
                                                                   celery_workers, flower: Flower):
    repo = git_factory.create("flowered", {"app/all.yaml": manifests(
        # Two waves, so the chain gates the first on health_check (a single plain wave finishes at once).
        {"apiVersion": "v1", "kind": "ConfigMap", "data": {"mode": "fast"},
         "metadata": {"name": "settings", "annotations": {"argocd.argoproj.io/sync-wave": "-1"}}},
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds"},
         "stringData": {"password": SECRET_VALUE}},
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "encoded"},
         "data": {"token": base64.b64encode(SECRET_VALUE.encode()).decode()}},
    )})
    celery_workers.start(1, concurrency=2, env=harness.worker_env())
    harness.application("flowered", repo.url, "app")
    harness.wait_synced("flowered", revision=repo.head())
    op = harness.operation("flowered")
    assert op is not None and op["phase"] == "Succeeded"
    assert harness.core.read_namespaced_secret("creds", harness.dest_namespace).data  # the Secret was applied

    deadline = time.monotonic() + 20
    while True:
        tasks: dict[str, dict[str, Any]] = flower.get("/api/tasks")
        found = {t["name"] for t in tasks.values() if t.get("name") in STEP_TASKS and _app_in(t, "flowered")
                 and t.get("state") == "SUCCESS"}
        if found == set(STEP_TASKS):
            break
        if time.monotonic() > deadline:
            raise AssertionError(f"Flower shows {sorted(found)} of {STEP_TASKS}; tasks: "
                                 f"{json.dumps(tasks, default=str)[:3000]}")
        time.sleep(0.3)

    # Arguments are named, short and readable: the app, the operation id, the step; the fetch names the repo.
    steps = [t for t in tasks.values() if t["name"] in ("wavecd.wave_apply", "wavecd.health_check")]
    assert all(t["args"] == "()" and t["kwargs"].startswith(f"{{'app': 'flowered', 'operation': '{op['id']}', "
                                                            f"'step': ") for t in steps), steps
    fetches = [t for t in tasks.values() if t["name"] == "wavecd.fetch"]
    assert any(t["kwargs"].startswith(f"{{'repo': '{repo.url}'") for t in fetches), fetches
    diffs = [t for t in tasks.values() if t["name"] == "wavecd.diff" and t.get("state") == "SUCCESS"]
    assert any(t["kwargs"] == "{'app': 'flowered'}" and t["result"] for t in diffs), diffs
    assert all(len(str(t.get("result"))) < 300 for t in tasks.values()), "a task returns bulk data"
    assert not any(t["name"] == "wavecd.tick" for t in tasks.values()), "the heartbeat buries the syncs"
    assert all(len(t["args"]) + len(t["kwargs"]) < 300 for t in tasks.values()), "a task carries bulk data"

    # Nothing Flower returns holds the Secret's value, plain or base64.
    shown = [json.dumps(tasks)]
    shown += [json.dumps(flower.get(f"/api/task/info/{task_id}")) for task_id in tasks]
    everything = "\n".join(shown)
    assert all(name in everything for name in STEP_TASKS)
    for needle in (SECRET_VALUE, base64.b64encode(SECRET_VALUE.encode()).decode()):
        assert needle not in everything, f"Flower shows a Secret value ({needle[:4]}...)"
