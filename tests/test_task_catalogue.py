"""The task catalogue (workers/catalogue.py): one entry per task, named arguments only, checked on both ends."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from shared.core.settings import get_settings
from workers import catalogue
from workers.catalogue import CATALOGUE, QUEUES, TASK_ROUTES, AppAction, AppAdmin, Diff, Fetch, WaveApply


class Recorder:
    """Stands in for a Celery app: records what `send_task` was given."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []

    def send_task(self, name: str, *args: Any, **options: Any) -> None:  # noqa: ANN401
        assert not args
        self.sent.append((name, options))


def test_every_task_has_one_entry_a_queue_and_a_route():
    assert set(CATALOGUE) == {"wavecd.tick", "wavecd.fetch", "wavecd.diff", "wavecd.wave_apply",
                              "wavecd.health_check", "wavecd.app_admin", "wavecd.project_admin"}
    assert all(call.task == name and call.queue.value in QUEUES for name, call in CATALOGUE.items())
    assert TASK_ROUTES == {name: {"queue": call.queue.value} for name, call in CATALOGUE.items()}


def test_send_names_every_argument_and_the_queue():
    sender = Recorder()
    catalogue.send(sender, WaveApply(app="demo", operation="op-1", step=3, token="owner:7", seq=2), countdown=1.5,
                   priority=0)
    [(name, options)] = sender.sent
    assert name == "wavecd.wave_apply" and options["queue"] == "apply" and options["args"] == ()
    assert options["kwargs"] == {"app": "demo", "operation": "op-1", "step": 3, "token": "owner:7", "seq": 2}
    assert options["kwargsrepr"] == "{'app': 'demo', 'operation': 'op-1', 'step': 3, 'token': 'owner:7', 'seq': 2}"
    assert options["countdown"] == 1.5 and options["priority"] == 0


def test_a_worker_reads_messages_back_through_the_same_models():
    assert catalogue.parse("wavecd.diff", {"app": "demo"}) == Diff(app="demo")
    admin = catalogue.parse("wavecd.app_admin", {"action": "delete", "app": "demo", "cascade": True})
    assert admin == AppAdmin(action=AppAction.DELETE, app="demo", cascade=True)
    assert catalogue.parse("not.ours", {}) is None
    with pytest.raises(ValidationError):
        catalogue.parse("wavecd.fetch", {"repo": "https://x", "bogus": 1})  # no argument outside the model
    with pytest.raises(ValidationError):
        catalogue.parse("wavecd.wave_apply", {"app": "demo"})  # nor one missing


def test_a_fetch_has_empty_lists_by_default():
    assert Fetch(repo="https://x").kwargs() == {"repo": "https://x", "due": [], "urgent": []}


def test_a_task_given_positional_arguments_refuses_them(redis_url, monkeypatch):
    from workers import context, tasks

    monkeypatch.setenv("WAVECD_REDIS_URL", redis_url)
    get_settings.cache_clear()
    monkeypatch.setattr(context, "_services", None)
    try:
        with pytest.raises(TypeError, match="keyword arguments only"):
            tasks.diff("demo")
    finally:
        get_settings.cache_clear()
