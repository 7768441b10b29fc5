"""What every router of the HTTP API shares: its error type, and a request body read after the token check.

The REST API (`scheduler.api`), its project routes (`scheduler.project_api`) and the dashboard's actions
(`scheduler.dashboard`) all answer errors as `{"error": message, "code": status}` and read bodies with
`body_of`. They live here, below all three, so that no router imports the module that mounts it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool

from scheduler.request_body import read_document


class ApiError(Exception):
    """An error answered as `{"error": message, "code": status}`."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def validation_message(exc: RequestValidationError | ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
        parts.append(f"{loc}: {err.get('msg')}")
    return "invalid request: " + "; ".join(parts)


_Model = TypeVar("_Model", bound=BaseModel)


def _validate(model: type[_Model], doc: Any) -> _Model:  # noqa: ANN401 - a parsed document
    try:
        return model.model_validate(doc)
    except ValidationError as exc:
        raise ApiError(422, validation_message(exc)) from None


def body_of(model: type[_Model], *, optional: bool = False) -> Callable[[Request], Awaitable[_Model]]:
    """A parameter dependency giving the request's body as `model`, read after the route's token check.

    FastAPI reads a declared body parameter before any dependency runs, so a client without a token
    would have its body read and parsed (and a bad one answered 422, not 401). A route's `dependencies`
    (the token check) run before its parameters' dependencies, so this one reads only for a caller with
    the right.
    """
    async def dependency(request: Request) -> _Model:
        doc = await read_document(request)
        if doc is None and optional:
            return model()
        return await run_in_threadpool(_validate, model, doc)
    return dependency
