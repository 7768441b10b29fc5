"""Argo CD declarative cluster Secrets -> ClusterEntry, one YAML case per file under
tests/testdata/cluster_secrets; plus the kubeconfig the client loader is given."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from shared.cluster.client import Cluster, ClusterRegistry, _kubeconfig_dict, cluster_entry_from_secret
from shared.core.errors import ConfigurationError
from shared.core.settings import Settings
from shared.pipeline.project_declarative import cluster_entries

CASES = sorted((Path(__file__).parent.parent / "testdata" / "cluster_secrets").glob("*.yaml"))


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_cluster_secret_case(path: Path) -> None:
    case = yaml.safe_load(path.read_text())
    expect = case["expect"]
    if "error" in expect:
        with pytest.raises(ConfigurationError) as info:
            cluster_entry_from_secret(case["secret"])
        assert expect["error"] in str(info.value)
        assert "s3cr3t" not in str(info.value)
        return
    entry = cluster_entry_from_secret(case["secret"])
    assert entry.name == expect["name"]
    assert entry.server == expect["server"]
    assert list(entry.namespaces) == expect.get("namespaces", [])
    kubeconfig = _kubeconfig_dict(entry)
    assert kubeconfig["clusters"][0]["cluster"] == expect["kubeconfig_cluster"]
    assert kubeconfig["users"][0]["user"] == expect["kubeconfig_user"]
    assert "s3cr3t" not in repr(entry)


def test_cases_present() -> None:
    assert len(CASES) >= 8


def test_entry_builds_a_client_with_the_token() -> None:
    case = yaml.safe_load((Path(__file__).parent.parent / "testdata" / "cluster_secrets" /
                           "string_data_bearer_token.yaml").read_text())
    entry = cluster_entry_from_secret(case["secret"])
    cluster = Cluster.from_entry(entry)
    try:
        conf = cluster.api_client.configuration
        assert conf.host == "https://mycluster.example.com"
        assert "s3cr3t-token" in str(conf.api_key.get("BearerToken") or conf.api_key.get("authorization"))
        assert cluster.name == "mycluster.example.com"
    finally:
        cluster.close()


def test_registry_skips_invalid_secrets_and_resolves_valid_ones() -> None:
    good = {"metadata": {"name": "a", "labels": {"argocd.argoproj.io/secret-type": "cluster"}},
            "stringData": {"name": "edge", "server": "https://edge.example.com", "config": "{}"}}
    bad = {"metadata": {"name": "b", "labels": {"argocd.argoproj.io/secret-type": "cluster"}},
           "stringData": {"name": "nope"}}
    registry = ClusterRegistry(Settings(kubeconfig="/nonexistent"))
    entries = cluster_entries([good, bad])
    assert [entry.name for entry, _, _ in entries] == ["edge"]
    for entry, _, _ in entries:
        registry.add(entry)
    from shared.core.models import ApplicationDestination

    try:
        by_name = registry.for_destination(ApplicationDestination(name="edge"))
        by_server = registry.for_destination(ApplicationDestination(server="https://edge.example.com/"))
        assert by_name is by_server
        assert by_name.server == "https://edge.example.com"
    finally:
        registry.close()
