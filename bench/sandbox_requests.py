"""Prints the emulator's per-request latency through the official client (goal: about 1 ms on loopback).

Run: .venv/bin/python bench/sandbox_requests.py [--n 500]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from kubernetes import client, config, dynamic

from sandbox.server import SandboxServer


def _measure(label: str, n: int, fn: Callable[[int], object]) -> None:
    samples = []
    for i in range(n):
        started = time.perf_counter()
        fn(i)
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    print(f"{label:<28} n={n:<5} median={statistics.median(samples):6.2f} ms  "
          f"p95={samples[int(len(samples) * 0.95) - 1]:6.2f} ms  mean={statistics.fmean(samples):6.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=300)
    n = parser.parse_args().n
    with SandboxServer() as server, tempfile.TemporaryDirectory() as tmp:
        api = config.new_client_from_config(server.write_kubeconfig(Path(tmp) / "kc"))
        core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
        dyn = dynamic.DynamicClient(api)
        deployments = dyn.resources.get(api_version="apps/v1", kind="Deployment")
        core.create_namespace({"metadata": {"name": "bench"}})

        def deployment(i: int, image: str = "app:1") -> dict:
            return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": f"d{i}", "namespace": "bench"},
                    "spec": {"replicas": 2, "selector": {"matchLabels": {"app": f"d{i}"}},
                             "template": {"metadata": {"labels": {"app": f"d{i}"}},
                                          "spec": {"containers": [{"name": "app", "image": image,
                                                                   "ports": [{"containerPort": 80}]}]}}}}

        _measure("GET /version", n, lambda i: core.api_client.call_api("GET", server.url + "/version").read())
        _measure("create configmap", n, lambda i: core.create_namespaced_config_map(
            "bench", {"metadata": {"name": f"cm{i}"}, "data": {"k": str(i)}}))
        _measure("get configmap", n, lambda i: core.read_namespaced_config_map(f"cm{i}", "bench"))
        _measure("strategic patch configmap", n, lambda i: core.patch_namespaced_config_map(
            f"cm{i}", "bench", {"data": {"k": "x"}}))
        _measure("server-side apply (create)", n, lambda i: dyn.server_side_apply(
            deployments, body=deployment(i), field_manager="bench"))
        _measure("server-side apply (change)", n, lambda i: dyn.server_side_apply(
            deployments, body=deployment(i, "app:2"), field_manager="bench"))
        _measure("server-side apply (no-op)", n, lambda i: dyn.server_side_apply(
            deployments, body=deployment(i, "app:2"), field_manager="bench"))
        _measure(f"list {n} deployments", 20, lambda i: apps.list_namespaced_deployment("bench"))
        _measure("delete configmap", n, lambda i: core.delete_namespaced_config_map(f"cm{i}", "bench"))
        api.close()


if __name__ == "__main__":
    main()
