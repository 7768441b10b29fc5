"""Facilities only the emulator has: request counters, the process entry point, controller simulation.

Every test here skips on a real cluster (WAVECD_TEST_KUBECONFIG), since these are not Kubernetes features.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import yaml
from kubernetes import client, config

from tests.sandbox.test_crud import _deployment


def _wait(check: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return False


@pytest.mark.emulator_only("the emulator's request counters")
def test_request_counters(kube_api, kube_namespace, sandbox_only):
    sandbox_only.reset_counts()
    core = client.CoreV1Api(kube_api)
    core.create_namespaced_config_map(kube_namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="c")))
    core.read_namespaced_config_map("c", kube_namespace)
    core.list_namespaced_config_map(kube_namespace)
    core.patch_namespaced_config_map("c", kube_namespace, {"data": {"a": "b"}})
    counts = sandbox_only.request_counts()
    for verb in ("create", "get", "list", "patch"):
        assert counts[(verb, "configmaps")] == 1
    over_http = httpx.get(f"{sandbox_only.url}/sandbox/requests").json()["requests"]
    assert {"verb": "patch", "resource": "configmaps", "count": 1} in over_http
    assert httpx.delete(f"{sandbox_only.url}/sandbox/requests").status_code == 200
    assert sandbox_only.request_counts() == {}


@pytest.mark.emulator_only("the emulator's own kubeconfig")
def test_kubeconfig_names_sandbox(sandbox_only, tmp_path):
    path = sandbox_only.write_kubeconfig(tmp_path / "kc")
    doc = yaml.safe_load(Path(path).read_text())
    assert doc["current-context"] == "sandbox"
    assert doc["clusters"][0] == {"name": "sandbox", "cluster": {"server": sandbox_only.url}}


def test_python_m_sandbox_serves(tmp_path):
    kubeconfig = tmp_path / "kubeconfig"
    proc = subprocess.Popen([sys.executable, "-m", "sandbox", "--port", "0", "--kubeconfig-out", str(kubeconfig)],
                            stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        assert line.startswith("sandbox serving on http://127.0.0.1:")
        api = config.new_client_from_config(config_file=str(kubeconfig))
        names = [n.metadata.name for n in client.CoreV1Api(api).list_namespace().items]
        assert "default" in names
        api.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.mark.emulator_only("the emulator's controller simulation")
def test_simulated_deployment_rollout(make_sandbox):
    _, api = make_sandbox(simulate_controllers=True, rollout_seconds=0.3)
    apps = client.AppsV1Api(api)
    apps.create_namespaced_deployment("default", _deployment("roll", replicas=3))

    def rolled_out() -> bool:
        status = apps.read_namespaced_deployment_status("roll", "default").status
        conditions = {c.type: c.reason for c in (status.conditions or [])} if status else {}
        return bool(status and status.observed_generation == 1 and status.available_replicas == 3
                    and status.updated_replicas == 3 and conditions.get("Progressing") == "NewReplicaSetAvailable"
                    and conditions.get("Available") == "MinimumReplicasAvailable")

    assert _wait(rolled_out)
    apps.patch_namespaced_deployment("roll", "default", {"spec": {"replicas": 4}})
    assert _wait(lambda: apps.read_namespaced_deployment("roll", "default").status.ready_replicas == 4)
    assert apps.read_namespaced_deployment("roll", "default").status.observed_generation == 2


@pytest.mark.emulator_only("the emulator's controller simulation")
def test_simulated_job_pvc_service_pod(make_sandbox):
    _, api = make_sandbox(simulate_controllers=True, rollout_seconds=0.1)
    core, batch = client.CoreV1Api(api), client.BatchV1Api(api)
    batch.create_namespaced_job("default", {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"},
                                            "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [
                                                {"name": "c", "image": "busybox"}]}}}})
    core.create_namespaced_persistent_volume_claim("default", {
        "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}})
    core.create_namespaced_service("default", {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "lb"},
                                               "spec": {"type": "LoadBalancer", "ports": [{"port": 80}]}})
    core.create_namespaced_pod("default", {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                                           "spec": {"containers": [{"name": "c", "image": "nginx"}]}})

    def job_done() -> bool:
        status = batch.read_namespaced_job_status("j", "default").status
        return bool(status and status.succeeded == 1
                    and any(c.type == "Complete" and c.status == "True" for c in status.conditions or []))

    assert _wait(job_done)
    assert _wait(lambda: core.read_namespaced_persistent_volume_claim("data", "default").status.phase == "Bound")
    assert _wait(lambda: bool(core.read_namespaced_service("lb", "default").status.load_balancer.ingress))
    pod = None

    def pod_ready() -> bool:
        nonlocal pod
        pod = core.read_namespaced_pod("p", "default")
        return pod.status.phase == "Running" and any(c.type == "Ready" and c.status == "True"
                                                     for c in pod.status.conditions or [])

    assert _wait(pod_ready)


@pytest.mark.emulator_only("the emulator without controller simulation")
def test_no_simulation_by_default(kube_api, kube_namespace, sandbox_only):
    apps = client.AppsV1Api(kube_api)
    apps.create_namespaced_deployment(kube_namespace, _deployment("still"))
    time.sleep(0.3)
    assert apps.read_namespaced_deployment("still", kube_namespace).status is None or \
        not apps.read_namespaced_deployment("still", kube_namespace).status.observed_generation
