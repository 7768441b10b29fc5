"""Sync options and Application fields beyond the basics: CreateNamespace, the `operation` field, wave
timeouts, ApplyOutOfSyncOnly and server-side diff."""

from __future__ import annotations

import pytest
from kubernetes import client

from tests.pipeline.harness import GROUP, VERSION, Harness, manifests, unique
from tests.pipeline.objects import cm

pytestmark = pytest.mark.integration


def test_create_namespace_and_a_sync_asked_through_the_operation_field(harness: Harness, git_factory,
                                                                      celery_workers):
    target = unique("wcd-created")
    harness.extra_namespaces.append(target)
    repo = git_factory.create("createns", {"app/a.yaml": manifests(cm("inside"))})
    celery_workers.start(1, concurrency=2, env=harness.worker_env())
    harness.application("createns", repo.url, "app", automated=False, namespace=target,
                        sync_options=["CreateNamespace=true"])
    harness.wait("indexed", lambda: harness.store.get_app("createns") is not None)
    harness.patch_application("createns", {"operation": {"sync": {"revision": repo.head()},
                                                         "initiatedBy": {"username": "kubectl"}}})
    harness.wait_synced("createns", revision=repo.head())
    assert harness.core.read_namespaced_config_map("inside", target).data == {"k": "v"}
    op = harness.operation("createns")
    assert op["operation"]["initiatedBy"] == {"username": "kubectl"}
    cr = harness.custom.get_namespaced_custom_object(GROUP, VERSION, harness.app_namespace, "applications",
                                                     "createns")
    assert not cr.get("operation"), "the operation field is cleared once taken"


def test_automated_app_into_a_namespace_that_does_not_exist_yet(harness: Harness, git_factory, celery_workers):
    """CreateNamespace=true with a PreSync hook: the namespace is made first, the hook runs in it, and the
    first attempt succeeds (a namespace that is in no manifest is not 'missing from the manifests')."""
    target = unique("wcd-fresh")
    harness.extra_namespaces.append(target)
    hook = {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": "migrate", "annotations": {"argocd.argoproj.io/hook": "PreSync"}},
            "spec": {"backoffLimit": 0, "template": {"spec": {"restartPolicy": "Never", "containers": [
                {"name": "main", "image": "busybox:1.36", "command": ["true"]}]}}}}
    repo = git_factory.create("freshns", {"app/a.yaml": manifests(hook, cm("inside"))})
    with pytest.raises(client.ApiException) as absent:
        harness.core.read_namespace(target)
    assert absent.value.status == 404
    celery_workers.start(1, concurrency=2, env=harness.worker_env())
    harness.application("freshns", repo.url, "app", namespace=target, sync_options=["CreateNamespace=true"],
                        retry={"limit": 0})
    harness.wait_synced("freshns", revision=repo.head())
    op = harness.operation("freshns")
    assert op["phase"] == "Succeeded" and op["retryCount"] == 0, op["message"]
    assert harness.core.read_namespaced_config_map("inside", target).data == {"k": "v"}
    namespace = harness.core.read_namespace(target)
    assert "argocd.argoproj.io/tracking-id" not in (namespace.metadata.annotations or {})
    kinds = [(r["kind"], r.get("hookType")) for r in op["syncResult"]["resources"]]
    assert ("Namespace", None) in kinds and ("Job", "PreSync") in kinds, kinds


def _job(command: list[str], options: str | None = None) -> dict:
    meta: dict = {"name": "migrate"}
    if options:
        meta["annotations"] = {"argocd.argoproj.io/sync-options": options}
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": meta,
            "spec": {"backoffLimit": 0, "template": {"spec": {"restartPolicy": "Never", "containers": [
                {"name": "main", "image": "busybox:1.36", "command": command}]}}}}


@pytest.mark.parametrize("options", ["Force=true", "Force=true,Replace=true"])
def test_force_recreates_what_cannot_change_in_place(harness: Harness, git_factory, celery_workers, options: str):
    """A Job's template is immutable: without Force the sync fails naming it; with Force=true (apply --force, or
    replace --force with Replace=true) the Job is deleted and created again with the new template."""
    name = unique("force")
    repo = git_factory.create(name, {"app/a.yaml": manifests(_job(["true"]))})
    celery_workers.start(1, concurrency=2, env=harness.worker_env())
    harness.application(name, repo.url, "app", retry={"limit": 0})
    harness.wait_synced(name, revision=repo.head())
    batch = client.BatchV1Api(harness.api)
    first_uid = batch.read_namespaced_job("migrate", harness.dest_namespace).metadata.uid

    refused = repo.commit({"app/a.yaml": manifests(_job(["sh", "-c", "exit 0"]))})
    harness.fetch(repo.url, due=[name])
    harness.wait("the immutable change refused", lambda: (harness.operation(name) or {}).get("phase") == "Failed"
                 and harness.operation(name)["syncResult"]["revision"] == refused,
                 describe=lambda: harness.operation(name))
    job_result = next(r for r in harness.operation(name)["syncResult"]["resources"] if r["kind"] == "Job")
    assert job_result["status"] == "SyncFailed" and "field is immutable" in job_result["message"], job_result

    forced = repo.commit({"app/a.yaml": manifests(_job(["sh", "-c", "exit 0"], options))})
    harness.fetch(repo.url, due=[name])
    harness.wait_synced(name, revision=forced)
    job = batch.read_namespaced_job("migrate", harness.dest_namespace)
    assert job.metadata.uid != first_uid
    assert job.spec.template.spec.containers[0].command == ["sh", "-c", "exit 0"]


