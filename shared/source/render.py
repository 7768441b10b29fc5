"""Render an app's desired manifests at a commit, once per content, and tell when a push changed them.

The pipeline's question after a push is "which apps did this touch?". Git answers it for free: the tree id
of a directory changes exactly when something under it changes. `path_tree_ids` and `source_fingerprint`
(that id plus how the app renders) are what the fetch step's detection
(`shared.pipeline.source_watch.fetch_and_detect`, the one answer) compares: equal fingerprints (and an
unchanged app spec) mean an unchanged desired state, so nothing is rendered again.

Kustomize apps are the exception: a kustomization may reference `../base` or any other directory of the
repository, so the app path's tree id alone would miss changes. For them the fingerprint uses the root
tree id (any change to the repository re-renders them): always correct, and the render cache below keeps
the cost to one kustomize run per commit and path, whatever the number of apps and workers.

Rendered manifests are cached in Redis as zlib-compressed JSON with a TTL, keyed by repository, content
id and directory options, so many apps on one path and many workers render once. The cache is advisory:
a miss, or Redis being unreachable, just renders again.

Secret values never go to Redis: a rendered core Secret is cached without its `data` and `stringData`,
which stay in this process's memory (a small LRU keyed like the Redis entry, so by content). A hit whose
Secret values this process does not hold (another worker rendered it, or they were evicted) renders again
and keeps them: at most one extra render per process and content, and only for renders holding Secrets;
the stripped objects are never returned.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
import posixpath
import tempfile
import threading
import zlib
from collections import Counter, OrderedDict
from pathlib import Path
from typing import Any

import pygit2
import redis

from shared.core.errors import StallingError
from shared.core.repo_url import normalize_repo_url
from shared.source import kustomize
from shared.source.git_source import RepoCache
from shared.source.manifests import (
    DirectoryOptions,
    GitTreeSource,
    ManifestLimits,
    RenderedManifests,
    clean_app_path,
    collect_manifests,
    finish_rendered,
    kustomization_in,
)

log = logging.getLogger(__name__)

CACHE_TTL_SECONDS = 24 * 3600
CACHE_PREFIX = "wavecd:render:v2"  # v2: Secret values are no longer in the cached payload
SECRET_VALUE_FIELDS = ("data", "stringData")
LOCAL_SECRETS_MAX = 512  # renders whose Secret values one process keeps

# Process-wide counters, for tests and the benchmark: renders made, cache hits, cache misses, and hits
# rendered again because this process did not hold their Secret values.
stats: Counter[str] = Counter()

_local_secrets: OrderedDict[str, dict[int, dict[str, Any]]] = OrderedDict()
_local_lock = threading.Lock()


def _is_secret(obj: Any) -> bool:  # noqa: ANN401 - a parsed document
    return isinstance(obj, dict) and obj.get("kind") == "Secret" and obj.get("apiVersion") == "v1"


def split_secret_values(objects: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[int, dict[str, Any]]]:
    """The objects as Redis may hold them (each core Secret without `data`/`stringData`), and those values
    by the Secret's index in `objects`."""
    kept: list[dict[str, Any]] = []
    values: dict[int, dict[str, Any]] = {}
    for index, obj in enumerate(objects):
        if _is_secret(obj) and any(f in obj for f in SECRET_VALUE_FIELDS):
            values[index] = {f: obj[f] for f in SECRET_VALUE_FIELDS if f in obj}
            obj = {k: v for k, v in obj.items() if k not in SECRET_VALUE_FIELDS}
        kept.append(obj)
    return kept, values


def _remember_secrets(key: str, values: dict[int, dict[str, Any]]) -> None:
    with _local_lock:
        _local_secrets[key] = copy.deepcopy(values)
        _local_secrets.move_to_end(key)
        while len(_local_secrets) > LOCAL_SECRETS_MAX:
            _local_secrets.popitem(last=False)


def _restore_secrets(key: str, objects: list[dict[str, Any]], indices: list[int]) -> bool:
    """Put this process's Secret values back into a cached render; False when it does not hold them all."""
    with _local_lock:
        values = _local_secrets.get(key)
        if values is None or set(values) != set(indices) or max(indices) >= len(objects):
            return False
        _local_secrets.move_to_end(key)
        values = copy.deepcopy(values)
    for index, fields in values.items():
        if not _is_secret(objects[index]):
            return False
        objects[index].update(fields)
    return True


