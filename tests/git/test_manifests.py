"""Manifest loading rules (Argo CD's directory source), one testdata file per case.

Each case in tests/testdata/manifests/cases is committed to a real git repository and rendered from the
object database; the same case is loaded again from a checkout on disk, so both readers obey the rules.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from shared.core.errors import WaveCDError
from shared.core.resources import ResourceKey
from shared.source.git_source import RepoCache
from shared.source.manifests import (
    DirectoryOptions,
    ManifestLimits,
    glob_match,
    load_manifests_from_dir,
    parse_manifest_text,
)
from shared.source.render import render_app

TESTDATA = Path(__file__).parent.parent / "testdata" / "manifests"
CASES = sorted((TESTDATA / "cases").glob("*.yaml"))
GLOBS = sorted((TESTDATA / "globs").glob("*.yaml"))


def _case(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


def _files(case: dict[str, Any]) -> dict[str, str | bytes]:
    files: dict[str, str | bytes] = dict(case.get("files") or {})
    for name, hexdata in (case.get("files_hex") or {}).items():
        files[name] = bytes.fromhex(hexdata)
    return files


def _ident(obj: dict[str, Any]) -> str:
    key = ResourceKey.from_object(obj)
    group = f"{key.group}/" if key.group else ""
    namespace = f"{key.namespace}/" if key.namespace else ""
    return f"{group}{key.kind}/{namespace}{key.name}"


def _check(case: dict[str, Any], run: Any) -> None:  # noqa: ANN401
    expect = case["expect"]
    if "error" in expect:
        with pytest.raises(WaveCDError) as info:
            run()
        err = info.value
        assert expect["error"] in {cls.__name__ for cls in type(err).__mro__}  # the class or a base of it
        contains = expect.get("contains", [])
        for text in [contains] if isinstance(contains, str) else contains:
            assert text in str(err)
        if "path" in expect:
            assert err.path == expect["path"]
        if "line" in expect:
            assert err.line == expect["line"]
        return
    rendered = run()
    assert [_ident(o) for o in rendered.objects] == expect["objects"]
    assert len(rendered.sources) == len(rendered.objects)
    by_id = {_ident(o): o for o in rendered.objects}
    for ident, values in (expect.get("values") or {}).items():
        for field, value in values.items():
            assert by_id[ident][field] == value


def _options(case: dict[str, Any]) -> DirectoryOptions:
    return DirectoryOptions(**(case.get("options") or {}))


def _limits(case: dict[str, Any]) -> ManifestLimits:
    return ManifestLimits(**(case.get("limits") or {}))


@pytest.mark.parametrize("case_file", CASES, ids=[p.stem for p in CASES])
def test_case_from_git(case_file: Path, git_factory, tmp_path: Path) -> None:
    case = _case(case_file)
    handle = git_factory.create("repo", _files(case))
    for link, target in (case.get("symlinks") or {}).items():
        handle.symlink(link, target)
    cache = RepoCache(tmp_path / "cache")
    cache.fetch(handle.url)
    commit = cache.resolve(handle.url, "main")
    _check(case, lambda: render_app(cache, None, handle.url, commit, case["path"], _options(case),
                                    limits=_limits(case)))


@pytest.mark.parametrize("case_file", CASES, ids=[p.stem for p in CASES])
def test_case_from_disk(case_file: Path, tmp_path: Path) -> None:
    case = _case(case_file)
    path = str(case["path"])
    if path.startswith("/") or ".." in path.split("/"):
        pytest.skip("app path validation happens on the git path only; a disk path is the user's choice")
    root = tmp_path / "checkout"
    for name, content in _files(case).items():
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content.encode() if isinstance(content, str) else content)
    for link, target in (case.get("symlinks") or {}).items():
        (root / link).parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, root / link)
    app_dir = root / path
    if not app_dir.is_dir():
        with pytest.raises(WaveCDError, match="is not a directory"):
            load_manifests_from_dir(app_dir, _options(case))
        return
    expect = dict(case["expect"])
    if "path" in expect:  # on disk, files are named relative to the app directory
        expect["path"] = os.path.relpath(expect["path"], path)
    if expect.get("contains") == "outside the repository":  # on disk the app directory is the root
        expect["contains"] = "outside the app path"
    if "contains" in expect and not isinstance(expect["contains"], str):
        expect["contains"] = [os.path.relpath(t, path) if t.startswith(f"{path}/") else t
                              for t in expect["contains"]]
    _check({**case, "expect": expect},
           lambda: load_manifests_from_dir(app_dir, _options(case), _limits(case)))


@pytest.mark.parametrize("glob_file", GLOBS, ids=[p.stem for p in GLOBS])
def test_directory_glob(glob_file: Path) -> None:
    case = _case(glob_file)
    assert glob_match(case["pattern"], case["path"]) is case["match"]


def test_alias_bomb_fails_fast_with_bounded_memory() -> None:
    import time
    import tracemalloc

    levels = "".join(f"{chr(98 + i)}: &{chr(98 + i)} [{','.join('*' + chr(97 + i) for _ in range(9))}]\n"
                     for i in range(12))
    text = "a: &a [lol,lol,lol,lol,lol,lol,lol,lol,lol]\n" + levels
    tracemalloc.start()
    started = time.perf_counter()
    with pytest.raises(WaveCDError, match="alias bomb"):
        parse_manifest_text(text, "bomb.yaml")
    elapsed = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 5 * 1024 * 1024
    assert elapsed < 5.0  # generous: a naive expansion would never finish


def test_directory_options_cache_key_distinguishes_options() -> None:
    keys = {DirectoryOptions().cache_key(), DirectoryOptions(recurse=True).cache_key(),
            DirectoryOptions(include="*.yaml").cache_key(), DirectoryOptions(exclude="*.yaml").cache_key()}
    assert len(keys) == 4
