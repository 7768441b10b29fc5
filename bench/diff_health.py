"""Per-resource cost of the diff (`shared.diff.compare.compare`) and of health (`shared.health.assess`).

Goal: under 0.2 ms per resource for the comparison (status only; the diff text is made lazily for
OutOfSync resources). Builds 10,000 realistic resources (Deployments, Services, ConfigMaps, Secrets),
each live copy being desired plus server defaults, status and a server-side-apply managedFields entry
for `wavecd`, then prints the figures. Run: `.venv/bin/python bench/diff_health.py [count]`.
"""

from __future__ import annotations

import base64
import copy
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from shared.core.models import ResourceIgnoreDifferences  # noqa: E402
from shared.diff.compare import OUT_OF_SYNC, compare  # noqa: E402

try:
    from shared.health import assess
except ImportError as exc:  # the health module is written in parallel
    assess = None
    HEALTH_SKIPPED = f"health skipped: shared.health.assess not importable ({exc})"
else:
    HEALTH_SKIPPED = ""


def fields_v1(value: Any) -> dict[str, Any]:
    """What server-side apply records for an applied object: maps by field, named lists by key."""
    if isinstance(value, dict):
        return {f"f:{k}": fields_v1(v) for k, v in value.items()}
    if isinstance(value, list) and value and all(isinstance(i, dict) and "name" in i for i in value):
        return {f"k:{json.dumps({'name': i['name']}, separators=(',', ':'))}": {".": {}, **fields_v1(i)}
                for i in value}
    return {}


def server_side(desired: dict[str, Any], i: int) -> dict[str, Any]:
    live = copy.deepcopy(desired)
    applied = {k: v for k, v in desired.items() if k not in ("apiVersion", "kind")}
    meta = live["metadata"]
    meta.update(uid=f"00000000-0000-4000-8000-{i:012d}", resourceVersion=str(1000 + i), generation=2,
                creationTimestamp="2024-05-01T10:00:00Z",
                managedFields=[{"manager": "wavecd", "operation": "Apply", "apiVersion": desired["apiVersion"],
                                "time": "2024-05-01T10:00:00Z", "fieldsType": "FieldsV1",
                                "fieldsV1": fields_v1(applied)},
                               {"manager": "kube-controller-manager", "operation": "Update",
                                "subresource": "status", "fieldsType": "FieldsV1",
                                "fieldsV1": {"f:status": {"f:replicas": {}}}}])
    kind = desired["kind"]
    if kind == "Deployment":
        spec = live["spec"]
        spec.update(revisionHistoryLimit=10, progressDeadlineSeconds=600,
                    strategy={"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}})
        pod = spec["template"]["spec"]
        pod.update(restartPolicy="Always", dnsPolicy="ClusterFirst", schedulerName="default-scheduler",
                   terminationGracePeriodSeconds=30, securityContext={})
        for c in pod["containers"]:
            c.update(imagePullPolicy="IfNotPresent", terminationMessagePath="/dev/termination-log",
                     terminationMessagePolicy="File")
            for p in c.get("ports", []):
                p["protocol"] = "TCP"
            c["resources"]["limits"]["cpu"] = "1"  # canonical form of 1000m
        meta.setdefault("annotations", {})["deployment.kubernetes.io/revision"] = "2"
        live["status"] = {"observedGeneration": 2, "replicas": 3, "updatedReplicas": 3, "readyReplicas": 3,
                          "availableReplicas": 3, "conditions": [
                              {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
                              {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"}]}
    elif kind == "Service":
        live["spec"].update(type="ClusterIP", clusterIP=f"10.0.{i // 250 % 250}.{i % 250}",
                            clusterIPs=[f"10.0.{i // 250 % 250}.{i % 250}"], sessionAffinity="None",
                            ipFamilies=["IPv4"], ipFamilyPolicy="SingleStack", internalTrafficPolicy="Cluster")
        for p in live["spec"]["ports"]:
            p["protocol"] = "TCP"
        live["status"] = {"loadBalancer": {}}
    elif kind == "Secret":
        live.pop("stringData", None)
        live["data"] = {k: base64.b64encode(v.encode()).decode() for k, v in desired["stringData"].items()}
    return live


def make_desired(i: int) -> dict[str, Any]:
    name, ns = f"svc-{i}", f"team-{i % 20}"
    labels = {"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": "shop", "tier": "backend"}
    tracking = {"argocd.argoproj.io/tracking-id": f"shop:apps/Deployment:{ns}/{name}"}
    kind = ("Deployment", "Service", "ConfigMap", "Secret")[i % 4]
    meta = {"name": name, "namespace": ns, "labels": labels, "annotations": tracking}
    if kind == "Deployment":
        return {"apiVersion": "apps/v1", "kind": kind, "metadata": meta, "spec": {
            "replicas": 3, "selector": {"matchLabels": {"app.kubernetes.io/name": name}},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [{
                "name": "app", "image": f"registry.example.com/shop/{name}:1.{i % 9}.0",
                "ports": [{"name": "http", "containerPort": 8080}],
                "env": [{"name": f"VAR_{n}", "value": str(n)} for n in range(6)],
                "resources": {"requests": {"cpu": "100m", "memory": "128Mi"},
                              "limits": {"cpu": "1000m", "memory": "512Mi"}},
                "readinessProbe": {"httpGet": {"path": "/healthz", "port": 8080}, "periodSeconds": 5}}]}}}}
    if kind == "Service":
        return {"apiVersion": "v1", "kind": kind, "metadata": meta, "spec": {
            "selector": {"app.kubernetes.io/name": name},
            "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}}
    if kind == "ConfigMap":
        return {"apiVersion": "v1", "kind": kind, "metadata": meta,
                "data": {f"key{n}": f"value-{i}-{n}" for n in range(8)}}
    return {"apiVersion": "v1", "kind": kind, "metadata": meta, "type": "Opaque",
            "stringData": {"username": f"user{i}", "password": f"pw-{i}-secret"}}


def main(count: int = 10_000) -> None:
    pairs = []
    for i in range(count):
        desired = make_desired(i)
        live = server_side(desired, i)
        if i % 50 == 0:  # 2% drifted by hand
            live.setdefault("metadata", {}).setdefault("labels", {})["tier"] = "edited"
        pairs.append((desired, live))
    rules = [ResourceIgnoreDifferences(group="apps", kind="Deployment", json_pointers=["/spec/replicas"])]

    def run(label: str, **kwargs: Any) -> list:
        start = time.perf_counter()
        results = [compare(d, lv, **kwargs) for d, lv in pairs]
        per = (time.perf_counter() - start) / count * 1000
        drifted = sum(r.status == OUT_OF_SYNC for r in results)
        print(f"compare ({label}): {per:.4f} ms/resource   [{drifted} OutOfSync of {count}]")
        return results

    run("plain")
    results = run("with an ignoreDifferences rule", ignore=rules)
    out = [r for r in results if r.status == OUT_OF_SYNC]
    start = time.perf_counter()
    for r in out:
        r.diff_text()
    if out:
        print(f"diff_text for OutOfSync: {(time.perf_counter() - start) / len(out) * 1000:.4f} ms/resource")

    if assess is None:
        print(HEALTH_SKIPPED)
    else:
        lives = [lv for _, lv in pairs]
        samples = []
        for _ in range(3):
            start = time.perf_counter()
            for lv in lives:
                assess(lv)
            samples.append((time.perf_counter() - start) / count * 1000)
        print(f"health assess: {statistics.median(samples):.4f} ms/resource (median of 3 runs)")
    print("goal: compare < 0.2 ms/resource")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000)
