"""`wavecd check tick`, beat's health probe, against a real Redis."""

from __future__ import annotations

import time

from typer.testing import CliRunner

from scheduler.cli import cli
from shared.core.settings import get_settings
from shared.state import keys


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
    redis_client.set(keys.TICK_HEARTBEAT, str(time.time() - 5))
    assert _run(monkeypatch, redis_url, "--max-age", "60").exit_code == 0
    stale = _run(monkeypatch, redis_url, "--max-age", "2")
    assert stale.exit_code == 1 and "ago" in stale.output


def test_a_tick_while_another_holds_the_tick_lock_does_nothing_and_leaves_its_lock(monkeypatch, redis_url,
                                                                                    redis_client):
    """The tick lock is redis-py's Lock: a second tick is skipped, and only the holder's token frees it."""
    from workers import context, tasks

    monkeypatch.setenv("WAVECD_REDIS_URL", redis_url)
    get_settings.cache_clear()
    monkeypatch.setattr(context, "_services", None)
    held = redis_client.lock(keys.TICK_LOCK, timeout=30)
    assert held.acquire(blocking=False)
    try:
        assert tasks.tick() == {"skipped": "another tick is running"}
        assert held.owned() and redis_client.get(keys.TICK_HEARTBEAT) is None
    finally:
        held.release()
        get_settings.cache_clear()
