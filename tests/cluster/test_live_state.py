"""Reading live state: the informer-style cache sees other clients' changes through its watch, serves
lookups without requests, and `fresh=True` always asks the server. Also discovery of a new CRD, the
request-count hook and transport failures."""

from __future__ import annotations

import os
import uuid

import pytest
from kubernetes import client

import shared.cluster.client as cluster_module
from shared.cluster.client import Cluster
from shared.cluster.kube_errors import KubeUnavailable, UnknownKind
from shared.core.resources import ResourceKey
from shared.core.tracking import check_ownership
from tests.cluster.conftest import wait_for

pytestmark = pytest.mark.integration


def cm(name: str, namespace: str, data: dict[str, str]) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": namespace},
            "data": data}


def test_cache_follows_changes_made_by_another_client(cluster: Cluster, kube_namespace: str,
                                                      kube_api: client.ApiClient) -> None:
    core = client.CoreV1Api(kube_api)
    key = ResourceKey("", "ConfigMap", kube_namespace, "watched")
    assert cluster.get(key) is None  # starts the list+watch of configmaps
    core.create_namespaced_config_map(kube_namespace, cm("watched", kube_namespace, {"v": "1"}))
    wait_for(lambda: (cluster.get(key) or {}).get("data") == {"v": "1"})
    core.patch_namespaced_config_map("watched", kube_namespace, {"data": {"v": "2"}})
    wait_for(lambda: (cluster.get(key) or {}).get("data") == {"v": "2"})
    core.delete_namespaced_config_map("watched", kube_namespace)
    wait_for(lambda: cluster.get(key) is None)
    stats = cluster.live.stats()["/v1/configmaps"]
    assert stats["lists"] >= 1 and stats["watches"] >= 1 and stats["events"] >= 3


def test_lookups_hand_out_copies(cluster: Cluster, kube_namespace: str) -> None:
    cluster.apply(cluster.prepare(cm("c", kube_namespace, {"v": "1"}), kube_namespace, "g", "annotation"))
    key = ResourceKey("", "ConfigMap", kube_namespace, "c")
    first = wait_for(lambda: cluster.get(key))
    first["data"]["v"] = "mutated"
    assert cluster.get(key)["data"] == {"v": "1"}


def test_live_for_and_fresh_get(cluster: Cluster, kube_namespace: str, kube_api: client.ApiClient) -> None:
    for i in range(3):
        cluster.apply(cluster.prepare(cm(f"o{i}", kube_namespace, {"i": str(i)}), kube_namespace, "app",
                                      "annotation"))
    keys = [("v1", ResourceKey("", "ConfigMap", kube_namespace, f"o{i}")) for i in range(4)]
    keys.append(("nothing.wavecd.test/v1", ResourceKey("nothing.wavecd.test", "Gizmo", kube_namespace, "x")))
    found = wait_for(lambda: (lambda r: r if len(r) == 3 else None)(cluster.live_for(keys)))
    assert sorted(k.name for k in found) == ["o0", "o1", "o2"]
    assert found[keys[1][1]]["data"] == {"i": "1"}
    # fresh=True asks the server even when the cache holds the object
    before = cluster.transport.counts[("get", 200)]
    assert cluster.get(keys[0][1], api_version="v1", fresh=True)["data"] == {"i": "0"}
    assert cluster.transport.counts[("get", 200)] == before + 1
    assert cluster.get(keys[0][1], api_version="v1")["data"] == {"i": "0"}
    assert cluster.transport.counts[("get", 200)] == before + 1


def test_ownership_of_a_live_object(cluster: Cluster, kube_namespace: str) -> None:
    cluster.apply(cluster.prepare(cm("shared", kube_namespace, {}), kube_namespace, "first", "annotation"))
    live = cluster.get(ResourceKey("", "ConfigMap", kube_namespace, "shared"), fresh=True)
    assert check_ownership(live, "first", True) is None
    reason = check_ownership(live, "second", False)
    assert reason is not None and "'first'" in reason
    with pytest.raises(Exception, match="shared resource found"):
        check_ownership(live, "second", True)


def test_discovery_finds_a_crd_created_after_the_first_lookup(cluster: Cluster, crd_factory,
                                                             kube_namespace: str) -> None:
    group = f"t{uuid.uuid4().hex[:8]}.wavecd.test"
    with pytest.raises(UnknownKind):
        cluster.resource_info(f"{group}/v1", "Gadget")
    crd_factory(kind="Gadget", group=group)
    info = wait_for(lambda: _try_info(cluster, f"{group}/v1", "Gadget"), timeout=30)
    assert (info.plural, info.namespaced) == ("gadgets", True)
    obj = cluster.prepare({"apiVersion": f"{group}/v1", "kind": "Gadget", "metadata": {"name": "g1"},
                           "spec": {"size": 3}}, kube_namespace, "g", "annotation")
    applied = wait_for(lambda: _try_apply(cluster, obj), timeout=30)
    assert applied["spec"] == {"size": 3}


