"""Deletion: finalizers, propagation policies, owner-reference garbage collection, namespace teardown.

Kubernetes deletes asynchronously: the API server marks or removes only the object a DELETE names, and
the garbage collector, the namespace controller and the CRD finalizer finish the work later. These tests
run on the emulator and on a real control plane, so they wait for conditions instead of expecting them
at once, and assert what the API server itself answers synchronously.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable

from kubernetes import client, watch

from tests.sandbox.helpers import api_error, call, exists, wait_for


def _eventually(check: Callable[[], bool], timeout: float = 60.0) -> bool:
    return bool(wait_for(check, timeout))


_exists = exists


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


def _raw_delete(kube_api, path: str, policy: str | None = None) -> tuple[int, dict]:
    body = {"propagationPolicy": policy} if policy else None
    return call(kube_api, "DELETE", path, body)


def _events(core: client.CoreV1Api, namespace: str, rv: str, until: Callable[[list[tuple]], bool],
            ) -> list[tuple[str, str, bool, tuple[str, ...]]]:
    """Watch ConfigMaps from `rv` until `until(events)`: (type, name, marked for deletion, finalizers)."""
    events: list[tuple[str, str, bool, tuple[str, ...]]] = []
    w = watch.Watch()
    for event in w.stream(core.list_namespaced_config_map, namespace, resource_version=rv, timeout_seconds=60):
        meta = event["object"].metadata
        if meta.name == "kube-root-ca.crt":
            continue
        events.append((event["type"], meta.name, meta.deletion_timestamp is not None, tuple(meta.finalizers or ())))
        if until(events):
            w.stop()
    return events


def test_background_delete_removes_the_owner_at_once_and_dependents_later(kube_api, kube_namespace):
    core = client.CoreV1Api(kube_api)
    owner = core.create_namespaced_config_map(kube_namespace, _cm("bg-owner"))
    core.create_namespaced_config_map(kube_namespace, _cm("bg-child", owners=[_owner_ref(owner)]))
    status, body = _raw_delete(kube_api, f"/api/v1/namespaces/{kube_namespace}/configmaps/bg-owner")
    assert status == 200
    assert body["kind"] == "Status" and body["status"] == "Success"
    assert body["details"] == {"name": "bg-owner", "kind": "configmaps", "uid": owner.metadata.uid}
    assert not _exists(core.read_namespaced_config_map, "bg-owner", kube_namespace)
    assert _eventually(lambda: not _exists(core.read_namespaced_config_map, "bg-child", kube_namespace))


def test_foreground_delete_answers_with_the_marked_owner_and_events_follow_in_order(kube_api, kube_namespace):
    core = client.CoreV1Api(kube_api)
    rv = core.list_namespaced_config_map(kube_namespace).metadata.resource_version
    owner = core.create_namespaced_config_map(kube_namespace, _cm("fg"))
    core.create_namespaced_config_map(kube_namespace, _cm("fg-a", owners=[_owner_ref(owner)]))
    core.create_namespaced_config_map(kube_namespace, _cm("fg-b", owners=[_owner_ref(owner, block=True)]))
    status, body = _raw_delete(kube_api, f"/api/v1/namespaces/{kube_namespace}/configmaps/fg", "Foreground")
    assert status == 200 and body["kind"] == "ConfigMap"
    assert body["metadata"]["finalizers"] == ["foregroundDeletion"]
    assert body["metadata"]["deletionTimestamp"] and body["metadata"]["deletionGracePeriodSeconds"] == 0
    events = _events(core, kube_namespace, rv, lambda e: e[-1][:2] == ("DELETED", "fg"))
    deletions = [e for e in events if e[0] != "ADDED"]
    assert deletions[0] == ("MODIFIED", "fg", True, ("foregroundDeletion",))
    assert {e[:2] for e in deletions[1:3]} == {("DELETED", "fg-a"), ("DELETED", "fg-b")}
    assert deletions[3][:2] == ("DELETED", "fg") and len(deletions) == 4


def test_a_non_blocking_dependent_does_not_hold_a_foreground_owner(kube_api, kube_namespace):
    core = client.CoreV1Api(kube_api)
    owner = core.create_namespaced_config_map(kube_namespace, _cm("nb-owner"))
    core.create_namespaced_config_map(kube_namespace, _cm("nb-child", ["wavecd.test/hold"], [_owner_ref(owner)]))
    core.delete_namespaced_config_map("nb-owner", kube_namespace, propagation_policy="Foreground")
    assert _eventually(lambda: not _exists(core.read_namespaced_config_map, "nb-owner", kube_namespace))
    child = core.read_namespaced_config_map("nb-child", kube_namespace)
    assert child.metadata.deletion_timestamp is not None and child.metadata.finalizers == ["wavecd.test/hold"]
    core.patch_namespaced_config_map("nb-child", kube_namespace, {"metadata": {"finalizers": None}})
    assert not _exists(core.read_namespaced_config_map, "nb-child", kube_namespace)


def test_orphan_delete_answers_with_the_orphan_finalizer_then_releases_dependents(kube_api, kube_namespace):
    core = client.CoreV1Api(kube_api)
    rv = core.list_namespaced_config_map(kube_namespace).metadata.resource_version
    owner = core.create_namespaced_config_map(kube_namespace, _cm("or"))
    core.create_namespaced_config_map(kube_namespace, _cm("or-child", owners=[_owner_ref(owner)]))
    status, body = _raw_delete(kube_api, f"/api/v1/namespaces/{kube_namespace}/configmaps/or", "Orphan")
    assert status == 200 and body["metadata"]["finalizers"] == ["orphan"]
    events = _events(core, kube_namespace, rv, lambda e: e[-1][:2] == ("DELETED", "or"))
    assert [e for e in events if e[0] != "ADDED"] == [
        ("MODIFIED", "or", True, ("orphan",)), ("MODIFIED", "or-child", False, ()),
        ("DELETED", "or", True, ("orphan",))]
    assert not core.read_namespaced_config_map("or-child", kube_namespace).metadata.owner_references


def test_deleting_a_marked_object_again(kube_api, kube_namespace):
    core = client.CoreV1Api(kube_api)
    core.create_namespaced_config_map(kube_namespace, _cm("twice", ["wavecd.test/hold"]))
    path = f"/api/v1/namespaces/{kube_namespace}/configmaps/twice"
    _, first = _raw_delete(kube_api, path)
    status, again = _raw_delete(kube_api, path)
    assert status == 200 and again["metadata"] == first["metadata"]
    _, orphan = _raw_delete(kube_api, path, "Orphan")
    assert orphan["metadata"]["finalizers"] == ["wavecd.test/hold", "orphan"]
    assert _eventually(lambda: core.read_namespaced_config_map(
        "twice", kube_namespace).metadata.finalizers == ["wavecd.test/hold"])
    core.patch_namespaced_config_map("twice", kube_namespace, {"metadata": {"finalizers": None}})


def test_removing_the_last_finalizer_deletes_at_once(kube_api, kube_namespace):
    core = client.CoreV1Api(kube_api)
    core.create_namespaced_config_map(kube_namespace, _cm("last", ["wavecd.test/a", "wavecd.test/b"]))
    core.delete_namespaced_config_map("last", kube_namespace)
    call(kube_api, "PATCH", f"/api/v1/namespaces/{kube_namespace}/configmaps/last",
         {"metadata": {"finalizers": ["wavecd.test/b"]}}, content_type="application/merge-patch+json")
    assert core.read_namespaced_config_map("last", kube_namespace).metadata.finalizers == ["wavecd.test/b"]
    answer = core.patch_namespaced_config_map("last", kube_namespace, {"metadata": {"finalizers": None}})
    assert answer.metadata.name == "last"
    assert not _exists(core.read_namespaced_config_map, "last", kube_namespace)


def test_marking_for_deletion_bumps_generation_of_kinds_that_have_one(kube_api, kube_namespace):
    from tests.sandbox.test_crud import _deployment

    apps = client.AppsV1Api(kube_api)
    body = _deployment("gen-del")
    body["metadata"]["finalizers"] = ["wavecd.test/hold"]
    assert apps.create_namespaced_deployment(kube_namespace, body).metadata.generation == 1
    status, marked = _raw_delete(kube_api, f"/apis/apps/v1/namespaces/{kube_namespace}/deployments/gen-del")
    assert status == 200 and marked["metadata"]["generation"] == 2
    apps.patch_namespaced_deployment("gen-del", kube_namespace, {"metadata": {"finalizers": None}})
    assert not _exists(apps.read_namespaced_deployment, "gen-del", kube_namespace)


def test_jobs_orphan_their_pods_by_default(kube_api, kube_namespace):
    batch = client.BatchV1Api(kube_api)
    batch.create_namespaced_job(kube_namespace, {
        "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"},
        "spec": {"suspend": True, "template": {"spec": {"restartPolicy": "Never",
                                                        "containers": [{"name": "c", "image": "busybox"}]}}}})
    status, body = _raw_delete(kube_api, f"/apis/batch/v1/namespaces/{kube_namespace}/jobs/j")
    assert status == 200 and body["kind"] == "Job" and body["metadata"]["finalizers"] == ["orphan"]
    assert _eventually(lambda: not _exists(batch.read_namespaced_job, "j", kube_namespace))


def test_delete_answers_with_the_object_for_some_kinds(kube_api, kube_namespace):
    core = client.CoreV1Api(kube_api)
    core.create_namespaced_service_account(kube_namespace, {"metadata": {"name": "sa"}})
    status, body = _raw_delete(kube_api, f"/api/v1/namespaces/{kube_namespace}/serviceaccounts/sa")
    assert status == 200 and body["kind"] == "ServiceAccount" and body["metadata"]["name"] == "sa"
    core.create_namespaced_secret(kube_namespace, {"metadata": {"name": "s"}})
    status, body = _raw_delete(kube_api, f"/api/v1/namespaces/{kube_namespace}/secrets/s")
    assert status == 200 and body["kind"] == "Status" and body["details"]["kind"] == "secrets"


def test_namespace_terminates_while_content_is_held(kube_api):
    core = client.CoreV1Api(kube_api)
    name = f"wcd-t-{uuid.uuid4().hex[:10]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    core.create_namespaced_config_map(name, _cm("held", ["wavecd.test/hold"]))
    core.create_namespaced_config_map(name, _cm("free"))
    status, body = _raw_delete(kube_api, f"/api/v1/namespaces/{name}")
    assert status == 200 and body["kind"] == "Namespace"
    assert body["status"]["phase"] == "Terminating" and body["metadata"]["deletionTimestamp"]
    assert "deletionGracePeriodSeconds" not in body["metadata"]
    assert body["spec"]["finalizers"] == ["kubernetes"]
    status, refused = api_error(core.create_namespaced_config_map, name, _cm("late"))
    assert status == 403 and refused["reason"] == "Forbidden"
    assert refused["message"] == (f'configmaps "late" is forbidden: unable to create new content in namespace '
                                  f"{name} because it is being terminated")
    assert refused["details"]["causes"] == [{"reason": "NamespaceTerminating", "field": "metadata.namespace",
                                             "message": f"namespace {name} is being terminated"}]

    def finalizers_reported() -> dict[str, dict] | None:
        conditions = {c.type: c for c in core.read_namespace(name).status.conditions or []}
        remaining = conditions.get("NamespaceFinalizersRemaining")
        return conditions if remaining is not None and remaining.status == "True" else None

    conditions = wait_for(finalizers_reported)
    assert conditions["NamespaceFinalizersRemaining"].message == (
        "Some content in the namespace has finalizers remaining: wavecd.test/hold in 1 resource instances")
    assert conditions["NamespaceContentRemaining"].message == (
        "Some resources are remaining: configmaps. has 1 resource instances")
    assert not _exists(core.read_namespaced_config_map, "free", name)
    assert core.read_namespaced_config_map("held", name).metadata.deletion_timestamp is not None
    assert core.read_namespace(name).status.phase == "Terminating"
    core.patch_namespaced_config_map("held", name, {"metadata": {"finalizers": None}})
    assert _eventually(lambda: not _exists(core.read_namespace, name))


def test_crd_deletion_waits_for_its_custom_resources(kube_api, kube_namespace):
    from tests.sandbox.test_discovery_crd import _crd

    group = f"d{uuid.uuid4().hex[:8]}.wavecd.test"
    ext = client.ApiextensionsV1Api(kube_api)
    ext.create_custom_resource_definition(_crd(group))
    wait_for(lambda: call(kube_api, "GET", f"/apis/{group}/v1")[0] == 200)
    custom = client.CustomObjectsApi(kube_api)
    custom.create_namespaced_custom_object(group, "v1", kube_namespace, "widgets", {
        "apiVersion": f"{group}/v1", "kind": "Widget", "metadata": {"name": "held", "finalizers": ["wavecd.test/h"]}})
    status, body = _raw_delete(kube_api, f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.{group}")
    assert status == 200 and body["metadata"]["finalizers"] == ["customresourcecleanup.apiextensions.k8s.io"]
    assert "deletionGracePeriodSeconds" not in body["metadata"]
    terminating = next(c for c in body["status"]["conditions"] if c["type"] == "Terminating")
    assert (terminating["status"], terminating["reason"]) == ("True", "InstanceDeletionPending")

    def in_progress() -> bool:
        crd = ext.read_custom_resource_definition(f"widgets.{group}")
        return any(c.type == "Terminating" and c.reason == "InstanceDeletionInProgress"
                   for c in crd.status.conditions)

    wait_for(in_progress)
    wait_for(lambda: custom.get_namespaced_custom_object(group, "v1", kube_namespace, "widgets", "held")[
        "metadata"].get("deletionTimestamp"))
    assert in_progress()  # the finalizer keeps the CRD until its last custom resource is gone
    status, refused = api_error(custom.create_namespaced_custom_object, group, "v1", kube_namespace, "widgets", {
        "apiVersion": f"{group}/v1", "kind": "Widget", "metadata": {"name": "late"}})
    assert status == 403 and refused["message"] == (
        f'widgets.{group} "late" is forbidden: create not allowed while custom resource definition is terminating')
    custom.patch_namespaced_custom_object(group, "v1", kube_namespace, "widgets", "held",
                                          {"metadata": {"finalizers": None}})
    assert _eventually(lambda: not _exists(ext.read_custom_resource_definition, f"widgets.{group}"))
    wait_for(lambda: call(kube_api, "GET", f"/apis/{group}/v1")[0] == 404)
    assert json.dumps(call(kube_api, "GET", f"/apis/{group}/v1")[1]) == json.dumps("404 page not found\n")


def test_only_the_finalize_subresource_changes_namespace_finalizers(kube_api):
    core = client.CoreV1Api(kube_api)
    name = f"wcd-t-{uuid.uuid4().hex[:10]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    try:
        _, ns = call(kube_api, "GET", f"/api/v1/namespaces/{name}")
        ns["spec"]["finalizers"], ns["status"]["phase"] = [], "Terminating"
        status, put = call(kube_api, "PUT", f"/api/v1/namespaces/{name}", ns)
        assert status == 200 and put["spec"] == {"finalizers": ["kubernetes"]} and put["status"]["phase"] == "Active"
        status, finalized = call(kube_api, "PUT", f"/api/v1/namespaces/{name}/finalize",
                                 {**put, "spec": {"finalizers": ["kubernetes", "wavecd.test/ns"]}})
        assert status == 200 and finalized["spec"]["finalizers"] == ["kubernetes", "wavecd.test/ns"]
        assert finalized["status"]["phase"] == "Active"
        for method in ("GET", "POST", "PATCH"):
            status, body = call(kube_api, method, f"/api/v1/namespaces/{name}/finalize",
                                None if method == "GET" else {}, content_type=None if method != "PATCH"
                                else "application/merge-patch+json")
            assert status == 405 and body["reason"] == "MethodNotAllowed", method
        _, resources = call(kube_api, "GET", "/api/v1")
        entry = next(r for r in resources["resources"] if r["name"] == "namespaces/finalize")
        assert entry["verbs"] == ["update"] and entry["kind"] == "Namespace"
    finally:
        _, ns = call(kube_api, "GET", f"/api/v1/namespaces/{name}")
        call(kube_api, "PUT", f"/api/v1/namespaces/{name}/finalize", {**ns, "spec": {"finalizers": ["kubernetes"]}})
        core.delete_namespace(name)


def test_finalizing_a_terminating_namespace_removes_it_and_leaves_its_content(kube_api):
    core = client.CoreV1Api(kube_api)
    name = f"wcd-t-{uuid.uuid4().hex[:10]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    core.create_namespaced_config_map(name, _cm("held", ["wavecd.test/hold"]))
    core.delete_namespace(name)
    wait_for(lambda: core.read_namespaced_config_map("held", name).metadata.deletion_timestamp is not None)
    _, ns = call(kube_api, "GET", f"/api/v1/namespaces/{name}")
    status, _ = call(kube_api, "PUT", f"/api/v1/namespaces/{name}/finalize", {**ns, "spec": {"finalizers": []}})
    assert status == 200
    assert wait_for(lambda: not _exists(core.read_namespace, name))
    assert _exists(core.read_namespaced_config_map, "held", name)  # orphaned, as Kubernetes leaves it
    status, body = api_error(core.patch_namespaced_config_map, "held", name, {"metadata": {"finalizers": None}})
    assert status == 404 and body["details"] == {"name": name, "kind": "namespaces"}
    # a namespace of the same name finds it again; then it can be let go
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    assert core.read_namespaced_config_map("held", name).metadata.deletion_timestamp is not None
    core.patch_namespaced_config_map("held", name, {"metadata": {"finalizers": None}})
    assert not _exists(core.read_namespaced_config_map, "held", name)
    core.delete_namespace(name)


def _deleted_rv(list_call: Callable[..., object], namespace: str, since: str, name: str) -> int:
    """The resourceVersion of `name`'s DELETED event, replayed by a watch from `since`."""
    w = watch.Watch()
    for event in w.stream(list_call, namespace, resource_version=since, timeout_seconds=60):
        if event["type"] == "DELETED" and event["object"].metadata.name == name:
            w.stop()
            return int(event["object"].metadata.resource_version)
    raise AssertionError(f"no DELETED event for {name}")


