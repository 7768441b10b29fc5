"""Kubernetes API errors as typed exceptions that render to `Status` objects.

Clients (the official Python client included) branch on `reason` and `code`, so every failure the
emulator reports must carry exactly the reason/code pair a kube-apiserver would send.
"""

from __future__ import annotations

from typing import Any

REASONS: dict[int, str] = {
    400: "BadRequest",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    406: "NotAcceptable",
    409: "Conflict",
    410: "Expired",
    415: "UnsupportedMediaType",
    422: "Invalid",
    500: "InternalError",
}


class ApiError(Exception):
    """A failed API call; `to_status()` is the body sent to the client."""

    def __init__(
        self,
        code: int,
        message: str,
        reason: str | None = None,
        *,
        name: str | None = None,
        group: str | None = None,
        kind: str | None = None,
        causes: list[dict[str, str]] | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        # reason "" leaves it out, as kube-apiserver does for errors it did not classify (plain 500s)
        self.reason = REASONS.get(code, "Unknown") if reason is None else reason
        self.name = name
        self.group = group
        self.kind = kind
        self.causes = causes
        self.retry_after = retry_after

    def to_status(self) -> dict[str, Any]:
        details: dict[str, Any] = {}
        if self.name is not None:
            details["name"] = self.name
        if self.group:
            details["group"] = self.group
        if self.kind is not None:
            details["kind"] = self.kind
        if self.causes:
            details["causes"] = self.causes
        if self.retry_after is not None:
            details["retryAfterSeconds"] = self.retry_after
        status: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
        }
        if self.reason:
            status["reason"] = self.reason
        status["code"] = self.code
        if details or self.reason in ("NotFound", "MethodNotAllowed"):
            status["details"] = details  # kube-apiserver sends `details: {}` with its generic 404 and 405
        return status


def qualified(resource: str, group: str) -> str:
    """`deployments.apps` / `configmaps`: how Kubernetes names a resource in messages."""
    return f"{resource}.{group}" if group else resource


def not_found(resource: str, group: str, name: str) -> ApiError:
    return ApiError(404, f'{qualified(resource, group)} "{name}" not found', name=name, group=group,
                    kind=resource)


def already_exists(resource: str, group: str, name: str) -> ApiError:
    return ApiError(409, f'{qualified(resource, group)} "{name}" already exists', "AlreadyExists",
                    name=name, group=group, kind=resource)


def conflict(resource: str, group: str, name: str, detail: str) -> ApiError:
    return ApiError(409, f'Operation cannot be fulfilled on {qualified(resource, group)} "{name}": {detail}',
                    "Conflict", name=name, group=group, kind=resource)


def bad_request(message: str) -> ApiError:
    return ApiError(400, message)


def invalid(kind: str, group: str, name: str, causes: list[tuple[str, str, str]]) -> ApiError:
    """422 Invalid; each cause is (field, reason type e.g. FieldValueInvalid, message)."""
    parts = [f"{field}: {msg}" if field else msg for field, _, msg in causes]
    text = parts[0] if len(parts) == 1 else "[" + ", ".join(parts) + "]"
    subject = f"{kind}.{group}" if group else kind
    return ApiError(
        422,
        f'{subject} "{name}" is invalid: {text}',
        name=name,
        group=group,
        kind=kind,
        causes=[{"reason": reason, "message": msg, "field": field} for field, reason, msg in causes],
    )
