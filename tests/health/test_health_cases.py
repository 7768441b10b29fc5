"""Every health case under tests/testdata/health/<kind>/<case>.yaml, one parametrized test per file.

A case holds `object` and `expected` ({status, message} or null for "no health"); optional `scripts`
({"group/Kind": lua}) are passed to assess as the caller's Lua rules; `message_contains` checks part of
a message that is not fully predictable. The time and memory limits are proven by the message the
limit produces ("timed out after 0.5s"), not by wall-clock assertions, which a loaded CI machine breaks.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from shared.health import HealthStatusCode, LuaHealthRules, assess, is_health_ignored

TESTDATA = Path(__file__).resolve().parent.parent / "testdata" / "health"
NOT_ASSESS_CASES = {"aggregate", "ignore"}


def _cases(selector: str) -> list[Path]:
    return sorted(TESTDATA.glob(selector))


ASSESS_CASES = [p for p in _cases("*/*.yaml") if p.parent.name not in NOT_ASSESS_CASES]
IGNORE_CASES = _cases("ignore/*.yaml")


def _id(path: Path) -> str:
    return f"{path.parent.name}/{path.stem}"


def test_testdata_is_present() -> None:
    assert len(ASSESS_CASES) >= 100
    for kind in ("deployment", "statefulset", "daemonset", "replicaset", "pod", "persistentvolumeclaim",
                 "service", "ingress", "job", "horizontalpodautoscaler", "apiservice", "workflow"):
        assert len(list((TESTDATA / kind).glob("*.yaml"))) >= 4, kind


@pytest.mark.parametrize("path", ASSESS_CASES, ids=_id)
def test_assess_case(path: Path) -> None:
    case = yaml.safe_load(path.read_text(encoding="utf-8"))
    rules = LuaHealthRules.from_mapping(case["scripts"]) if "scripts" in case else None
    result = assess(case["object"], rules)
    expected = case["expected"]
    if expected is None:
        assert result is None
        return
    assert result is not None
    assert result.status == HealthStatusCode(expected["status"]), result.message
    if "message" in expected:
        assert result.message == expected["message"]
    if "message_contains" in case:
        assert case["message_contains"] in result.message


@pytest.mark.parametrize("path", IGNORE_CASES, ids=_id)
def test_ignore_case(path: Path) -> None:
    case = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert is_health_ignored(case["object"]) is case["expected_ignored"]
