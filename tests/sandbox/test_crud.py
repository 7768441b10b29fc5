"""Create/get/list/replace/delete semantics through the typed official client."""

from __future__ import annotations

import base64
import uuid

import pytest
from kubernetes import client

from tests.sandbox.helpers import api_error


def _cm(name: str, labels: dict[str, str] | None = None, data: dict[str, str] | None = None) -> client.V1ConfigMap:
    return client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name, labels=labels), data=data or {"k": "v"})


def _deployment(name: str, image: str = "nginx:1.25", replicas: int = 1) -> dict:
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{"name": "main", "image": image}]}}},
    }


def test_create_sets_server_fields(kube_api, kube_namespace):
    core = client.CoreV1Api(kube_api)
    created = core.create_namespaced_config_map(kube_namespace, _cm("one"))
    assert created.metadata.uid
    assert created.metadata.creation_timestamp is not None
    assert int(created.metadata.resource_version) > 0
    assert created.metadata.namespace == kube_namespace
    got = core.read_namespaced_config_map("one", kube_namespace)
    assert got.metadata.uid == created.metadata.uid
    assert got.data == {"k": "v"}


def test_resource_version_increases_across_objects(kube_api, kube_namespace):
    core = client.CoreV1Api(kube_api)
    first = core.create_namespaced_config_map(kube_namespace, _cm("a"))
    second = core.create_namespaced_config_map(kube_namespace, _cm("b"))
    assert int(second.metadata.resource_version) > int(first.metadata.resource_version)


def test_duplicate_create_is_already_exists(kube_api, kube_namespace):
    core = client.CoreV1Api(kube_api)
    core.create_namespaced_config_map(kube_namespace, _cm("dup"))
    status, body = api_error(core.create_namespaced_config_map, kube_namespace, _cm("dup"))
    assert status == 409
    assert body["kind"] == "Status" and body["status"] == "Failure"
    assert body["reason"] == "AlreadyExists"
    assert body["details"]["name"] == "dup" and body["details"]["kind"] == "configmaps"


def test_missing_object_is_not_found(kube_api, kube_namespace):
    status, body = api_error(client.CoreV1Api(kube_api).read_namespaced_config_map, "nope", kube_namespace)
    assert status == 404 and body["reason"] == "NotFound"
    assert body["details"]["name"] == "nope"


def test_missing_namespace_is_not_found(kube_api):
    missing = f"wcd-missing-{uuid.uuid4().hex[:8]}"
    status, body = api_error(client.CoreV1Api(kube_api).create_namespaced_config_map, missing, _cm("x"))
    assert status == 404 and body["reason"] == "NotFound"
    assert body["details"]["kind"] == "namespaces"


def test_body_namespace_must_match_url(kube_api, kube_namespace):
    body = _cm("x")
    body.metadata.namespace = "default"
    status, result = api_error(client.CoreV1Api(kube_api).create_namespaced_config_map, kube_namespace, body)
    assert status == 400 and result["reason"] == "BadRequest"


@pytest.mark.parametrize("name", ["Upper", "under_score", "-lead", "x" * 254])
def test_invalid_names_are_422(kube_api, kube_namespace, name):
    status, body = api_error(client.CoreV1Api(kube_api).create_namespaced_config_map, kube_namespace, _cm(name))
    assert status == 422 and body["reason"] == "Invalid"
    assert any(c["field"] == "metadata.name" for c in body["details"]["causes"])


def _service(name: str) -> client.V1Service:
    return client.V1Service(metadata=client.V1ObjectMeta(name=name),
                            spec=client.V1ServiceSpec(ports=[client.V1ServicePort(port=80)]))


def test_service_names_are_rfc1123_labels(kube_api, kube_namespace):
    """Kubernetes 1.36 relaxed Service names from DNS-1035 to RFC 1123 labels: a leading digit is fine."""
    core = client.CoreV1Api(kube_api)
    assert core.create_namespaced_service(kube_namespace, _service("1svc")).metadata.name == "1svc"
    status, body = api_error(core.create_namespaced_service, kube_namespace, _service("svc.dot"))
    assert status == 422
    assert body["details"]["causes"] == [{"reason": "FieldValueInvalid", "field": "metadata.name",
                                          "message": 'Invalid value: "svc.dot": must not contain dots'}]
    status, body = api_error(core.create_namespaced_service, kube_namespace, _service("Upper"))
    assert status == 422
    assert "RFC 1123 label" in body["details"]["causes"][0]["message"]


def test_generate_name(kube_api, kube_namespace):
    core = client.CoreV1Api(kube_api)
    made = core.create_namespaced_config_map(
        kube_namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(generate_name="gen-")))
    assert made.metadata.name.startswith("gen-") and len(made.metadata.name) == len("gen-") + 5


def test_replace_with_stale_resource_version_conflicts(kube_api, kube_namespace):
    core = client.CoreV1Api(kube_api)
    first = core.create_namespaced_config_map(kube_namespace, _cm("rv"))
    first.data = {"k": "2"}
    updated = core.replace_namespaced_config_map("rv", kube_namespace, first)
    assert int(updated.metadata.resource_version) > int(first.metadata.resource_version)
    first.data = {"k": "3"}  # still carries the old resourceVersion
    status, body = api_error(core.replace_namespaced_config_map, "rv", kube_namespace, first)
    assert status == 409 and body["reason"] == "Conflict"
    assert core.read_namespaced_config_map("rv", kube_namespace).data == {"k": "2"}


def test_replace_missing_object_is_not_found(kube_api, kube_namespace):
    status, _ = api_error(client.CoreV1Api(kube_api).replace_namespaced_config_map, "ghost", kube_namespace,
                          _cm("ghost"))
    assert status == 404


