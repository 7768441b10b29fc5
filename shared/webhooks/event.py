"""The one shape every provider's push payload is reduced to, and the one error type of the webhook path.

Six git hosts describe a push six ways. Matching apps, the CLI and the HTTP receiver should not care which
host spoke, so each provider module turns its payload into a `PushEvent`, and every refusal (bad JSON, bad
signature, oversized body) is a `WebhookError` carrying the HTTP status a receiver should answer with.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

BRANCH_PREFIX = "refs/heads/"
TAG_PREFIX = "refs/tags/"


class WebhookError(Exception):
    """A request the receiver refuses: `status_code` is the HTTP answer, `message` is safe to show.

    Messages never quote secrets, signatures or payload bodies, only what was wrong with them.
    """

    def __init__(self, status_code: int, message: str) -> None:
        self.status_code = status_code
        self.message = message
        super().__init__(f"{status_code}: {message}")


@dataclass
class PushEvent:
    """A push, as far as WaveCD cares: which repository, which ref moved, and which files changed.

    * `repo_urls`: every URL the payload gives for the repository (web and clone forms); matching
      normalizes them, so an app may name the repository in any of these forms.
    * `ref` / `branch` / `tag`: the (first) pushed ref, in full and split into its branch or tag name.
    * `more_refs`: further full refs moved by the same push (Bitbucket and Azure DevOps send several
      ref changes in one event; Argo CD looks at the first one only).
    * `revision`: the new commit sha of `ref`, a hint only (the refresh resolves the head itself); None when
      the ref was deleted.
    * `default_branch`: the repository's default branch when the payload says it, else None (then an app
      tracking `HEAD` is refreshed by any branch push, as Argo CD does for Bitbucket).
    * `changed_files`: repository-relative paths added, modified or removed by the pushed commits; None
      when the payload does not list them completely (then every app on the ref is refreshed).
    """

    provider: str
    repo_urls: list[str]
    ref: str | None
    revision: str | None
    branch: str | None
    tag: str | None
    default_branch: str | None
    changed_files: list[str] | None
    event: str
    more_refs: list[str] = field(default_factory=list)

    @property
    def refs(self) -> list[str]:
        """Every full ref this push moved, the primary one first."""
        return ([self.ref] if self.ref else []) + [r for r in self.more_refs if r != self.ref]


def split_ref(ref: str) -> tuple[str | None, str | None]:
    """`refs/heads/x` -> (branch x, None); `refs/tags/v1` -> (None, tag v1); anything else -> (None, None)."""
    if ref.startswith(BRANCH_PREFIX):
        return ref[len(BRANCH_PREFIX):] or None, None
    if ref.startswith(TAG_PREFIX):
        return None, ref[len(TAG_PREFIX):] or None
    return None, None


def branch_name(ref: str | None) -> str | None:
    """A default-branch field as the providers write it (`main` or `refs/heads/main`) -> `main`."""
    if not ref:
        return None
    return ref[len(BRANCH_PREFIX):] if ref.startswith(BRANCH_PREFIX) else ref


def is_null_sha(sha: str | None) -> bool:
    """Providers write an all-zero sha for the missing side of a created or deleted ref."""
    return not sha or set(sha) == {"0"}


def commit_or_none(sha: str | None) -> str | None:
    return None if is_null_sha(sha) else sha


def unique(items: Iterable[str]) -> list[str]:
    """Distinct non-empty strings, first occurrence first."""
    seen: dict[str, None] = {}
    for item in items:
        if item and item not in seen:
            seen[item] = None
    return list(seen)


def push_event(
    *,
    provider: str,
    event: str,
    repo_urls: Iterable[str | None],
    refs: list[str],
    revision: str | None,
    default_branch: str | None,
    changed_files: list[str] | None,
) -> PushEvent:
    """Build a PushEvent from a provider's refs (primary first); refuses a payload naming no repository."""
    urls = unique(u.strip() for u in repo_urls if isinstance(u, str))
    if not urls:
        raise WebhookError(400, f"{provider} {event} payload names no repository URL")
    ref = refs[0] if refs else None
    branch, tag = split_ref(ref) if ref else (None, None)
    return PushEvent(
        provider=provider,
        repo_urls=urls,
        ref=ref,
        revision=commit_or_none(revision),
        branch=branch,
        tag=tag,
        default_branch=branch_name(default_branch),
        changed_files=changed_files,
        event=event,
        more_refs=unique(refs[1:]),
    )
