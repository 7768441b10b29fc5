"""Helpers the deploy tests share: where the deployment files are, and how to load and render them.

Rendering goes through the real `kustomize` (standalone or built into kubectl), so the tests check what
an operator's `kubectl apply -k` would send, not a re-implementation of kustomize.
"""

from __future__ import annotations

import copy
import functools
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "k8s"
BASE = K8S / "base"
OVERLAYS = sorted(p.parent for p in (K8S / "overlays").glob("*/kustomization.yaml"))
CRD_FILE = BASE / "crd-application.yaml"
EXAMPLE_APP = K8S / "examples" / "application-guestbook.yaml"
COMPOSE_FILE = REPO / "compose.yaml"
DOCKERFILE = REPO / "Dockerfile"

# Kinds defined by CRDs that kubernetes-validate cannot know; each is checked another way.
CRD_KINDS = {"Application", "AppProject", "ScaledObject"}

Doc = dict[str, Any]


# The worker command every deployment form runs: all three queues, task events on (for Flower).
WORKER_ARGS = ["celery", "-A", "workers.celery_app", "worker", "-Q", "git,apply,health", "--loglevel=INFO", "-E"]

def load_docs(path: Path) -> list[Doc]:
    """Every non-empty YAML document of a file."""
    with path.open(encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d]


def manifest_files() -> list[Path]:
    """Every Kubernetes manifest under k8s/ (kustomization files are build instructions, not objects)."""
    return sorted(p for p in K8S.rglob("*.yaml") if p.name != "kustomization.yaml")


def kustomize_command() -> list[str] | None:
    """`kustomize build` if installed, else `kubectl kustomize`, else None."""
    if shutil.which("kustomize"):
        return ["kustomize", "build"]
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize"]
    return None


@functools.cache
def _build(directory: Path) -> str:
    cmd = kustomize_command()
    assert cmd is not None, "neither kustomize nor kubectl is on PATH"
    done = subprocess.run([*cmd, str(directory)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"{' '.join(cmd)} {directory} failed:\n{done.stderr}"
    return done.stdout


def build(directory: Path) -> list[Doc]:
    """The objects a kustomization renders to (a fresh copy each call, so tests may modify them)."""
    return [d for d in yaml.safe_load_all(_build(directory)) if d]


def find(docs: list[Doc], kind: str, name: str | None = None) -> list[Doc]:
    return [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]


def one(docs: list[Doc], kind: str, name: str) -> Doc:
    found = find(docs, kind, name)
    assert len(found) == 1, f"expected exactly one {kind}/{name}, found {len(found)}"
    return found[0]


def pod_templates(docs: list[Doc]) -> Iterator[tuple[Doc, Doc]]:
    """(workload, pod template) for every Deployment and StatefulSet."""
    for d in docs:
        if d["kind"] in ("Deployment", "StatefulSet"):
            yield d, d["spec"]["template"]


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    """Whether a matchLabels selector selects an object with these labels."""
    return all(labels.get(k) == v for k, v in selector.items())


def crd_schema() -> Doc:
    crd = load_docs(CRD_FILE)[0]
    (version,) = crd["spec"]["versions"]
    return version["schema"]["openAPIV3Schema"]


def closed_schema(schema: Doc) -> Doc:
    """The schema with unknown fields forbidden wherever Kubernetes would prune them.

    A structural schema silently drops unknown fields (and `kubectl apply --validate=strict` rejects
    them); JSON Schema allows them. Closing every object that lists `properties` and does not preserve
    unknown fields makes a typo in a manifest fail here, as it would against a real API server.
    """
    out = copy.deepcopy(schema)

    def close(node: Doc) -> None:
        if not isinstance(node, dict):
            return
        if "properties" in node and not node.get("x-kubernetes-preserve-unknown-fields"):
            node.setdefault("additionalProperties", False)
        for key in ("properties",):
            for child in node.get(key, {}).values():
                close(child)
        for key in ("items", "additionalProperties"):
            if isinstance(node.get(key), dict):
                close(node[key])

    close(out)
    # metadata is an ObjectMeta, validated by the API server itself, not by the CRD schema.
    out["properties"]["metadata"] = {"type": "object"}
    return out
