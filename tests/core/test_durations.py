"""Go durations (Argo CD's retry backoff, sync windows, hook timeouts) read by `durationpy`, one testdata file
per case under tests/testdata/durations."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from shared.core.models import parse_duration

CASES = sorted((Path(__file__).parents[1] / "testdata" / "durations").glob("*.yaml"))


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_duration_case(path: Path) -> None:
    case: dict[str, Any] = yaml.safe_load(path.read_text())
    if case.get("error"):
        with pytest.raises(ValueError, match="invalid duration"):
            parse_duration(case["text"])
    else:
        assert parse_duration(case["text"]) == pytest.approx(case["seconds"])


def test_numbers_are_seconds() -> None:
    assert parse_duration(7) == 7.0 and parse_duration(0.5) == 0.5
