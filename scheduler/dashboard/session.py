"""Signing in to the dashboard with the API token, and keeping its writes safe from other sites.

A browser cannot send an `Authorization` header on page loads, so the dashboard takes the same token as
the REST API once, on its sign-in page, and keeps it in an HttpOnly, SameSite=Strict cookie (scripts
cannot read it, other sites' requests do not carry it). Every write also needs a CSRF token: an HMAC of
the API token that the pages carry in a meta tag and the script sends as a header. A cross-site form or
script can neither read it nor set a header on a simple request, and a request whose Origin is not our
own is refused outright. Rotating the API token signs everyone out.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from urllib.parse import urlsplit

from fastapi import Request, Response

COOKIE = "wavecd_session"
CSRF_HEADER = "x-csrf-token"
_CSRF_CONTEXT = b"wavecd-dashboard-csrf-v1"
_MAX_AGE = 12 * 3600


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

    def signed_in(self, request: Request) -> bool:
        return self.token_matches(request.cookies.get(COOKIE, ""))

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

    def set_cookie(self, request: Request, response: Response, token: str) -> None:
        response.set_cookie(COOKIE, token.strip(), max_age=_MAX_AGE, httponly=True, samesite="strict",
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
