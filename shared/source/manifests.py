"""Loading an app's plain manifests from a git tree (or a directory on disk), strictly and safely.

Argo CD's "directory" source type: `.yaml`, `.yml` and `.json` files under the app path, with
`directory.recurse`, `directory.include` and `directory.exclude` (globs matched against the path relative
to the app path, as Argo CD's repo server does with gobwas/glob: `*` also matches `/`, `{a,b}` lists
alternatives, exclude wins over include). Multi-document YAML, `...List` kinds flattened, empty documents
skipped.

Git content is hostile input. Every problem is a `StallingError` naming the file (and the line where
known) so it lands on the app's status and nothing is applied: invalid YAML/JSON, non-UTF-8, documents
without apiVersion/kind/metadata.name, duplicate objects (both files named), alias bombs, symlinks
leaving the app path, `..` or absolute app paths, files or apps over the size limits.

Files are read straight from the object database through a small `_Source` interface; the same walker
serves a directory on disk (`load_manifests_from_dir`, for `wavecd admin plan PATH`).
"""

from __future__ import annotations

import json
import os
import posixpath
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pygit2

from shared.core import safe_yaml
from shared.core.errors import StallingError
from shared.core.globs import GlobSyntaxError, compile_glob
from shared.core.resources import ResourceKey
from shared.source import kustomize

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
MAX_SYMLINK_HOPS = 8


@dataclass(frozen=True)
class DirectoryOptions:
    """`spec.source.directory` as far as loading is concerned (jsonnet is not supported)."""

    recurse: bool = False
    include: str = ""
    exclude: str = ""

    @classmethod
    def from_source(cls, directory: Any) -> DirectoryOptions:  # noqa: ANN401 - DirectorySource or None
        if directory is None:
            return cls()
        return cls(bool(directory.recurse), directory.include or "", directory.exclude or "")

    @property
    def is_default(self) -> bool:
        return not self.recurse and not self.include and not self.exclude

    def cache_key(self) -> str:
        """A short stable text for cache keys: `r0|i=...|e=...`."""
        return f"r{int(self.recurse)}|i={self.include}|e={self.exclude}"

    def selects(self, rel_path: str) -> bool:
        """Whether a manifest file at `rel_path` (relative to the app path) is loaded."""
        if self.exclude and glob_match(self.exclude, rel_path):
            return False
        return not self.include or glob_match(self.include, rel_path)


@dataclass(frozen=True)
class ManifestLimits:
    max_file_bytes: int = 5 * 1024 * 1024
    max_app_bytes: int = 50 * 1024 * 1024

    @classmethod
    def from_settings(cls) -> ManifestLimits:
        from shared.core.settings import get_settings  # noqa: PLC0415 - only when no limits are given

        settings = get_settings()
        return cls(settings.max_manifest_file_bytes, settings.max_app_manifest_bytes)

    def cache_key(self) -> str:
        return f"{self.max_file_bytes}/{self.max_app_bytes}"


@dataclass
class RenderedManifests:
    """An app's desired objects, the file each came from, and the git tree id they were rendered from."""

    objects: list[dict[str, Any]]
    tree_id: str
    sources: list[str] = field(default_factory=list)
    renderer: str = "directory"  # directory | kustomize


# --- globs (Argo CD's util/glob.Match without separators: shared.core.globs) ----------------------------

def glob_match(pattern: str, text: str) -> bool:
    """Argo CD's directory include/exclude match: `*` spans `/`, `{a,b}` alternatives, `[!x]` classes; a
    pattern that does not compile is the app's error (StallingError), not a silent mismatch."""
    try:
        return compile_glob(pattern).fullmatch(text) is not None
    except GlobSyntaxError as exc:
        raise StallingError(f"invalid glob {pattern!r}: {exc}") from None


# --- paths ----------------------------------------------------------------------------------------------

