"""Argo CD's hook rules (phases, Skip, Helm mapping, delete policies, generated names), one YAML case per
file under tests/testdata/plan/hooks/."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from shared.core.errors import StallingError
from shared.core.resources import HOOK_ANNOTATION
from shared.sync import hooks
from shared.sync.plan import sync_wave

CASES = sorted((Path(__file__).parents[1] / "testdata" / "plan" / "hooks").glob("*.yaml"))


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_hook_case(path: Path) -> None:
    case = yaml.safe_load(path.read_text())
    obj, expected = case["object"], case["expected"]
    if "error" in expected:
        with pytest.raises(StallingError) as caught:
            hooks.hook_types(obj)
            hooks.delete_policies(obj)
            sync_wave(obj)
        assert expected["error"] in str(caught.value)
        return
    if "hook_types" in expected:
        assert list(hooks.hook_types(obj)) == expected["hook_types"]
        assert hooks.is_hook(obj) == bool(expected["hook_types"])
    if "sync_phases" in expected:
        assert list(hooks.sync_phases(obj)) == expected["sync_phases"]
    if "skipped" in expected:
        assert hooks.is_skipped(obj) == expected["skipped"]
    if "delete_policies" in expected:
        assert list(hooks.delete_policies(obj)) == expected["delete_policies"]
    if "wave" in expected:
        assert sync_wave(obj) == expected["wave"]
    for phase, name in (expected.get("names") or {}).items():
        assert hooks.hook_name(obj, phase, revision=case["revision"], started_at=case["started_at"]) == name


def test_hook_cases_exist() -> None:
    assert len(CASES) >= 15


def test_hook_without_any_name_is_an_error() -> None:
    obj = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"annotations": {HOOK_ANNOTATION: "PreSync"}}}
    with pytest.raises(StallingError, match="neither metadata.name nor metadata.generateName"):
        hooks.hook_name(obj, hooks.PRE_SYNC)
