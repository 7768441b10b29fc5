"""Argo CD's comparison rules, one YAML case per file under tests/testdata/diff/.

Each case gives desired and live (either may be null), optional ignoreDifferences rules and manager,
and the expected status, requiresPruning and lines the masked unified diff must (not) contain.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from shared.core.models import ResourceIgnoreDifferences
from shared.diff.compare import OUT_OF_SYNC, SYNCED, compare

CASES_DIR = Path(__file__).resolve().parent.parent / "testdata" / "diff"
CASES = sorted(CASES_DIR.glob("*.yaml"))


def _load(path: Path) -> dict[str, Any]:
    case = yaml.safe_load(path.read_text())
    assert case.get("description"), f"{path.name}: every case says what it checks"
    assert case["expected"]["status"] in (SYNCED, OUT_OF_SYNC), path.name
    return case


def test_cases_exist() -> None:
    assert len(CASES) >= 40


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_case(path: Path) -> None:
    case = _load(path)
    desired, live = case.get("desired"), case.get("live")
    before = copy.deepcopy((desired, live))
    rules = [ResourceIgnoreDifferences.model_validate(r) for r in case.get("ignoreDifferences") or []]
    result = compare(desired, live, ignore=rules, manager=case.get("manager", "wavecd"))
    expected = case["expected"]

    text = result.diff_text()
    assert result.status == expected["status"], f"{case['description']}\n{text}"
    assert (desired, live) == before, "compare() must not modify its inputs"
    if "requiresPruning" in expected:
        assert result.requires_pruning is expected["requiresPruning"]
    if result.status == SYNCED:
        assert text == ""
        assert result.normalized_desired is not None and result.normalized_live is not None
    else:
        assert text.startswith("--- live\n+++ desired\n"), text
    if expected.get("diffEmpty"):
        assert text == ""
    for line in expected.get("diffContains", []):
        assert line in text.splitlines() or (line.startswith("\n") and line in text), \
            f"missing line {line!r} in diff:\n{text}"
    for fragment in expected.get("diffNotContains", []):
        assert fragment not in text, f"unexpected {fragment!r} in diff:\n{text}"
