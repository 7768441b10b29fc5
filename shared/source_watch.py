"""The `fetch` step: one fetch per repository, then which of its apps a new commit really touched.

A monorepo push must not re-render five hundred apps. After fetching, each app's revision is resolved
and the git tree id of its path compared with the last one seen: an unchanged tree (and unchanged spec)
means an unchanged desired state, so only apps whose tree or spec changed, or which are due anyway,
are refreshed. Argo CD needs the manifest-generate-paths annotation for this; the tree id is enough.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from shared.app_index import apps_for_repo, spec_hash
from shared.errors import WaveCDError
from shared.repo_url import normalize_repo_url, redact_url

if TYPE_CHECKING:
    from shared.services import Services

log = logging.getLogger(__name__)


@dataclass
class FetchOutcome:
    refresh: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    fetched: bool = False
    error: str | None = None


def fetch_lock_key(repo_url: str) -> str:
    return f"wavecd:fetchlock:{normalize_repo_url(repo_url)}"


def fetch_pending_key(repo_url: str) -> str:
    return f"wavecd:fetchpending:{normalize_repo_url(repo_url)}"


def claim_fetch(svc: Services, repo_url: str, due: list[str]) -> bool:
    """Deduplicate fetches of one repo: False (and the due apps remembered) when one is running."""
    if svc.redis.set(fetch_lock_key(repo_url), "1", nx=True, ex=max(30, int(svc.settings.git_timeout * 2))):
        return True
    pipe = svc.redis.pipeline()
    pipe.sadd(fetch_pending_key(repo_url), "\x00" + (",".join(due)))
    pipe.expire(fetch_pending_key(repo_url), 600)
    pipe.execute()
    return False


def release_fetch(svc: Services, repo_url: str) -> list[str] | None:
    """Release the repo's fetch lock; the due apps of fetches that arrived meanwhile, or None."""
    pipe = svc.redis.pipeline()
    pipe.smembers(fetch_pending_key(repo_url))
    pipe.delete(fetch_pending_key(repo_url))
    pipe.delete(fetch_lock_key(repo_url))
    members, _, _ = pipe.execute()
    if not members:
        return None
    due: set[str] = set()
    for raw in members:
        due.update(n for n in raw.decode().lstrip("\x00").split(",") if n)
    return sorted(due)


def fetch_and_detect(svc: Services, repo_url: str, due: list[str]) -> FetchOutcome:
    outcome = FetchOutcome()
    apps = apps_for_repo(svc, repo_url)
    if not apps:
        return outcome
    try:
        result = svc.repos.fetch(repo_url)
        outcome.fetched = bool(getattr(result, "fetched", True))
    except WaveCDError as exc:
        # Every app on the repo shows the error through its own refresh.
        outcome.error = f"{redact_url(repo_url)}: {exc}"
        outcome.refresh = [name for name, _ in apps]
        return outcome
    due_set = set(due)
    for name, app in apps:
        source = app.spec.primary_source
        doc = svc.store.get_app(name) or {}
        try:
            commit = svc.repos.resolve(source.repo_url, source.target_revision)
            tree = svc.repos.path_tree_id(source.repo_url, commit, source.path)
        except WaveCDError as exc:
            log.info("app %s: cannot resolve %s: %s", name, source.target_revision, exc)
            outcome.refresh.append(name)
            continue
        seen = {"commit": commit, "tree": tree, "spec": spec_hash(doc)}
        previous = svc.store.source(name)
        svc.store.set_source(name, seen)
        desired_changed = previous is None or previous.get("tree") != tree \
            or previous.get("spec") != seen["spec"]
        if desired_changed or name in due_set:
            outcome.refresh.append(name)
        else:
            outcome.unchanged.append(name)
    return outcome