def forget_local_secrets() -> None:
    """Drop the Secret values this process holds (tests: a fresh worker)."""
    with _local_lock:
        _local_secrets.clear()


def _app_source(cache: RepoCache, url: str, commit: str, path: str,
                options: DirectoryOptions) -> tuple[GitTreeSource, str, str, str]:
    """(source, clean path, renderer, content tree id) for an app at a commit."""
    repo, root = cache.commit_tree(url, commit)
    clean = clean_app_path(path)
    source = GitTreeSource(repo, root)
    kind = source.kind(clean)
    if kind != "dir":
        problem = "does not exist" if kind is None else "is not a directory"
        raise StallingError(f"app path {clean!r} {problem} at commit {commit[:12]}")
    if options.is_default and kustomization_in(source, clean) is not None:
        return source, clean, "kustomize", str(root.id)
    tree_id = str(root.id) if clean == "." else str(root[clean].id)
    return source, clean, "directory", tree_id


def path_tree_ids(cache: RepoCache, url: str, commit: str, paths: list[str]) -> dict[str, str | None]:
    """The git tree id of each app path at `commit` (None where the path is missing): a cheap first look.

    Equal path tree ids mean equal files under the path; only a kustomization can depend on more
    (`../base`), which `source_fingerprint` accounts for.
    """
    repo, root = cache.commit_tree(url, commit)
    # Each directory's entries are read once, so 500 apps under `apps/` cost one read of `apps/`.
    listings: dict[str, dict[str, tuple[str, bool]]] = {}

    def entries(prefix: str, tree_id: str) -> dict[str, tuple[str, bool]]:
        if prefix not in listings:
            tree = repo[tree_id]
            listings[prefix] = {e.name: (str(e.id), e.type_str == "tree") for e in tree}  # type: ignore[union-attr]
        return listings[prefix]

    result: dict[str, str | None] = {}
    for path in paths:
        try:
            clean = clean_app_path(path)
        except StallingError:
            result[path] = None
            continue
        if clean == ".":
            result[path] = str(root.id)
            continue
        tree_id, prefix, found = str(root.id), "", True
        for part in clean.split("/"):
            entry = entries(prefix, tree_id).get(part)
            if entry is None or not entry[1]:
                found = False
                break
            tree_id, prefix = entry[0], f"{prefix}/{part}"
        result[path] = tree_id if found else None
    return result


def source_fingerprint(cache: RepoCache, url: str, commit: str, path: str, options: DirectoryOptions) -> str:
    """What the app's desired state depends on at `commit`: equal fingerprints, equal manifests."""
    _, clean, renderer, tree_id = _app_source(cache, url, commit, path, options)
    where = f":{clean}" if renderer == "kustomize" else ""
    return f"{renderer}:{tree_id}{where}:{options.cache_key()}"


def _cache_key(url: str, renderer: str, tree_id: str, clean: str, options: DirectoryOptions,
               limits: ManifestLimits) -> str:
    repo = hashlib.sha256(normalize_repo_url(url).encode()).hexdigest()[:16]
    spec = f"{renderer}|{clean if renderer == 'kustomize' else ''}|{options.cache_key()}|{limits.cache_key()}"
    return f"{CACHE_PREFIX}:{repo}:{tree_id}:{hashlib.sha256(spec.encode()).hexdigest()[:16]}"


def _cache_get(client: redis.Redis | None, key: str) -> dict[str, Any] | None:
    if client is None:
        return None
    try:
        blob = client.get(key)
        if blob is None:
            return None
        return json.loads(zlib.decompress(blob))  # type: ignore[arg-type]
    except (redis.RedisError, zlib.error, ValueError) as exc:
        log.warning("render cache read failed (%s); rendering again", type(exc).__name__)
        return None


def _cache_put(client: redis.Redis | None, key: str, payload: dict[str, Any]) -> None:
    if client is None:
        return
    try:
        client.set(key, zlib.compress(json.dumps(payload, separators=(",", ":")).encode(), 6),
                   ex=CACHE_TTL_SECONDS)
    except redis.RedisError as exc:
        log.warning("render cache write failed (%s)", type(exc).__name__)


