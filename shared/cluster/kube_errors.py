"""Kubernetes API failures turned into WaveCD's typed errors, with messages a user can act on.

The official client raises one `ApiException` for everything, carrying a `Status` JSON body. What
happens next depends on what went wrong (an invalid manifest stalls, RBAC is configuration, a 5xx or a
dropped connection is retried), so each failure becomes the matching `shared.core.errors` type here, once,
for every caller. Messages name the verb and the object and quote the server's reason and causes, but
never the object body; values the server echoes back for a Secret are masked.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, TypeVar

from kubernetes.client.exceptions import ApiException

from shared.core.errors import ConfigurationError, StallingError, TransientError, WaveCDError

MAX_MESSAGE_CHARS = 600
MAX_CAUSES = 10
_SECRET_KINDS = frozenset({"Secret"})
# "Invalid value: <anything>: <reason>" as kube-apiserver writes a field error; the value may be a secret.
_INVALID_VALUE = re.compile(r'(Invalid value: )(".*?"|\S+?)(: |$)')
# A cause whose echoed value is long (a whole Pod template): the value is shortened so the reason after it
# ("field is immutable") survives the message's length limit.
_LONG_VALUE = re.compile(r"^(Invalid value: )(.{100,}?)(: [a-zA-Z][^:{}\[\]\"]*)$", re.S)
_URL_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s]+@")
_BEARER = re.compile(r"(?i)(bearer\s+)\S+")


@dataclass(frozen=True)
class Cause:
    """One entry of a Status' `details.causes`: which field, what is wrong with it."""

    field: str
    message: str
    reason: str = ""

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


class KubeError(WaveCDError):
    """Mixin data of every translated API failure: the HTTP code and the Status reason."""

    code: int = 0
    reason: str = ""
    causes: tuple[Cause, ...] = ()


class KubeInvalid(KubeError, StallingError):
    """422 Invalid / 400 BadRequest: the object itself is wrong; fix the manifest."""


class KubeNotFound(KubeError, StallingError):
    """404 on a write: the object, its namespace or its kind does not exist."""


class UnknownKind(KubeError, StallingError):
    """The cluster does not serve this apiVersion/kind (missing CRD, typo in git)."""


class KubeForbidden(KubeError, ConfigurationError):
    """401/403: credentials or RBAC do not allow this; fix the cluster configuration."""


class KubeConflict(KubeError, TransientError):
    """409: a stale resourceVersion, an existing name, or a field owned by another manager."""


class KubeUnavailable(KubeError, TransientError):
    """5xx, 429, a timeout or a broken connection: the API server may answer later."""


class KubeRejected(KubeError, StallingError):
    """Any other 4xx: the request as made cannot succeed (415, 405, 406...)."""


_E = TypeVar("_E", bound=KubeError)


def _make(cls: type[_E], message: str, code: int, reason: str, causes: tuple[Cause, ...] = ()) -> _E:
    err = cls(_truncate(message))
    err.code = code
    err.reason = reason
    err.causes = causes
    return err