def test_generation_moves_only_with_spec(kube_api, kube_namespace):
    apps = client.AppsV1Api(kube_api)
    dep = apps.create_namespaced_deployment(kube_namespace, _deployment("gen"))
    assert dep.metadata.generation == 1
    labelled = apps.patch_namespaced_deployment("gen", kube_namespace, {"metadata": {"labels": {"x": "y"}}})
    assert labelled.metadata.generation == 1
    assert int(labelled.metadata.resource_version) > int(dep.metadata.resource_version)
    scaled = apps.patch_namespaced_deployment("gen", kube_namespace, {"spec": {"replicas": 3}})
    assert scaled.metadata.generation == 2


def test_noop_update_keeps_resource_version(kube_api, kube_namespace):
    core = client.CoreV1Api(kube_api)
    made = core.create_namespaced_config_map(kube_namespace, _cm("same"))
    again = core.patch_namespaced_config_map("same", kube_namespace, {"data": {"k": "v"}})
    assert again.metadata.resource_version == made.metadata.resource_version


def test_secret_string_data_is_folded_into_data(kube_api, kube_namespace):
    core = client.CoreV1Api(kube_api)
    secret = client.V1Secret(metadata=client.V1ObjectMeta(name="s"), string_data={"password": "hunter2"},
                             data={"user": base64.b64encode(b"admin").decode()})
    made = core.create_namespaced_secret(kube_namespace, secret)
    assert made.string_data is None
    assert base64.b64decode(made.data["password"]) == b"hunter2"
    assert base64.b64decode(made.data["user"]) == b"admin"
    assert made.type == "Opaque"


def test_service_gets_cluster_ip_and_type(kube_api, kube_namespace):
    core = client.CoreV1Api(kube_api)
    svc = client.V1Service(metadata=client.V1ObjectMeta(name="web"),
                           spec=client.V1ServiceSpec(selector={"app": "web"},
                                                     ports=[client.V1ServicePort(port=80)]))
    made = core.create_namespaced_service(kube_namespace, svc)
    assert made.spec.type == "ClusterIP"
    assert made.spec.cluster_ip and made.spec.cluster_ip != "None"
    assert made.spec.cluster_ips == [made.spec.cluster_ip]
    assert made.spec.ports[0].protocol == "TCP"
    # an update that omits clusterIP keeps the allocated one
    made.spec.cluster_ip = None
    made.spec.cluster_ips = None
    kept = core.replace_namespaced_service("web", kube_namespace, made)
    assert kept.spec.cluster_ip == core.read_namespaced_service("web", kube_namespace).spec.cluster_ip


def test_list_across_namespaces_and_list_resource_version(kube_api, kube_namespace):
    core = client.CoreV1Api(kube_api)
    core.create_namespaced_config_map(kube_namespace, _cm("everywhere", labels={"wcd-probe": kube_namespace}))
    listed = core.list_config_map_for_all_namespaces(label_selector=f"wcd-probe={kube_namespace}")
    assert [(i.metadata.namespace, i.metadata.name) for i in listed.items] == [(kube_namespace, "everywhere")]
    assert int(listed.metadata.resource_version) > 0


def test_list_limit_and_continue(kube_api, kube_namespace):
    core = client.CoreV1Api(kube_api)
    for i in range(5):
        core.create_namespaced_config_map(kube_namespace, _cm(f"page-{i}"))
    seen, token = [], None
    while True:
        page = core.list_namespaced_config_map(kube_namespace, limit=2, _continue=token)
        assert len(page.items) <= 2
        seen += [i.metadata.name for i in page.items if i.metadata.name.startswith("page-")]
        token = page.metadata.var_continue
        if not token:
            break
    assert sorted(seen) == [f"page-{i}" for i in range(5)]


def test_delete_returns_and_removes(kube_api, kube_namespace):
    core = client.CoreV1Api(kube_api)
    core.create_namespaced_config_map(kube_namespace, _cm("bye"))
    core.delete_namespaced_config_map("bye", kube_namespace)
    status, _ = api_error(core.read_namespaced_config_map, "bye", kube_namespace)
    assert status == 404
    status, body = api_error(core.delete_namespaced_config_map, "bye", kube_namespace)
    assert status == 404 and body["reason"] == "NotFound"


def test_cluster_scoped_kinds(kube_api):
    rbac = client.RbacAuthorizationV1Api(kube_api)
    name = f"wcd-t-{uuid.uuid4().hex[:8]}"
    role = client.V1ClusterRole(metadata=client.V1ObjectMeta(name=name),
                                rules=[client.V1PolicyRule(api_groups=[""], resources=["pods"], verbs=["get"])])
    made = rbac.create_cluster_role(role)
    try:
        assert made.metadata.namespace is None
        assert rbac.read_cluster_role(name).rules[0].verbs == ["get"]
    finally:
        rbac.delete_cluster_role(name)


def test_post_to_a_named_object_is_405(kube_api, kube_namespace):
    from tests.sandbox.helpers import call

    status, body = call(kube_api, "POST", f"/api/v1/namespaces/{kube_namespace}/configmaps/x",
                        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}})
    assert status == 405 and body["reason"] == "MethodNotAllowed"


def test_wrong_kind_in_body_is_400(kube_api, kube_namespace):
    from tests.sandbox.helpers import call

    status, body = call(kube_api, "POST", f"/api/v1/namespaces/{kube_namespace}/configmaps",
                        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"}})
    assert status == 400 and body["kind"] == "Status"