def clean_app_path(path: str) -> str:
    """The app path as a clean relative POSIX path (`.` for the root); `..` or absolute is an error."""
    text = (path or ".").strip()
    if text.startswith("/") or re.match(r"^[A-Za-z]:[\\/]", text):
        raise StallingError(f"app path {path!r} must be relative to the repository root")
    parts = [p for p in text.replace("\\", "/").split("/") if p not in ("", ".")]
    if ".." in parts:
        raise StallingError(f"app path {path!r} must not contain '..'")
    return "/".join(parts) or "."


def _join(base: str, name: str) -> str:
    return name if base in ("", ".") else f"{base}/{name}"


# --- parsing ---------------------------------------------------------------------------------------------

def _decode(data: str | bytes, source: str) -> str:
    if isinstance(data, str):
        return data
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise StallingError(f"file is not valid UTF-8 (byte {exc.start})", path=source, line=line) from None
    return text.removeprefix("\ufeff")


def _check_object(obj: Any, source: str, line: int | None) -> dict[str, Any]:  # noqa: ANN401
    if not isinstance(obj, dict):
        raise StallingError(f"a manifest must be an object, not {type(obj).__name__}", path=source, line=line)
    missing = [name for name in ("apiVersion", "kind")
               if not isinstance(obj.get(name), str) or not obj.get(name)]
    meta = obj.get("metadata")
    if not isinstance(meta, dict) or not (meta.get("name") or meta.get("generateName")):
        missing.append("metadata.name")
    if missing:
        kind = obj.get("kind") if isinstance(obj.get("kind"), str) else "object"
        raise StallingError(f"{kind} has no {', '.join(missing)}", path=source, line=line)
    return obj


def _flatten(obj: Any, source: str, line: int | None) -> Iterator[dict[str, Any]]:  # noqa: ANN401
    """Yield the object, or the items of a `...List` (kind ends with List and it has items)."""
    if isinstance(obj, dict) and isinstance(obj.get("kind"), str) and obj["kind"].endswith("List") \
            and isinstance(obj.get("items"), list):
        for item in obj["items"]:
            yield from _flatten(item, source, line)
        return
    yield _check_object(obj, source, line)


def parse_manifest_text(text: str | bytes, source: str) -> list[dict[str, Any]]:
    """The Kubernetes objects in one manifest file; `.json` sources are JSON, all others YAML.

    Raises StallingError naming `source` (and the line where known) for anything malformed.
    """
    body = _decode(text, source)
    objects: list[dict[str, Any]] = []
    if source.endswith(".json"):
        if not body.strip():
            return objects
        try:
            doc = json.loads(body)
        except json.JSONDecodeError as exc:
            raise StallingError(f"invalid JSON: {exc.msg}", path=source, line=exc.lineno) from None
        objects.extend(_flatten(doc, source, None))
        return objects
    for doc, line in safe_yaml.load_all(body, source):
        if doc is not None:
            objects.extend(_flatten(doc, source, line))
    return objects


# --- walking a tree ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Entry:
    name: str
    kind: str  # "file" | "dir" | "link" | "other"


class _Source(Protocol):
    """A read-only view of a repository tree: git objects or a directory on disk."""

    root_name: str

    def entries(self, path: str) -> list[_Entry]: ...
    def size(self, path: str) -> int: ...
    def read(self, path: str) -> bytes: ...
    def link_target(self, path: str) -> str: ...
    def kind(self, path: str) -> str | None: ...


