"""`wavecd check tick`, beat's health probe, against a real Redis."""

from __future__ import annotations

import time

from typer.testing import CliRunner

from scheduler.cli import cli
from shared.core.settings import get_settings
from shared.pipeline.app_index import TICK_HEARTBEAT_KEY


def _run(monkeypatch, redis_url: str, *args: str):
    monkeypatch.setenv("WAVECD_REDIS_URL", redis_url)
    get_settings.cache_clear()
    try:
        return CliRunner().invoke(cli, ["check", "tick", *args])
    finally:
        get_settings.cache_clear()


def test_no_tick_yet_is_unhealthy(monkeypatch, redis_url, redis_client):
    result = _run(monkeypatch, redis_url)
    assert result.exit_code == 1 and "no tick has run yet" in result.output


def test_a_recent_tick_is_healthy_and_an_old_one_is_not(monkeypatch, redis_url, redis_client):
    redis_client.set(TICK_HEARTBEAT_KEY, str(time.time() - 5))
    assert _run(monkeypatch, redis_url, "--max-age", "60").exit_code == 0
    stale = _run(monkeypatch, redis_url, "--max-age", "2")
    assert stale.exit_code == 1 and "ago" in stale.output
