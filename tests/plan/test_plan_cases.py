"""Argo CD's sync ordering rules, one YAML case per file under tests/testdata/plan/.

Each case gives desired objects (and optionally live tracked objects, the prune flag, app sync options,
in-sync keys, a selective-sync list, namespaces) and the expected steps, each object written as
`<action> <key>` (the key as `ResourceKey.__str__` prints it). A case may instead expect an error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from shared.core.errors import StallingError
from shared.core.resources import ResourceKey
from shared.sync.options import SyncOptions
from shared.sync.plan import PlanStep, SyncPlan, plan_sync

CASES = sorted((Path(__file__).parents[1] / "testdata" / "plan").glob("*.yaml"))


def _keys(items: list[dict[str, Any]] | None) -> list[ResourceKey] | None:
    return None if items is None else [ResourceKey.from_dict(item) for item in items]


def _run(case: dict[str, Any]) -> SyncPlan:
    given = case["input"]
    return plan_sync(
        given.get("desired", []),
        live_tracked=given.get("live", []),
        prune=given.get("prune", False),
        options=SyncOptions.parse(given.get("sync_options", [])),
        in_sync=_keys(given.get("in_sync")) or (),
        only=_keys(given.get("only")),
        default_namespace=given.get("default_namespace", ""),
        create_namespace=given.get("create_namespace"),
        revision=given.get("revision", ""),
        started_at=given.get("started_at", 0),
    )


def _steps(steps: tuple[PlanStep, ...]) -> list[dict[str, Any]]:
    return [{"step": f"{s.phase} {s.wave}", "objects": [str(o) for o in s.objects]} for s in steps]


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_plan_case(path: Path) -> None:
    case = yaml.safe_load(path.read_text())
    expected = case["expected"]
    if "error" in expected:
        with pytest.raises(StallingError) as caught:
            _run(case)
        assert expected["error"] in str(caught.value)
        return
    plan = _run(case)
    assert _steps(plan.steps) == expected.get("steps", [])
    assert _steps(plan.sync_fail_steps) == expected.get("sync_fail_steps", [])
    assert [f"{o.key}: {o.reason}" for o in plan.prune_skipped] == expected.get("prune_skipped", [])
    if "warnings" in expected:
        assert len(plan.warnings) == len(expected["warnings"]), plan.warnings
        for fragment, warning in zip(expected["warnings"], plan.warnings, strict=True):
            assert fragment in warning
    everything = {str(o): o for step in (*plan.steps, *plan.sync_fail_steps) for o in step.objects}
    for label, fields in (expected.get("details") or {}).items():
        planned = everything[label]
        for name, value in fields.items():
            actual = getattr(planned, name)
            assert (list(actual) if isinstance(actual, tuple) else actual) == value, (label, name)


def test_cases_exist() -> None:
    assert len(CASES) >= 30
