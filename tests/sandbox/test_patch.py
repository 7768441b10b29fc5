"""The PATCH flavours: JSON merge (RFC 7386), JSON patch (RFC 6902) and strategic merge."""

from __future__ import annotations

from kubernetes import client

from tests.sandbox.helpers import call


def _deploy(ns: str, name: str = "web") -> dict:
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": ns},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}}, "spec": {
                     "containers": [
                         {"name": "app", "image": "app:1", "env": [{"name": "A", "value": "1"},
                                                                    {"name": "B", "value": "2"}],
                          "ports": [{"containerPort": 8080}],
                          "volumeMounts": [{"name": "data", "mountPath": "/data"}]},
                         {"name": "sidecar", "image": "side:1"}],
                     "volumes": [{"name": "data", "emptyDir": {}}]}}},
    }


def _path(ns: str, name: str = "web") -> str:
    return f"/apis/apps/v1/namespaces/{ns}/deployments/{name}"


def _containers(obj: dict) -> dict[str, dict]:
    return {c["name"]: c for c in obj["spec"]["template"]["spec"]["containers"]}


def test_merge_patch_replaces_lists_and_deletes_with_null(kube_api, kube_namespace):
    client.AppsV1Api(kube_api).create_namespaced_deployment(kube_namespace, _deploy(kube_namespace))
    status, obj = call(kube_api, "PATCH", _path(kube_namespace), {
        "metadata": {"labels": {"tier": "web"}},
        "spec": {"template": {"spec": {"containers": [{"name": "only", "image": "only:1"}]}}}},
        content_type="application/merge-patch+json")
    assert status == 200
    assert list(_containers(obj)) == ["only"]
    assert obj["metadata"]["labels"] == {"tier": "web"}
    status, obj = call(kube_api, "PATCH", _path(kube_namespace), {"metadata": {"labels": {"tier": None}}},
                       content_type="application/merge-patch+json")
    assert "tier" not in (obj["metadata"].get("labels") or {})


def test_merge_patch_with_stale_resource_version_conflicts(kube_api, kube_namespace):
    client.AppsV1Api(kube_api).create_namespaced_deployment(kube_namespace, _deploy(kube_namespace))
    status, body = call(kube_api, "PATCH", _path(kube_namespace), {"metadata": {"resourceVersion": "1"},
                                                                   "spec": {"replicas": 4}},
                        content_type="application/merge-patch+json")
    assert status == 409 and body["reason"] == "Conflict"


def test_json_patch_ops_and_failed_test(kube_api, kube_namespace):
    client.AppsV1Api(kube_api).create_namespaced_deployment(kube_namespace, _deploy(kube_namespace))
    ops = [
        {"op": "test", "path": "/spec/replicas", "value": 1},
        {"op": "replace", "path": "/spec/replicas", "value": 3},
        {"op": "add", "path": "/metadata/labels", "value": {"a/b": "c"}},
        {"op": "add", "path": "/spec/template/spec/containers/0/env/-", "value": {"name": "C", "value": "3"}},
        {"op": "remove", "path": "/spec/template/spec/containers/1"},
        {"op": "copy", "from": "/spec/replicas", "path": "/metadata/annotations"},
    ]
    ops[-1] = {"op": "add", "path": "/metadata/annotations", "value": {"x": "y"}}
    ops.append({"op": "move", "from": "/metadata/annotations/x", "path": "/metadata/annotations/z"})
    status, obj = call(kube_api, "PATCH", _path(kube_namespace), ops, content_type="application/json-patch+json")
    assert status == 200, obj
    assert obj["spec"]["replicas"] == 3
    assert obj["metadata"]["labels"] == {"a/b": "c"}
    assert obj["metadata"]["annotations"] == {"z": "y"}
    assert [e["name"] for e in _containers(obj)["app"]["env"]] == ["A", "B", "C"]
    assert list(_containers(obj)) == ["app"]
    status, body = call(kube_api, "PATCH", _path(kube_namespace),
                        [{"op": "test", "path": "/spec/replicas", "value": 99},
                         {"op": "replace", "path": "/spec/replicas", "value": 5}],
                        content_type="application/json-patch+json")
    assert status == 422 and body["kind"] == "Status"
    assert client.AppsV1Api(kube_api).read_namespaced_deployment("web", kube_namespace).spec.replicas == 3


