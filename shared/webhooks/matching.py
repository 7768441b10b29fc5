"""Which Applications a push refreshes, and for every other app the reason it was left alone.

The rules are Argo CD's (util/webhook and its manifest-generate-paths annotation), with two deliberate
refinements for monorepos, where Argo CD's webhook refreshes far too much:

* An app is a candidate when one of its sources names the pushed repository (URLs compared in normalized
  form) and that source's `targetRevision` moved:
  - `HEAD` (or empty) moves with a push to the default branch; when the payload does not name the
    default branch (Bitbucket Cloud and Server), with a push to any branch, as Argo CD does;
  - `refs/heads/x` with a push to branch x, `refs/tags/x` with a push to tag x (Argo CD conflates
    branches and tags of the same name; WaveCD does not), a bare `x` with either;
  - a version constraint (`1.2.*`, `>=1.0 <2.0`, `^1.2`) with any tag push (we over-refresh rather than
    re-implement constraint semantics; the refresh resolves the tag itself);
  - a full commit sha never moves.
* Its files must be touched: when the payload lists changed files, at least one must lie under the app's
  source path or under a path of its `argocd.argoproj.io/manifest-generate-paths` annotation (`;`-separated,
  relative to the source path, or from the repository root when starting with `/`; `.` is the source path
  itself; glob patterns allowed). Argo CD checks files only for apps carrying the annotation; WaveCD checks
  the source path always (refinement two), so a monorepo push touching one app's path refreshes that app
  only. When the payload does not list the files, every candidate is refreshed.

Paths cannot see everything: a kustomization may build `../../base`, which no path of the overlay's app
names. So a candidate whose files were not touched is not dropped but put in `watch`: the receiver still
fetches its repository, and the fetch's detection (`shared.pipeline.source_watch`, by git tree id and render
fingerprint) decides whether its desired state changed. The matched apps reach that fetch as urgent.
"""

from __future__ import annotations

import functools
import posixpath
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from shared.core.globs import glob_match
from shared.core.models import Application, ApplicationSource
from shared.core.repo_url import normalize_repo_url, redact_url
from shared.webhooks.event import BRANCH_PREFIX, TAG_PREFIX, PushEvent, split_ref

MANIFEST_GENERATE_PATHS_ANNOTATION = "argocd.argoproj.io/manifest-generate-paths"
_COMMIT_SHA = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
_CONSTRAINT_CHARS = set("*^~<>=|")
_GLOB_CHARS = set("*?[")


@dataclass
class MatchResult:
    """`refresh`: names of the apps to refresh; `skipped`: every other app's name -> why it was skipped;
    `watch`: the skipped apps whose revision moved but whose paths the push did not touch (their repository
    is fetched anyway, and the fetch's detection decides: a kustomize base outside the app's path)."""

    refresh: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    watch: list[str] = field(default_factory=list)


def _sources(app: Application) -> list[ApplicationSource]:
    if app.spec.sources:
        return list(app.spec.sources)
    return [app.spec.source] if app.spec.source is not None else []


def _describe_push(branches: set[str], tags: set[str]) -> str:
    parts = [f"branch {b}" for b in sorted(branches)] + [f"tag {t}" for t in sorted(tags)]
    return ", ".join(parts) or "no branch or tag"


