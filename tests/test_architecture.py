"""The layering contract and the lint rules run with the tests, so CI refuses a change that breaks them."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
PACKAGES = ["shared", "workers", "scheduler", "sandbox"]


def _tool(name: str) -> str:
    local = BIN / name
    found = str(local) if local.exists() else shutil.which(name)
    assert found, f"{name} is not installed (it is a test dependency in pyproject.toml)"
    return found


def test_import_contracts_hold():
    result = subprocess.run([_tool("lint-imports"), "--no-cache"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"Contracts: \d+ kept, 0 broken", result.stdout), result.stdout


def test_contracts_cover_the_inside_of_shared():
    """The layers and independence contracts name every package of shared/, so a new one must take a place."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    contracts = config["tool"]["importlinter"]["contracts"]
    named: set[str] = set()
    for contract in contracts:
        for entry in contract.get("layers", []) + contract.get("modules", []):
            named.update(part.strip() for part in entry.split("|"))
    packages = {f"shared.{p.name}" for p in (ROOT / "shared").iterdir() if (p / "__init__.py").exists()}
    assert packages <= named, f"packages of shared/ no contract places: {sorted(packages - named)}"
    flat = sorted(p.name for p in (ROOT / "shared").glob("*.py") if p.name != "__init__.py")
    assert not flat, f"modules directly in shared/ (put each in the package of its part of the flow): {flat}"


def test_ruff_is_clean():
    result = subprocess.run([_tool("ruff"), "check", "."], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_module_says_why_it_exists():
    missing = []
    for package in PACKAGES + ["tests", "bench"]:
        for path in sorted((ROOT / package).rglob("*.py")):
            if ".venv" in path.parts:
                continue
            tree = ast.parse(path.read_text(encoding="utf-8"))
            if not ast.get_docstring(tree):
                missing.append(str(path.relative_to(ROOT)))
    assert not missing, f"modules without a docstring: {missing}"
