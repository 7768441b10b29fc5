"""Cluster writes against a Kubernetes API (the sandbox, or a real cluster via WAVECD_TEST_KUBECONFIG):
server-side apply, Replace, create, delete with propagation policies, dry-run, and error messages."""

from __future__ import annotations

import pytest
from kubernetes import client

from shared.cluster.client import Cluster
from shared.cluster.kube_errors import KubeInvalid, KubeNotFound, UnknownKind
from shared.core.errors import StallingError
from shared.core.resources import TRACKING_ANNOTATION, ResourceKey
from tests.cluster.conftest import wait_for

pytestmark = pytest.mark.integration


def configmap(name: str, data: dict[str, str], namespace: str | None = None, **meta: object) -> dict:
    metadata: dict = {"name": name, **meta}
    if namespace:
        metadata["namespace"] = namespace
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": data}


def cm_key(namespace: str, name: str) -> ResourceKey:
    return ResourceKey("", "ConfigMap", namespace, name)


def test_apply_creates_with_tracking_and_manager(cluster: Cluster, kube_namespace: str,
                                                  kube_api: client.ApiClient) -> None:
    obj = cluster.prepare(configmap("web", {"a": "1"}), kube_namespace, "guestbook", "annotation")
    result = cluster.apply(obj)
    assert result["metadata"]["annotations"][TRACKING_ANNOTATION] == f"guestbook:/ConfigMap:{kube_namespace}/web"
    live = client.CoreV1Api(kube_api).read_namespaced_config_map("web", kube_namespace)
    assert live.data == {"a": "1"}
    assert live.metadata.annotations[TRACKING_ANNOTATION] == f"guestbook:/ConfigMap:{kube_namespace}/web"
    managers = {(m.manager, m.operation) for m in live.metadata.managed_fields}
    assert ("wavecd", "Apply") in managers


