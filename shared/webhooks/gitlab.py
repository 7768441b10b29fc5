"""GitLab push and tag push webhooks: `X-Gitlab-Event`, authenticated by the `X-Gitlab-Token` secret.

Payload facts used (GitLab's "Push events" / "Tag events" documentation): `ref` is the full ref, `after`
the new sha (all zeros when deleted), `project.default_branch` names HEAD's branch, `commits` carries at
most 20 commits with `added` / `modified` / `removed` paths while `total_commits_count` counts them all.
When the list is truncated (or empty), the changed files are unknown.

System hooks (`X-Gitlab-Event: System Hook`, set up by an instance admin for every project at once) carry
the same push and tag push payloads; the event is named in the body (`event_name`, or `object_kind`).
As in Argo CD, a system hook push refreshes the same apps as a push event; other system events (project
or user changes, merge requests) are ignored.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared.core.settings import Settings
from shared.webhooks.event import PushEvent, push_event
from shared.webhooks.payload import CommitFiles, Payload, collect_files, decode_json, validate
from shared.webhooks.verify import configured_secret, require_token, secret_value

NAME = "gitlab"
EVENT_HEADER = "x-gitlab-event"
TOKEN_HEADER = "X-Gitlab-Token"
EVENTS = {"push hook": "push", "tag push hook": "tag_push"}
SYSTEM_HOOK = "system hook"
SYSTEM_EVENTS = {"push": "push", "tag_push": "tag_push"}


class _Project(Payload):
    web_url: str | None = None
    git_http_url: str | None = None
    git_ssh_url: str | None = None
    default_branch: str | None = None


class _Repository(Payload):
    homepage: str | None = None
    git_http_url: str | None = None
    git_ssh_url: str | None = None


class _Push(Payload):
    ref: str
    after: str | None = None
    commits: list[CommitFiles] | None = None
    total_commits_count: int | None = None
    project: _Project | None = None
    repository: _Repository | None = None


def configured(settings: Settings) -> bool:
    return secret_value(settings.webhook_gitlab_secret) is not None


def verify(headers: Mapping[str, str], body: bytes, settings: Settings) -> None:
    secret = configured_secret(settings.webhook_gitlab_secret, NAME)
    require_token(headers, TOKEN_HEADER, secret, NAME)


def _system_event(data: Mapping[str, Any]) -> str | None:
    """The push event a system hook body names (`event_name`, else `object_kind`), or None for others."""
    for field in ("event_name", "object_kind"):
        name = data.get(field)
        if isinstance(name, str) and name:
            return SYSTEM_EVENTS.get(name.strip().lower())
    return None


def parse(headers: Mapping[str, str], body: bytes) -> PushEvent | None:
    header = headers.get(EVENT_HEADER, "").strip().lower()
    event = EVENTS.get(header)
    if event is None and header != SYSTEM_HOOK:
        return None
    data = decode_json(headers, body, NAME)
    if event is None:
        event = _system_event(data)
        if event is None:
            return None
    push = validate(_Push, data, NAME, event)
    project = push.project or _Project()
    repo = push.repository or _Repository()
    commits = push.commits or []
    total = push.total_commits_count if push.total_commits_count is not None else len(commits)
    files = collect_files(commits) if commits and total <= len(commits) else None
    return push_event(
        provider=NAME,
        event=event,
        repo_urls=[project.web_url, project.git_http_url, project.git_ssh_url,
                   repo.homepage, repo.git_http_url, repo.git_ssh_url],
        refs=[push.ref],
        revision=push.after,
        default_branch=project.default_branch,
        changed_files=files,
    )
