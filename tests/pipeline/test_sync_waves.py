"""A commit becomes a synced app, wave by wave, through real workers, git and a Kubernetes API."""

from __future__ import annotations

from typing import Any

import pytest

from shared.state import keys
from tests.pipeline.harness import Harness, WriteRecorder, manifests

pytestmark = pytest.mark.integration


def cm(name: str, wave: int | None = None, **data: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if wave is not None:
        meta["annotations"] = {"argocd.argoproj.io/sync-wave": str(wave)}
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data or {"k": "v"}}


def deployment(name: str, wave: int | None = None, image: str = "nginx:1.27") -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if wave is not None:
        meta["annotations"] = {"argocd.argoproj.io/sync-wave": str(wave)}
    labels = {"app": name}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta,
            "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [{"name": "main", "image": image}]}}}}


def test_commit_syncs_in_wave_order(harness: Harness, git_factory, celery_workers):
    repo = git_factory.create("waves", {"app/all.yaml": manifests(
        cm("last", wave=3),
        deployment("web", wave=2),
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "annotations": {
            "argocd.argoproj.io/sync-wave": "1"}},
         "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}},
        cm("first", wave=-1),
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds"},
         "stringData": {"password": "s3cr3t-value"}},
    )})
    kinds = ["ConfigMap", "Secret", "Service", "Deployment"]
    recorder = WriteRecorder(harness.api, harness.dest_namespace, kinds)
    celery_workers.start(1, concurrency=2, env=harness.worker_env())
    harness.application("waves", repo.url, "app")
    try:
        status = harness.wait_synced("waves", revision=repo.head())
    finally:
        recorder.stop()
    order = [n for n in recorder.order() if n in {"first", "creds", "web", "last"}]
    assert order == ["first", "creds", "web", "last"], order
    op = harness.operation("waves")
    assert op is not None and op["phase"] == "Succeeded", op
    assert {r["name"] for r in op["syncResult"]["resources"]} >= {"first", "creds", "web", "last"}
    assert status["history"][-1]["revision"] == repo.head()
    assert harness.redis.get(keys.TICK_HEARTBEAT) is not None  # the ticks that found the app left a heartbeat
    live = harness.core.read_namespaced_config_map("first", harness.dest_namespace)
    assert live.metadata.annotations["argocd.argoproj.io/tracking-id"] == \
        f"waves:/ConfigMap:{harness.dest_namespace}/first"

    # A new commit changes one object: the app syncs again to the new revision.
    new = repo.commit({"app/all.yaml": manifests(
        cm("last", wave=3, k="changed"), deployment("web", wave=2),
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "annotations": {
            "argocd.argoproj.io/sync-wave": "1"}},
         "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}},
        cm("first", wave=-1),
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds"},
         "stringData": {"password": "s3cr3t-value"}},
    )})
    harness.fetch(repo.url, due=["waves"])
    harness.wait_synced("waves", revision=new)
    assert harness.core.read_namespaced_config_map("last", harness.dest_namespace).data == {"k": "changed"}
    assert len(harness.status("waves")["history"]) == 2
