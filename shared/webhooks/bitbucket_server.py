"""Bitbucket Server / Data Center push webhooks: `X-Event-Key: repo:refs_changed`, signed in
`X-Hub-Signature`.

Payload facts used (Bitbucket Data Center's "Event payload" documentation, Push): `changes[]` holds one
entry per moved ref (`ref.id` the full ref, `ref.type` BRANCH or TAG, `toHash` the new sha, `type` ADD,
UPDATE or DELETE); `repository.links.clone[]` lists the `http` and `ssh` clone URLs (servers before 6.x
omit them; such a payload cannot be matched and is refused as naming no repository). No default branch
and no changed files: HEAD apps refresh on any branch push and every app on the ref is refreshed, as in
Argo CD. The signature is `sha256=` + hex HMAC-SHA256 of the body.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import Field

from shared.core.settings import Settings
from shared.webhooks.event import PushEvent, commit_or_none, push_event
from shared.webhooks.payload import Payload, decode_json, validate
from shared.webhooks.verify import configured_secret, require_hmac_sha256, secret_value

NAME = "bitbucketserver"
EVENT_HEADER = "x-event-key"
SIGNATURE_HEADER = "X-Hub-Signature"
PUSH_EVENT = "repo:refs_changed"


class _Ref(Payload):
    id: str | None = None
    type: str | None = None


class _Change(Payload):
    ref: _Ref | None = None
    ref_id: str | None = Field(default=None, alias="refId")
    to_hash: str | None = Field(default=None, alias="toHash")
    type: str | None = None


class _CloneLink(Payload):
    href: str | None = None
    name: str | None = None


class _Links(Payload):
    clone: list[_CloneLink] | None = None


class _Repository(Payload):
    links: _Links | None = None


class _Push(Payload):
    changes: list[_Change] = []
    repository: _Repository


def configured(settings: Settings) -> bool:
    return secret_value(settings.webhook_bitbucketserver_secret) is not None


def verify(headers: Mapping[str, str], body: bytes, settings: Settings) -> None:
    secret = configured_secret(settings.webhook_bitbucketserver_secret, NAME)
    require_hmac_sha256(headers, SIGNATURE_HEADER, secret, body, NAME, prefix="sha256=")


def parse(headers: Mapping[str, str], body: bytes) -> PushEvent | None:
    event = headers.get(EVENT_HEADER, "").strip().lower()
    if event != PUSH_EVENT:
        return None  # diagnostics:ping and every other event
    push = validate(_Push, decode_json(headers, body, NAME), NAME, event)
    refs: list[str] = []
    revision: str | None = None
    for index, change in enumerate(push.changes):
        full = (change.ref.id if change.ref else None) or change.ref_id
        if full:
            refs.append(full)
        if index == 0:
            revision = None if (change.type or "").upper() == "DELETE" else commit_or_none(change.to_hash)
    links = push.repository.links
    clone_urls = [link.href for link in (links.clone or [])] if links else []
    return push_event(
        provider=NAME,
        event=event,
        repo_urls=clone_urls,
        refs=refs,
        revision=revision,
        default_branch=None,
        changed_files=None,
    )
