"""The scale subresource (`kubectl scale`): autoscaling/v1 Scale views of workloads and custom resources."""

from __future__ import annotations

from kubernetes import client

from tests.sandbox.helpers import call, request
from tests.sandbox.test_crud import _deployment


def _scale_path(ns: str, name: str, plural: str = "deployments") -> str:
    return f"/apis/apps/v1/namespaces/{ns}/{plural}/{name}/scale"


def _make(kube_api, ns: str, name: str = "sc") -> dict:
    body = _deployment(name, replicas=2)
    body["spec"]["selector"]["matchExpressions"] = [{"key": "tier", "operator": "NotIn", "values": ["db"]}]
    return client.AppsV1Api(kube_api).create_namespaced_deployment(ns, body).to_dict()


def test_get_scale_of_a_deployment(kube_api, kube_namespace):
    made = _make(kube_api, kube_namespace)
    status, scale = call(kube_api, "GET", _scale_path(kube_namespace, "sc"))
    assert status == 200
    assert (scale["apiVersion"], scale["kind"]) == ("autoscaling/v1", "Scale")
    assert scale["metadata"]["name"] == "sc" and scale["metadata"]["namespace"] == kube_namespace
    assert scale["metadata"]["uid"] == made["metadata"]["uid"]
    assert scale["spec"] == {"replicas": 2}
    assert scale["status"]["selector"] == "app=sc,tier notin (db)"
    assert isinstance(scale["status"]["replicas"], int)


def test_put_and_patch_scale_change_the_deployment(kube_api, kube_namespace):
    _make(kube_api, kube_namespace)
    apps = client.AppsV1Api(kube_api)
    status, scale = call(kube_api, "PUT", _scale_path(kube_namespace, "sc"), {
        "apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": {"name": "sc"}, "spec": {"replicas": 3}})
    assert status == 200 and scale["spec"]["replicas"] == 3
    deployment = apps.read_namespaced_deployment("sc", kube_namespace)
    assert deployment.spec.replicas == 3 and deployment.metadata.generation == 2
    assert any(m.subresource == "scale" for m in deployment.metadata.managed_fields)
    status, scale = call(kube_api, "PATCH", _scale_path(kube_namespace, "sc"), {"spec": {"replicas": 4}},
                         content_type="application/merge-patch+json")
    assert status == 200 and scale["spec"]["replicas"] == 4
    patched = apps.patch_namespaced_deployment_scale("sc", kube_namespace, {"spec": {"replicas": 5}})
    assert patched.spec.replicas == 5
    assert apps.read_namespaced_deployment("sc", kube_namespace).spec.replicas == 5


def test_invalid_scale_requests(kube_api, kube_namespace):
    _make(kube_api, kube_namespace)
    status, body = call(kube_api, "PATCH", _scale_path(kube_namespace, "sc"), {"spec": {"replicas": -1}},
                        content_type="application/merge-patch+json")
    assert status == 422
    assert body["message"] == ('Scale.autoscaling "sc" is invalid: spec.replicas: Invalid value: -1: must be '
                               "greater than or equal to 0")
    assert body["details"]["causes"] == [{"reason": "FieldValueInvalid", "field": "spec.replicas",
                                          "message": "Invalid value: -1: must be greater than or equal to 0"}]
    status, body = call(kube_api, "PUT", _scale_path(kube_namespace, "sc"), {
        "apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": {"name": "sc", "resourceVersion": "1"},
        "spec": {"replicas": 3}})
    assert status == 409 and body["reason"] == "Conflict"
    status, body = call(kube_api, "GET", _scale_path(kube_namespace, "nope"))
    assert status == 404 and body["message"] == 'deployments.apps "nope" not found'
    status, body = call(kube_api, "GET", f"/api/v1/namespaces/{kube_namespace}/configmaps/x/scale")
    assert status == 404 and body["message"] == "the server could not find the requested resource"


def test_scale_in_discovery(kube_api):
    _, apps = call(kube_api, "GET", "/apis/apps/v1")
    scales = {r["name"]: r for r in apps["resources"] if r["name"].endswith("/scale")}
    assert set(scales) == {"deployments/scale", "replicasets/scale", "statefulsets/scale"}
    assert all((r["group"], r["version"], r["kind"]) == ("autoscaling", "v1", "Scale") for r in scales.values())
    assert sorted(scales["deployments/scale"]["verbs"]) == ["get", "patch", "update"]
    _, core = call(kube_api, "GET", "/api/v1")
    assert [r["name"] for r in core["resources"] if r["name"].endswith("/scale")] == ["replicationcontrollers/scale"]


def test_statefulset_and_replicaset_scale(kube_api, kube_namespace):
    apps = client.AppsV1Api(kube_api)
    sts = _deployment("st")
    sts["kind"] = "StatefulSet"
    sts["spec"]["serviceName"] = "st"
    apps.create_namespaced_stateful_set(kube_namespace, sts)
    apps.patch_namespaced_stateful_set_scale("st", kube_namespace, {"spec": {"replicas": 0}})
    assert apps.read_namespaced_stateful_set("st", kube_namespace).spec.replicas == 0
    status, scale = call(kube_api, "GET", _scale_path(kube_namespace, "st", "statefulsets"))
    assert status == 200 and scale["spec"] == {}  # a zero is omitted from the Scale's spec
    rs = _deployment("rs")
    rs["kind"] = "ReplicaSet"
    apps.create_namespaced_replica_set(kube_namespace, rs)
    status, scale = call(kube_api, "GET", _scale_path(kube_namespace, "rs", "replicasets"))
    assert status == 200 and scale["spec"]["replicas"] == 1 and scale["status"]["selector"] == "app=rs"


def test_custom_resource_scale(kube_api, kube_namespace, gadgets):
    path = f"/apis/{gadgets}/v1/namespaces/{kube_namespace}/gadgets"
    status, _, _ = request(kube_api, "POST", path, {"apiVersion": f"{gadgets}/v1", "kind": "Gadget",
                                                    "metadata": {"name": "g"}, "spec": {"replicas": 2}})
    assert status == 201
    call(kube_api, "PATCH", f"{path}/g/status", {"status": {"replicas": 1, "selector": "app=g"}},
         content_type="application/merge-patch+json")
    status, scale = call(kube_api, "GET", f"{path}/g/scale")
    assert status == 200
    assert scale["spec"] == {"replicas": 2} and scale["status"] == {"replicas": 1, "selector": "app=g"}
    status, scale = call(kube_api, "PATCH", f"{path}/g/scale", {"spec": {"replicas": 7}},
                         content_type="application/merge-patch+json")
    assert status == 200 and scale["spec"]["replicas"] == 7
    assert call(kube_api, "GET", f"{path}/g")[1]["spec"]["replicas"] == 7
    _, resources = call(kube_api, "GET", f"/apis/{gadgets}/v1")
    assert "gadgets/scale" in {r["name"] for r in resources["resources"]}
