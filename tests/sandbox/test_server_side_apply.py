"""Server-side apply: managedFields, conflicts between managers, force, and pruning of un-applied fields."""

from __future__ import annotations

import json

import pytest
from kubernetes import client, dynamic

from tests.sandbox.helpers import call


@pytest.fixture
def dyn(kube_api):
    return dynamic.DynamicClient(kube_api)


def _cm(ns: str, data: dict[str, str], labels: dict[str, str] | None = None) -> dict:
    meta: dict = {"name": "applied", "namespace": ns}
    if labels:
        meta["labels"] = labels
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data}


def _deploy(ns: str, image: str = "app:1", replicas: int | None = 2, env: list | None = None) -> dict:
    container: dict = {"name": "app", "image": image}
    if env is not None:
        container["env"] = env
    spec: dict = {"selector": {"matchLabels": {"app": "ssa"}},
                  "template": {"metadata": {"labels": {"app": "ssa"}}, "spec": {"containers": [container]}}}
    if replicas is not None:
        spec["replicas"] = replicas
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "ssa", "namespace": ns}, "spec": spec}


def _managers(obj: dict) -> dict[tuple[str, str], dict]:
    return {(m["manager"], m["operation"]): m for m in obj["metadata"].get("managedFields") or []}


def test_apply_creates_and_records_manager(dyn, kube_namespace):
    cms = dyn.resources.get(api_version="v1", kind="ConfigMap")
    obj = dyn.server_side_apply(cms, body=_cm(kube_namespace, {"a": "1"}), field_manager="wavecd").to_dict()
    entry = _managers(obj)[("wavecd", "Apply")]
    assert entry["fieldsType"] == "FieldsV1" and entry["apiVersion"] == "v1" and entry["time"]
    assert entry["fieldsV1"] == {"f:data": {"f:a": {}}}


def test_apply_requires_field_manager(kube_api, kube_namespace):
    status, body = call(kube_api, "PATCH", f"/api/v1/namespaces/{kube_namespace}/configmaps/applied",
                        _cm(kube_namespace, {"a": "1"}), content_type="application/apply-patch+yaml")
    assert status == 422 and body["reason"] == "Invalid"


def test_associative_list_keys_in_managed_fields(dyn, kube_namespace):
    deployments = dyn.resources.get(api_version="apps/v1", kind="Deployment")
    obj = dyn.server_side_apply(deployments, body=_deploy(kube_namespace, env=[{"name": "X", "value": "1"}]),
                                field_manager="wavecd").to_dict()
    fields = _managers(obj)[("wavecd", "Apply")]["fieldsV1"]
    container = fields["f:spec"]["f:template"]["f:spec"]["f:containers"]['k:{"name":"app"}']
    assert "." in container and "f:image" in container
    assert 'k:{"name":"X"}' in container["f:env"]


def test_apply_removes_fields_it_no_longer_applies(dyn, kube_namespace):
    cms = dyn.resources.get(api_version="v1", kind="ConfigMap")
    dyn.server_side_apply(cms, body=_cm(kube_namespace, {"a": "1", "b": "2"}, {"keep": "x", "drop": "y"}),
                          field_manager="wavecd")
    obj = dyn.server_side_apply(cms, body=_cm(kube_namespace, {"a": "1"}, {"keep": "x"}),
                                field_manager="wavecd").to_dict()
    assert obj["data"] == {"a": "1"}
    assert obj["metadata"]["labels"] == {"keep": "x"}


def test_apply_keeps_fields_another_manager_owns(dyn, kube_api, kube_namespace):
    cms = dyn.resources.get(api_version="v1", kind="ConfigMap")
    dyn.server_side_apply(cms, body=_cm(kube_namespace, {"a": "1", "b": "2"}), field_manager="wavecd")
    dyn.server_side_apply(cms, body=_cm(kube_namespace, {"b": "2"}), field_manager="other")
    obj = dyn.server_side_apply(cms, body=_cm(kube_namespace, {"a": "1"}), field_manager="wavecd").to_dict()
    assert obj["data"] == {"a": "1", "b": "2"}


def test_conflict_with_update_manager_then_force(dyn, kube_api, kube_namespace):
    deployments = dyn.resources.get(api_version="apps/v1", kind="Deployment")
    dyn.server_side_apply(deployments, body=_deploy(kube_namespace), field_manager="wavecd")
    client.AppsV1Api(kube_api).patch_namespaced_deployment("ssa", kube_namespace, {"spec": {"replicas": 5}},
                                                           field_manager="kubectl-edit")
    with pytest.raises(client.ApiException) as info:
        dyn.server_side_apply(deployments, body=_deploy(kube_namespace), field_manager="wavecd")
    assert info.value.status == 409
    status = json.loads(info.value.body)
    assert status["reason"] == "Conflict"
    causes = status["details"]["causes"]
    assert any(c["field"] == ".spec.replicas" and "kubectl-edit" in c["message"] for c in causes)
    forced = dyn.server_side_apply(deployments, body=_deploy(kube_namespace), field_manager="wavecd",
                                   force_conflicts=True).to_dict()
    assert forced["spec"]["replicas"] == 2
    edit = _managers(forced).get(("kubectl-edit", "Update"))
    assert edit is None or "f:replicas" not in edit["fieldsV1"].get("f:spec", {})