def _truncate(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def scrub(text: str) -> str:
    """Drop `user:password@` from URLs and bearer tokens from a transport error's text."""
    return _BEARER.sub(r"\1***", _URL_USERINFO.sub(r"\g<scheme>", text))


def mask_values(text: str) -> str:
    """Hide the value in `Invalid value: <v>: reason`, for kinds whose values are secret."""
    return _INVALID_VALUE.sub(lambda m: f"{m.group(1)}<masked>{m.group(3)}", text)


def parse_status(body: Any) -> dict[str, Any]:
    """The `Status` object of an error response; {} when the body is not one (a proxy's HTML page)."""
    if isinstance(body, bytes):
        body = body.decode("utf-8", errors="replace")
    if isinstance(body, str):
        try:
            body = json.loads(body)
        except ValueError:
            return {}
    return body if isinstance(body, dict) and body.get("kind") == "Status" else {}


def status_causes(status: dict[str, Any], secret: bool = False) -> tuple[Cause, ...]:
    details = status.get("details") or {}
    causes = []
    for raw in (details.get("causes") or [])[:MAX_CAUSES]:
        if not isinstance(raw, dict):
            continue
        message = str(raw.get("message") or "")
        if secret:
            message = mask_values(message)
        message = _LONG_VALUE.sub(lambda m: f"{m.group(1)}{m.group(2)[:60]}...{m.group(3)}", message)
        causes.append(Cause(str(raw.get("field") or ""), _truncate(message, 200),
                            str(raw.get("reason") or "")))
    return tuple(causes)


SCHEMA_REFUSAL = "field not declared in schema"


def translate(exc: ApiException, *, verb: str, what: str, kind: str = "", cluster: str = "") -> KubeError:
    """The typed error for a failed request. `what` names the object (e.g. `Deployment.apps ns/web`).

    `kind` masks echoed values for Secrets; `cluster` names the destination in transport failures.
    """
    code = int(exc.status or 0)
    status = parse_status(exc.body)
    reason = str(status.get("reason") or exc.reason or "")
    secret = kind in _SECRET_KINDS
    server_message = str(status.get("message") or "")
    if secret:
        server_message = mask_values(server_message)
    causes = status_causes(status, secret)
    prefix = f"{verb} {what}"
    where = f" (cluster {cluster})" if cluster else ""
    if code == 0:
        detail = scrub(str(exc.reason or "connection failed").splitlines()[0])
        return _make(KubeUnavailable, f"{prefix}: cannot reach the API server{where}: {detail}", 0,
                     "ConnectionError")
    if code == 422 or (code == 400 and causes):
        listed = "; ".join(str(c) for c in causes) or server_message or "invalid"
        return _make(KubeInvalid, f"{prefix}: invalid: {listed}", code, reason or "Invalid", causes)
    if code == 400:
        return _make(KubeInvalid, f"{prefix}: bad request: {server_message or reason}", code,
                     reason or "BadRequest", causes)
    if code == 500 and SCHEMA_REFUSAL in server_message:
        # Server-side apply refuses fields the schema does not declare with a bare 500
        # (kubernetes/kubernetes#122480): a content error in git, not a server fault to retry.
        return _make(KubeInvalid, f"{prefix}: invalid: {server_message}", code, "Invalid", causes)
    if code in (401, 403):
        label = "unauthorized" if code == 401 else "forbidden"
        return _make(KubeForbidden, f"{prefix}: {label}{where}: {server_message or reason}", code,
                     reason or label.capitalize())
    if code == 404:
        return _make(KubeNotFound, f"{prefix}: not found: {server_message or reason or 'NotFound'}", code,
                     reason or "NotFound")
    if code == 409:
        listed = "; ".join(str(c) for c in causes)
        text = server_message or reason or "conflict"
        if listed and listed not in text:
            text = f"{text} ({listed})"
        return _make(KubeConflict, f"{prefix}: conflict: {text}", code, reason or "Conflict", causes)
    if code == 410 or code == 429 or code >= 500:
        return _make(KubeUnavailable, f"{prefix}: server error {code}{where}: {server_message or reason}",
                     code, reason or "ServerError")
    return _make(KubeRejected, f"{prefix}: rejected ({code}): {server_message or reason}", code,
                 reason or "Rejected")


def unknown_kind(api_version: str, kind: str, *, detail: str = "") -> UnknownKind:
    """Kubernetes' own phrasing, so users recognise it from kubectl and Argo CD."""
    group = api_version.split("/", 1)[0] if "/" in api_version else ""
    text = (f'the server could not find the requested resource kind "{kind}" in group "{group}" '
            f"(apiVersion {api_version}); is its CustomResourceDefinition installed?")
    if detail:
        text = f"{text} {detail}"
    return _make(UnknownKind, text, 404, "NotFound")


def transport_error(exc: BaseException, *, verb: str, what: str, cluster: str = "") -> KubeUnavailable:
    """A network failure below HTTP (refused, reset, timeout, TLS) as a retryable error."""
    where = f" (cluster {cluster})" if cluster else ""
    detail = scrub(_truncate(f"{type(exc).__name__}: {exc}", 300))
    return _make(KubeUnavailable, f"{verb} {what}: cannot reach the API server{where}: {detail}", 0,
                 "ConnectionError")
