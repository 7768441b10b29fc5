"""What each overlay under k8s/overlays changes, checked on kustomize's rendered output."""

from __future__ import annotations

import pytest

from tests.deploy.manifests import K8S, Doc, build, find, kustomize_command, one, selects
from workers.celery_app import LOW_PRIORITY

pytestmark = pytest.mark.skipif(kustomize_command() is None, reason="neither kustomize nor kubectl on PATH")

QUEUES = {"git", "apply", "health"}


def _queues(deployment: Doc) -> set[str]:
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    return set(args[args.index("-Q") + 1].split(","))


def _workers(docs: list[Doc]) -> list[Doc]:
    return [
        d
        for d in find(docs, "Deployment")
        if d["metadata"]["labels"]["app.kubernetes.io/component"] == "worker"
    ]


def test_per_queue_runs_one_worker_per_queue():
    docs = build(K8S / "overlays" / "per-queue")
    workers = _workers(docs)
    assert sorted(w["metadata"]["name"] for w in workers) == [f"wavecd-worker-{q}" for q in sorted(QUEUES)]
    assert not find(docs, "Deployment", "wavecd-worker")
    for worker in workers:
        queue = worker["metadata"]["name"].removeprefix("wavecd-worker-")
        assert _queues(worker) == {queue}
        labels = worker["spec"]["template"]["metadata"]["labels"]
        assert selects(worker["spec"]["selector"]["matchLabels"], labels)
        # Its own disruption budget and autoscaler, selecting only its own pods.
        pdb = one(docs, "PodDisruptionBudget", worker["metadata"]["name"])
        assert selects(pdb["spec"]["selector"]["matchLabels"], labels)
        others = [w for w in workers if w is not worker]
        assert not any(
            selects(pdb["spec"]["selector"]["matchLabels"], o["spec"]["template"]["metadata"]["labels"])
            for o in others
        )
        hpa = one(docs, "HorizontalPodAutoscaler", worker["metadata"]["name"])
        assert hpa["spec"]["scaleTargetRef"]["name"] == worker["metadata"]["name"]
        assert worker["metadata"]["namespace"] == "wavecd"
        # The generated ConfigMap's hashed name reaches the copies too.
        (config,) = find(docs, "ConfigMap")
        assert (
            worker["spec"]["template"]["spec"]["containers"][0]["envFrom"][0]["configMapRef"]["name"]
            == (config["metadata"]["name"])
        )
    assert not find(docs, "PodDisruptionBudget", "wavecd-worker")
    assert not find(docs, "HorizontalPodAutoscaler", "wavecd-worker")


def test_keda_scales_the_worker_on_every_queue_it_consumes():
    docs = build(K8S / "overlays" / "keda")
    assert not find(docs, "HorizontalPodAutoscaler"), "KEDA makes its own; two autoscalers would fight"
    (scaled,) = find(docs, "ScaledObject")
    assert scaled["apiVersion"] == "keda.sh/v1alpha1"
    target = scaled["spec"]["scaleTargetRef"]
    worker = one(docs, target["kind"], target["name"])
    lists = {t["metadata"]["listName"] for t in scaled["spec"]["triggers"]}
    # Each queue's list, plus kombu's list for routine refreshes at LOW_PRIORITY on the git queue.
    assert {name.split("\x06\x16")[0] for name in lists} == _queues(worker) == QUEUES
    assert f"git\x06\x16{LOW_PRIORITY}" in lists
    redis = one(docs, "Service", "wavecd-redis")
    for trigger in scaled["spec"]["triggers"]:
        assert trigger["type"] == "redis"
        host, port = trigger["metadata"]["address"].rsplit(":", 1)
        assert host.split(".")[:2] == [redis["metadata"]["name"], redis["metadata"]["namespace"]]
        assert int(port) == redis["spec"]["ports"][0]["port"]
        assert int(trigger["metadata"]["listLength"]) > 0
    pdb = one(docs, "PodDisruptionBudget", "wavecd-worker")
    assert scaled["spec"]["minReplicaCount"] > pdb["spec"]["minAvailable"] - 1
    # KEDA's operator, in its own namespace, is let through to Redis.
    policies = find(docs, "NetworkPolicy")
    peers = [p for pol in policies for rule in pol["spec"]["ingress"] for p in rule["from"]]
    assert any(
        p.get("namespaceSelector", {}).get("matchLabels") == {"kubernetes.io/metadata.name": "keda"}
        for p in peers
    )


def test_argocd_namespace_moves_everything_and_the_subjects():
    docs = build(K8S / "overlays" / "argocd-namespace")
    one(docs, "Namespace", "argocd")
    assert not find(docs, "Namespace", "wavecd")
    cluster_scoped = {"Namespace", "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding"}
    for d in docs:
        if d["kind"] not in cluster_scoped:
            assert d["metadata"]["namespace"] == "argocd", f"{d['kind']}/{d['metadata']['name']}"
    for binding in find(docs, "RoleBinding") + find(docs, "ClusterRoleBinding"):
        assert {s["namespace"] for s in binding["subjects"]} == {"argocd"}
    (config,) = find(docs, "ConfigMap")
    assert config["data"]["WAVECD_APP_NAMESPACE"] == "argocd"