def revision_skip_reason(target_revision: str, event: PushEvent) -> str | None:
    """None when a source tracking `target_revision` moved with this push, else why it did not."""
    target = target_revision.strip()
    branches: set[str] = set()
    tags: set[str] = set()
    for ref in event.refs:
        branch, tag = split_ref(ref)
        if branch:
            branches.add(branch)
        if tag:
            tags.add(tag)
    pushed = _describe_push(branches, tags)
    if _COMMIT_SHA.fullmatch(target.lower()):
        return f"targetRevision {target[:12]} is a commit sha, which no push moves"
    if target in ("", "HEAD"):
        if not branches:
            return f"tracks HEAD, and the push moved no branch ({pushed})"
        if event.default_branch is None or event.default_branch in branches:
            return None
        return f"tracks HEAD (default branch {event.default_branch}); the push moved {pushed}"
    moved_elsewhere = f"tracks {target}; the push moved {pushed}"
    if target.startswith(BRANCH_PREFIX):
        return None if target[len(BRANCH_PREFIX):] in branches else moved_elsewhere
    if target.startswith(TAG_PREFIX):
        return None if target[len(TAG_PREFIX):] in tags else moved_elsewhere
    if target in branches or target in tags:
        return None
    if tags and _CONSTRAINT_CHARS & set(target):
        return None
    return moved_elsewhere


@functools.lru_cache(maxsize=16384)
def _clean(path: str) -> str | None:
    """A repository-relative path in normal form (`.` is the root); None when it leaves the repository.
    Memoized: a webhook cleans every app's paths, which rarely change."""
    cleaned = posixpath.normpath(path.strip().lstrip("/") or ".")
    if cleaned == ".." or cleaned.startswith("../"):
        return None
    return cleaned


def refresh_paths(app: Application, sources: Iterable[ApplicationSource]) -> list[str]:
    """The paths whose change refreshes `app`: each source's path plus the annotation's paths."""
    source_paths = [p for p in (_clean(s.path) for s in sources) if p is not None]
    paths = list(source_paths)
    annotation = app.annotations.get(MANIFEST_GENERATE_PATHS_ANNOTATION, "")
    for item in annotation.split(";"):
        item = item.strip()
        if not item:
            continue
        if item.startswith("/"):
            paths.append(_clean(item) or "")
        else:
            paths.extend(_clean(posixpath.join(base, item)) or "" for base in source_paths)
    return list(dict.fromkeys(p for p in paths if p))


def file_touches(changed_file: str, path: str) -> bool:
    """Whether a changed file lies at or under `path` (a directory, a file, or a glob pattern)."""
    name = _clean(changed_file)
    if name is None:
        return False
    if path == ".":
        return True
    if _GLOB_CHARS & set(path):
        pattern, parts = path.split("/"), name.split("/")
        if len(parts) < len(pattern):
            return False
        return all(glob_match(glob, part) for part, glob in zip(parts, pattern, strict=False))
    return name == path or name.startswith(path + "/")


def _files_skip_reason(app: Application, sources: list[ApplicationSource], files: list[str]) -> str | None:
    paths = refresh_paths(app, sources)
    if any(file_touches(f, p) for f in files for p in paths):
        return None
    shown = ", ".join(paths[:5]) + (f" (+{len(paths) - 5} more)" if len(paths) > 5 else "")
    return f"none of the {len(files)} changed files is under {shown or 'any valid path'}"


def match_apps(event: PushEvent, apps: Iterable[Application]) -> MatchResult:
    """Split `apps` into those this push refreshes and those it leaves alone (with the reason)."""
    repo_keys = {normalize_repo_url(url) for url in event.repo_urls}
    shown_repo = redact_url(event.repo_urls[0]) if event.repo_urls else "?"
    result = MatchResult()
    for app in apps:
        sources = _sources(app)
        on_repo = [s for s in sources if normalize_repo_url(s.repo_url) in repo_keys]
        if not on_repo:
            result.skipped[app.name] = f"no source on the pushed repository {shown_repo}"
            continue
        moved = []
        reasons = []
        for source in on_repo:
            reason = revision_skip_reason(source.target_revision, event)
            if reason is None:
                moved.append(source)
            else:
                reasons.append(reason)
        if not moved:
            result.skipped[app.name] = "; ".join(dict.fromkeys(reasons))
            continue
        if event.changed_files is not None:
            reason = _files_skip_reason(app, moved, event.changed_files)
            if reason is not None:
                result.skipped[app.name] = reason
                result.watch.append(app.name)
                continue
        result.refresh.append(app.name)
    return result
