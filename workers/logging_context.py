"""Structured logs: every line a task writes names its app, operation and revision.

A contextvar holds the current task's identifiers; a logging filter copies them onto each record; a
JSON formatter (WAVECD_LOG_JSON=true) prints them as fields. Only names and ids are ever put here.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator, Sequence
from typing import Any

from shared import log_context
from shared.log_context import bind

__all__ = ["ContextFilter", "JsonFormatter", "bind", "configure", "task_context"]

_FIELDS = ("app", "operation", "revision", "step", "repo")
# The positional parameters of each task, so `task_context` can name them without finalizing the Celery
# app (which would read its configuration). tests/metrics checks this table against the real signatures.
TASK_PARAMS: dict[str, tuple[str, ...]] = {
    "wavecd.tick": (),
    "wavecd.fetch": ("repo", "due"),
    "wavecd.diff": ("app",),
    "wavecd.wave_apply": ("app", "operation", "step", "token", "seq"),
    "wavecd.health_check": ("app", "operation", "step", "token", "seq"),
    "wavecd.app_admin": ("action", "app", "cascade"),
}


@contextlib.contextmanager
def task_context(task: str, args: Sequence[Any], kwargs: dict[str, Any],
                 params: Sequence[str] | None = None) -> Iterator[None]:
    names = tuple(params) if params is not None else TASK_PARAMS.get(task, ())
    bound = {**dict(zip(names, args, strict=False)), **kwargs}
    values = {"task": task}
    for name in _FIELDS:
        if bound.get(name) is not None:
            values[name] = str(bound[name])
    with log_context.scope(values):
        yield


class ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in log_context.current().items():
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
