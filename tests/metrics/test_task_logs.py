"""Structured logs: with WAVECD_LOG_JSON every worker line is JSON, and a task's lines name its app.

The unit tests drive `workers.logging_context` the way `WaveTask.__call__` does; the integration test reads
what a real worker (configured by `workers.instrumentation`'s `setup_logging` handler) printed during a sync.
"""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest

from shared.core.settings import get_settings
from tests.metrics.test_worker_metrics import config_map
from tests.pipeline.harness import Harness, manifests
from workers import instrumentation, logging_context

# Celery's own format ("[2024-01-01 10:00:00,000: INFO/MainProcess] ...") and logging's default/ours.
PLAIN_LOG_LINE = re.compile(r"^\[?\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d[,.]\d+:? (DEBUG|INFO|WARNING|ERROR|CRITICAL)")
STEP_ARGS = {"app": "web", "operation": "op-1", "step": 2, "token": "owner:7", "seq": 5}  # named, as sent


@pytest.fixture()
def json_logs(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    """The worker's logging setup (as Celery's `setup_logging` signal runs it) writing into a buffer."""
    monkeypatch.setenv("WAVECD_LOG_JSON", "true")
    monkeypatch.setenv("WAVECD_LOG_LEVEL", "DEBUG")
    get_settings.cache_clear()
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    instrumentation._setup_logging()
    buffer = io.StringIO()
    root.handlers[0].setStream(buffer)  # type: ignore[attr-defined]
    try:
        yield buffer
    finally:
        root.handlers[:], root.level = saved
        get_settings.cache_clear()


def lines(buffer: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


def test_setup_logging_handler_makes_every_line_json_with_the_task_context(json_logs):
    log = logging.getLogger("shared.pipeline.reconcile")
    log.info("outside any task")
    with logging_context.task_context("wavecd.diff", {"app": "web"}):
        log.debug("comparing %s", "web")
        logging_context.bind(revision="a" * 40)
        log.info("compared")
    first, inside, bound = lines(json_logs)
    assert first["message"] == "outside any task" and "app" not in first
    assert inside == {**inside, "level": "DEBUG", "logger": "shared.pipeline.reconcile", "message": "comparing web",
                      "task": "wavecd.diff", "app": "web"}
    assert bound["revision"] == "a" * 40 and bound["app"] == "web"


def test_exceptions_stay_inside_one_json_line(json_logs):
    with logging_context.task_context("wavecd.diff", {"app": "web"}):
        try:
            raise ValueError("boom")
        except ValueError:
            logging.getLogger("x").exception("failed")
    (line,) = lines(json_logs)
    assert line["app"] == "web" and "ValueError: boom" in line["exc"]


@pytest.mark.parametrize("task", ["wavecd.wave_apply", "wavecd.health_check"])
def test_step_task_lines_carry_the_operation(json_logs, task):
    with logging_context.task_context(task, STEP_ARGS):
        logging.getLogger("shared.pipeline.sync_steps").info("applying")
    (line,) = lines(json_logs)
    assert (line.get("app"), line.get("operation")) == ("web", "op-1")


def test_fetch_lines_carry_the_repository(json_logs):
    with logging_context.task_context("wavecd.fetch", {"repo": "https://git.example.com/org/repo.git", "due": []}):
        logging.getLogger("shared.source.git_source").info("fetched")
    (line,) = lines(json_logs)
    assert line.get("repo") == "https://git.example.com/org/repo.git"


@pytest.mark.integration
def test_a_real_worker_logs_json_lines_naming_the_app(harness: Harness, git_factory, celery_workers):
    repo = git_factory.create("logged", {"app/all.yaml": manifests(config_map("one"))})
    celery_workers.start(1, concurrency=1, env=harness.worker_env(WAVECD_LOG_JSON="true",
                                                                   WAVECD_LOG_LEVEL="DEBUG"))
    harness.application("logged", repo.url, "app")
    harness.wait_synced("logged", revision=repo.head())
    text = "\n".join(p.read_text() for p in celery_workers.logdir.glob("worker-*.log"))
    # Besides JSON records there is only Celery's start-up banner (printed, not logged): no plain log lines.
    plain = [line for line in text.splitlines() if PLAIN_LOG_LINE.match(line)]
    assert not plain, plain[:5]
    records = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    assert any("ready." in r["message"] for r in records)
    in_task = [r for r in records if r.get("task") in ("wavecd.diff", "wavecd.wave_apply", "wavecd.health_check")]
    assert {r["task"] for r in in_task} >= {"wavecd.diff"}, "no line was logged inside a diff task"
    assert all(r.get("app") == "logged" for r in in_task), [r for r in in_task if r.get("app") != "logged"]
    assert "s3cr3t" not in text


def test_every_task_takes_the_named_arguments_of_its_catalogue_entry(redis_url, monkeypatch):
    """Senders build `workers.catalogue` models; each task's keyword-only parameters must be the model's fields."""
    import inspect

    from shared.core.settings import get_settings
    from workers import catalogue, project_tasks, tasks

    monkeypatch.setenv("WAVECD_REDIS_URL", redis_url)  # reading a task finalizes the Celery app's config
    get_settings.cache_clear()

    by_name = {t.name: t for t in (tasks.tick, tasks.fetch, tasks.diff, tasks.wave_apply, tasks.health_check,
                                   tasks.app_admin, project_tasks.project_admin)}
    assert set(by_name) == set(catalogue.CATALOGUE)
    for name, task in by_name.items():
        params = {n: p for n, p in inspect.signature(task.run).parameters.items() if n != "self"}
        assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params.values()), name
        assert set(params) == set(catalogue.CATALOGUE[name].model_fields), name
