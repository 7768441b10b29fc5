"""Checking that a webhook really comes from the git host: signatures, tokens and basic auth.

Each provider proves itself differently (an HMAC of the body, a shared token, a hook UUID, HTTP basic
auth), but every comparison here is constant-time (`hmac.compare_digest`), and every refusal names what
was missing or wrong without echoing what the client sent.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping

from pydantic import SecretStr

from shared.webhooks.event import WebhookError


def secret_value(secret: SecretStr | str | None) -> str | None:
    """The configured secret's text, None when unset or empty."""
    if secret is None:
        return None
    value = secret.get_secret_value() if isinstance(secret, SecretStr) else secret
    return value or None


def configured_secret(secret: SecretStr | str | None, provider: str) -> str:
    """The secret a provider's verification needs; a 403 if it is unset (callers check `configured` first)."""
    value = secret_value(secret)
    if value is None:
        raise WebhookError(403, f"no {provider} webhook secret is configured")
    return value


def hmac_sha256_hex(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def require_hmac_sha256(
    headers: Mapping[str, str], header: str, secret: str, body: bytes, provider: str, *, prefix: str = ""
) -> None:
    """The header must hold `prefix` + hex HMAC-SHA256 of the raw body: 401 when absent, 403 when wrong."""
    sent = headers.get(header.lower())
    if not sent:
        raise WebhookError(401, f"{provider} webhook is not signed: header {header} is missing")
    sent = sent.strip()
    if prefix:
        if not sent.lower().startswith(prefix):
            raise WebhookError(403, f"{provider} signature in {header} must start with {prefix!r}")
        sent = sent[len(prefix):]
    expected = hmac_sha256_hex(secret, body)
    if not hmac.compare_digest(sent.lower().encode("utf-8", "replace"), expected.encode("ascii")):
        raise WebhookError(403, f"{provider} signature in {header} does not match the configured secret")


def require_token(headers: Mapping[str, str], header: str, secret: str, provider: str) -> None:
    """The header must equal the configured token (GitLab's `X-Gitlab-Token`)."""
    sent = headers.get(header.lower())
    if not sent:
        raise WebhookError(401, f"{provider} webhook carries no token: header {header} is missing")
    if not hmac.compare_digest(sent.encode("utf-8", "replace"), secret.encode("utf-8")):
        raise WebhookError(403, f"{provider} token in {header} does not match the configured secret")


def require_basic_auth(headers: Mapping[str, str], username: str, password: str, provider: str) -> None:
    """HTTP basic auth must carry exactly the configured username and password (Azure DevOps)."""
    sent = headers.get("authorization", "").strip()
    scheme, _, encoded = sent.partition(" ")
    if scheme.lower() != "basic" or not encoded.strip():
        raise WebhookError(401, f"{provider} webhook carries no basic authentication")
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        raise WebhookError(401, f"{provider} basic authentication header is malformed") from None
    user, sep, pwd = decoded.partition(":")
    # Evaluate both comparisons, so timing does not tell which half was wrong.
    user_ok = hmac.compare_digest(user.encode("utf-8"), username.encode("utf-8"))
    pwd_ok = hmac.compare_digest(pwd.encode("utf-8"), password.encode("utf-8"))
    if not (sep and user_ok and pwd_ok):
        raise WebhookError(403, f"{provider} basic authentication does not match the configured credentials")
