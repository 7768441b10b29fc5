"""What a watch request asks for: its start, its initial events and its bookmarks, checked as kube-apiserver does.

Informers (client-go's reflector, and the official Python client's `Watch`) rely on these rules: a
watch without a resourceVersion starts with the current objects; `sendInitialEvents` (which needs
`resourceVersionMatch=NotOlderThan`) does the same on request and, with `allowWatchBookmarks`, ends
them with a BOOKMARK annotated `k8s.io/initial-events-end`; bookmarks carry only a resourceVersion.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sandbox.errors import ApiError

INITIAL_EVENTS_END = "k8s.io/initial-events-end"
# How long a watch waits for a resourceVersion newer than the store's before answering 504.
TOO_LARGE_WAIT_SECONDS = 3.0
# Bookmarks come about every minute, and two seconds before the watch times out (as the watch cache does).
BOOKMARK_SECONDS = 60.0
BOOKMARK_BEFORE_TIMEOUT = 2.0


@dataclass(frozen=True)
class WatchOptions:
    """A watch request's parameters, validated."""

    resource_version: int | None  # None: start at the current state
    send_initial_events: bool
    bookmarks: bool
    timeout: float
    wait_for_version: bool  # sendInitialEvents with a resourceVersion: the state must be at least that new

    @classmethod
    def parse(cls, first: Any) -> WatchOptions:
        """`first(name)` returns a query parameter's first value or None."""
        rv_param = first("resourceVersion") or ""
        send_param = first("sendInitialEvents")
        match = first("resourceVersionMatch")
        causes: list[tuple[str, str]] = []
        if send_param is not None:
            if match != "NotOlderThan":
                causes.append(("FieldValueForbidden", "Forbidden: sendInitialEvents requires setting "
                                                      "resourceVersionMatch to NotOlderThan"))
        elif match:
            causes.append(("FieldValueForbidden", "Forbidden: resourceVersionMatch is forbidden for watch unless "
                                                  "sendInitialEvents is provided"))
        if match and match != "NotOlderThan":
            causes.append(("FieldValueNotSupported", f'Unsupported value: "{match}": supported values: '
                                                     '"NotOlderThan"'))
        if causes:
            text = [f"resourceVersionMatch: {message}" for _, message in causes]
            raise ApiError(422, 'ListOptions.meta.k8s.io "" is invalid: '
                           + (text[0] if len(text) == 1 else "[" + ", ".join(text) + "]"), "Invalid",
                           group="meta.k8s.io", kind="ListOptions",
                           causes=[{"reason": reason, "message": message, "field": "resourceVersionMatch"}
                                   for reason, message in causes])
        version: int | None = None
        if rv_param not in ("", "0"):
            try:
                version = int(rv_param)
            except ValueError:
                raise ApiError(400, f'resourceVersion: Invalid value: "{rv_param}": must be an integer') from None
        # sendInitialEvents defaults to true for a watch from "" or "0", as it always behaved
        send = send_param.lower() != "false" if send_param is not None else version is None
        timeout = float(first("timeoutSeconds") or 1800)
        return cls(version, send, (first("allowWatchBookmarks") or "").lower() == "true", max(timeout, 0.0),
                   send and version is not None)


def bookmark(api_version: str, kind: str, resource_version: int, initial_events_end: bool = False) -> dict[str, Any]:
    """A BOOKMARK event: an object of the watched kind carrying only a resourceVersion."""
    meta: dict[str, Any] = {"resourceVersion": str(resource_version)}
    if initial_events_end:
        meta["annotations"] = {INITIAL_EVENTS_END: "true"}
    return {"type": "BOOKMARK", "object": {"kind": kind, "apiVersion": api_version, "metadata": meta}}


def too_large(requested: int, current: int) -> ApiError:
    return ApiError(504, f"Timeout: Too large resource version: {requested}, current: {current}", "Timeout",
                    causes=[{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}],
                    retry_after=1)


def next_bookmark(now: float, deadline: float) -> float:
    """When the next bookmark is due: a minute from now, or just before the watch times out if sooner."""
    due = min(now + BOOKMARK_SECONDS, deadline - BOOKMARK_BEFORE_TIMEOUT)
    return due if due > now else deadline
