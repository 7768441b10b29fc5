"""Discovery documents, the dynamic client, and CustomResourceDefinitions serving their kinds."""

from __future__ import annotations

import uuid

import pytest
from kubernetes import client, dynamic
from kubernetes.dynamic.exceptions import ResourceNotFoundError

from tests.sandbox.helpers import api_error, call, wait_for


def test_version_and_core_discovery(kube_api):
    status, version = call(kube_api, "GET", "/version")
    assert status == 200 and version["major"] == "1"
    status, core = call(kube_api, "GET", "/api/v1")
    assert core["groupVersion"] == "v1"
    by_name = {r["name"]: r for r in core["resources"]}
    assert by_name["pods"]["kind"] == "Pod" and by_name["pods"]["namespaced"] is True
    assert by_name["namespaces"]["namespaced"] is False
    assert "po" in by_name["pods"]["shortNames"]
    assert "pods/status" in by_name
    assert set(by_name["configmaps"]["verbs"]) >= {"create", "get", "list", "watch", "patch", "update", "delete"}


@pytest.mark.parametrize(("group", "version", "plural", "kind", "namespaced"), [
    ("apps", "v1", "deployments", "Deployment", True),
    ("batch", "v1", "cronjobs", "CronJob", True),
    ("networking.k8s.io", "v1", "ingressclasses", "IngressClass", False),
    ("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", False),
    ("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", True),
    ("autoscaling", "v2", "horizontalpodautoscalers", "HorizontalPodAutoscaler", True),
    ("storage.k8s.io", "v1", "storageclasses", "StorageClass", False),
    ("apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition", False),
    ("apiregistration.k8s.io", "v1", "apiservices", "APIService", False),
    ("coordination.k8s.io", "v1", "leases", "Lease", True),
])
def test_group_discovery(kube_api, group, version, plural, kind, namespaced):
    _, groups = call(kube_api, "GET", "/apis")
    entry = next(g for g in groups["groups"] if g["name"] == group)
    assert {"groupVersion": f"{group}/{version}", "version": version} in entry["versions"]
    _, resources = call(kube_api, "GET", f"/apis/{group}/{version}")
    assert resources["groupVersion"] == f"{group}/{version}"
    found = next(r for r in resources["resources"] if r["name"] == plural)
    assert found["kind"] == kind and found["namespaced"] is namespaced and found["singularName"] == kind.lower()


def test_unknown_paths_are_404(kube_api):
    # no handler for the group at all: the mux's plain-text 404
    assert call(kube_api, "GET", "/apis/nonexistent.example.com/v1") == (404, "404 page not found\n")
    assert call(kube_api, "GET", "/apis/nonexistent.example.com") == (404, "404 page not found\n")
    # a served group without that resource or version: a NotFound Status
    for path in ("/api/v1/widgets", "/apis/apps/v1/namespaces/default/widgets", "/apis/apps/v9",
                 "/apis/apps/v1/namespaces/default/deployments/x/bogus"):
        status, body = call(kube_api, "GET", path)
        assert status == 404 and body["kind"] == "Status" and body["reason"] == "NotFound", path
        assert body["message"] == "the server could not find the requested resource" and body["details"] == {}


def test_dynamic_client_crud(kube_api, kube_namespace):
    dyn = dynamic.DynamicClient(kube_api)
    cms = dyn.resources.get(api_version="v1", kind="ConfigMap")
    cms.create(body={"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "dyn"}, "data": {"a": "1"}},
               namespace=kube_namespace)
    assert cms.get(name="dyn", namespace=kube_namespace).data.a == "1"
    deploys = dyn.resources.get(api_version="apps/v1", kind="Deployment")
    assert deploys.namespaced and deploys.subresources.get("status") is not None


def _crd(group: str, scope: str = "Namespaced", status: bool = True) -> dict:
    version = {"name": "v1", "served": True, "storage": True,
               "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}}
    if status:
        version["subresources"] = {"status": {}}
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": f"widgets.{group}"},
            "spec": {"group": group, "scope": scope,
                     "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList",
                               "shortNames": ["wdg"]},
                     "versions": [version]}}


@pytest.fixture
def crd_group(kube_api):
    group = f"t{uuid.uuid4().hex[:8]}.wavecd.test"
    ext = client.ApiextensionsV1Api(kube_api)
    ext.create_custom_resource_definition(_crd(group))

    def established() -> bool:
        crd = ext.read_custom_resource_definition(f"widgets.{group}")
        conditions = {c.type: c.status for c in (crd.status.conditions or [])} if crd.status else {}
        return conditions.get("Established") == "True" and call(kube_api, "GET", f"/apis/{group}/v1")[0] == 200

    wait_for(established)
    yield group
    try:
        ext.delete_custom_resource_definition(f"widgets.{group}")
    except client.ApiException as exc:
        if exc.status != 404:
            raise