class GitTreeSource:
    """Paths resolved inside one commit's tree, read from the object database (no checkout)."""

    root_name = "repository"

    def __init__(self, repo: pygit2.Repository, tree: pygit2.Tree) -> None:
        self.repo = repo
        self.tree = tree

    def kind(self, path: str) -> str | None:
        if path in ("", "."):
            return "dir"
        try:
            entry = self.tree[path]
        except KeyError:
            return None
        return _git_kind(entry.filemode)

    def entries(self, path: str) -> list[_Entry]:
        tree = self.tree if path in ("", ".") else self.repo[self.tree[path].id]
        return [_Entry(entry.name or "", _git_kind(entry.filemode)) for entry in tree]

    def size(self, path: str) -> int:
        return int(self.repo[self.tree[path].id].size)

    def read(self, path: str) -> bytes:
        return bytes(self.repo[self.tree[path].id].data)

    def link_target(self, path: str) -> str:
        return self.read(path).decode("utf-8", "replace")


def _git_kind(filemode: int) -> str:
    if filemode == pygit2.enums.FileMode.TREE:
        return "dir"
    if filemode == pygit2.enums.FileMode.LINK:
        return "link"
    if filemode in (pygit2.enums.FileMode.BLOB, pygit2.enums.FileMode.BLOB_EXECUTABLE):
        return "file"
    return "other"  # submodules


class DiskSource:
    """The same view over a directory on disk; symlinks are reported, never followed implicitly."""

    root_name = "app path"

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, path: str) -> Path:
        return self.root if path in ("", ".") else self.root / path

    def kind(self, path: str) -> str | None:
        try:
            mode = os.lstat(self._path(path)).st_mode
        except FileNotFoundError:
            return None
        if stat.S_ISLNK(mode):
            return "link"
        if stat.S_ISDIR(mode):
            return "dir"
        return "file" if stat.S_ISREG(mode) else "other"

    def entries(self, path: str) -> list[_Entry]:
        base = self._path(path)
        return [_Entry(name, self.kind(_join(path, name)) or "other") for name in sorted(os.listdir(base))]

    def size(self, path: str) -> int:
        return os.lstat(self._path(path)).st_size

    def read(self, path: str) -> bytes:
        return self._path(path).read_bytes()

    def link_target(self, path: str) -> str:
        return os.readlink(self._path(path))


def _resolve_link(source: _Source, link_path: str, app_path: str) -> str | None:
    """Follow a symlink inside the tree; its final target must stay under the app path.

    Returns the target's path for a file, None for a directory (never followed, as Argo CD's walk).
    """
    current = link_path
    for _ in range(MAX_SYMLINK_HOPS):
        target = source.link_target(current)
        if target.startswith("/"):
            raise StallingError(f"symlink points to an absolute path outside the {source.root_name}",
                                path=link_path)
        joined = posixpath.normpath(posixpath.join(posixpath.dirname(current), target))
        if joined == ".." or joined.startswith("../"):
            raise StallingError(f"symlink points outside the {source.root_name}", path=link_path)
        if app_path != "." and joined != app_path and not joined.startswith(app_path + "/"):
            raise StallingError(f"symlink points outside the app path {app_path!r}", path=link_path)
        kind = source.kind(joined)
        if kind == "link":
            current = joined
            continue
        if kind is None:
            raise StallingError("symlink target does not exist", path=link_path)
        return joined if kind == "file" else None
    raise StallingError(f"more than {MAX_SYMLINK_HOPS} nested symlinks", path=link_path)


def _manifest_files(source: _Source, app_path: str, options: DirectoryOptions) -> Iterator[tuple[str, str]]:
    """(display path, path to read) of every selected manifest file, in a stable order."""
    pending = [app_path]
    while pending:
        directory = pending.pop(0)
        for entry in sorted(source.entries(directory), key=lambda e: e.name):
            path = _join(directory, entry.name)
            if entry.kind == "dir":
                if options.recurse:
                    pending.append(path)
                continue
            read_path: str | None = path
            if entry.kind == "link":
                read_path = _resolve_link(source, path, app_path)
                if read_path is None:
                    continue
            elif entry.kind != "file":
                continue
            if not entry.name.endswith(MANIFEST_SUFFIXES):
                continue
            rel = path[len(app_path) + 1:] if app_path != "." else path
            if options.selects(rel):
                yield path, read_path


