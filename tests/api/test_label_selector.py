"""Kubernetes' label selector syntax used by `GET /api/v1/applications?selector=`, one testdata file per case."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from scheduler.api_models import LabelSelector, SelectorError

CASES = sorted((Path(__file__).parents[1] / "testdata" / "label_selector").glob("*.yaml"))


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_label_selector(path: Path):
    case = yaml.safe_load(path.read_text())
    if "error" in case:
        with pytest.raises(SelectorError) as info:
            LabelSelector.parse(case["selector"])
        assert case["error"] in str(info.value)
        return
    selector = LabelSelector.parse(case["selector"])
    for labels in case.get("matches", []):
        assert selector.matches(labels), labels
    for labels in case.get("rejects", []):
        assert not selector.matches(labels), labels