def test_reapply_is_a_noop_and_dropped_fields_go(cluster: Cluster, kube_namespace: str,
                                                 kube_api: client.ApiClient) -> None:
    obj = cluster.prepare(configmap("web", {"a": "1", "b": "2"}, labels={"tier": "web"}), kube_namespace,
                          "guestbook", "annotation")
    first = cluster.apply(obj)
    again = cluster.apply(obj)
    assert again["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]
    del obj["data"]["b"]
    del obj["metadata"]["labels"]
    third = cluster.apply(obj)
    assert third["metadata"]["resourceVersion"] != first["metadata"]["resourceVersion"]
    live = client.CoreV1Api(kube_api).read_namespaced_config_map("web", kube_namespace)
    assert live.data == {"a": "1"}
    assert not (live.metadata.labels or {}).get("tier")


def test_apply_force_takes_fields_from_another_manager(cluster: Cluster, kube_namespace: str,
                                                       kube_api: client.ApiClient) -> None:
    core = client.CoreV1Api(kube_api)
    core.create_namespaced_config_map(kube_namespace, configmap("web", {"a": "manual"}),
                                      field_manager="kubectl-edit")
    obj = cluster.prepare(configmap("web", {"a": "git"}), kube_namespace, "guestbook", "annotation")
    cluster.apply(obj)
    assert core.read_namespaced_config_map("web", kube_namespace).data == {"a": "git"}


def test_dry_run_writes_nothing(cluster: Cluster, kube_namespace: str, kube_api: client.ApiClient) -> None:
    core = client.CoreV1Api(kube_api)
    obj = cluster.prepare(configmap("dry", {"a": "1"}), kube_namespace, "guestbook", "annotation")
    predicted = cluster.dry_run_apply(obj)
    assert predicted["data"] == {"a": "1"}
    assert predicted["metadata"]["annotations"][TRACKING_ANNOTATION].startswith("guestbook:")
    assert cluster.get(cm_key(kube_namespace, "dry"), fresh=True) is None
    assert cluster.create(obj, dry_run=True)["metadata"]["name"] == "dry"
    assert cluster.replace(obj, dry_run=True)["data"] == {"a": "1"}
    assert cluster.get(cm_key(kube_namespace, "dry"), fresh=True) is None

    real = cluster.apply(obj)
    changed = cluster.prepare(configmap("dry", {"a": "2"}), kube_namespace, "guestbook", "annotation")
    assert cluster.apply(changed, dry_run=True)["data"] == {"a": "2"}
    assert cluster.replace(changed, dry_run=True)["data"] == {"a": "2"}
    assert cluster.delete("v1", cm_key(kube_namespace, "dry"), dry_run=True) is True
    live = core.read_namespaced_config_map("dry", kube_namespace)
    assert live.data == {"a": "1"}
    assert live.metadata.resource_version == real["metadata"]["resourceVersion"]


def test_delete_options_in_the_body_override_the_query(kube_namespace: str, kube_api: client.ApiClient) -> None:
    """Kubernetes reads a DELETE's options from its body when it has one and ignores the query string, so a
    `dryRun` in the query next to a body deletes for real: why `Cluster.delete` puts dryRun in the body."""
    core = client.CoreV1Api(kube_api)
    core.create_namespaced_config_map(kube_namespace, configmap("body-wins", {"a": "1"}))
    core.delete_namespaced_config_map("body-wins", kube_namespace, dry_run="All",
                                      body=client.V1DeleteOptions(propagation_policy="Background"))
    assert not core.list_namespaced_config_map(kube_namespace, field_selector="metadata.name=body-wins").items
    core.create_namespaced_config_map(kube_namespace, configmap("body-dry", {"a": "1"}))
    core.delete_namespaced_config_map("body-dry", kube_namespace,
                                      body=client.V1DeleteOptions(dry_run=["All"], propagation_policy="Background"))
    assert core.read_namespaced_config_map("body-dry", kube_namespace).data == {"a": "1"}


def test_replace_puts_whole_object_and_creates_if_missing(cluster: Cluster, kube_namespace: str,
                                                          kube_api: client.ApiClient) -> None:
    core = client.CoreV1Api(kube_api)
    obj = cluster.prepare(configmap("rep", {"a": "1", "b": "2"}), kube_namespace, "guestbook", "annotation")
    created = cluster.replace(obj)
    assert created["data"] == {"a": "1", "b": "2"}
    core.patch_namespaced_config_map("rep", kube_namespace, {"data": {"manual": "x"}})
    smaller = cluster.prepare(configmap("rep", {"a": "9"}), kube_namespace, "guestbook", "annotation")
    replaced = cluster.replace(smaller)
    assert replaced["data"] == {"a": "9"}  # PUT: fields not in the object are gone, whoever set them
    assert core.read_namespaced_config_map("rep", kube_namespace).data == {"a": "9"}


def test_create_with_generate_name(cluster: Cluster, kube_namespace: str) -> None:
    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"generateName": "hook-"}, "data": {"x": "1"}}
    prepared = cluster.prepare(obj, kube_namespace, "guestbook", "annotation+label")
    made = cluster.create(prepared)
    assert made["metadata"]["name"].startswith("hook-") and len(made["metadata"]["name"]) > len("hook-")
    assert made["metadata"]["namespace"] == kube_namespace
    assert made["metadata"]["labels"] == {"app.kubernetes.io/instance": "guestbook"}
    with pytest.raises(StallingError, match="has no metadata.name"):
        cluster.apply(prepared)  # server-side apply needs a name


