"""Real workers syncing a real repository into a Kubernetes API: the metrics a scrape shows follow along."""

from __future__ import annotations

import time
from typing import Any

import pytest

from scheduler.metrics import queue_keys
from shared.source import git_source
from shared.telemetry.metrics import render
from tests.metrics.helpers import total, value
from tests.pipeline.harness import Harness, manifests

pytestmark = pytest.mark.integration


def config_map(name: str, **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data or {"k": "v"}}


def scrape(harness: Harness) -> str:
    return render(harness.redis, queue_keys()).decode()


def wait_for(harness: Harness, what: str, check: Any, timeout: float = 15.0) -> str:  # noqa: ANN401
    """Poll the scrape until `check(text)` holds (a task's metrics are written just after it returns)."""
    deadline = time.monotonic() + timeout
    while True:
        text = scrape(harness)
        if check(text):
            return text
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}; scrape:\n{text}")
        time.sleep(0.1)


def test_syncs_kube_requests_and_reconciles_are_counted(harness: Harness, git_factory, celery_workers):
    repo = git_factory.create("metered", {"app/all.yaml": manifests(config_map("one"), config_map("two"))})
    celery_workers.start(1, concurrency=2, env=harness.worker_env())
    harness.application("metered", repo.url, "app")
    harness.wait_synced("metered", revision=repo.head())

    text = wait_for(harness, "the first sync to be counted",
                    lambda t: total(t, "argocd_app_sync_total", name="metered",
                                    project="default", phase="Succeeded") == 1)
    # two applied objects, counted for the app whose task made the requests
    assert total(text, "argocd_app_k8s_request_total", name="metered", verb="patch", response_code="200") >= 2
    assert total(text, "argocd_app_k8s_request_total", name="metered", verb="patch", resource_kind="ConfigMap",
                 resource_namespace=harness.dest_namespace) >= 2  # the applied objects' kind and namespace
    assert total(text, "argocd_app_k8s_request_total", name="metered", verb="list") >= 1  # live state
    assert total(text, "argocd_app_reconcile_count", dest_server="https://kubernetes.default.svc") >= 1
    assert total(text, "argocd_app_info", name="metered", project="default",
                 sync_status="Synced", health_status="Healthy", autosync_enabled="true") == 1
    assert value(text, "wavecd_app_locks_held") == 0
    patches = total(text, "argocd_app_k8s_request_total", verb="patch")
    reconciles = total(text, "argocd_app_reconcile_count")

    # A new commit: one more sync, more requests, more reconciles; the first sync is not counted twice.
    new = repo.commit({"app/all.yaml": manifests(config_map("one", k="changed"), config_map("two"))})
    harness.fetch(repo.url, due=["metered"])
    harness.wait_synced("metered", revision=new)
    text = wait_for(harness, "the second sync to be counted",
                    lambda t: total(t, "argocd_app_sync_total", name="metered", phase="Succeeded") == 2)
    assert total(text, "argocd_app_k8s_request_total", verb="patch") > patches
    assert total(text, "argocd_app_reconcile_count") > reconciles
    assert total(text, "argocd_app_sync_total", phase="Failed") == 0
    if hasattr(git_source, "on_request"):
        assert total(text, "argocd_git_request_total") >= 1
    else:
        pytest.xfail("shared.source.git_source has no `on_request` hook yet: git requests cannot be counted "
                     "(the rest of this test passed)")