def test_strategic_merge_merges_lists_by_key(kube_api, kube_namespace):
    apps = client.AppsV1Api(kube_api)
    apps.create_namespaced_deployment(kube_namespace, _deploy(kube_namespace))
    patch = {"spec": {"template": {"spec": {
        "containers": [{"name": "app", "image": "app:2", "env": [{"name": "B", "value": "22"}],
                        "volumeMounts": [{"mountPath": "/cache", "name": "cache"}]}],
        "volumes": [{"name": "cache", "emptyDir": {}}]}}}}
    obj = apps.patch_namespaced_deployment("web", kube_namespace, patch).to_dict()
    containers = {c["name"]: c for c in obj["spec"]["template"]["spec"]["containers"]}
    assert set(containers) == {"app", "sidecar"}
    assert containers["app"]["image"] == "app:2"
    assert {e["name"]: e["value"] for e in containers["app"]["env"]} == {"A": "1", "B": "22"}
    assert {m["mount_path"] for m in containers["app"]["volume_mounts"]} == {"/data", "/cache"}
    assert {v["name"] for v in obj["spec"]["template"]["spec"]["volumes"]} == {"data", "cache"}


def test_strategic_merge_delete_and_replace_directives(kube_api, kube_namespace):
    client.AppsV1Api(kube_api).create_namespaced_deployment(kube_namespace, _deploy(kube_namespace))
    status, obj = call(kube_api, "PATCH", _path(kube_namespace), {"spec": {"template": {"spec": {
        "containers": [{"name": "sidecar", "$patch": "delete"},
                       {"name": "app", "env": [{"name": "A", "$patch": "delete"}]}]}}}},
        content_type="application/strategic-merge-patch+json")
    assert status == 200, obj
    assert list(_containers(obj)) == ["app"]
    assert [e["name"] for e in _containers(obj)["app"]["env"]] == ["B"]
    replace = {"metadata": {"labels": {"$patch": "replace", "only": "this"}}}
    # with no labels to replace, Kubernetes sets none
    status, obj = call(kube_api, "PATCH", _path(kube_namespace), replace,
                       content_type="application/strategic-merge-patch+json")
    assert status == 200 and "labels" not in obj["metadata"]
    call(kube_api, "PATCH", _path(kube_namespace), {"metadata": {"labels": {"a": "1", "b": "2"}}},
         content_type="application/strategic-merge-patch+json")
    status, obj = call(kube_api, "PATCH", _path(kube_namespace), replace,
                       content_type="application/strategic-merge-patch+json")
    assert status == 200 and obj["metadata"]["labels"] == {"only": "this"}


def test_strategic_merge_service_ports_by_port(kube_api, kube_namespace):
    core = client.CoreV1Api(kube_api)
    core.create_namespaced_service(kube_namespace, {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "svc"},
        "spec": {"ports": [{"name": "http", "port": 80}, {"name": "https", "port": 443}]}})
    svc = core.patch_namespaced_service("svc", kube_namespace, {"spec": {"ports": [
        {"port": 80, "targetPort": 8080}]}})
    ports = {p.port: p for p in svc.spec.ports}
    assert set(ports) == {80, 443}
    assert ports[80].target_port == 8080 and ports[80].name == "http"


def test_unknown_patch_content_type_is_415(kube_api, kube_namespace):
    client.AppsV1Api(kube_api).create_namespaced_deployment(kube_namespace, _deploy(kube_namespace))
    status, body = call(kube_api, "PATCH", _path(kube_namespace), "{}", content_type="application/xml")
    assert status == 415 and body["reason"] == "UnsupportedMediaType"
