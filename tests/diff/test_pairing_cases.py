"""Desired x live pairing (`shared.diff.pairing.pair_objects`), one YAML case per file under
tests/testdata/pairing/.

Each case gives the app name, desired objects, live objects (keyed by their own key), optionally the
inventory, and the expected pairs and prune candidates (by key, live object by uid), or an error.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from shared.core.errors import StallingError
from shared.core.resources import ResourceKey
from shared.diff.pairing import Pair, pair_objects

CASES_DIR = Path(__file__).resolve().parent.parent / "testdata" / "pairing"
CASES = sorted(CASES_DIR.glob("*.yaml"))


def _uid(obj: dict[str, Any] | None) -> str | None:
    return None if obj is None else obj["metadata"]["uid"]


def _shown(pair: Pair, *, prune: bool) -> dict[str, Any]:
    shown: dict[str, Any] = {"key": str(pair.key), "live": _uid(pair.live)}
    if prune:
        shown["requiresPruning"] = pair.requires_pruning
    elif pair.foreign_owner is not None:
        shown["foreignOwner"] = pair.foreign_owner
    return shown


def test_cases_exist() -> None:
    assert len(CASES) >= 8


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_case(path: Path) -> None:
    case = yaml.safe_load(path.read_text())
    assert case.get("description"), f"{path.name}: every case says what it checks"
    desired = case["desired"]
    live = {ResourceKey.from_object(o): o for o in case["live"]}
    inventory = None if case.get("inventory") is None else [ResourceKey.from_dict(i) for i in case["inventory"]]
    before = copy.deepcopy((desired, live))
    expected = case["expected"]
    if "error" in expected:
        with pytest.raises(StallingError) as info:
            pair_objects(desired, live, app=case["app"], inventory=inventory)
        assert expected["error"] in str(info.value)
        return
    result = pair_objects(desired, live, app=case["app"], inventory=inventory)
    assert [_shown(p, prune=False) for p in result.pairs] == expected["pairs"], case["description"]
    assert [_shown(p, prune=True) for p in result.prune] == expected["prune"], case["description"]
    assert all(p.desired is d for p, d in zip(result.pairs, desired, strict=True))
    assert all(p.desired is None for p in result.prune)
    assert result.shared == [p for p in result.pairs if p.foreign_owner]
    assert (desired, live) == before, "pair_objects() must not modify its inputs"
