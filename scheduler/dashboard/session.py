"""Signing in to the dashboard with the API token, and keeping its writes safe from other sites.

A browser cannot send an `Authorization` header on page loads, so the dashboard takes the same token as
the REST API once, on its sign-in page, and keeps a session in an HttpOnly, SameSite=Strict cookie (scripts
cannot read it, other sites' requests do not carry it). The cookie is not the token itself but the sign-in
time and an HMAC of it keyed by the token: it expires after 12 hours, is no use against the REST API, and
rotating the API token signs everyone out. The read-only token (`WAVECD_API_READONLY_TOKEN`) signs in too,
for a session that shows everything and changes nothing. Every write also needs a CSRF token (another HMAC
of the token) that the pages carry in a meta tag and the script sends as a header: a cross-site form or
script can neither read it nor set a header on a simple request, and a request whose Origin is not our own
is refused outright.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from enum import StrEnum
from urllib.parse import urlsplit

from fastapi import Request, Response

COOKIE = "wavecd_session"
CSRF_HEADER = "x-csrf-token"
_CSRF_CONTEXT = b"wavecd-dashboard-csrf-v1"
_SESSION_CONTEXT = "wavecd-dashboard-session-v1"
MAX_AGE = 12 * 3600
_CLOCK_SKEW = 60


class SignInRequired(Exception):
    """No valid session: pages redirect to the sign-in page, data requests answer 401."""


class CrossSiteRefused(Exception):
    """A write without our CSRF token, or from another origin: answered 403, nothing done."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class PermissionDenied(Exception):
    """A write from a session signed in with the read-only token: answered 403, nothing done."""

    message = "permission denied: the read-only API token may not change anything"


class Role(StrEnum):
    """Which of the REST API's tokens signed the session in."""

    ADMIN = "admin"
    READ_ONLY = "read-only"


class Sessions:
    """Checks sign-in and CSRF against the server's API tokens (the admin one, and the read-only one if set)."""

    def __init__(self, token: str, readonly_token: str | None = None) -> None:
        self._keys = {Role.ADMIN: token.encode()}
        if readonly_token:
            self._keys[Role.READ_ONLY] = readonly_token.encode()

    def role_of_token(self, candidate: str) -> Role | None:
        sent = candidate.strip().encode()
        found = None
        for role, key in self._keys.items():
            if sent and secrets.compare_digest(sent, key):
                found = role
        return found

    def csrf_token(self, role: Role) -> str:
        return hmac.new(self._keys[role], _CSRF_CONTEXT, hashlib.sha256).hexdigest()

    def session_value(self, role: Role = Role.ADMIN, issued: int | None = None) -> str:
        """`<role>.<sign-in time>.<HMAC of both>`, keyed by that role's token: what the cookie holds."""
        issued = int(time.time()) if issued is None else issued
        mac = hmac.new(self._keys[role], f"{_SESSION_CONTEXT}:{role.value}:{issued}".encode(),
                       hashlib.sha256).hexdigest()
        return f"{role.value}.{issued}.{mac}"

    def role(self, request: Request) -> Role | None:
        """The role of the request's session, or None without a valid, unexpired one."""
        value = request.cookies.get(COOKIE, "")
        parts = value.split(".")
        if len(parts) != 3 or not parts[1].isdigit() or parts[0] not in {r.value for r in self._keys}:
            return None
        role, issued = Role(parts[0]), int(parts[1])
        if not -_CLOCK_SKEW <= time.time() - issued <= MAX_AGE:
            return None
        return role if secrets.compare_digest(value.encode(), self.session_value(role, issued).encode()) else None

    def signed_in(self, request: Request) -> bool:
        return self.role(request) is not None

    def require(self, request: Request) -> Role:
        role = self.role(request)
        if role is None:
            raise SignInRequired()
        return role

    def require_same_site(self, request: Request) -> Role:
        """A signed-in session, our own origin, and the session's CSRF token in its header."""
        check_origin(request)
        role = self.require(request)
        sent = request.headers.get(CSRF_HEADER, "")
        if not sent or not secrets.compare_digest(sent.encode(), self.csrf_token(role).encode()):
            raise CrossSiteRefused("cross-site request refused: missing or wrong CSRF token")
        return role

    def require_write(self, request: Request) -> None:
        """What `require_same_site` checks, by a session of the admin token."""
        if self.require_same_site(request) != Role.ADMIN:
            raise PermissionDenied()

    def set_cookie(self, request: Request, response: Response, role: Role) -> None:
        response.set_cookie(COOKIE, self.session_value(role), max_age=MAX_AGE, httponly=True, samesite="strict",
                            secure=request.url.scheme == "https", path="/")

    @staticmethod
    def clear_cookie(response: Response) -> None:
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")


def check_origin(request: Request) -> None:
    """Refuse a request whose Origin (or, without one, Referer) names another site than this server."""
    origin = request.headers.get("origin") or ""
    if not origin:
        referer = request.headers.get("referer") or ""
        if not referer:
            return  # not a browser's cross-site request (those carry Origin on POST)
        parts = urlsplit(referer)
        origin = f"{parts.scheme}://{parts.netloc}"
    # Hosts are compared, not schemes: behind a TLS-terminating proxy the server itself sees http.
    own = (request.headers.get("host") or request.url.netloc).lower()
    if urlsplit(origin).netloc.lower() != own:
        raise CrossSiteRefused(f"cross-site request refused: origin {origin} is not this server ({own})")


def safe_next(path: str | None) -> str:
    """Where to go after signing in: a local path only (never another site)."""
    if not path or not path.startswith("/") or path.startswith("//") or "\\" in path:
        return "/applications"
    return path
