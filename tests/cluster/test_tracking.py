"""Argo CD's tracking marks and ownership rule, one YAML case per rule under tests/testdata/tracking."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from shared.core import errors, tracking
from shared.core.resources import ResourceKey

CASES = sorted((Path(__file__).parent.parent / "testdata" / "tracking").glob("*.yaml"))


def _load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_tracking_case(path: Path) -> None:
    case = _load(path)
    expect = case["expect"]
    obj = copy.deepcopy(case["object"])
    if "error" in expect:
        with pytest.raises(getattr(errors, expect["error"])) as info:
            _run(case, obj)
        assert expect["message_contains"] in str(info.value)
        return
    result = _run(case, obj)
    if case["op"] == "stamp":
        meta = obj["metadata"]
        assert meta.get("annotations") == expect["annotations"]
        assert meta.get("labels") == expect["labels"]
    elif case["op"] == "ownership":
        if "skip_contains" in expect:
            assert result is not None
            for text in expect["skip_contains"]:
                assert text in result
        else:
            assert result is expect["skip"]
    else:
        assert result is expect["tracked"]


def _run(case: dict, obj: dict) -> object:
    if case["op"] == "stamp":
        tracking.stamp(obj, case["app"], case["method"], ResourceKey.from_object(obj))
        return None
    if case["op"] == "ownership":
        return tracking.check_ownership(obj, case["app"], case["fail_on_shared"])
    return tracking.is_tracked_by(obj, case["app"], case["method"])


def test_cases_present() -> None:
    assert len(CASES) >= 10


def test_generate_name_only_gets_no_annotation() -> None:
    obj = {"apiVersion": "batch/v1", "kind": "Job",
           "metadata": {"generateName": "migrate-", "namespace": "d"}}
    tracking.stamp(obj, "app", "annotation+label", ResourceKey.from_object(obj))
    assert "annotations" not in obj["metadata"]
    assert obj["metadata"]["labels"] == {"app.kubernetes.io/instance": "app"}


def test_label_method_refuses_long_app_name() -> None:
    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "namespace": "d"}}
    with pytest.raises(errors.ConfigurationError, match="longer than 63"):
        tracking.stamp(obj, "a" * 64, "label", ResourceKey.from_object(obj))


def test_check_ownership_of_missing_object() -> None:
    assert tracking.check_ownership(None, "app", True) is None
