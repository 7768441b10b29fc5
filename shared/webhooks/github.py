"""GitHub (and GitHub Enterprise) push webhooks: `X-GitHub-Event`, signed in `X-Hub-Signature-256`.

Payload facts used (GitHub's "push" webhook documentation): `ref` is the full ref, `after` the new sha
(all zeros when `deleted`), `repository.default_branch` names HEAD's branch, and each of `commits` (at
most 2048 per delivery) lists `added` / `modified` / `removed` paths (at most 3000 each per commit).
A list at either cap, a force push or a push without commits does not tell us every changed file, so the
event then says "unknown" (`changed_files=None`) and every app on the ref is refreshed.
"""

from __future__ import annotations

from collections.abc import Mapping

from shared.core.settings import Settings
from shared.webhooks.event import PushEvent, push_event
from shared.webhooks.payload import CommitFiles, Payload, collect_files, decode_json, validate
from shared.webhooks.verify import configured_secret, require_hmac_sha256, secret_value

NAME = "github"
EVENT_HEADER = "x-github-event"
SIGNATURE_HEADER = "X-Hub-Signature-256"
MAX_COMMITS = 2048
MAX_FILES_PER_LIST = 3000


class _Repository(Payload):
    html_url: str | None = None
    clone_url: str | None = None
    ssh_url: str | None = None
    default_branch: str | None = None
    master_branch: str | None = None


class _Push(Payload):
    ref: str
    after: str | None = None
    deleted: bool | None = False
    forced: bool | None = False
    commits: list[CommitFiles] | None = None
    repository: _Repository


def configured(settings: Settings) -> bool:
    return secret_value(settings.webhook_github_secret) is not None


def verify(headers: Mapping[str, str], body: bytes, settings: Settings) -> None:
    secret = configured_secret(settings.webhook_github_secret, NAME)
    require_hmac_sha256(headers, SIGNATURE_HEADER, secret, body, NAME, prefix="sha256=")


def changed_files(commits: list[CommitFiles] | None, *, complete: bool) -> list[str] | None:
    """The changed paths, or None when the payload cannot list them all."""
    if not complete or not commits or len(commits) >= MAX_COMMITS:
        return None
    for commit in commits:
        for group in (commit.added, commit.modified, commit.removed):
            if group is not None and len(group) >= MAX_FILES_PER_LIST:
                return None
    return collect_files(commits)


def parse(headers: Mapping[str, str], body: bytes) -> PushEvent | None:
    event = headers.get(EVENT_HEADER, "").strip().lower()
    if event != "push":
        return None  # ping and every other event: nothing to refresh
    push = validate(_Push, decode_json(headers, body, NAME), NAME, event)
    repo = push.repository
    return push_event(
        provider=NAME,
        event=event,
        repo_urls=[repo.html_url, repo.clone_url, repo.ssh_url],
        refs=[push.ref],
        revision=push.after,
        default_branch=repo.default_branch or repo.master_branch,
        changed_files=changed_files(push.commits, complete=not (push.deleted or push.forced)),
    )