@pytest.mark.parametrize("policy", ["Foreground", "background", "Orphan"])
def test_delete_with_propagation(cluster: Cluster, kube_namespace: str, kube_api: client.ApiClient,
                                 policy: str) -> None:
    core = client.CoreV1Api(kube_api)
    owner = cluster.apply(cluster.prepare(configmap("owner", {"a": "1"}), kube_namespace, "g", "annotation"))
    dependent = configmap("dependent", {"b": "2"}, namespace=kube_namespace, ownerReferences=[{
        "apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner["metadata"]["uid"]}])
    core.create_namespaced_config_map(kube_namespace, dependent)

    assert cluster.delete("v1", cm_key(kube_namespace, "owner"), propagation=policy) is True
    wait_for(lambda: cluster.get(cm_key(kube_namespace, "owner"), fresh=True) is None)
    if policy == "Orphan":
        left = core.read_namespaced_config_map("dependent", kube_namespace)
        assert not left.metadata.owner_references  # orphaned: the reference to the owner is removed
    else:
        wait_for(lambda: cluster.get(cm_key(kube_namespace, "dependent"), fresh=True) is None, timeout=60)
    assert cluster.delete("v1", cm_key(kube_namespace, "owner")) is False  # already gone


def test_unknown_propagation_policy(cluster: Cluster, kube_namespace: str) -> None:
    with pytest.raises(StallingError, match="unknown propagation policy 'cascade'"):
        cluster.delete("v1", cm_key(kube_namespace, "x"), propagation="cascade")


def test_namespace_defaulting_and_stripping(cluster: Cluster, kube_namespace: str) -> None:
    cm = cluster.prepare(configmap("a", {}), kube_namespace, "g", "annotation")
    assert cm["metadata"]["namespace"] == kube_namespace
    explicit = cluster.prepare(configmap("a", {}, namespace="elsewhere"), kube_namespace, "g", "annotation")
    assert explicit["metadata"]["namespace"] == "elsewhere"
    role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": f"{kube_namespace}-reader", "namespace": "ignored"}, "rules": []}
    prepared = cluster.prepare(role, kube_namespace, "g", "annotation")
    assert "namespace" not in prepared["metadata"]
    assert role["metadata"]["namespace"] == "ignored"  # the input is not modified
    assert prepared["metadata"]["annotations"][TRACKING_ANNOTATION] == (
        f"g:rbac.authorization.k8s.io/ClusterRole:/{kube_namespace}-reader")
    applied = cluster.apply(prepared)
    try:
        assert "namespace" not in applied["metadata"]
        key = ResourceKey("rbac.authorization.k8s.io", "ClusterRole", "", f"{kube_namespace}-reader")
        assert cluster.get(key, fresh=True)["metadata"]["name"] == f"{kube_namespace}-reader"
    finally:
        cluster.delete("rbac.authorization.k8s.io/v1",
                       ResourceKey("rbac.authorization.k8s.io", "ClusterRole", "", f"{kube_namespace}-reader"))


def test_unknown_kind_message(cluster: Cluster, kube_namespace: str) -> None:
    obj = {"apiVersion": "nothing.wavecd.test/v1", "kind": "Gizmo", "metadata": {"name": "g"}}
    with pytest.raises(UnknownKind) as info:
        cluster.prepare(obj, kube_namespace, "g", "annotation")
    assert isinstance(info.value, StallingError)
    assert 'could not find the requested resource kind "Gizmo" in group "nothing.wavecd.test"' in str(info.value)
    with pytest.raises(UnknownKind):
        cluster.resource_info("v1", "Gizmo")


def test_invalid_object_message_has_causes_not_body(cluster: Cluster, kube_namespace: str) -> None:
    obj = cluster.prepare(configmap("Bad_Name", {"payload": "top-secret-value"}), kube_namespace, "g",
                          "annotation")
    with pytest.raises(KubeInvalid) as info:
        cluster.apply(obj)
    err = info.value
    assert isinstance(err, StallingError)
    assert any(c.field == "metadata.name" for c in err.causes)
    assert "metadata.name" in str(err) and f"apply ConfigMap {kube_namespace}/Bad_Name" in str(err)
    assert "top-secret-value" not in str(err)


def test_missing_namespace_is_not_found(cluster: Cluster, kube_namespace: str) -> None:
    obj = cluster.prepare(configmap("x", {}), f"{kube_namespace}-absent", "g", "annotation")
    with pytest.raises(KubeNotFound) as info:
        cluster.apply(obj)
    assert f"{kube_namespace}-absent" in str(info.value)


def test_bad_objects_are_stalling(cluster: Cluster) -> None:
    with pytest.raises(StallingError, match="no apiVersion or kind"):
        cluster.prepare({"metadata": {"name": "x"}}, "d", "g", "annotation")
    with pytest.raises(StallingError, match="has no metadata.name"):
        cluster.prepare({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}}, "d", "g", "annotation")
    with pytest.raises(StallingError, match="must be a mapping"):
        cluster.prepare(["not", "an", "object"], "d", "g", "annotation")  # type: ignore[arg-type]
    with pytest.raises(StallingError, match="needs metadata.namespace"):
        cluster.apply(configmap("x", {}))


def test_namespace_exists(cluster: Cluster, kube_namespace: str) -> None:
    assert cluster.namespace_exists(kube_namespace)
    assert not cluster.namespace_exists(f"{kube_namespace}-absent")


def test_a_field_the_schema_does_not_declare_is_a_content_error(cluster: Cluster, kube_namespace: str) -> None:
    """Server-side apply refuses undeclared fields (Kubernetes answers 500); it must not look transient."""
    obj = cluster.prepare(configmap("typo", {"a": "1"}), kube_namespace, "guestbook", "annotation")
    obj["spec"] = {"replicas": 1}  # a ConfigMap has no spec
    with pytest.raises(KubeInvalid) as err:
        cluster.apply(obj)
    assert isinstance(err.value, StallingError) and not err.value.retryable
    assert ".spec: field not declared in schema" in str(err.value)
    assert cluster.get(cm_key(kube_namespace, "typo"), fresh=True) is None
