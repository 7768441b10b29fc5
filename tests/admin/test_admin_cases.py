"""`wavecd admin` end to end through typer's CliRunner, one YAML case per file under tests/testdata/admin/.

A case gives the input files (path -> text, written to a temporary directory that becomes the working
directory), optional `stdin` text, the command line after `wavecd admin`, the exit code, and what the
output must hold: `json` (stdout parsed and compared whole), `stdout_contains` / `stdout_excludes` (for
tables and for secrets that must never appear) and `stderr_contains` (the one-line error).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from scheduler.cli import cli
from shared.core.settings import get_settings

CASES = sorted((Path(__file__).parents[1] / "testdata" / "admin").glob("*.yaml"))


@pytest.fixture(autouse=True)
def _plain_settings(monkeypatch):
    """No WAVECD_* variable of the developer's shell may change the answers."""
    import os

    for name in list(os.environ):
        if name.startswith("WAVECD_"):
            monkeypatch.delenv(name)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def run_case(case: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:  # noqa: ANN401
    for name, text in (case.get("files") or {}).items():
        target = tmp_path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    monkeypatch.chdir(tmp_path)
    return CliRunner().invoke(cli, ["admin", *[str(a) for a in case["args"]]], input=case.get("stdin"))


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_admin_case(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    case = yaml.safe_load(path.read_text())
    result = run_case(case, tmp_path, monkeypatch)
    detail = f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert result.exception is None or isinstance(result.exception, SystemExit), detail
    assert result.exit_code == case["exit_code"], detail
    if "json" in case:
        assert json.loads(result.stdout) == case["json"], detail
    for text in case.get("stdout_contains", []):
        assert text in result.stdout, detail
    for text in case.get("stdout_excludes", []):
        assert text not in result.stdout and text not in result.stderr, detail
    for text in case.get("stderr_contains", []):
        assert text in result.stderr, detail
    if case["exit_code"] == 2:
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), detail


def test_every_command_has_cases() -> None:
    commands = {yaml.safe_load(p.read_text())["args"][0] for p in CASES}
    assert commands == {"health", "plan", "diff", "webhook"}
