"""Every manifest under k8s/, as written and as kustomize renders it, passes kubernetes-validate's
strict schemas (unknown fields rejected) for the oldest and the newest Kubernetes we support."""

from __future__ import annotations

from pathlib import Path

import kubernetes_validate
import pytest

from tests.deploy.manifests import (
    BASE,
    CRD_KINDS,
    K8S,
    OVERLAYS,
    build,
    kustomize_command,
    load_docs,
    manifest_files,
)

# 1.29: the oldest release still in wide use that has every API version used here; and the newest known.
K8S_VERSIONS = ["1.29.0", kubernetes_validate.latest_version()]


def _validate(doc: dict, version: str) -> None:
    """Validate one object; a CRD-defined kind must be one we check elsewhere (see CRD_KINDS)."""
    try:
        kubernetes_validate.validate(doc, version, strict=True)
    except kubernetes_validate.SchemaNotFoundError:
        assert doc["kind"] in CRD_KINDS, f"no schema for {doc['apiVersion']} {doc['kind']}: a typo?"
    except kubernetes_validate.ValidationError as e:
        path = ".".join(str(p) for p in e.path)
        pytest.fail(
            f"{doc['kind']}/{doc['metadata']['name']} invalid for Kubernetes {version}: {path}: {e.message}"
        )


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("path", manifest_files(), ids=lambda p: str(p.relative_to(K8S)))
def test_manifest_file_validates(path: Path, version: str):
    docs = load_docs(path)
    assert docs, f"{path} holds no object"
    for doc in docs:
        _validate(doc, version)


def test_every_manifest_file_is_used_by_a_kustomization():
    """A manifest no kustomization lists would silently never be deployed (examples excepted)."""
    listed: set[Path] = set()
    for kustomization in K8S.rglob("kustomization.yaml"):
        (spec,) = load_docs(kustomization)
        listed |= {(kustomization.parent / r).resolve() for r in spec.get("resources", [])}
    unused = [p for p in manifest_files() if p.resolve() not in listed and "examples" not in p.parts]
    assert not unused, f"not in any kustomization: {unused}"


needs_kustomize = pytest.mark.skipif(
    kustomize_command() is None, reason="neither kustomize nor kubectl on PATH"
)


@needs_kustomize
@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("directory", [BASE, *OVERLAYS], ids=lambda p: str(p.relative_to(K8S)))
def test_kustomization_builds_and_validates(directory: Path, version: str):
    docs = build(directory)
    assert len(docs) > 10
    for doc in docs:
        _validate(doc, version)
    # Names are unique per kind and namespace (kustomize would merge or reject duplicates silently).
    ids = [(d["kind"], d["metadata"].get("namespace"), d["metadata"]["name"]) for d in docs]
    assert len(ids) == len(set(ids))


def test_validation_rejects_an_unknown_field():
    """The strict check bites: a misspelt field in a real manifest fails."""
    (deployment,) = [d for d in load_docs(BASE / "beat.yaml") if d["kind"] == "Deployment"]
    deployment["spec"]["template"]["spec"]["containers"][0]["readOnlyRootFileSystem"] = True
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSIONS[-1], strict=True)
