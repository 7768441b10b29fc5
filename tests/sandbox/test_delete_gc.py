"""Deletion: finalizers, propagation policies, owner-reference garbage collection, namespace teardown."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

from kubernetes import client

from tests.sandbox.helpers import api_error


def _eventually(check: Callable[[], bool], timeout: float = 60.0) -> bool:
    """Real clusters collect garbage asynchronously; poll instead of asserting at once."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.2)
    return check()


def _exists(read: Callable[..., object], *args: str) -> bool:
    try:
        read(*args)
        return True
    except client.ApiException as exc:
        if exc.status == 404:
            return False
        raise


def _cm(name: str, finalizers: list[str] | None = None, owners: list[client.V1OwnerReference] | None = None):
    return client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name, finalizers=finalizers,
                                                           owner_references=owners), data={"k": "v"})


def _owner_ref(obj: client.V1ConfigMap, block: bool = False) -> client.V1OwnerReference:
    return client.V1OwnerReference(api_version="v1", kind="ConfigMap", name=obj.metadata.name,
                                   uid=obj.metadata.uid, block_owner_deletion=block or None)


def test_finalizer_holds_object_until_removed(kube_api, kube_namespace):
    core = client.CoreV1Api(kube_api)
    core.create_namespaced_config_map(kube_namespace, _cm("held", ["wavecd.test/hold"]))
    core.delete_namespaced_config_map("held", kube_namespace)
    held = core.read_namespaced_config_map("held", kube_namespace)
    assert held.metadata.deletion_timestamp is not None
    assert held.metadata.deletion_grace_period_seconds == 0
    assert held.metadata.finalizers == ["wavecd.test/hold"]
    status, body = api_error(core.patch_namespaced_config_map, "held", kube_namespace,
                             {"metadata": {"finalizers": ["wavecd.test/hold", "wavecd.test/new"]}})
    assert status == 422
    core.patch_namespaced_config_map("held", kube_namespace, {"metadata": {"finalizers": None}})
    assert _eventually(lambda: not _exists(core.read_namespaced_config_map, "held", kube_namespace))


def test_background_deletion_collects_dependents(kube_api, kube_namespace):
    core = client.CoreV1Api(kube_api)
    owner = core.create_namespaced_config_map(kube_namespace, _cm("owner"))
    core.create_namespaced_config_map(kube_namespace, _cm("child", owners=[_owner_ref(owner)]))
    core.delete_namespaced_config_map("owner", kube_namespace, propagation_policy="Background")
    assert _eventually(lambda: not _exists(core.read_namespaced_config_map, "child", kube_namespace))


def test_orphan_deletion_keeps_dependents_without_owner(kube_api, kube_namespace):
    core = client.CoreV1Api(kube_api)
    owner = core.create_namespaced_config_map(kube_namespace, _cm("owner"))
    core.create_namespaced_config_map(kube_namespace, _cm("child", owners=[_owner_ref(owner)]))
    core.delete_namespaced_config_map("owner", kube_namespace, propagation_policy="Orphan")
    assert _eventually(lambda: not _exists(core.read_namespaced_config_map, "owner", kube_namespace))
    child = core.read_namespaced_config_map("child", kube_namespace)
    assert not child.metadata.owner_references


def test_dependent_with_a_live_second_owner_survives(kube_api, kube_namespace):
    core = client.CoreV1Api(kube_api)
    first = core.create_namespaced_config_map(kube_namespace, _cm("first"))
    second = core.create_namespaced_config_map(kube_namespace, _cm("second"))
    core.create_namespaced_config_map(kube_namespace, _cm("shared", owners=[_owner_ref(first),
                                                                            _owner_ref(second)]))
    core.delete_namespaced_config_map("first", kube_namespace)
    assert _eventually(lambda: [r.name for r in core.read_namespaced_config_map(
        "shared", kube_namespace).metadata.owner_references or []] == ["second"])


def test_foreground_deletion_waits_for_dependents(kube_api, kube_namespace):
    core = client.CoreV1Api(kube_api)
    owner = core.create_namespaced_config_map(kube_namespace, _cm("fg-owner"))
    core.create_namespaced_config_map(kube_namespace, _cm("fg-child", ["wavecd.test/hold"],
                                                          [_owner_ref(owner, block=True)]))
    core.delete_namespaced_config_map("fg-owner", kube_namespace, propagation_policy="Foreground")
    assert _eventually(lambda: core.read_namespaced_config_map(
        "fg-child", kube_namespace).metadata.deletion_timestamp is not None)
    pending = core.read_namespaced_config_map("fg-owner", kube_namespace)
    assert pending.metadata.deletion_timestamp is not None
    assert "foregroundDeletion" in pending.metadata.finalizers
    core.patch_namespaced_config_map("fg-child", kube_namespace, {"metadata": {"finalizers": None}})
    assert _eventually(lambda: not _exists(core.read_namespaced_config_map, "fg-owner", kube_namespace))


def test_delete_precondition_uid_mismatch_conflicts(kube_api, kube_namespace):
    core = client.CoreV1Api(kube_api)
    core.create_namespaced_config_map(kube_namespace, _cm("pre"))
    status, body = api_error(core.delete_namespaced_config_map, "pre", kube_namespace,
                             body=client.V1DeleteOptions(preconditions=client.V1Preconditions(
                                 uid=str(uuid.uuid4()))))
    assert status == 409 and body["reason"] == "Conflict"


def test_deleting_namespace_deletes_contents(kube_api):
    core = client.CoreV1Api(kube_api)
    name = f"wcd-t-{uuid.uuid4().hex[:10]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    core.create_namespaced_config_map(name, _cm("inside"))
    answer = core.delete_namespace(name)
    assert answer is not None
    assert _eventually(lambda: not _exists(core.read_namespace, name))
    status, _ = api_error(core.read_namespaced_config_map, "inside", name)
    assert status == 404


def test_namespace_gets_active_phase_and_name_label(kube_api, kube_namespace):
    ns = client.CoreV1Api(kube_api).read_namespace(kube_namespace)
    assert ns.status.phase == "Active"
    assert ns.metadata.labels["kubernetes.io/metadata.name"] == kube_namespace


def test_delete_collection_with_selector(kube_api, kube_namespace):
    core = client.CoreV1Api(kube_api)
    core.create_namespaced_config_map(kube_namespace, client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="gone", labels={"sweep": "yes"})))
    core.create_namespaced_config_map(kube_namespace, client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="stays", labels={"sweep": "no"})))
    core.delete_collection_namespaced_config_map(kube_namespace, label_selector="sweep=yes")
    assert _eventually(lambda: not _exists(core.read_namespaced_config_map, "gone", kube_namespace))
    assert _exists(core.read_namespaced_config_map, "stays", kube_namespace)


def test_delete_dry_run_keeps_object(kube_api, kube_namespace):
    core = client.CoreV1Api(kube_api)
    core.create_namespaced_config_map(kube_namespace, _cm("kept"))
    core.delete_namespaced_config_map("kept", kube_namespace, dry_run="All")
    assert _exists(core.read_namespaced_config_map, "kept", kube_namespace)