def test_crd_is_established_and_serves_its_kind(kube_api, kube_namespace, crd_group):
    crd = client.ApiextensionsV1Api(kube_api).read_custom_resource_definition(f"widgets.{crd_group}")
    conditions = {c.type: c.status for c in crd.status.conditions}
    assert conditions["Established"] == "True" and conditions["NamesAccepted"] == "True"
    _, resources = call(kube_api, "GET", f"/apis/{crd_group}/v1")
    names = {r["name"] for r in resources["resources"]}
    assert {"widgets", "widgets/status"} <= names
    custom = client.CustomObjectsApi(kube_api)
    body = {"apiVersion": f"{crd_group}/v1", "kind": "Widget", "metadata": {"name": "w1"}, "spec": {"size": 1},
            "status": {"ignored": True}}
    made = custom.create_namespaced_custom_object(crd_group, "v1", kube_namespace, "widgets", body)
    assert made["metadata"]["generation"] == 1 and "status" not in made
    patched = custom.patch_namespaced_custom_object(crd_group, "v1", kube_namespace, "widgets", "w1",
                                                    {"spec": {"size": 2}})
    assert patched["spec"]["size"] == 2 and patched["metadata"]["generation"] == 2
    status = custom.patch_namespaced_custom_object_status(crd_group, "v1", kube_namespace, "widgets", "w1",
                                                          {"status": {"phase": "Ready"}})
    assert status["status"] == {"phase": "Ready"} and status["metadata"]["generation"] == 2
    listed = custom.list_namespaced_custom_object(crd_group, "v1", kube_namespace, "widgets")
    assert [i["metadata"]["name"] for i in listed["items"]] == ["w1"]


def test_custom_resources_refuse_strategic_merge_patch(kube_api, kube_namespace, crd_group):
    custom = client.CustomObjectsApi(kube_api)
    custom.create_namespaced_custom_object(crd_group, "v1", kube_namespace, "widgets", {
        "apiVersion": f"{crd_group}/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"a": 1}})
    status, body = call(kube_api, "PATCH", f"/apis/{crd_group}/v1/namespaces/{kube_namespace}/widgets/w",
                        {"spec": {"a": 2}}, content_type="application/strategic-merge-patch+json")
    assert status == 415 and body["reason"] == "UnsupportedMediaType"


def test_deleting_crd_removes_kind_and_objects(kube_api, kube_namespace, crd_group):
    custom = client.CustomObjectsApi(kube_api)
    custom.create_namespaced_custom_object(crd_group, "v1", kube_namespace, "widgets", {
        "apiVersion": f"{crd_group}/v1", "kind": "Widget", "metadata": {"name": "doomed"}})
    client.ApiextensionsV1Api(kube_api).delete_custom_resource_definition(f"widgets.{crd_group}")
    wait_for(lambda: call(kube_api, "GET", f"/apis/{crd_group}/v1")[0] == 404)
    assert call(kube_api, "GET", f"/apis/{crd_group}/v1") == (404, "404 page not found\n")
    dyn = dynamic.DynamicClient(kube_api)
    with pytest.raises(ResourceNotFoundError):
        dyn.resources.get(api_version=f"{crd_group}/v1", kind="Widget")


def test_crd_name_must_match_names(kube_api):
    body = _crd("mismatch.wavecd.test")
    body["metadata"]["name"] = "gadgets.mismatch.wavecd.test"
    status, result = api_error(client.ApiextensionsV1Api(kube_api).create_custom_resource_definition, body)
    assert status == 422 and result["reason"] == "Invalid"


def test_cluster_scoped_crd(kube_api):
    group = f"c{uuid.uuid4().hex[:8]}.wavecd.test"
    ext = client.ApiextensionsV1Api(kube_api)
    ext.create_custom_resource_definition(_crd(group, scope="Cluster", status=False))
    try:
        wait_for(lambda: call(kube_api, "GET", f"/apis/{group}/v1")[0] == 200)
        custom = client.CustomObjectsApi(kube_api)
        made = custom.create_cluster_custom_object(group, "v1", "widgets", {
            "apiVersion": f"{group}/v1", "kind": "Widget", "metadata": {"name": "cw"}, "spec": {"x": 1}})
        assert "namespace" not in made["metadata"]
        assert custom.get_cluster_custom_object(group, "v1", "widgets", "cw")["spec"] == {"x": 1}
    finally:
        ext.delete_custom_resource_definition(f"widgets.{group}")
