"""The `fetch` step: one fetch per repository, then which of its apps a new commit really touched.

A monorepo push must not re-render five hundred apps. After fetching, each app's revision is resolved
and the git tree id of its path compared with the last one seen: an unchanged tree (and unchanged spec)
means an unchanged desired state, so only apps whose tree or spec changed, or which are due anyway,
are refreshed. Argo CD needs the manifest-generate-paths annotation for this; the tree id is enough.

This detection is WaveCD's one answer to "which apps changed?". The webhook receiver's path matches
(`shared.webhooks.matching`, with manifest-generate-paths) only say which apps to refresh first: they reach
`fetch` as `urgent`, and the receiver fetches every repository whose tracked revision moved even when no path
matched, because only the detection sees what paths cannot (a kustomize base outside an overlay's path).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from shared.core.errors import WaveCDError
from shared.core.repo_url import redact_url
from shared.pipeline.app_index import IndexedApp, apps_for_repo
from shared.pipeline.project_declarative import refresh_declarative
from shared.source.manifests import DirectoryOptions
from shared.source.render import path_tree_ids, source_fingerprint
from shared.state import keys

if TYPE_CHECKING:
    from shared.pipeline.services import Services

log = logging.getLogger(__name__)


@dataclass
class FetchOutcome:
    early: list[str] = field(default_factory=list)       # refreshed right after the fetch (a webhook's matches)
    refresh: list[str] = field(default_factory=list)
    routine: set[str] = field(default_factory=set)       # in `refresh` only because they were due
    unchanged: list[str] = field(default_factory=list)
    fetched: bool = False
    error: str | None = None


def claim_fetch(svc: Services, repo_url: str, due: list[str]) -> bool:
    """Deduplicate fetches of one repo: False (and the due apps remembered) when one is running."""
    if svc.redis.set(keys.fetch_lock(repo_url), "1", nx=True, ex=max(30, int(svc.settings.git_timeout * 2))):
        return True
    pipe = svc.redis.pipeline()
    pipe.sadd(keys.fetch_pending(repo_url), "\x00" + (",".join(due)))
    pipe.expire(keys.fetch_pending(repo_url), 600)
    pipe.execute()
    return False


def release_fetch(svc: Services, repo_url: str) -> list[str] | None:
    """Release the repo's fetch lock; the due apps of fetches that arrived meanwhile, or None."""
    pipe = svc.redis.pipeline()
    pipe.smembers(keys.fetch_pending(repo_url))
    pipe.delete(keys.fetch_pending(repo_url))
    pipe.delete(keys.fetch_lock(repo_url))
    members, _, _ = pipe.execute()
    if not members:
        return None
    due: set[str] = set()
    for raw in members:
        due.update(n for n in raw.decode().lstrip("\x00").split(",") if n)
    return sorted(due)


def fetch_and_detect(svc: Services, repo_url: str, due: list[str], urgent: Collection[str] = (),
                     on_fetched: Callable[[list[str]], None] | None = None) -> FetchOutcome:
    """Fetch, then detect which apps changed.

    The `urgent` apps (a webhook matched them by path) do not wait for the detection to walk every app of
    the repository: right after the fetch their new commit is published and `on_fetched(names)` is called
    with those it could publish, to refresh them at once. The detection then skips refreshing them again
    (they are in `outcome.early`) and still finds what paths could not show, such as a kustomize base.
    """
    outcome = FetchOutcome()
    apps = apps_for_repo(svc, repo_url)
    if not apps:
        return outcome
    try:
        refresh_declarative(svc)  # repository Secrets: this process's git credentials are current
        result = svc.repos.fetch(repo_url)
        outcome.fetched = bool(getattr(result, "fetched", True))
    except WaveCDError as exc:
        # Every app on the repo shows the error through its own refresh.
        outcome.error = f"{redact_url(repo_url)}: {exc}"
        outcome.refresh = [entry.name for entry in apps]
        return outcome
    if urgent and on_fetched is not None:
        outcome.early = _publish_heads(svc, [entry for entry in apps if entry.name in set(urgent)])
        if outcome.early:
            on_fetched(outcome.early)
    due_set = set(due)
    previous = svc.store.sources([entry.name for entry in apps])
    commits: dict[str, str | WaveCDError] = {}
    fingerprints: dict[tuple[str, str, str], str | None] = {}
    path_trees: dict[str, dict[str, str | None]] = {}
    seen_now: dict[str, dict[str, str]] = {}
    for entry, before in zip(apps, previous, strict=True):
        source = entry.app.spec.primary_source
        revision = source.target_revision
        if revision not in commits:
            try:
                commits[revision] = svc.repos.resolve(source.repo_url, revision)
            except WaveCDError as exc:
                commits[revision] = exc
        commit = commits[revision]
        if isinstance(commit, WaveCDError):
            log.info("app %s: cannot resolve %s: %s", entry.name, revision, commit)
            outcome.refresh.append(entry.name)
            continue
        options = DirectoryOptions.from_source(source.directory)
        if commit not in path_trees:
            paths = [e.app.spec.primary_source.path for e in apps]
            path_trees[commit] = path_tree_ids(svc.repos, source.repo_url, commit, paths)
        path_tree = path_trees[commit].get(source.path) or ""
        if before and path_tree and before.get("pathTree") == path_tree \
                and str(before.get("tree", "")).startswith("directory:"):
            fingerprint: str | None = str(before["tree"])  # same files, plain directory: nothing to redo
        else:
            fkey = (commit, source.path, options.cache_key())
            if fkey not in fingerprints:
                try:
                    fingerprints[fkey] = source_fingerprint(svc.repos, source.repo_url, commit, source.path,
                                                            options)
                except WaveCDError:
                    fingerprints[fkey] = None  # a missing or broken path: its refresh reports it
            fingerprint = fingerprints[fkey]
        seen = {"commit": commit, "tree": fingerprint or "", "pathTree": path_tree, "spec": entry.spec_hash}
        changed = before is None or fingerprint is None or before.get("tree") != seen["tree"] \
            or before.get("spec") != seen["spec"]
        if entry.name in outcome.early:
            seen_now[entry.name] = seen  # refreshed already, at the commit published for it
        elif changed or entry.name in due_set:
            outcome.refresh.append(entry.name)
            if not changed:
                outcome.routine.add(entry.name)
            seen_now[entry.name] = seen
        else:
            # Untouched by this push: its record (and the commit its status names) moves on at its next
            # due refresh, which comes through here too. Not rewriting 500 records keeps a push cheap.
            outcome.unchanged.append(entry.name)
            if before is not None and before.get("pathTree") != path_tree:
                seen_now[entry.name] = seen
    svc.store.set_sources(seen_now)
    return outcome


def _publish_heads(svc: Services, entries: list[IndexedApp]) -> list[str]:
    """Record the commit each app's revision names after the fetch, so that its refresh (on any host, reading
    the record instead of resolving again) compares that commit. Returns the apps it recorded."""
    records = svc.store.sources([entry.name for entry in entries])
    published: dict[str, dict[str, object]] = {}
    for entry, before in zip(entries, records, strict=True):
        source = entry.app.spec.primary_source
        try:
            commit = svc.repos.resolve(source.repo_url, source.target_revision)
        except WaveCDError:
            continue  # its refresh reports the error; the detection below treats it as usual
        record = dict(before or {})
        if record and record.get("spec") != entry.spec_hash:
            continue  # the spec moved on: the detection handles the app
        record.update(commit=commit, spec=entry.spec_hash)
        published[entry.name] = record
    svc.store.set_sources(published)
    return list(published)
