"""Signing in to the dashboard with the API token, and keeping its writes safe from other sites.

A browser cannot send an `Authorization` header on page loads, so the dashboard takes the same token as
the REST API once, on its sign-in page, and keeps a session in an HttpOnly, SameSite=Strict cookie (scripts
cannot read it, other sites' requests do not carry it). The cookie is not the token itself but the sign-in
time and an HMAC of it keyed by the token: it expires after 12 hours, is no use against the REST API, and
rotating the API token signs everyone out. Every write also needs a CSRF token (another HMAC of the token)
that the pages carry in a meta tag and the script sends as a header: a cross-site form or script can neither
read it nor set a header on a simple request, and a request whose Origin is not our own is refused outright.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
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


class Sessions:
    """Checks sign-in and CSRF against the server's one API token."""

    def __init__(self, token: str) -> None:
        self._token = token.encode()
        self.csrf_token = hmac.new(self._token, _CSRF_CONTEXT, hashlib.sha256).hexdigest()

    def token_matches(self, candidate: str) -> bool:
        return bool(candidate) and secrets.compare_digest(candidate.strip().encode(), self._token)

    def session_value(self, issued: int | None = None) -> str:
        """`<sign-in time>.<HMAC of it>`: what the cookie holds instead of the token."""
        issued = int(time.time()) if issued is None else issued
        mac = hmac.new(self._token, f"{_SESSION_CONTEXT}:{issued}".encode(), hashlib.sha256).hexdigest()
        return f"{issued}.{mac}"

    def signed_in(self, request: Request) -> bool:
        issued_text, _, _ = request.cookies.get(COOKIE, "").partition(".")
        if not issued_text.isdigit():
            return False
        issued = int(issued_text)
        if not -_CLOCK_SKEW <= time.time() - issued <= MAX_AGE:
            return False
        return secrets.compare_digest(request.cookies[COOKIE].encode(), self.session_value(issued).encode())

    def require(self, request: Request) -> None:
        if not self.signed_in(request):
            raise SignInRequired()

    def require_write(self, request: Request) -> None:
        """A signed-in session, our own origin, and the CSRF token in its header."""
        check_origin(request)
        self.require(request)
        sent = request.headers.get(CSRF_HEADER, "")
        if not sent or not secrets.compare_digest(sent.encode(), self.csrf_token.encode()):
            raise CrossSiteRefused("cross-site request refused: missing or wrong CSRF token")

    def set_cookie(self, request: Request, response: Response) -> None:
        response.set_cookie(COOKIE, self.session_value(), max_age=MAX_AGE, httponly=True, samesite="strict",
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
