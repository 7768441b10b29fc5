"""Which git host sent a webhook, whether it proved it, and its payload as a `PushEvent`.

Providers are told apart by their headers, checked in a fixed order: Azure DevOps, GitLab, Gitea, Gogs,
Bitbucket Cloud, Bitbucket Server, GitHub. Gitea also sends GitHub's and Gogs' headers for compatibility,
so it must be recognised first or its requests would be verified against the wrong secret. Verification
happens before the body is parsed, so an unauthenticated client cannot make us do more than an HMAC.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from shared.core.settings import Settings
from shared.webhooks import azuredevops, bitbucket, bitbucket_server, github, gitlab, gogs
from shared.webhooks.event import PushEvent, WebhookError

Headers = Mapping[str, str]


@dataclass(frozen=True)
class Provider:
    """One git host: how to recognise it, whether a secret is set, how to verify and parse it."""

    name: str
    detects: Callable[[Headers], bool]
    configured: Callable[[Settings], bool]
    verify: Callable[[Headers, bytes, Settings], None]
    parse: Callable[[Headers, bytes], PushEvent | None]


def _has(header: str) -> Callable[[Headers], bool]:
    return lambda headers: bool(headers.get(header, "").strip())


def _is_bitbucket_cloud(headers: Headers) -> bool:
    # Cloud always sends X-Hook-UUID; a request without it claiming Cloud's push event is still treated as
    # Cloud, so that it meets Cloud's verification rather than slipping through another provider's.
    event_key = headers.get("x-event-key", "").strip().lower()
    return _has("x-hook-uuid")(headers) or event_key == bitbucket.PUSH_EVENT


PROVIDERS: tuple[Provider, ...] = (
    Provider(azuredevops.NAME, _has(azuredevops.DETECT_HEADER), azuredevops.configured, azuredevops.verify,
             azuredevops.parse),
    Provider(gitlab.NAME, _has(gitlab.EVENT_HEADER), gitlab.configured, gitlab.verify, gitlab.parse),
    Provider(gogs.GITEA, _has(gogs.GITEA_EVENT_HEADER), gogs.gitea_configured, gogs.verify_gitea,
             gogs.parse_gitea),
    Provider(gogs.GOGS, _has(gogs.GOGS_EVENT_HEADER), gogs.gogs_configured, gogs.verify_gogs,
             gogs.parse_gogs),
    Provider(bitbucket.NAME, _is_bitbucket_cloud, bitbucket.configured, bitbucket.verify, bitbucket.parse),
    Provider(bitbucket_server.NAME, _has(bitbucket_server.EVENT_HEADER), bitbucket_server.configured,
             bitbucket_server.verify, bitbucket_server.parse),
    Provider(github.NAME, _has(github.EVENT_HEADER), github.configured, github.verify, github.parse),
)


def lower_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Header names are case-insensitive; providers are looked up by lower-case name."""
    return {str(key).lower(): str(value) for key, value in headers.items()}


def detect_provider(headers: Mapping[str, str]) -> Provider | None:
    """The provider whose headers the request carries, or None for a request from no known git host."""
    lowered = lower_headers(headers)
    for provider in PROVIDERS:
        if provider.detects(lowered):
            return provider
    return None


def parse_webhook(
    headers: Mapping[str, str], body: bytes, settings: Settings, *, verify: bool = True
) -> PushEvent | None:
    """The push a webhook request describes; None when there is nothing to do (ping, other events, unknown
    sender). Raises `WebhookError`: 413 body too large, 401 unsigned, 403 forged or secret required but not
    configured, 400 malformed payload.

    `verify=False` skips authentication (the CLI's `admin webhook` replaying a saved payload).
    """
    if len(body) > settings.webhook_max_bytes:
        raise WebhookError(413, f"webhook body is {len(body)} bytes, over the {settings.webhook_max_bytes}"
                                f"-byte limit (webhook_max_bytes)")
    lowered = lower_headers(headers)
    provider = detect_provider(lowered)
    if provider is None:
        return None
    if verify:
        if provider.configured(settings):
            provider.verify(lowered, body, settings)
        elif settings.webhook_require_secrets:
            raise WebhookError(403, f"{provider.name} webhooks are refused: no {provider.name} secret is "
                                    f"configured and webhook_require_secrets is set")
    return provider.parse(lowered, body)
