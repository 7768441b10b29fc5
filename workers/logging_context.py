"""Structured logs: every line a task writes names its app, operation and revision.

A contextvar holds the current task's identifiers; a logging filter copies them onto each record; a
JSON formatter (WAVECD_LOG_JSON=true) prints them as fields. Only names and ids are ever put here.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
from collections.abc import Iterator
from typing import Any

_context: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar("wavecd_task", default=None)

_FIELDS = ("app", "operation", "revision", "step", "repo")


@contextlib.contextmanager
def task_context(task: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Iterator[None]:
    values = {"task": task}
    for name in _FIELDS:
        if name in kwargs and kwargs[name] is not None:
            values[name] = str(kwargs[name])
    if args and "app" not in values and task != "wavecd.fetch":
        values["app"] = str(args[0])
    token = _context.set(values)
    try:
        yield
    finally:
        _context.reset(token)


def bind(**values: str) -> None:
    """Add identifiers (e.g. the revision once resolved) to the current task's context."""
    current = _context.get()
    if current is not None:
        current.update({k: str(v) for k, v in values.items()})


class ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in (_context.get() or {}).items():
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