def render_app(cache: RepoCache, redis_client: redis.Redis | None, url: str, commit: str, path: str,
               options: DirectoryOptions, *, limits: ManifestLimits | None = None,
               kustomize_timeout: float = kustomize.DEFAULT_TIMEOUT, refresh: bool = False) -> RenderedManifests:
    """The app's objects at `commit` (fetched already), from the Redis cache when another render made them.

    Raises StallingError for broken content (naming the file), ConfigurationError when the commit is not
    in the cache or no kustomize is installed.
    """
    limits = limits or ManifestLimits.from_settings()
    source, clean, renderer, tree_id = _app_source(cache, url, commit, path, options)
    key = _cache_key(url, renderer, tree_id, clean, options, limits)
    cached = None if refresh else _cache_get(redis_client, key)  # a hard refresh renders again
    if cached is not None:
        objects, secret_indices = cached["objects"], list(cached.get("secretObjects") or [])
        if not secret_indices or _restore_secrets(key, objects, secret_indices):
            stats["cache_hits"] += 1
            return RenderedManifests(objects, tree_id, [_join(clean, s) for s in cached["sources"]], renderer)
        stats["secret_rerenders"] += 1  # the values are in git, not in Redis: render to get them
    stats["cache_misses"] += 1
    if renderer == "kustomize":
        rendered = _render_kustomize(source, clean, tree_id, limits, kustomize_timeout)
    else:
        rendered = collect_manifests(source, clean, options, limits, tree_id)
    stats["renders"] += 1
    try:
        shareable, secret_values = split_secret_values(rendered.objects)
        if secret_values:
            _remember_secrets(key, secret_values)
        payload = {"objects": shareable, "sources": [_relative(clean, s) for s in rendered.sources],
                   "secretObjects": sorted(secret_values)}
        _cache_put(redis_client, key, payload)
    except (TypeError, ValueError) as exc:
        raise StallingError(f"manifests hold a value that is not JSON ({exc})", path=clean) from None
    return rendered


def _join(base: str, rel: str) -> str:
    return rel if base == "." or rel == base else f"{base}/{rel}"


def _relative(base: str, path: str) -> str:
    if base == "." or path == base:
        return path
    return path[len(base) + 1:] if path.startswith(base + "/") else posixpath.relpath(path, base)


def _render_kustomize(source: GitTreeSource, clean: str, tree_id: str, limits: ManifestLimits,
                      timeout: float) -> RenderedManifests:
    """Export the commit's tree to a temporary directory (kustomize needs files) and build the app path."""
    with tempfile.TemporaryDirectory(prefix="wavecd-kustomize-") as tmp:
        root = Path(tmp)
        export_tree(source.repo, source.tree, root)
        text = kustomize.build(root / clean if clean != "." else root, timeout=timeout, shown_path=clean)
    return finish_rendered(text, clean, tree_id, limits)


def export_tree(repo: pygit2.Repository, tree: pygit2.Tree, target: Path, prefix: str = "") -> None:
    """Write `tree` under `target`. Symlinks are recreated only when they stay inside the repository."""
    for entry in tree:
        name = entry.name or ""
        rel = f"{prefix}{name}"
        dest = target / name
        mode = entry.filemode
        if mode == pygit2.enums.FileMode.TREE:
            dest.mkdir()
            export_tree(repo, repo[entry.id], dest, f"{rel}/")  # type: ignore[arg-type]
        elif mode == pygit2.enums.FileMode.LINK:
            link = bytes(repo[entry.id].data).decode("utf-8", "replace")
            resolved = posixpath.normpath(posixpath.join(posixpath.dirname(rel), link))
            if link.startswith("/") or resolved == ".." or resolved.startswith("../"):
                raise StallingError("symlink points outside the repository", path=rel)
            os.symlink(link, dest)
        elif mode in (pygit2.enums.FileMode.BLOB, pygit2.enums.FileMode.BLOB_EXECUTABLE):
            dest.write_bytes(bytes(repo[entry.id].data))
