"""Structured logs: every line a task writes names its app, operation and revision.

A contextvar holds the current task's identifiers; a logging filter copies them onto each record; a
JSON formatter (WAVECD_LOG_JSON=true) prints them as fields. Only names and ids are ever put here.

Celery's own lines about a task ("Task wavecd.diff[...] received", "... succeeded", "... raised") are
logged outside the task's scope (by the consumer, or after the body returned), so the filter names their
app from the task name and arguments Celery passes with them.
"""

from __future__ import annotations

import ast
import contextlib
import json
import logging
import re
from collections.abc import Iterator, Sequence
from typing import Any

from shared.telemetry import log_context
from shared.telemetry.log_context import bind

__all__ = ["ContextFilter", "JsonFormatter", "bind", "configure", "task_context"]

_FIELDS = ("app", "operation", "revision", "step", "repo")
# The positional parameters of each task, so `task_context` can name them without finalizing the Celery
# app (which would read its configuration). tests/metrics checks this table against the real signatures.
TASK_PARAMS: dict[str, tuple[str, ...]] = {
    "wavecd.tick": (),
    "wavecd.fetch": ("repo", "due", "urgent"),
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


APP_NAMED_ACTIONS = ("delete", "finalize")  # app_admin actions whose `app` argument is the app's name
_FIRST_STRING = re.compile(r"""^[\[(]\s*'([^'\\]*)'""")


def _literal(text: object) -> Any:  # noqa: ANN401 - a Python literal of any shape
    """Celery's `argsrepr`/`kwargsrepr` (a repr, maybe shortened with '...'); None when it is not a literal."""
    if not isinstance(text, str):
        return text
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None


def celery_task_fields(record: logging.LogRecord) -> dict[str, str]:
    """The task and its ids named by one of Celery's own task log lines (its args are a dict with the
    task's `name`, `args` and `kwargs`); empty for any other record."""
    data = record.args
    if not isinstance(data, dict) or not isinstance(data.get("name"), str) or "args" not in data:
        return {}
    task = data["name"]
    params = TASK_PARAMS.get(task, ())
    args = _literal(data.get("args"))
    kwargs = _literal(data.get("kwargs"))
    bound: dict[str, Any] = dict(kwargs) if isinstance(kwargs, dict) else {}
    if isinstance(args, list | tuple):
        bound = {**dict(zip(params, args, strict=False)), **bound}
    elif params and params[0] == "app" and isinstance(data.get("args"), str):
        first = _FIRST_STRING.match(data["args"])  # a shortened repr: its first element is still whole
        if first:
            bound.setdefault("app", first.group(1))
    if task == "wavecd.app_admin" and bound.get("action") not in APP_NAMED_ACTIONS:
        bound.pop("app", None)  # its other actions carry a stash key or a request id, not the app's name
    values = {"task": task}
    for name in _FIELDS:
        if bound.get(name) is not None:
            values[name] = str(bound[name])
    return values


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
