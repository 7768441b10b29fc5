"""Rendering a kustomization with the kustomize tool that is installed, with a timeout.

Argo CD renders a path that holds a `kustomization.yaml` (or `.yml`, or `Kustomization`) with kustomize.
We do not reimplement kustomize: we run `kustomize build DIR` or, where only kubectl exists,
`kubectl kustomize DIR`, and turn its failures into typed errors for the app's status.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from shared.core.errors import ConfigurationError, StallingError, TransientError

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
DEFAULT_TIMEOUT = 60.0
_MAX_ERROR_CHARS = 2000


def command() -> list[str]:
    """The kustomize command prefix found on PATH; ConfigurationError when there is none."""
    binary = shutil.which("kustomize")
    if binary:
        return [binary, "build"]
    kubectl = shutil.which("kubectl")
    if kubectl:
        return [kubectl, "kustomize"]
    raise ConfigurationError("cannot render a kustomization: neither `kustomize` nor `kubectl` is on PATH")


def build(directory: Path, *, timeout: float = DEFAULT_TIMEOUT, shown_path: str | None = None) -> str:
    """The YAML output of building the kustomization in `directory`.

    `shown_path` is how the directory is named in errors (the app path in the repository rather than a
    temporary directory).
    """
    name = shown_path or str(directory)
    argv = [*command(), str(directory)]
    try:
        proc = subprocess.run(argv, capture_output=True, timeout=timeout, check=False, cwd=directory,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise TransientError(f"kustomize build timed out after {timeout:g}s", path=name) from None
    except OSError as exc:
        raise ConfigurationError(f"cannot run kustomize: {exc.strerror}", path=name) from None
    if proc.returncode != 0:
        text = proc.stderr.decode("utf-8", "replace").strip().replace(str(directory), name)
        if len(text) > _MAX_ERROR_CHARS:
            text = text[:_MAX_ERROR_CHARS] + "..."
        raise StallingError(f"kustomize build failed: {text}", path=name)
    return proc.stdout.decode("utf-8", "replace")
