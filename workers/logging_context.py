"""Structured logs: every line a task writes names its app, operation and revision.

A contextvar holds the current task's identifiers; a logging filter copies them onto each record; a
JSON formatter (WAVECD_LOG_JSON=true) prints them as fields. Only names and ids are ever put here.

Celery's own lines about a task ("Task wavecd.diff[...] received", "... succeeded", "... raised") are
logged outside the task's scope (by the consumer, or after the body returned), so the filter names their
app from the task's named arguments Celery passes with them (tasks take keyword arguments only: see
`workers.catalogue`).
"""

from __future__ import annotations

import ast
import contextlib
import json
import logging
import re
from collections.abc import Iterator
from typing import Any

from shared.telemetry import log_context
from shared.telemetry.log_context import bind

__all__ = ["ContextFilter", "JsonFormatter", "bind", "configure", "task_context"]

_FIELDS = ("app", "operation", "revision", "step", "repo")


@contextlib.contextmanager
def task_context(task: str, kwargs: dict[str, Any]) -> Iterator[None]:
    """The log context of one task run: its name and the ids among its (named) arguments."""
    with log_context.scope(_named(task, kwargs)):
        yield


def _named(task: str, kwargs: dict[str, Any]) -> dict[str, str]:
    values = {"task": task}
    for name in _FIELDS:
        if kwargs.get(name) is not None:
            values[name] = str(kwargs[name])
    return values


def _kwargs_of(text: object) -> dict[str, Any]:
    """The task's arguments from Celery's `kwargsrepr` (`workers.catalogue.TaskCall.shown`, a dict repr):
    parsed when it is a literal, else each id read off by name (a repr shortened with '...')."""
    if isinstance(text, dict):
        return text
    if not isinstance(text, str):
        return {}
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        value = None
    if isinstance(value, dict):
        return value
    found: dict[str, Any] = {}
    for name in _FIELDS:
        match = re.search(rf"'{name}': (?:'([^'\\]*)'|(\d+))", text)
        if match:
            found[name] = match.group(1) if match.group(1) is not None else match.group(2)
    return found


def celery_task_fields(record: logging.LogRecord) -> dict[str, str]:
    """The task and its ids named by one of Celery's own task log lines (its args are a dict with the
    task's `name` and `kwargs`); empty for any other record."""
    data = record.args
    if not isinstance(data, dict) or not isinstance(data.get("name"), str) or "kwargs" not in data:
        return {}
    return _named(data["name"], _kwargs_of(data.get("kwargs")))


class ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        current = log_context.current()
        if "app" not in current:
            for key, value in celery_task_fields(record).items():
                setattr(record, key, value)
        for key, value in current.items():
            setattr(record, key, value)
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data = {"time": self.formatTime(record), "level": record.levelname, "logger": record.name,
                "message": record.getMessage()}
        for key in ("task", *_FIELDS):
            if hasattr(record, key):
                data[key] = getattr(record, key)
        if record.exc_info:
            data["exc"] = self.formatException(record.exc_info)
        return json.dumps(data)


def configure(json_logs: bool, level: str) -> None:
    handler = logging.StreamHandler()
    handler.addFilter(ContextFilter())
    if json_logs:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(
            "%(asctime)s %(levelname)s %(name)s [%(task)s app=%(app)s op=%(operation)s] %(message)s",
            defaults={"task": "-", "app": "-", "operation": "-"}))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