def test_same_value_is_shared_not_conflicting(dyn, kube_namespace):
    cms = dyn.resources.get(api_version="v1", kind="ConfigMap")
    dyn.server_side_apply(cms, body=_cm(kube_namespace, {"a": "1"}), field_manager="one")
    obj = dyn.server_side_apply(cms, body=_cm(kube_namespace, {"a": "1"}), field_manager="two").to_dict()
    managers = _managers(obj)
    assert "f:a" in managers[("one", "Apply")]["fieldsV1"]["f:data"]
    assert "f:a" in managers[("two", "Apply")]["fieldsV1"]["f:data"]


def test_conflict_between_two_appliers(dyn, kube_namespace):
    cms = dyn.resources.get(api_version="v1", kind="ConfigMap")
    dyn.server_side_apply(cms, body=_cm(kube_namespace, {"a": "1"}), field_manager="one")
    with pytest.raises(client.ApiException) as info:
        dyn.server_side_apply(cms, body=_cm(kube_namespace, {"a": "2"}), field_manager="two")
    assert info.value.status == 409
    causes = json.loads(info.value.body)["details"]["causes"]
    assert causes and all('"one"' in c["message"] and c["field"] == ".data.a" for c in causes)


def test_update_records_update_manager(kube_api, kube_namespace):
    core = client.CoreV1Api(kube_api)
    core.create_namespaced_config_map(kube_namespace, {"metadata": {"name": "u"}, "data": {"a": "1"}},
                                      field_manager="creator")
    obj = core.patch_namespaced_config_map("u", kube_namespace, {"data": {"b": "2"}}, field_manager="patcher")
    managers = {(m.manager, m.operation): m.fields_v1 for m in obj.metadata.managed_fields}
    assert managers[("creator", "Update")] == {"f:data": {".": {}, "f:a": {}}} or \
        "f:a" in managers[("creator", "Update")]["f:data"]
    assert "f:b" in managers[("patcher", "Update")]["f:data"]


def test_apply_list_items_merge_with_other_managers(dyn, kube_api, kube_namespace):
    deployments = dyn.resources.get(api_version="apps/v1", kind="Deployment")
    dyn.server_side_apply(deployments, body=_deploy(kube_namespace, env=[{"name": "A", "value": "1"}]),
                          field_manager="wavecd")
    client.AppsV1Api(kube_api).patch_namespaced_deployment("ssa", kube_namespace, {"spec": {"template": {"spec": {
        "containers": [{"name": "app", "env": [{"name": "INJECTED", "value": "x"}]}]}}}},
        field_manager="injector")
    obj = dyn.server_side_apply(deployments, body=_deploy(kube_namespace, image="app:2",
                                                          env=[{"name": "A", "value": "1"}]),
                                field_manager="wavecd").to_dict()
    container = obj["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "app:2"
    assert {e["name"] for e in container["env"]} == {"A", "INJECTED"}


def test_noop_apply_keeps_resource_version(dyn, kube_namespace):
    deployments = dyn.resources.get(api_version="apps/v1", kind="Deployment")
    first = dyn.server_side_apply(deployments, body=_deploy(kube_namespace), field_manager="wavecd")
    again = dyn.server_side_apply(deployments, body=_deploy(kube_namespace), field_manager="wavecd")
    assert again.metadata.resourceVersion == first.metadata.resourceVersion


def test_apply_dry_run_stores_nothing(dyn, kube_api, kube_namespace):
    cms = dyn.resources.get(api_version="v1", kind="ConfigMap")
    obj = dyn.server_side_apply(cms, body=_cm(kube_namespace, {"a": "1"}), field_manager="wavecd", dry_run="All")
    assert obj.data.a == "1"
    with pytest.raises(client.ApiException) as info:
        client.CoreV1Api(kube_api).read_namespaced_config_map("applied", kube_namespace)
    assert info.value.status == 404


def test_apply_refuses_fields_the_schema_does_not_declare(kube_api, kube_namespace):
    """Kubernetes types an apply configuration against the schema: an unknown field fails the request.

    (It answers with a bare 500, kubernetes/kubernetes#122480; the message is what clients rely on.)
    """
    deploy = _deploy(kube_namespace)
    deploy["spec"]["template"]["spec"]["containers"][0]["imagePullPolcy"] = "Always"  # a typo
    status, body = call(kube_api, "PATCH", f"/apis/apps/v1/namespaces/{kube_namespace}/deployments/ssa?"
                        f"fieldManager=wavecd", deploy, content_type="application/apply-patch+yaml")
    assert status >= 400
    assert "imagePullPolcy: field not declared in schema" in body["message"]
    status, _ = call(kube_api, "GET", f"/apis/apps/v1/namespaces/{kube_namespace}/deployments/ssa")
    assert status == 404
