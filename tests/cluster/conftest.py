"""Fixtures of the cluster-access tests: a `Cluster` on the session's Kubernetes API (sandbox or real)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator

import pytest
from kubernetes import client

from shared.cluster.client import Cluster


@pytest.fixture
def make_cluster(kube_env) -> Iterator[Callable[..., Cluster]]:
    """Factory of Cluster objects on the test API; closed (watch threads stopped) after the test."""
    made: list[Cluster] = []

    def factory(**kwargs: object) -> Cluster:
        kwargs.setdefault("discovery_refresh_interval", 0.3)
        cluster = Cluster.from_kubeconfig(kube_env.kubeconfig, kube_env.context, **kwargs)  # type: ignore[arg-type]
        made.append(cluster)
        return cluster

    yield factory
    for cluster in made:
        cluster.close()


@pytest.fixture
def cluster(make_cluster: Callable[..., Cluster]) -> Cluster:
    return make_cluster()


def wait_for(predicate: Callable[[], object], timeout: float = 20.0, interval: float = 0.05) -> object:
    """Poll until `predicate()` is truthy; returns its value (fails the test on timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout}s")
        time.sleep(interval)


@pytest.fixture
def crd_factory(kube_api: client.ApiClient) -> Iterator[Callable[..., tuple[str, str]]]:
    """Creates uniquely named CRDs (group `<random>.wavecd.test`); deleted after the test.

    Returns (group, plural). Real clusters share CRDs between tests, hence the unique group.
    """
    ext = client.ApiextensionsV1Api(kube_api)
    created: list[str] = []

    def factory(kind: str = "Widget", scope: str = "Namespaced", status_subresource: bool = False,
                group: str | None = None) -> tuple[str, str]:
        group = group or f"t{uuid.uuid4().hex[:8]}.wavecd.test"
        plural = kind.lower() + "s"
        version: dict = {
            "name": "v1", "served": True, "storage": True,
            "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
        }
        if status_subresource:
            version["subresources"] = {"status": {}}
        body = {
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": f"{plural}.{group}"},
            "spec": {"group": group, "scope": scope, "versions": [version],
                     "names": {"kind": kind, "plural": plural, "singular": kind.lower(),
                               "listKind": f"{kind}List"}},
        }
        ext.create_custom_resource_definition(body)
        created.append(f"{plural}.{group}")
        return group, plural

    yield factory
    for name in created:
        try:
            ext.delete_custom_resource_definition(name)
        except client.ApiException as exc:
            if exc.status != 404:
                raise
