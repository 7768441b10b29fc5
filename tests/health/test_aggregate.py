"""App (and wave) health aggregation, from tests/testdata/health/aggregate/*.yaml, and the status order."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from shared.health import HEALTH_ORDER, HealthStatus, HealthStatusCode, aggregate, is_worse, worst

CASES = sorted((Path(__file__).resolve().parent.parent / "testdata" / "health" / "aggregate").glob("*.yaml"))


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.stem)
def test_aggregate_case(path: Path) -> None:
    case = yaml.safe_load(path.read_text(encoding="utf-8"))
    statuses = [None if s is None else HealthStatus(HealthStatusCode(s), f"resource {i}")
                for i, s in enumerate(case["statuses"])]
    result = aggregate(statuses, ignore_missing=case["ignore_missing"])
    assert result == HealthStatus(HealthStatusCode(case["expected"]["status"]))


def test_aggregate_accepts_a_generator() -> None:
    gen = (HealthStatus(code) for code in (HealthStatusCode.HEALTHY, HealthStatusCode.DEGRADED))
    assert aggregate(gen).status is HealthStatusCode.DEGRADED


def test_order_is_argo_cds() -> None:
    expected = ["Healthy", "Suspended", "Progressing", "Missing", "Degraded", "Unknown"]
    assert [c.value for c in HEALTH_ORDER] == expected


@pytest.mark.parametrize("better_index", range(len(HEALTH_ORDER)))
def test_worst_follows_the_order(better_index: int) -> None:
    for worse_index in range(better_index, len(HEALTH_ORDER)):
        a, b = HEALTH_ORDER[better_index], HEALTH_ORDER[worse_index]
        assert worst(a, b) is b
        assert worst(b, a) is b
        assert is_worse(a, b) is (worse_index > better_index)


def test_status_code_is_a_string() -> None:
    assert HealthStatusCode.DEGRADED == "Degraded"
    assert f"{HealthStatusCode.MISSING}" == "Missing"
    assert HealthStatus(HealthStatusCode.HEALTHY).to_dict() == {"status": "Healthy"}
    degraded = HealthStatus(HealthStatusCode.DEGRADED, "boom")
    assert degraded.to_dict() == {"status": "Degraded", "message": "boom"}
