"""Operations stored by an earlier WaveCD (one JSON file per case under tests/testdata/operation/stored/)
are read by the typed model, resumed at the step they recorded, and written back with every field kept:
an upgrade in the middle of a sync must not lose or reshape it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from shared.operation import machine
from shared.operation.machine import Chain
from shared.operation.model import Operation

CASES = sorted((Path(__file__).parents[1] / "testdata" / "operation" / "stored").glob("*.json"))


def _contains(written: Any, stored: Any, where: str = "") -> None:  # noqa: ANN401
    """Every key and value of `stored` is in `written` (nulls may be left out, as Go's omitempty does)."""
    if isinstance(stored, dict):
        assert isinstance(written, dict), where
        for key, value in stored.items():
            if value is None:
                assert written.get(key) is None, f"{where}.{key}"
                continue
            assert key in written, f"{where}.{key} was dropped"
            _contains(written[key], value, f"{where}.{key}")
    elif isinstance(stored, list):
        assert isinstance(written, list) and len(written) == len(stored), where
        for n, (w, s) in enumerate(zip(written, stored, strict=True)):
            _contains(w, s, f"{where}[{n}]")
    else:
        assert written == stored, where


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_stored_operation_case(path: Path) -> None:
    case = json.loads(path.read_text())
    op = Operation.model_validate(case["stored"])
    _contains(op.dump(), case["stored"])
    call = machine.resume(op, Chain("demo", "owner:1"))
    assert {"task": call.task, "step": call.step, "seq": call.seq} == case["resumes"]
    assert "progress" not in op.public_view()
