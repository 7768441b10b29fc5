"""One canonical form for a git repository URL, and a safe form for showing one.

Users write the same repository many ways (`git@github.com:org/repo`, `ssh://git@ssh.github.com:443/
org/repo.git`, `https://GitHub.com/org/repo`). The repo cache, the webhook matcher and the fetch
deduplication must agree that these are one repository, as Argo CD's URL normalization does. And
URLs may carry credentials, which must never reach a log or a status: `redact_url` strips them.
"""

from __future__ import annotations

import functools
import re
from urllib.parse import urlsplit, urlunsplit

_SCP_LIKE = re.compile(r"^(?:(?P<user>[^@/:]+)@)?(?P<host>[^@/:]+):(?P<path>(?!//).+)$")
_HOST_PREFIXES = ("ssh.", "altssh.")


@functools.lru_cache(maxsize=8192)
def normalize_repo_url(url: str) -> str:
    """A comparison key: `host/org/repo`, lower case, no scheme, user, port, `.git` or slashes.

    `file://` URLs keep their path as is (case matters on disk) under the `file://` prefix. Memoized: every
    webhook normalizes the URL of every app, and apps name few distinct repositories.
    """
    text = url.strip()
    if text.startswith("file://") or text.startswith("/"):
        path = text[len("file://"):] if text.startswith("file://") else text
        return "file://" + path.rstrip("/").removesuffix(".git").rstrip("/")
    if "://" not in text:
        match = _SCP_LIKE.match(text)
        if match:
            text = f"ssh://{match.group('host')}/{match.group('path')}"
    parts = urlsplit(text)
    host = (parts.hostname or "").lower()
    for prefix in _HOST_PREFIXES:
        if host.startswith(prefix):
            host = host[len(prefix):]
    path = parts.path.strip("/").lower().removesuffix(".git").rstrip("/")
    return f"{host}/{path}" if path else host


def same_repo(a: str, b: str) -> bool:
    return normalize_repo_url(a) == normalize_repo_url(b)


def redact_url(url: str) -> str:
    """The URL with any `user:password@` removed, safe for logs, errors and status messages."""
    text = url.strip()
    if "://" in text:
        parts = urlsplit(text)
        if parts.username is not None or parts.password is not None or "@" in parts.netloc:
            netloc = parts.netloc.rsplit("@", 1)[-1]
            return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
        return text
    match = _SCP_LIKE.match(text)
    if match and match.group("user"):
        return f"{match.group('host')}:{match.group('path')}"
    return text


def redact_text(text: str, url: str) -> str:
    """Replace every occurrence of `url`'s credentials in `text` (e.g. a libgit2 error message)."""
    if "://" not in url:
        return text
    parts = urlsplit(url)
    for secret in (parts.password, parts.username):
        if secret:
            text = text.replace(secret, "***")
    return text.replace(url, redact_url(url))
