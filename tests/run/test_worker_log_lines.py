"""Celery's own lines about a task ("received", "succeeded", "raised") name the task's app in the worker log.

They are logged outside the task's scope (by the consumer before the task runs, by the tracer after it
returned), so the task context is empty for them; `workers.logging_context.ContextFilter` reads the app
from the task's named arguments Celery passes with each of these lines. The unit tests log through
Celery's own message constants; the integration test reads what a real worker printed.
"""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path

import pytest
from celery import Celery
from celery.app.trace import LOG_RECEIVED, LOG_SUCCESS

from workers.catalogue import QUEUES, TASK_ROUTES, AppAction, AppAdmin, Diff, Fetch, WaveApply, send
from workers.logging_context import ContextFilter, celery_task_fields, task_context

FORMAT = "%(levelname)s %(name)s [%(task)s app=%(app)s op=%(operation)s] %(message)s"


def _line(template: str, context: dict[str, object]) -> str:
    """One record logged the way Celery logs it (`info(template, context)`), formatted as a worker's."""
    record = logging.LogRecord("celery.worker.strategy", logging.INFO, __file__, 1, template, (context,), None)
    ContextFilter().filter(record)
    return logging.Formatter(FORMAT, defaults={"task": "-", "app": "-", "operation": "-"}).format(record)


def test_received_and_succeeded_lines_name_the_app_and_operation():
    step = {"id": "t1", "name": "wavecd.wave_apply", "args": "()",
            "kwargs": WaveApply(app="shop", operation="op-7", step=2, token="owner:9", seq=4).shown(), "eta": None}
    assert "[wavecd.wave_apply app=shop op=op-7] Task wavecd.wave_apply[t1] received" in _line(LOG_RECEIVED, step)
    done = {"id": "t2", "name": "wavecd.diff", "args": "()", "kwargs": Diff(app="shop").shown(),
            "return_value": "'in sync'", "runtime": 0.01}
    assert "[wavecd.diff app=shop op=-] Task wavecd.diff[t2] succeeded" in _line(LOG_SUCCESS, done)


def test_the_app_is_named_only_by_its_own_argument_even_in_a_shortened_repr():
    admin = {"id": "t4", "name": "wavecd.app_admin", "args": "()",
             "kwargs": AppAdmin(action=AppAction.DELETE, app="shop", cascade=True).shown()}
    assert celery_task_fields(_record(admin))["app"] == "shop"
    stashed = {"id": "t8", "name": "wavecd.app_admin", "args": "()",
               "kwargs": AppAdmin(action=AppAction.CREATE, stash="wavecd:stash:0a1b2c").shown()}
    assert "app" not in celery_task_fields(_record(stashed))  # a stash key is not an app's name
    request = {"id": "t9", "name": "wavecd.app_admin", "args": "()",
               "kwargs": AppAdmin(action=AppAction.MANIFESTS, request="0a1b2c3d4e5f6a7b").shown()}
    assert "app" not in celery_task_fields(_record(request))  # nor a manifests request's id
    shortened = {"id": "t5", "name": "wavecd.wave_apply", "args": "()",
                 "kwargs": "{'app': 'shop', 'operation': 'op-9', 'step': 2, 'tok..."}
    assert "app=shop op=op-9" in _line(LOG_RECEIVED, shortened)


def test_a_fetch_of_many_apps_is_shown_short():
    call = Fetch(repo="https://git.example.com/mono.git", due=[f"app-{n}" for n in range(500)])
    shown = call.shown()
    assert len(shown) < 200 and "'app-0'" in shown and "'app-499'" not in shown
    assert celery_task_fields(_record({"id": "t10", "name": call.task, "args": "()", "kwargs": shown})) == {
        "task": "wavecd.fetch", "repo": "https://git.example.com/mono.git"}


def _record(context: dict[str, object]) -> logging.LogRecord:
    return logging.LogRecord("celery.app.trace", logging.INFO, __file__, 1, LOG_SUCCESS, (context,), None)


def test_other_lines_are_left_alone_and_the_task_scope_wins():
    plain = logging.LogRecord("x", logging.INFO, __file__, 1, "hello %s", ("world",), None)
    ContextFilter().filter(plain)
    assert not hasattr(plain, "app")
    # Inside a task's scope (a line the task body logs) the scope's values are kept.
    with task_context("wavecd.diff", {"app": "inner"}):
        record = _record({"id": "t6", "name": "wavecd.diff", "args": "()", "kwargs": "{'app': 'outer'}"})
        ContextFilter().filter(record)
    assert record.app == "inner"  # type: ignore[attr-defined]
    assert celery_task_fields(_record({"id": "t7", "name": "wavecd.tick", "args": "()", "kwargs": "{}"})) == {
        "task": "wavecd.tick"}


@pytest.mark.integration
def test_a_real_worker_names_the_app_on_celerys_lines(redis_url: str, celery_workers):
    celery_workers.start(1, concurrency=1)
    sender = Celery("log-test", broker=redis_url, set_as_current=False)
    sender.conf.update(task_routes=TASK_ROUTES, task_serializer="json", task_default_queue=QUEUES[0])
    try:
        send(sender, Diff(app="no-such-app"))
    finally:
        sender.close()
    log = next(Path(celery_workers.logdir).glob("worker-*.log"))
    finished = re.compile(r"Task wavecd\.diff\[[^\]]+\] (succeeded|raised)")
    deadline = time.monotonic() + 60
    while not finished.search(text := log.read_text(errors="replace")):
        assert time.monotonic() < deadline, text[-3000:]
        time.sleep(0.2)
    lines = [line for line in text.splitlines() if re.search(r"Task wavecd\.diff\[[^\]]+\] (received|succeeded|"
                                                              r"raised)", line)]
    assert len(lines) == 2, lines
    assert all("[wavecd.diff app=no-such-app " in line for line in lines), lines


def test_a_result_naming_many_apps_names_a_few():
    from workers.catalogue import few

    assert few(["a", "b"]) == ["a", "b"]
    assert few([f"app-{n}" for n in range(300)]) == ["app-0", "app-1", "app-2", "app-3", "app-4", "... +295"]
