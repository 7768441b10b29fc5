"""The identifiers every log line of a task carries (app, operation, revision, step, repo).

A contextvar, so shared/ code can add what it learns (the resolved revision, the operation id) without
knowing about Celery or log formats; the workers' logging filter copies it onto each record. Only
names and ids ever go in here, never bodies or credentials.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

_context: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar("wavecd_log", default=None)


@contextlib.contextmanager
def scope(values: dict[str, str]) -> Iterator[None]:
    token = _context.set(dict(values))
    try:
        yield
    finally:
        _context.reset(token)


def bind(**values: object) -> None:
    """Add identifiers to the current scope (a no-op outside one)."""
    current = _context.get()
    if current is not None:
        current.update({k: str(v) for k, v in values.items() if v is not None})


def current() -> dict[str, str]:
    return dict(_context.get() or {})
