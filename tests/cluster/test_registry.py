"""Destinations -> clusters: Argo CD's in-cluster names, kubeconfig contexts, and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from shared.cluster.client import IN_CLUSTER_NAME, ClusterEntry, ClusterRegistry, entries_from_kubeconfig
from shared.core.errors import ConfigurationError
from shared.core.models import ApplicationDestination
from shared.core.settings import Settings


@pytest.fixture
def kubeconfig(tmp_path: Path) -> str:
    doc = {
        "apiVersion": "v1", "kind": "Config", "current-context": "home",
        "clusters": [{"name": "home-c", "cluster": {"server": "http://127.0.0.1:1"}},
                     {"name": "prod-c", "cluster": {"server": "https://prod.example.com:6443/"}}],
        "users": [{"name": "u", "user": {"token": "t0ken"}}],
        "contexts": [{"name": "home", "context": {"cluster": "home-c", "user": "u"}},
                     {"name": "prod", "context": {"cluster": "prod-c", "user": "u"}}],
    }
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(doc))
    return str(path)


@pytest.fixture
def registry(kubeconfig: str):
    reg = ClusterRegistry(Settings(kubeconfig=kubeconfig, kube_context="home"))
    yield reg
    reg.close()


def test_contexts_are_entries(kubeconfig: str) -> None:
    entries = entries_from_kubeconfig(kubeconfig)
    assert set(entries) == {"home", "prod"}
    assert entries["prod"].server == "https://prod.example.com:6443"
    assert entries["prod"].context == "prod"


@pytest.mark.parametrize("destination", [
    {"server": "https://kubernetes.default.svc"},
    {"server": "https://kubernetes.default.svc/"},
    {"name": "in-cluster"},
    {"name": "in-cluster", "server": "https://kubernetes.default.svc"},
])
def test_in_cluster_aliases_give_the_default(registry: ClusterRegistry, destination: dict) -> None:
    cluster = registry.for_destination(ApplicationDestination(**destination))
    assert cluster is registry.default()
    assert cluster.name == IN_CLUSTER_NAME
    assert cluster.api_client.configuration.host == "http://127.0.0.1:1"


def test_context_name_and_server_map_to_the_same_cluster(registry: ClusterRegistry) -> None:
    by_name = registry.for_destination(ApplicationDestination(name="prod"))
    by_server = registry.for_destination(ApplicationDestination(server="https://prod.example.com:6443"))
    assert by_name is by_server
    assert by_name.api_client.configuration.host == "https://prod.example.com:6443"


def test_unknown_name_is_named(registry: ClusterRegistry) -> None:
    with pytest.raises(ConfigurationError, match="unknown destination cluster 'staging'") as info:
        registry.for_destination(ApplicationDestination(name="staging"))
    assert "prod" in str(info.value)  # lists the known ones


def test_unknown_server_is_named(registry: ClusterRegistry) -> None:
    with pytest.raises(ConfigurationError, match="unknown destination server 'https://nowhere:6443'"):
        registry.for_destination(ApplicationDestination(server="https://nowhere:6443"))


def test_empty_destination(registry: ClusterRegistry) -> None:
    with pytest.raises(ConfigurationError, match="needs a server or a name"):
        registry.for_destination(ApplicationDestination(namespace="x"))


def test_name_and_server_disagree(registry: ClusterRegistry) -> None:
    with pytest.raises(ConfigurationError, match="different clusters"):
        registry.for_destination(ApplicationDestination(name="prod", server="https://kubernetes.default.svc"))


def test_extra_entries_take_part(kubeconfig: str) -> None:
    extra = {"edge": ClusterEntry("edge", "https://edge:6443", kubeconfig=kubeconfig, context="prod")}
    reg = ClusterRegistry(Settings(kubeconfig=kubeconfig), extra)
    try:
        assert reg.for_destination(ApplicationDestination(server="https://edge:6443")).name == "edge"
        assert "edge" in reg.names() and "home" in reg.names()
    finally:
        reg.close()


def test_bad_kubeconfig_is_a_configuration_error(tmp_path: Path) -> None:
    path = tmp_path / "broken"
    path.write_text("clusters: [")
    reg = ClusterRegistry(Settings(kubeconfig=str(path)))
    with pytest.raises(ConfigurationError, match="cannot load kubeconfig"):
        reg.default()


@pytest.mark.integration
def test_cluster_secrets_are_read_from_the_cluster(kube_env, kube_api, kube_namespace: str) -> None:
    from kubernetes import client

    from shared.pipeline.project_declarative import cluster_entries, list_typed_secrets

    core = client.CoreV1Api(kube_api)
    labels = {"argocd.argoproj.io/secret-type": "cluster"}
    core.create_namespaced_secret(kube_namespace, {
        "metadata": {"name": "edge", "labels": labels},
        "stringData": {"name": "edge", "server": "https://edge.example.com:6443",
                       "config": '{"bearerToken": "tok"}'}})
    core.create_namespaced_secret(kube_namespace, {
        "metadata": {"name": "not-a-cluster"}, "stringData": {"server": "https://other.example.com"}})
    reg = ClusterRegistry(Settings(kubeconfig=kube_env.kubeconfig, kube_context=kube_env.context,
                                   app_namespace=kube_namespace))
    try:
        entries = cluster_entries(list_typed_secrets(reg.default(), kube_namespace, "cluster"))
        assert [entry.name for entry, _, _ in entries] == ["edge"]
        for entry, _, _ in entries:
            reg.add(entry)
        edge = reg.for_destination(ApplicationDestination(server="https://edge.example.com:6443"))
        assert edge.name == "edge"
        assert edge.api_client.configuration.host == "https://edge.example.com:6443"
        with pytest.raises(ConfigurationError):
            reg.for_destination(ApplicationDestination(server="https://other.example.com"))
    finally:
        reg.close()
