"""Status subresource isolation: main writes keep status, /status writes change only status."""

from __future__ import annotations

import pytest
from kubernetes import client

from tests.sandbox.test_crud import _deployment


def test_status_writes_touch_only_status(kube_api, kube_namespace):
    apps = client.AppsV1Api(kube_api)
    apps.create_namespaced_deployment(kube_namespace, _deployment("st"))
    patched = apps.patch_namespaced_deployment_status(
        "st", kube_namespace, {"status": {"observedGeneration": 1, "replicas": 7}, "spec": {"replicas": 9}})
    assert patched.status.replicas == 7
    assert patched.spec.replicas == 1
    assert patched.metadata.generation == 1


def test_main_writes_keep_status(kube_api, kube_namespace):
    apps = client.AppsV1Api(kube_api)
    apps.create_namespaced_deployment(kube_namespace, _deployment("keep"))
    apps.patch_namespaced_deployment_status("keep", kube_namespace, {"status": {"replicas": 5}})
    patched = apps.patch_namespaced_deployment("keep", kube_namespace,
                                               {"spec": {"replicas": 2}, "status": {"replicas": 1}})
    assert patched.spec.replicas == 2
    assert patched.status.replicas == 5


def test_create_drops_status_for_kinds_with_status_subresource(kube_api, kube_namespace):
    body = _deployment("fresh")
    body["status"] = {"replicas": 3}
    made = client.AppsV1Api(kube_api).create_namespaced_deployment(kube_namespace, body)
    assert made.status is None or not made.status.replicas


@pytest.mark.emulator_only("the emulator's set_status helper")
def test_set_status_helper(kube_api, kube_namespace, sandbox_only):
    apps = client.AppsV1Api(kube_api)
    apps.create_namespaced_deployment(kube_namespace, _deployment("helper"))
    sandbox_only.set_status("apps/v1", "Deployment", kube_namespace, "helper",
                            {"replicas": 1, "readyReplicas": 1, "observedGeneration": 1})
    assert apps.read_namespaced_deployment_status("helper", kube_namespace).status.ready_replicas == 1