def _try_info(cluster: Cluster, api_version: str, kind: str):
    try:
        return cluster.resource_info(api_version, kind)
    except UnknownKind:
        return None


def _try_apply(cluster: Cluster, obj: dict):
    try:
        return cluster.apply(obj)
    except UnknownKind:
        return None
    except Exception as exc:  # a real API server may still be establishing the CRD (404)
        if getattr(exc, "code", None) == 404:
            return None
        raise


def test_on_request_hook_counts_by_verb_code_kind_and_namespace(cluster: Cluster, kube_namespace: str,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[str, int, str, str]] = []
    monkeypatch.setattr(cluster_module, "on_request",
                        lambda verb, code, kind, namespace: seen.append((verb, code, kind, namespace)))
    cluster.get(ResourceKey("", "ConfigMap", kube_namespace, "absent"), fresh=True)
    obj = cluster.prepare(cm("h", kube_namespace, {}), kube_namespace, "g", "annotation")
    cluster.apply(obj)
    assert ("get", 404, "ConfigMap", kube_namespace) in seen
    assert ("patch", 200, "ConfigMap", kube_namespace) in seen or ("patch", 201, "ConfigMap", kube_namespace) in seen


def test_unreachable_cluster_is_transient(tmp_path) -> None:
    path = tmp_path / "kubeconfig"
    path.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        "clusters: [{name: c, cluster: {server: 'http://127.0.0.1:9'}}]\n"
        "users: [{name: u, user: {token: secret-token-value}}]\n"
        "contexts: [{name: c, context: {cluster: c, user: u}}]\n")
    dead = Cluster.from_kubeconfig(str(path), name="dead")
    try:
        with pytest.raises(KubeUnavailable) as info:
            dead.resource_info("v1", "ConfigMap")
        assert info.value.retryable
        assert "cannot reach the API server (cluster dead)" in str(info.value)
        assert "secret-token-value" not in str(info.value)
    finally:
        dead.close()


@pytest.mark.emulator_only("the emulator's request counters")
def test_no_requests_for_cached_reads(sandbox_only, make_cluster, kube_namespace: str) -> None:
    """Emulator counters: after warming, reading 50 objects' live state makes no request at all."""
    cluster = make_cluster()
    for i in range(50):
        cluster.apply(cluster.prepare(cm(f"n{i}", kube_namespace, {}), kube_namespace, "app", "annotation"))
    keys = [("v1", ResourceKey("", "ConfigMap", kube_namespace, f"n{i}")) for i in range(50)]
    wait_for(lambda: len(cluster.live_for(keys)) == 50)
    sandbox_only.reset_counts()
    for _ in range(3):
        assert len(cluster.live_for(keys)) == 50
    counts = {k: v for k, v in sandbox_only.request_counts().items() if k[0] != "watch"}
    assert counts == {}


def test_list_from_cache(cluster: Cluster, kube_namespace: str) -> None:
    for name in ("l1", "l2"):
        cluster.apply(cluster.prepare(cm(name, kube_namespace, {}), kube_namespace, "g", "annotation"))
    listed = wait_for(lambda: [o["metadata"]["name"] for o in cluster.list("v1", "ConfigMap", kube_namespace)
                               if o["metadata"]["name"].startswith("l")] == ["l1", "l2"])
    assert listed


def test_forked_process_gets_its_own_cache(cluster: Cluster, kube_namespace: str) -> None:
    """Celery prefork children inherit the parent's objects but not its watch threads."""
    first = cluster.live
    assert cluster.live is first
    first.pid = -1  # as seen from a child process after fork
    second = cluster.live
    assert second is not first
    assert cluster.get(ResourceKey("", "ConfigMap", kube_namespace, "none")) is None
    first.stop()


def test_forked_process_drops_inherited_connections(cluster: Cluster) -> None:
    cluster.resource_info("v1", "ConfigMap")
    pool = cluster.api_client.rest_client.pool_manager
    assert len(pool.pools) == 1
    cluster.transport._pid = -1  # noqa: SLF001 - as seen from a child process after fork
    cluster.discovery.invalidate()
    cluster.resource_info("v1", "ConfigMap")  # works, over a new connection
    assert cluster.transport._pid == os.getpid()  # noqa: SLF001
