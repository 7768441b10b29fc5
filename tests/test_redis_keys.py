"""One owner for every Redis key: `shared.state.keys` spells them, nobody else does.

The registry names each key family once; these tests prove that no module of the product (or a bench
script) writes a `wavecd:` key literal of its own, and that the families do not collide.
"""

from __future__ import annotations

import ast
import inspect
from collections.abc import Callable
from pathlib import Path

from shared.source import render
from shared.state import keys

ROOT = Path(__file__).resolve().parents[1]
SPELLED_BY_THE_REGISTRY = ROOT / "shared" / "state" / "keys.py"
# The render cache's key is built below the state layer, which it may not import (see shared.state.keys).
BELOW_THE_REGISTRY = {ROOT / "shared" / "source" / "render.py": render.CACHE_PREFIX}


def _key_literals(path: Path) -> list[tuple[int, str]]:
    """String constants and f-strings of a module that start like a WaveCD key."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.JoinedStr) and node.values and isinstance(node.values[0], ast.Constant):
            first = node.values[0].value
            if isinstance(first, str) and first.startswith(keys.PREFIX):
                found.append((node.lineno, ast.unparse(node)))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.startswith(keys.PREFIX):
            found.append((node.lineno, node.value))
    return found


def test_no_module_spells_a_key_of_its_own():
    spelled = {}
    for package in ("shared", "workers", "scheduler", "bench"):
        for path in sorted((ROOT / package).rglob("*.py")):
            if path == SPELLED_BY_THE_REGISTRY:
                continue
            literals = [(line, text) for line, text in _key_literals(path) if text != BELOW_THE_REGISTRY.get(path)]
            if literals:
                spelled[str(path.relative_to(ROOT))] = literals
    assert spelled == {}, "key literals outside shared/state/keys.py (use the registry): " + repr(spelled)


def test_the_registry_names_the_render_cache_as_render_builds_it():
    assert keys.RENDER_CACHE == render.CACHE_PREFIX


# Families deliberately inside another: a project's stash and a stash's result among the stashes (their
# tokens are hex, so never 'project' nor with a colon), and the sync counter among the metrics' hashes.
NESTED = {("app_stash", "project_stash"), ("app_stash", "stash_result"), ("metric", "SYNC_COUNTED")}


def _families() -> dict[str, Callable[..., str]]:
    return {name: fn for name, fn in vars(keys).items()
            if inspect.isfunction(fn) and fn.__module__ == keys.__name__ and not name.startswith("_")}


def test_every_family_has_its_own_keys():
    families = _families()
    assert len(families) >= 20
    samples: dict[str, str] = {}
    for name, fn in families.items():
        arity = len(inspect.signature(fn).parameters)
        first = {"fetch_lock": "https://git.example.com/org/x.git", "fetch_pending": "https://git.example.com/org/x.git",
                 "stash_result": keys.app_stash("x")}.get(name, "x")
        samples[name] = fn(*[first, 1][:arity])
    constants = {name: value for name, value in vars(keys).items()
                 if name.isupper() and isinstance(value, str) and name not in ("PREFIX", "METRICS_PREFIX")}
    every = {**samples, **constants}
    assert all(key.startswith(keys.PREFIX) for key in every.values()), every
    assert len(set(every.values())) == len(every), "two key families share a key"
    # A family's keys never fall inside another's (a SCAN of one must not find the other's).
    stems = {name: key.rsplit("x", 1)[0] for name, key in samples.items() if key.endswith("x")}
    for name, stem in stems.items():
        for other, key in every.items():
            if other != name and (name, other) not in NESTED:
                assert not key.startswith(stem), (name, other)


def test_a_stash_result_sits_beside_its_stash_and_fetch_keys_ignore_url_spelling():
    stash = keys.project_stash("0123456789abcdef")
    assert keys.stash_result(stash) == stash + ":result"
    assert keys.fetch_lock("https://github.com/org/repo.git") == keys.fetch_lock("https://github.com/org/repo")
