"""The Celery configuration the team agreed on (issue: foundation), read from the app every process loads."""

from __future__ import annotations

import pytest

from shared.core.settings import get_settings
from workers.celery_app import QUEUES, TASK_ROUTES, _broker_url, _config


@pytest.fixture()
def conf(monkeypatch):
    monkeypatch.setenv("WAVECD_REDIS_URL", "redis://127.0.0.1:1/0")
    monkeypatch.setenv("WAVECD_TASK_TIME_LIMIT", "300")
    monkeypatch.setenv("WAVECD_VISIBILITY_TIMEOUT", "600")
    get_settings.cache_clear()
    yield _config()
    get_settings.cache_clear()


def test_reliability_settings(conf):
    assert conf["task_serializer"] == "json" and conf["accept_content"] == ["json"]
    assert conf["task_acks_late"] is True and conf["task_reject_on_worker_lost"] is True
    assert conf["worker_prefetch_multiplier"] == 1
    assert conf["task_ignore_result"] is True
    assert conf["worker_cancel_long_running_tasks_on_connection_loss"] is True
    assert conf["worker_send_task_events"] is True


def test_visibility_timeout_exceeds_the_longest_task(conf):
    assert conf["broker_transport_options"]["visibility_timeout"] > conf["task_time_limit"]


def test_queues_and_routes():
    assert set(QUEUES) == {"git", "apply", "health"}
    assert TASK_ROUTES["wavecd.fetch"]["queue"] == "git"
    assert TASK_ROUTES["wavecd.wave_apply"]["queue"] == "apply"
    assert TASK_ROUTES["wavecd.health_check"]["queue"] == "health"


def test_embedded_redis_socket_urls_are_spelled_for_kombu():
    assert _broker_url("unix:///tmp/x/redis.socket") == "redis+socket:///tmp/x/redis.socket"
    assert _broker_url("redis://h:6379/0") == "redis://h:6379/0"


def test_importing_the_app_starts_nothing():
    """No client at import: the configuration (and any embedded Redis) is made lazily."""
    import os
    import subprocess
    import sys

    code = ("import workers.celery_app, workers.tasks, shared.state.redis_conn as r; "
            "assert r._embedded is None, 'an embedded Redis was started at import'")
    env = {k: v for k, v in os.environ.items() if k != "WAVECD_REDIS_URL"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
