"""GitLab push and tag push webhooks: `X-Gitlab-Event`, authenticated by the `X-Gitlab-Token` secret.

Payload facts used (GitLab's "Push events" / "Tag events" documentation): `ref` is the full ref, `after`
the new sha (all zeros when deleted), `project.default_branch` names HEAD's branch, `commits` carries at
most 20 commits with `added` / `modified` / `removed` paths while `total_commits_count` counts them all.
When the list is truncated (or empty), the changed files are unknown.
"""

from __future__ import annotations

from collections.abc import Mapping

from shared.settings import Settings
from shared.webhooks.event import PushEvent, push_event
from shared.webhooks.payload import CommitFiles, Payload, collect_files, decode_json, validate
from shared.webhooks.verify import configured_secret, require_token, secret_value

NAME = "gitlab"
EVENT_HEADER = "x-gitlab-event"
TOKEN_HEADER = "X-Gitlab-Token"
EVENTS = {"push hook": "push", "tag push hook": "tag_push"}


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


def parse(headers: Mapping[str, str], body: bytes) -> PushEvent | None:
    event = EVENTS.get(headers.get(EVENT_HEADER, "").strip().lower())
    if event is None:
        return None
    push = validate(_Push, decode_json(headers, body, NAME), NAME, event)
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
