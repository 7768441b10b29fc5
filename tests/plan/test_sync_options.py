"""Argo CD's sync options parsed into typed values, app-level and per object, one YAML case per file under
tests/testdata/plan/sync_options/."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from shared.core.errors import StallingError
from shared.core.models import SyncPolicy
from shared.sync.options import SyncOptions

CASES = sorted((Path(__file__).parents[1] / "testdata" / "plan" / "sync_options").glob("*.yaml"))


def _parse(case: dict) -> SyncOptions:
    options = SyncOptions.parse(case.get("app", []))
    if "object" in case:
        merged = options.for_object(case["object"])
        return SyncOptions(merged.values, options.warnings + merged.warnings)
    return options


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_sync_options_case(path: Path) -> None:
    case = yaml.safe_load(path.read_text())
    expected = case["expected"]
    if "error" in expected:
        with pytest.raises(StallingError) as caught:
            _parse(case)
        assert expected["error"] in str(caught.value)
        return
    options = _parse(case)
    if "values" in expected:
        assert options.as_dict() == expected["values"]
    for name, value in (expected.get("accessors") or {}).items():
        assert getattr(options, name) == value, name
    if "warnings" in expected:
        assert len(options.warnings) == len(expected["warnings"]), options.warnings
        for fragment, warning in zip(expected["warnings"], options.warnings, strict=True):
            assert fragment in warning


def test_sync_options_cases_exist() -> None:
    assert len(CASES) >= 12


def test_from_policy_reads_the_application_spec() -> None:
    policy = SyncPolicy.model_validate({"syncOptions": ["PruneLast=true", "PrunePropagationPolicy=orphan"]})
    options = SyncOptions.from_policy(policy)
    assert options.prune_last is True
    assert options.prune_propagation_policy == "orphan"
    assert SyncOptions.from_policy(None).as_dict() == {}


def test_merged_with_annotation_text_and_resource_dict() -> None:
    app = SyncOptions.parse(["CreateNamespace=true", "Replace=true"])
    merged = app.merged_with("Replace=false,ServerSideApply=false", where="ConfigMap n/c")
    assert merged.replace is False and merged.server_side_apply is False and merged.create_namespace is True
    assert merged.resource_dict() == {"Replace": "false", "ServerSideApply": "false"}
    assert app.replace is True  # the app-level options are not changed by merging


def test_options_are_immutable() -> None:
    options = SyncOptions.parse(["Replace=true"])
    with pytest.raises(TypeError):
        options.values["Replace"] = "false"  # type: ignore[index]
