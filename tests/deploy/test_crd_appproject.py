"""The AppProject CRD (k8s/base/crd-appproject.yaml) is Argo CD's `appprojects.argoproj.io`: names,
version and printer columns, part of the base kustomization, accepted by a Kubernetes API, and it
stores an Argo CD AppProject unchanged (fields WaveCD does not act on included)."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client

from tests.deploy.manifests import BASE, load_docs
from tests.project.crds import APPPROJECT_CRD, install_crd

GROUP, VERSION, PLURAL = "argoproj.io", "v1alpha1", "appprojects"


@pytest.fixture(scope="module")
def crd() -> dict[str, Any]:
    (doc,) = load_docs(APPPROJECT_CRD)
    return doc


def test_names_and_version(crd):
    assert crd["metadata"]["name"] == "appprojects.argoproj.io"
    spec = crd["spec"]
    assert (spec["group"], spec["scope"]) == ("argoproj.io", "Namespaced")
    assert spec["names"] == {"kind": "AppProject", "listKind": "AppProjectList", "plural": "appprojects",
                             "singular": "appproject", "shortNames": ["appproj", "appprojs"]}
    (version,) = spec["versions"]
    assert (version["name"], version["served"], version["storage"]) == ("v1alpha1", True, True)


def test_printer_columns(crd):
    columns = {c["name"]: c for c in crd["spec"]["versions"][0]["additionalPrinterColumns"]}
    assert columns["Description"]["jsonPath"] == ".spec.description"
    assert columns["Age"] == {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}
    assert [n for n, c in columns.items() if c.get("priority", 0) == 0] == ["Description", "Age"]


def test_enforced_fields_are_typed(crd):
    props = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
    for field in ("sourceRepos", "destinations", "clusterResourceWhitelist", "clusterResourceBlacklist",
                  "namespaceResourceWhitelist", "namespaceResourceBlacklist", "sourceNamespaces",
                  "orphanedResources", "syncWindows", "permitOnlyProjectScopedClusters"):
        assert field in props, field
    window = props["syncWindows"]["items"]
    assert window["properties"]["kind"]["enum"] == ["allow", "deny"]
    assert window["required"] == ["kind", "schedule", "duration"]


def test_in_base_kustomization():
    (kustomization,) = load_docs(BASE / "kustomization.yaml")
    assert "crd-appproject.yaml" in kustomization["resources"]


@pytest.mark.integration
def test_cluster_stores_an_argo_cd_project(kube_api: client.ApiClient, kube_namespace: str):
    install_crd(kube_api, APPPROJECT_CRD)
    custom = client.CustomObjectsApi(kube_api)
    body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "AppProject",
            "metadata": {"name": "team-a", "namespace": kube_namespace},
            "spec": {"description": "team A", "sourceRepos": ["https://github.com/acme/*", "!https://github.com/acme/x"],
                     "destinations": [{"server": "https://kubernetes.default.svc", "namespace": "team-a-*"}],
                     "clusterResourceWhitelist": [{"group": "", "kind": "Namespace"}],
                     "syncWindows": [{"kind": "deny", "schedule": "0 22 * * *", "duration": "1h",
                                      "applications": ["*"], "manualSync": True}],
                     "roles": [{"name": "ci", "policies": ["p, proj:team-a:ci, applications, sync, team-a/*, allow"]}]}}
    custom.create_namespaced_custom_object(GROUP, VERSION, kube_namespace, PLURAL, body)
    stored = custom.get_namespaced_custom_object(GROUP, VERSION, kube_namespace, PLURAL, "team-a")
    assert stored["spec"] == body["spec"]


def test_example_project_is_valid(crd):
    """k8s/examples/appproject-team.yaml passes the CRD's schema (unknown fields closed) and WaveCD's model."""
    import jsonschema

    from shared.project.model import AppProject
    from tests.deploy.manifests import K8S, closed_schema

    (example,) = load_docs(K8S / "examples" / "appproject-team.yaml")
    schema = closed_schema(crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"])
    jsonschema.Draft7Validator(schema).validate(example)
    project = AppProject.parse(example)
    assert project.spec.sync_windows[0].manual_sync is True
    bad = {**example, "spec": {**example["spec"], "syncWindows": [{"kind": "sometimes", "schedule": "* * * * *",
                                                                  "duration": "1h"}]}}
    assert list(jsonschema.Draft7Validator(schema).iter_errors(bad))
