"""Who wrote a revision and why: the commit's author, date and message, kept in Redis for readers of status.

The API server and the dashboard never read git, yet a person looking at a sha wants its author and
subject (Argo CD shows them as the revision's metadata). The `diff` step has the commit in its local
git cache anyway, so it records these few facts once per commit; readers look them up by sha. The
webhook receiver also notes each commit a push announced, so an automated sync of that commit can say
it came from a webhook rather than from polling.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pygit2
import redis
from pydantic import BaseModel, ValidationError

from shared.core.errors import WaveCDError
from shared.state import keys

if TYPE_CHECKING:
    from shared.pipeline.services import Services

log = logging.getLogger(__name__)

_TTL_SECONDS = 90 * 86400  # longer than a history entry usually lives
_MAX_MESSAGE = 4096


class RevisionMetadata(BaseModel):
    """Argo CD's RevisionMetadata, the part WaveCD keeps: author, date and message of one commit."""

    author: str
    date: str
    message: str

    @property
    def subject(self) -> str:
        return self.message.split("\n", 1)[0]


def record_revision(svc: Services, repo_url: str, sha: str) -> None:
    """Store the metadata of commit `sha` (already in the local cache) unless it is stored already."""
    key = keys.revision(sha)
    if svc.redis.exists(key):
        return
    try:
        commit = svc.repos.open(repo_url)[sha]
    except (KeyError, ValueError, pygit2.GitError, WaveCDError) as exc:
        log.debug("no metadata for %s: %s", sha, exc)
        return
    if not isinstance(commit, pygit2.Commit):
        return
    author = commit.author
    meta = RevisionMetadata(author=f"{author.name} <{author.email}>",
                            date=datetime.fromtimestamp(author.time, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                            message=commit.message.strip()[:_MAX_MESSAGE])
    svc.redis.set(key, meta.model_dump_json(), ex=_TTL_SECONDS)


def read_revisions(client: redis.Redis, shas: list[str]) -> dict[str, RevisionMetadata]:
    """The recorded metadata of each sha that has some."""
    wanted = sorted({s for s in shas if s})
    found: dict[str, RevisionMetadata] = {}
    if not wanted:
        return found
    for sha, raw in zip(wanted, client.mget([keys.revision(s) for s in wanted]), strict=True):
        if raw is None:
            continue
        try:
            found[sha] = RevisionMetadata.model_validate_json(raw)
        except ValidationError:
            log.debug("unreadable revision metadata for %s", sha)
    return found


def record_webhook_push(client: redis.Redis, sha: str | None) -> None:
    """Note that a webhook announced commit `sha` (a hint from the payload; None records nothing)."""
    if sha:
        client.set(keys.webhook_push(sha), "1", ex=_TTL_SECONDS)


def announced_by_webhook(client: redis.Redis, shas: list[str]) -> set[str]:
    """The shas among `shas` that a webhook announced."""
    wanted = sorted({s for s in shas if s})
    if not wanted:
        return set()
    return {sha for sha, raw in zip(wanted, client.mget([keys.webhook_push(s) for s in wanted]), strict=True) if raw}
