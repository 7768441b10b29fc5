"""Gogs and Gitea push webhooks: `X-Gogs-Event` / `X-Gitea-Event`, signed in `X-Gogs-Signature` /
`X-Gitea-Signature` (hex HMAC-SHA256 of the body, no prefix).

Gitea descends from Gogs and sends the same payload (plus GitHub-style headers for compatibility, which
is why detection looks for Gitea's and Gogs' headers before GitHub's). Payload facts used (Gitea's and
Gogs' webhook documentation): `ref`, `after`, `repository.{html_url, clone_url, ssh_url,
default_branch}`, and `commits[]` with `added` / `removed` / `modified`. Gitea caps `commits` (to
`FeedMaxCommitNum`) and reports the true count in `total_commits`; a truncated list means unknown files.

Argo CD knows only Gogs (`webhook.gogs.secret`) and its users point Gitea there; so a Gitea request is
checked against the Gitea secret, or the Gogs secret when only that one is set, never accepted unsigned
merely because the Gitea-specific setting is empty.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import SecretStr

from shared.core.settings import Settings
from shared.webhooks.event import PushEvent, push_event
from shared.webhooks.payload import CommitFiles, Payload, collect_files, decode_json, validate
from shared.webhooks.verify import configured_secret, require_hmac_sha256, secret_value

GOGS = "gogs"
GITEA = "gitea"
GOGS_EVENT_HEADER = "x-gogs-event"
GITEA_EVENT_HEADER = "x-gitea-event"
GOGS_SIGNATURE_HEADER = "X-Gogs-Signature"
GITEA_SIGNATURE_HEADER = "X-Gitea-Signature"


class _Repository(Payload):
    html_url: str | None = None
    clone_url: str | None = None
    ssh_url: str | None = None
    default_branch: str | None = None


class _Push(Payload):
    ref: str
    after: str | None = None
    commits: list[CommitFiles] | None = None
    total_commits: int | None = None
    repository: _Repository


def _gitea_secret(settings: Settings) -> SecretStr | None:
    if secret_value(settings.webhook_gitea_secret) is not None:
        return settings.webhook_gitea_secret
    return settings.webhook_gogs_secret


def gogs_configured(settings: Settings) -> bool:
    return secret_value(settings.webhook_gogs_secret) is not None


def gitea_configured(settings: Settings) -> bool:
    return secret_value(_gitea_secret(settings)) is not None


def verify_gogs(headers: Mapping[str, str], body: bytes, settings: Settings) -> None:
    secret = configured_secret(settings.webhook_gogs_secret, GOGS)
    require_hmac_sha256(headers, GOGS_SIGNATURE_HEADER, secret, body, GOGS)


def verify_gitea(headers: Mapping[str, str], body: bytes, settings: Settings) -> None:
    secret = configured_secret(_gitea_secret(settings), GITEA)
    header = GITEA_SIGNATURE_HEADER if GITEA_SIGNATURE_HEADER.lower() in headers else GOGS_SIGNATURE_HEADER
    if header.lower() not in headers:
        header = GITEA_SIGNATURE_HEADER  # report the header Gitea documents as missing
    require_hmac_sha256(headers, header, secret, body, GITEA)


def _parse(provider: str, event_header: str, headers: Mapping[str, str], body: bytes) -> PushEvent | None:
    event = headers.get(event_header, "").strip().lower()
    if event != "push":
        return None
    push = validate(_Push, decode_json(headers, body, provider), provider, event)
    commits = push.commits or []
    total = push.total_commits if push.total_commits else len(commits)
    files = collect_files(commits) if commits and total <= len(commits) else None
    repo = push.repository
    return push_event(
        provider=provider,
        event=event,
        repo_urls=[repo.html_url, repo.clone_url, repo.ssh_url],
        refs=[push.ref],
        revision=push.after,
        default_branch=repo.default_branch,
        changed_files=files,
    )


def parse_gogs(headers: Mapping[str, str], body: bytes) -> PushEvent | None:
    return _parse(GOGS, GOGS_EVENT_HEADER, headers, body)


def parse_gitea(headers: Mapping[str, str], body: bytes) -> PushEvent | None:
    return _parse(GITEA, GITEA_EVENT_HEADER, headers, body)
