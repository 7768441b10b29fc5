"""The README's Run command is one line a new user can paste on a system whose Python refuses `pip install`
(Debian's externally-managed-environment): it makes a virtualenv first and uses that venv's pip and wavecd,
and it installs from this checkout (WaveCD is not on PyPI)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def _run_command() -> str:
    text = README.read_text(encoding="utf-8")
    section = text.split("\n## Run\n", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)\n```", section, re.DOTALL)
    assert block is not None, "the Run section has no ```sh block"
    lines = [line for line in block[1].splitlines() if line.strip()]
    assert len(lines) == 1, f"the Run command should be one line: {lines}"
    return lines[0]


def test_the_run_command_makes_a_virtualenv_and_uses_it():
    steps = [shlex.split(step) for step in _run_command().split("&&")]
    assert steps[0][:3] == ["python3", "-m", "venv"], steps
    venv = steps[0][3]
    assert steps[1][:2] == [f"{venv}/bin/pip", "install"], steps
    assert "-e" in steps[1] and "." in steps[1] and "constraints.txt" in steps[1], steps
    assert steps[2] == [f"{venv}/bin/wavecd", "up"], steps


def test_the_readme_no_longer_suggests_what_does_not_work():
    text = README.read_text(encoding="utf-8")
    assert "pip install wavecd" not in text  # not published
    assert not re.search(r"^\$ pip install", text, re.MULTILINE)  # into whatever Python is on PATH