def test_a_claim_in_use_is_kept_until_its_pod_is_gone(kube_api, kube_namespace):
    core = client.CoreV1Api(kube_api)
    since = core.list_namespaced_persistent_volume_claim(kube_namespace).metadata.resource_version
    claim = core.create_namespaced_persistent_volume_claim(kube_namespace, {
        "metadata": {"name": "data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}})
    assert claim.metadata.finalizers == ["kubernetes.io/pvc-protection"]
    # Only a pod on a node holds a claim (the controller ignores unscheduled pods): this one is created bound.
    core.create_namespaced_pod(kube_namespace, {
        "metadata": {"name": "user"},
        "spec": {"nodeName": "wavecd-node", "containers": [{"name": "c", "image": "busybox"}],
                 "volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "data"}}]}})
    status, marked = _raw_delete(kube_api, f"/api/v1/namespaces/{kube_namespace}/persistentvolumeclaims/data")
    assert status == 200 and marked["metadata"]["deletionTimestamp"]
    assert marked["metadata"]["finalizers"] == ["kubernetes.io/pvc-protection"]
    core.delete_namespaced_pod("user", kube_namespace, grace_period_seconds=0)
    wait_for(lambda: not _exists(core.read_namespaced_persistent_volume_claim, "data", kube_namespace))
    pod_gone = _deleted_rv(core.list_namespaced_pod, kube_namespace, since, "user")
    claim_gone = _deleted_rv(core.list_namespaced_persistent_volume_claim, kube_namespace, since, "data")
    assert claim_gone > pod_gone


def test_a_volume_not_bound_is_let_go(kube_api):
    core = client.CoreV1Api(kube_api)
    name = f"wcd-t-{uuid.uuid4().hex[:10]}"
    volume = core.create_persistent_volume({
        "metadata": {"name": name},
        "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                 "hostPath": {"path": "/tmp/wavecd-test"}}})
    assert volume.metadata.finalizers == ["kubernetes.io/pv-protection"]
    status, marked = _raw_delete(kube_api, f"/api/v1/persistentvolumes/{name}")
    assert status == 200 and marked["metadata"]["finalizers"] == ["kubernetes.io/pv-protection"]
    assert wait_for(lambda: not _exists(core.read_persistent_volume, name))
