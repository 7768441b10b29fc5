"""Bitbucket Cloud push webhooks: `X-Event-Key: repo:push`, authenticated by the hook's `X-Hook-UUID`.

Payload facts used (Bitbucket Cloud's "Event payloads" documentation, Push): `push.changes[]` holds one
entry per moved ref, each with `new` (null when the ref was deleted) and `old`, both `{type: branch|tag,
name, target: {hash}}`; `repository.links.html.href` is the repository's web URL. The payload names
neither the default branch nor the changed files, so, as Argo CD does, an app tracking `HEAD` is
refreshed by any branch push (the refresh resolves HEAD itself) and every app on the ref is refreshed.
"""

from __future__ import annotations

from collections.abc import Mapping

from shared.core.settings import Settings
from shared.webhooks.event import BRANCH_PREFIX, TAG_PREFIX, PushEvent, push_event
from shared.webhooks.payload import Payload, decode_json, validate
from shared.webhooks.verify import configured_secret, require_token, secret_value

NAME = "bitbucket"
EVENT_HEADER = "x-event-key"
UUID_HEADER = "X-Hook-UUID"
PUSH_EVENT = "repo:push"
_REF_PREFIXES = {"branch": BRANCH_PREFIX, "named_branch": BRANCH_PREFIX, "tag": TAG_PREFIX}


class _Link(Payload):
    href: str | None = None


class _Links(Payload):
    html: _Link | None = None


class _Target(Payload):
    hash: str | None = None


class _Ref(Payload):
    type: str | None = None
    name: str | None = None
    target: _Target | None = None


class _Change(Payload):
    new: _Ref | None = None
    old: _Ref | None = None


class _PushBody(Payload):
    changes: list[_Change] = []


class _Repository(Payload):
    full_name: str | None = None
    links: _Links | None = None


class _Push(Payload):
    push: _PushBody
    repository: _Repository


def _uuid(value: str) -> str:
    """UUIDs compare without braces and case: `{ABC-...}` and `abc-...` are one hook."""
    return value.strip().strip("{}").lower()


def configured(settings: Settings) -> bool:
    return secret_value(settings.webhook_bitbucket_uuid) is not None


def verify(headers: Mapping[str, str], body: bytes, settings: Settings) -> None:
    expected = _uuid(configured_secret(settings.webhook_bitbucket_uuid, NAME))
    sent = {key: (_uuid(value) if key == UUID_HEADER.lower() else value) for key, value in headers.items()}
    require_token(sent, UUID_HEADER, expected, NAME)


def _full_ref(ref: _Ref) -> str | None:
    prefix = _REF_PREFIXES.get((ref.type or "").lower())
    return prefix + ref.name if prefix and ref.name else None


def parse(headers: Mapping[str, str], body: bytes) -> PushEvent | None:
    event = headers.get(EVENT_HEADER, "").strip().lower()
    if event != PUSH_EVENT:
        return None
    push = validate(_Push, decode_json(headers, body, NAME), NAME, event)
    refs: list[str] = []
    revision: str | None = None
    for index, change in enumerate(push.push.changes):
        side = change.new or change.old
        full = _full_ref(side) if side else None
        if full:
            refs.append(full)
        if index == 0 and change.new and change.new.target:
            revision = change.new.target.hash
    repo = push.repository
    html = repo.links.html.href if repo.links and repo.links.html else None
    fallback = f"https://bitbucket.org/{repo.full_name}" if repo.full_name else None
    return push_event(
        provider=NAME,
        event=event,
        repo_urls=[html, fallback],
        refs=refs,
        revision=revision,
        default_branch=None,
        changed_files=None,
    )
