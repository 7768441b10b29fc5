"""The Application CRD (k8s/base/crd-application.yaml) is Argo CD's `applications.argoproj.io`:
names, version, printer columns and subresource as asked, a structural schema the API server accepts,
and a spec schema that accepts Argo CD Applications and refuses malformed ones.

The per-case rules come from tests/testdata/application_crd/*.yaml, one Application per file, written
from Argo CD's documented Application specification."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.deploy.manifests import CRD_FILE, EXAMPLE_APP, REPO, closed_schema, crd_schema, load_docs

CASES = sorted((REPO / "tests" / "testdata" / "application_crd").glob("*.yaml"))


@pytest.fixture(scope="module")
def crd() -> dict[str, Any]:
    (doc,) = load_docs(CRD_FILE)
    return doc


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft7Validator:
    schema = closed_schema(crd_schema())
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def test_names_and_version(crd):
    assert crd["metadata"]["name"] == "applications.argoproj.io"
    spec = crd["spec"]
    assert spec["group"] == "argoproj.io"
    assert spec["scope"] == "Namespaced"
    assert spec["names"] == {
        "kind": "Application",
        "listKind": "ApplicationList",
        "plural": "applications",
        "singular": "application",
        "shortNames": ["app", "apps"],
    }
    (version,) = spec["versions"]
    assert (version["name"], version["served"], version["storage"]) == ("v1alpha1", True, True)
    assert version["subresources"] == {"status": {}}


def test_printer_columns(crd):
    columns = {c["name"]: c for c in crd["spec"]["versions"][0]["additionalPrinterColumns"]}
    assert columns["Sync Status"]["jsonPath"] == ".status.sync.status"
    assert columns["Health Status"]["jsonPath"] == ".status.health.status"
    assert columns["Revision"]["jsonPath"] == ".status.sync.revision"
    assert columns["Age"] == {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}
    # Shown by a plain `kubectl get apps`, in this order (Revision is in -o wide, as in Argo CD).
    default = [n for n, c in columns.items() if c.get("priority", 0) == 0]
    assert default == ["Sync Status", "Health Status", "Age"]


def test_argo_cd_spec_fields_are_described():
    spec = crd_schema()["properties"]["spec"]["properties"]
    assert {
        "project",
        "source",
        "sources",
        "destination",
        "syncPolicy",
        "ignoreDifferences",
        "info",
        "revisionHistoryLimit",
    } <= set(spec)
    source = spec["source"]["properties"]
    assert {
        "repoURL",
        "path",
        "targetRevision",
        "directory",
        "kustomize",
        "helm",
        "plugin",
        "chart",
        "ref",
    } <= set(source)
    assert {"recurse", "include", "exclude", "jsonnet"} <= set(source["directory"]["properties"])
    assert spec["sources"]["items"] == spec["source"]
    assert set(spec["destination"]["properties"]) == {"server", "name", "namespace"}
    policy = spec["syncPolicy"]["properties"]
    assert {"prune", "selfHeal", "allowEmpty"} <= set(policy["automated"]["properties"])
    assert set(policy["retry"]["properties"]["backoff"]["properties"]) == {
        "duration",
        "factor",
        "maxDuration",
    }
    assert {"syncOptions", "managedNamespaceMetadata"} <= set(policy)


def test_status_and_operation_preserve_unknown_fields():
    top = crd_schema()["properties"]
    for field in ("status", "operation"):
        assert top[field] == {**top[field], "type": "object", "x-kubernetes-preserve-unknown-fields": True}


def _structural_errors(node: dict[str, Any], path: str) -> list[str]:
    """Where the schema breaks Kubernetes' structural-schema rules (the API server refuses such a CRD)."""
    errors = []
    if not (node.get("x-kubernetes-int-or-string") or node.get("type")):
        errors.append(f"{path}: no type")
    if "properties" in node and "additionalProperties" in node:
        errors.append(f"{path}: both properties and additionalProperties")
    if node.get("type") == "array" and "items" not in node:
        errors.append(f"{path}: array without items")
    for name, child in node.get("properties", {}).items():
        errors += _structural_errors(child, f"{path}.{name}")
    for key in ("items", "additionalProperties"):
        if isinstance(node.get(key), dict):
            errors += _structural_errors(node[key], f"{path}[{key}]")
    return errors


def test_schema_is_structural():
    assert _structural_errors(crd_schema(), "") == []


def test_example_application_matches_the_crd(validator):
    (app,) = load_docs(EXAMPLE_APP)
    assert (app["apiVersion"], app["kind"]) == ("argoproj.io/v1alpha1", "Application")
    errors = [f"{'.'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(app)]
    assert errors == []
    # It exercises the automated sync policy the sync engine implements.
    assert app["spec"]["syncPolicy"]["automated"] == {"prune": True, "selfHeal": True, "allowEmpty": False}


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.stem)
def test_application_case(case: Path, validator):
    data = yaml.safe_load(case.read_text(encoding="utf-8"))
    errors = list(validator.iter_errors(data["application"]))
    if data["valid"]:
        assert errors == [], [e.message for e in errors]
    else:
        paths = {".".join(map(str, e.path)) for e in errors}
        assert data["error_path"] in paths, f"errors at {paths}: {[e.message for e in errors]}"


def test_cases_cover_both_outcomes():
    outcomes = [yaml.safe_load(p.read_text(encoding="utf-8"))["valid"] for p in CASES]
    assert outcomes.count(True) >= 5 and outcomes.count(False) >= 5