def collect_manifests(source: _Source, app_path: str, options: DirectoryOptions, limits: ManifestLimits,
                      tree_id: str) -> RenderedManifests:
    """Parse every selected file under `app_path` of `source`, enforcing limits and uniqueness."""
    objects: list[dict[str, Any]] = []
    sources: list[str] = []
    seen: dict[ResourceKey, str] = {}
    total = 0
    for shown, read_path in _manifest_files(source, app_path, options):
        size = source.size(read_path)
        if size > limits.max_file_bytes:
            raise StallingError(f"file is {size} bytes, over the limit of {limits.max_file_bytes} bytes",
                                path=shown)
        total += size
        if total > limits.max_app_bytes:
            raise StallingError(f"the app's manifests exceed the limit of {limits.max_app_bytes} bytes",
                                path=shown)
        for obj in parse_manifest_text(source.read(read_path), shown):
            _add_unique(obj, shown, objects, sources, seen)
    return RenderedManifests(objects, tree_id, sources)


def _add_unique(obj: dict[str, Any], source: str, objects: list[dict[str, Any]], sources: list[str],
                seen: dict[ResourceKey, str]) -> None:
    if obj["metadata"].get("name"):
        key = ResourceKey.from_object(obj)
        if key in seen:
            raise StallingError(f"duplicate object {key}: defined in {seen[key]} and in {source}",
                                path=source)
        seen[key] = source
    objects.append(obj)
    sources.append(source)


def finish_rendered(text: str, source: str, tree_id: str, limits: ManifestLimits) -> RenderedManifests:
    """Objects from a renderer's YAML output (kustomize), checked like files are."""
    if len(text.encode()) > limits.max_app_bytes:
        raise StallingError(f"rendered manifests exceed the limit of {limits.max_app_bytes} bytes",
                            path=source)
    objects: list[dict[str, Any]] = []
    sources: list[str] = []
    seen: dict[ResourceKey, str] = {}
    for obj in parse_manifest_text(text, source):
        _add_unique(obj, source, objects, sources, seen)
    return RenderedManifests(objects, tree_id, sources, renderer="kustomize")


def kustomization_in(source: _Source, app_path: str) -> str | None:
    """The kustomization file's name when the app path holds one."""
    names = {entry.name for entry in source.entries(app_path) if entry.kind in ("file", "link")}
    return next((name for name in kustomize.KUSTOMIZATION_FILES if name in names), None)


def load_manifests_from_dir(path: Path, options: DirectoryOptions,
                            limits: ManifestLimits | None = None) -> RenderedManifests:
    """The same loading rules over a directory on disk (for `wavecd admin plan PATH`).

    A kustomization in the directory is rendered with kustomize, as in git (when no directory options
    are set: explicit directory options mean the directory source type, as in Argo CD).
    """
    root = Path(path)
    if not root.is_dir():
        raise StallingError(f"{path} is not a directory")
    limits = limits or ManifestLimits.from_settings()
    source = DiskSource(root)
    if options.is_default and kustomization_in(source, ".") is not None:
        return finish_rendered(kustomize.build(root), str(root), "", limits)
    return collect_manifests(source, ".", options, limits, "")


def load_manifests_from_tree(repo: pygit2.Repository, root: pygit2.Tree, app_path: str,
                             options: DirectoryOptions, limits: ManifestLimits) -> RenderedManifests:
    """An app's directory-type manifests at `app_path` of a commit's root tree."""
    clean = clean_app_path(app_path)
    source = GitTreeSource(repo, root)
    kind = source.kind(clean)
    if kind != "dir":
        raise StallingError(f"app path {clean!r} does not exist in the repository at this revision"
                            if kind is None else f"app path {clean!r} is not a directory")
    tree_id = str(root.id) if clean == "." else str(root[clean].id)
    return collect_manifests(source, clean, options, limits, tree_id)
