"""Azure DevOps `git.push` service hooks: recognised by `X-Vss-ActivityId`, authenticated by basic auth.

Payload facts used (Azure DevOps "Service hook events" documentation, git.push): `eventType` is
`git.push`; `resource.refUpdates[]` lists each moved ref (`name` the full ref, `newObjectId` the new sha,
all zeros when deleted); `resource.repository.remoteUrl` is the clone URL and
`resource.repository.defaultBranch` the full default ref. Changed files are not sent, so every app on the
ref is refreshed. Azure's SSH clone URLs (`git@ssh.dev.azure.com:v3/org/project/repo`) differ from its
HTTPS ones (`https://dev.azure.com/org/project/_git/repo`) in more than scheme, so the SSH form is added
to the event's URLs and apps cloning over SSH match too.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from pydantic import Field

from shared.core.settings import Settings
from shared.webhooks.event import PushEvent, push_event
from shared.webhooks.payload import Payload, decode_json, validate
from shared.webhooks.verify import require_basic_auth, secret_value

NAME = "azuredevops"
DETECT_HEADER = "x-vss-activityid"
PUSH_EVENT = "git.push"
_DEV_AZURE = re.compile(r"^https?://(?:[^@/]+@)?dev\.azure\.com/(?P<org>[^/]+)/(?P<project>[^/]+)/_git/"
                        r"(?P<repo>[^/?#]+)", re.IGNORECASE)
_VISUALSTUDIO = re.compile(r"^https?://(?:[^@/]+@)?(?P<org>[^./@]+)\.visualstudio\.com/(?:DefaultCollection/)?"
                           r"(?P<project>[^/]+)/_git/(?P<repo>[^/?#]+)", re.IGNORECASE)


class _RefUpdate(Payload):
    name: str | None = None
    new_object_id: str | None = Field(default=None, alias="newObjectId")


class _Repository(Payload):
    remote_url: str | None = Field(default=None, alias="remoteUrl")
    ssh_url: str | None = Field(default=None, alias="sshUrl")
    default_branch: str | None = Field(default=None, alias="defaultBranch")


class _Resource(Payload):
    ref_updates: list[_RefUpdate] = Field(default_factory=list, alias="refUpdates")
    repository: _Repository


class _Push(Payload):
    event_type: str | None = Field(default=None, alias="eventType")
    resource: _Resource


class _EventOnly(Payload):
    event_type: str | None = Field(default=None, alias="eventType")


def configured(settings: Settings) -> bool:
    return bool(settings.webhook_azuredevops_username) or (
        secret_value(settings.webhook_azuredevops_password) is not None
    )


def verify(headers: Mapping[str, str], body: bytes, settings: Settings) -> None:
    username = settings.webhook_azuredevops_username or ""
    password = secret_value(settings.webhook_azuredevops_password) or ""
    require_basic_auth(headers, username, password, NAME)


def ssh_form(url: str) -> str | None:
    """The SSH clone URL of an Azure DevOps HTTPS repository URL, or None for other URLs."""
    match = _DEV_AZURE.match(url) or _VISUALSTUDIO.match(url)
    if not match:
        return None
    return f"git@ssh.dev.azure.com:v3/{match['org']}/{match['project']}/{match['repo']}"


def parse(headers: Mapping[str, str], body: bytes) -> PushEvent | None:
    data = decode_json(headers, body, NAME)
    event = (validate(_EventOnly, data, NAME, "service hook").event_type or "").strip().lower()
    if event != PUSH_EVENT:
        return None
    push = validate(_Push, data, NAME, event)
    repo = push.resource.repository
    refs = [update.name for update in push.resource.ref_updates if update.name]
    first = push.resource.ref_updates[0] if push.resource.ref_updates else None
    urls = [repo.remote_url, repo.ssh_url]
    if repo.remote_url:
        urls.append(ssh_form(repo.remote_url))
    return push_event(
        provider=NAME,
        event=event,
        repo_urls=urls,
        refs=refs,
        revision=first.new_object_id if first else None,
        default_branch=repo.default_branch,
        changed_files=None,
    )
