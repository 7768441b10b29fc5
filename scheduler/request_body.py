"""A client's request body: capped in bytes before it is read, and parsed with bounded work off the event loop.

Nothing here reads a body on its own initiative. The cap wraps the ASGI `receive` channel, so it acts
only when a handler asks for the body, which the API's handlers do after the token is checked: a
client without a token is answered 401 whatever it sends, and its body is never read. When the body is
read, a Content-Length over the cap is refused before the first byte, and a chunked body as soon as the
bytes read pass it; either way the answer says `Connection: close`, so the server reads no more of it.

Starlette's own RequestBodyLimitMiddleware (FastAPI's `max_body_size`) is not used: it answers any
request that declares an oversized body with a plain-text 413 as soon as a response starts, so an
unauthenticated client would learn the size limit instead of getting its 401, and the API's JSON error
shape would be lost.

Parsing goes through `shared.core.safe_yaml` with `REQUEST_LIMITS` (nesting depth, node count, alias
expansion), the loader manifests from git use, in a worker thread: a 1 MiB document is bounded work,
and while it runs the event loop keeps answering other requests.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from fastapi import HTTPException, Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.core import safe_yaml
from shared.core.errors import StallingError

SOURCE = "request body"
_JSON_TYPES = ("application/json",)


class BodyTooLarge(HTTPException):
    """A body over the cap: 413, and the connection is closed instead of reading the rest.

    A FastAPI HTTPException, so FastAPI's own body reading (for routes that declare a body model) passes
    it through unchanged rather than turning it into a 400.
    """

    def __init__(self, limit: int, declared: int | None = None) -> None:
        size = f" of {declared} bytes" if declared is not None else ""
        super().__init__(413, f"request body{size} is over the {limit}-byte limit", {"Connection": "close"})


class InvalidBody(Exception):
    """A body that is not one document within the limits; answered 422 with `message`."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _content_length(headers: Headers) -> int | None:
    value = headers.get("content-length")
    return int(value) if value is not None and value.strip().isdigit() else None


class BodyLimitMiddleware:
    """Caps every request body at `max_bytes`, except on `exempt_paths` (the webhook caps its own)."""

    def __init__(self, app: ASGIApp, max_bytes: int, exempt_paths: Collection[str] = ()) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.exempt_paths = frozenset(exempt_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.exempt_paths:
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        declared = _content_length(headers)
        has_body = bool(declared) or "transfer-encoding" in headers
        read = 0
        finished = not has_body

        async def capped_receive() -> Message:
            nonlocal read, finished
            if declared is not None and declared > self.max_bytes:
                raise BodyTooLarge(self.max_bytes, declared)
            message = await receive()
            if message["type"] == "http.request":
                read += len(message.get("body", b""))
                if read > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
                finished = not message.get("more_body", False)
            return message

        async def closing_send(message: Message) -> None:
            # Answered before the body was read (a 401, a 404, a 413): close rather than read the rest.
            if message["type"] == "http.response.start" and not finished:
                raw = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"connection"]
                message = {**message, "headers": [*raw, (b"connection", b"close")]}
            await send(message)

        await self.app(scope, capped_receive, closing_send)


def parse_document(raw: bytes, content_type: str | None) -> Any:  # noqa: ANN401 - any JSON value
    """One JSON document (a JSON content type) or YAML document (anything else; JSON is YAML too).

    Raises InvalidBody naming the problem; an empty body is None.
    """
    media = (content_type or "").split(";", 1)[0].strip().lower()
    try:
        if media in _JSON_TYPES or media.endswith("+json"):
            return safe_yaml.load_json(raw, SOURCE) if raw.strip() else None
        text = raw.decode("utf-8")
        return safe_yaml.load_document(text, SOURCE) if text.strip() else None
    except UnicodeDecodeError as exc:
        raise InvalidBody(f"the body is not a JSON or YAML document: it is not UTF-8 text ({exc.reason})") from None
    except safe_yaml.DocumentTooComplex as exc:
        raise InvalidBody(f"the body is refused: {_describe(exc)}") from None
    except StallingError as exc:
        raise InvalidBody(f"the body is not a JSON or YAML document: {_describe(exc)}") from None


def _describe(exc: StallingError) -> str:
    return f"{exc.message} (line {exc.line})" if exc.line else exc.message


async def read_document(request: Request) -> Any:  # noqa: ANN401 - any JSON value
    """The request's body as one parsed document (None when empty), read within the cap, parsed off the loop."""
    raw = await request.body()
    return await run_in_threadpool(parse_document, raw, request.headers.get("content-type"))