def test_a_wave_that_never_gets_healthy_times_out_naming_it(harness: Harness, git_factory, celery_workers):
    slow = {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": "slow-job", "annotations": {"argocd.argoproj.io/sync-wave": "0",
                                                            "wavecd.io/wave-timeout": "2s"}},
            "spec": {"backoffLimit": 0, "template": {"spec": {"restartPolicy": "Never", "containers": [
                {"name": "main", "image": "busybox:1.36", "command": ["sleep", "600"]}]}}}}
    repo = git_factory.create("timeout", {"app/a.yaml": manifests(slow, cm("later", wave=1))})
    celery_workers.start(1, concurrency=2, env=harness.worker_env())
    harness.application("timeout", repo.url, "app", retry={"limit": 0})
    op = harness.wait_operation("timeout", "Failed", timeout=60)
    assert "timed out" in op["message"] and "slow-job" in op["message"], op["message"]
    with pytest.raises(client.ApiException) as missing:
        harness.core.read_namespaced_config_map("later", harness.dest_namespace)
    assert missing.value.status == 404


def test_apply_out_of_sync_only_leaves_synced_objects_alone(harness: Harness, git_factory, celery_workers):
    repo = git_factory.create("onlyoos", {"app/a.yaml": manifests(cm("stable"), cm("moving", v="1"))})
    celery_workers.start(1, concurrency=2, env=harness.worker_env())
    harness.application("onlyoos", repo.url, "app", sync_options=["ApplyOutOfSyncOnly=true"])
    harness.wait_synced("onlyoos", revision=repo.head())
    new = repo.commit({"app/a.yaml": manifests(cm("stable"), cm("moving", v="2"))})
    harness.fetch(repo.url, due=["onlyoos"])
    harness.wait_synced("onlyoos", revision=new)
    op = harness.operation("onlyoos")
    assert [r["name"] for r in op["syncResult"]["resources"]] == ["moving"]


def test_server_side_diff_sees_synced_state_and_drift(harness: Harness, git_factory, celery_workers):
    repo = git_factory.create("ssd", {"app/a.yaml": manifests(cm("conf", mode="git"))})
    celery_workers.start(1, concurrency=2, env=harness.worker_env())
    harness.application("ssd", repo.url, "app", automated=False)
    harness.patch_application("ssd", {"metadata": {"annotations": {
        "argocd.argoproj.io/compare-options": "ServerSideDiff=true"}}})
    harness.wait("indexed", lambda: harness.store.get_app("ssd") is not None)
    harness.request_sync("ssd")
    harness.wait_synced("ssd", revision=repo.head())
    harness.core.patch_namespaced_config_map("conf", harness.dest_namespace, {"data": {"mode": "manual"}})
    harness.diff("ssd")
    harness.wait("drift seen through the dry run",
                 lambda: harness.status("ssd").get("sync", {}).get("status") == "OutOfSync",
                 describe=lambda: harness.status("ssd"))


def test_an_app_that_brings_its_own_crd_and_custom_resources(harness: Harness, git_factory, celery_workers):
    group = f"{unique('w')}.example.com"
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "metadata": {"name": f"widgets.{group}"},
           "spec": {"group": group, "scope": "Namespaced",
                    "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
                    "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
                        "type": "object", "x-kubernetes-preserve-unknown-fields": True}}}]}}
    widget = {"apiVersion": f"{group}/v1", "kind": "Widget", "metadata": {"name": "w1"}, "spec": {"size": 3}}
    repo = git_factory.create("crdapp", {"app/a.yaml": manifests(widget, crd)})
    celery_workers.start(1, concurrency=2, env=harness.worker_env())
    harness.application("crdapp", repo.url, "app")
    try:
        harness.wait_synced("crdapp", revision=repo.head())
        live = client.CustomObjectsApi(harness.api).get_namespaced_custom_object(
            group, "v1", harness.dest_namespace, "widgets", "w1")
        assert live["spec"] == {"size": 3}
        kinds = [r["kind"] for r in harness.operation("crdapp")["syncResult"]["resources"]]
        assert kinds.index("CustomResourceDefinition") < kinds.index("Widget")
    finally:
        try:
            client.ApiextensionsV1Api(harness.api).delete_custom_resource_definition(f"widgets.{group}")
        except client.ApiException:
            pass


def test_app_of_apps_a_parent_deploys_a_child_application(harness: Harness, git_factory, celery_workers):
    repo = git_factory.create("apps", {"child/a.yaml": manifests(cm("from-child"))})
    child = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "Application",
             "metadata": {"name": "child", "namespace": harness.app_namespace},
             "spec": {"project": "default",
                      "source": {"repoURL": repo.url, "path": "child", "targetRevision": "HEAD"},
                      "destination": {"server": "https://kubernetes.default.svc",
                                      "namespace": harness.dest_namespace},
                      "syncPolicy": {"automated": {"prune": True}}}}
    head = repo.commit({"parent/child-app.yaml": manifests(child)})
    celery_workers.start(1, concurrency=2, env=harness.worker_env())
    harness.application("parent", repo.url, "parent", namespace=harness.app_namespace)
    harness.wait_synced("parent", revision=head)
    harness.wait_synced("child", revision=head)
    assert harness.core.read_namespaced_config_map("from-child", harness.dest_namespace).data == {"k": "v"}
    live_child = harness.custom.get_namespaced_custom_object(GROUP, VERSION, harness.app_namespace,
                                                             "applications", "child")
    assert live_child["metadata"]["annotations"]["argocd.argoproj.io/tracking-id"].startswith("parent:")
