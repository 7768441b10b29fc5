"""422 Invalid for built-in objects missing what Kubernetes requires, judged by a real API server.

Each case in tests/testdata/sandbox/invalid/ holds an object and kube-apiserver's answer to it (status
code, message, causes in order), recorded from a v1.36 control plane; the emulator must answer the same.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.sandbox.helpers import call

CASES = sorted((Path(__file__).parents[1] / "testdata" / "sandbox" / "invalid").glob("*.yaml"))


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_invalid_objects_are_refused_with_causes(kube_api, kube_namespace, case):
    spec = yaml.safe_load(case.read_text())
    api, plural = spec["resource"].rsplit("/", 1)
    status, body = call(kube_api, "POST", f"{api}/namespaces/{kube_namespace}/{plural}", spec["object"])
    expect = spec["expect"]
    assert status == expect["code"], body
    if status == 201:
        return
    assert body["kind"] == "Status" and body["reason"] == "Invalid"
    assert body["message"] == expect["message"]
    assert body["details"]["causes"] == expect["causes"]
    assert body["details"]["name"] == spec["object"]["metadata"]["name"]
    assert body["details"]["kind"] == spec["object"]["kind"]


def test_an_update_may_not_change_immutable_fields(kube_api, kube_namespace):
    """A Job's template and a workload's selector are fixed once created (what Force=true is for)."""
    from kubernetes import client

    from tests.sandbox.helpers import api_error

    batch = client.BatchV1Api(kube_api)
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "fixed"},
           "spec": {"backoffLimit": 0, "template": {"spec": {"restartPolicy": "Never", "containers": [
               {"name": "c", "image": "busybox:1.36", "command": ["true"]}]}}}}
    batch.create_namespaced_job(kube_namespace, job)
    status, body = api_error(batch.patch_namespaced_job, "fixed", kube_namespace, {"spec": {"template": {"spec": {
        "containers": [{"name": "c", "image": "busybox:1.36", "command": ["sh", "-c", "exit 0"]}]}}}})
    assert status == 422 and body["reason"] == "Invalid"
    assert body["message"].startswith('Job.batch "fixed" is invalid: spec.template: Invalid value: ')
    assert body["message"].endswith(": field is immutable")
    assert [c["field"] for c in body["details"]["causes"]] == ["spec.template"]
    apps = client.AppsV1Api(kube_api)
    apps.create_namespaced_deployment(kube_namespace, {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "sel"},
        "spec": {"selector": {"matchLabels": {"app": "a"}},
                 "template": {"metadata": {"labels": {"app": "a", "v": "1"}},
                              "spec": {"containers": [{"name": "c", "image": "x"}]}}}})
    status, body = api_error(apps.patch_namespaced_deployment, "sel", kube_namespace, {"spec": {
        "selector": {"matchLabels": {"app": "a", "v": "1"}}}})
    assert status == 422 and "spec.selector" in [c["field"] for c in body["details"]["causes"]]
    assert "field is immutable" in body["message"]
