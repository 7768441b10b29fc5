"""The discovery cache's refresh rule, against a transport that records what it is asked.

The rule under test is WaveCD's own (not Argo CD's): a miss refetches its group/version at most once
per refresh interval; hits never refetch. A fake clock makes the interval exact.
"""

from __future__ import annotations

from typing import Any

import pytest

from shared.cluster.discovery import Discovery, ResourceInfo, parse_resource_list
from shared.cluster.kube_errors import UnknownKind
from shared.core.errors import StallingError


class RecordingTransport:
    def __init__(self) -> None:
        self.served: dict[str, dict[str, Any]] = {
            "/api/v1": {"kind": "APIResourceList", "groupVersion": "v1", "resources": [
                {"name": "configmaps", "kind": "ConfigMap", "namespaced": True,
                 "verbs": ["get", "list", "watch"]},
                {"name": "namespaces", "kind": "Namespace", "namespaced": False, "verbs": ["get"]},
                {"name": "namespaces/status", "kind": "Namespace", "namespaced": False, "verbs": ["get"]},
            ]},
            "/api": {"kind": "APIVersions", "versions": ["v1"]},
            "/apis": {"kind": "APIGroupList", "groups": [
                {"name": "apps", "preferredVersion": {"version": "v1"},
                 "versions": [{"version": "v1"}, {"version": "v1beta1"}]}]},
            "/apis/apps/v1": {"resources": [
                {"name": "deployments", "kind": "Deployment", "namespaced": True}]},
        }
        self.asked: list[str] = []

    def get_json(self, path: str) -> dict[str, Any] | None:
        self.asked.append(path)
        return self.served.get(path)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def setup() -> tuple[RecordingTransport, Clock, Discovery]:
    transport, clock = RecordingTransport(), Clock()
    return transport, clock, Discovery(transport, refresh_interval=3.0, clock=clock)


def test_hits_are_cached(setup) -> None:
    transport, _, discovery = setup
    info = discovery.resource_info("v1", "ConfigMap")
    assert info == ResourceInfo("", "v1", "ConfigMap", "configmaps", True)
    assert info.verbs == {"get", "list", "watch"}
    discovery.resource_info("v1", "ConfigMap")
    discovery.resource_info("v1", "Namespace")
    assert transport.asked == ["/api/v1"]


def test_subresources_and_scope(setup) -> None:
    _, _, discovery = setup
    ns = discovery.resource_info("v1", "Namespace")
    assert not ns.namespaced
    assert ns.subresources == {"status"}
    assert ns.path("ignored", "x", "status") == "/api/v1/namespaces/x/status"


def test_miss_refetches_at_most_once_per_interval(setup) -> None:
    transport, clock, discovery = setup
    discovery.resource_info("v1", "ConfigMap")
    for _ in range(5):
        with pytest.raises(UnknownKind):
            discovery.resource_info("v1", "Widget")
    assert transport.asked == ["/api/v1"]  # fetched a moment ago: misses do not refetch
    clock.now += 3.5
    for _ in range(5):
        with pytest.raises(UnknownKind):
            discovery.resource_info("v1", "Widget")
    assert transport.asked == ["/api/v1", "/api/v1"]  # one refresh for the storm of misses
    transport.served["/api/v1"]["resources"].append({"name": "widgets", "kind": "Widget", "namespaced": True})
    clock.now += 1.0
    with pytest.raises(UnknownKind):
        discovery.resource_info("v1", "Widget")  # within the interval: no request, still unknown
    assert len(transport.asked) == 2
    clock.now += 2.5
    assert discovery.resource_info("v1", "Widget").plural == "widgets"
    assert len(transport.asked) == 3


def test_unknown_group_version(setup) -> None:
    transport, _, discovery = setup
    with pytest.raises(UnknownKind) as info:
        discovery.resource_info("example.com/v1", "Widget")
    assert isinstance(info.value, StallingError)
    assert 'kind "Widget" in group "example.com"' in str(info.value)
    assert transport.asked == ["/apis/example.com/v1"]


def test_group_kind_uses_preferred_version(setup) -> None:
    transport, _, discovery = setup
    info = discovery.for_group_kind("apps", "Deployment")
    assert (info.version, info.plural) == ("v1", "deployments")
    assert discovery.for_group_kind("", "ConfigMap").version == "v1"
    assert transport.asked.count("/apis") == 1


def test_empty_api_version_or_kind(setup) -> None:
    _, _, discovery = setup
    with pytest.raises(UnknownKind, match="no apiVersion or kind"):
        discovery.resource_info("", "ConfigMap")


def test_invalidate_forgets(setup) -> None:
    transport, _, discovery = setup
    discovery.resource_info("v1", "ConfigMap")
    discovery.invalidate()
    discovery.resource_info("v1", "ConfigMap")
    assert transport.asked == ["/api/v1", "/api/v1"]


def test_parse_resource_list_paths() -> None:
    body = {"resources": [{"name": "deployments", "kind": "Deployment", "namespaced": True},
                          {"name": "deployments/scale", "kind": "Scale", "namespaced": True}]}
    infos = parse_resource_list(body, "apps", "v1")
    dep = infos["Deployment"]
    assert "Scale" not in infos
    assert dep.subresources == {"scale"}
    assert dep.path() == "/apis/apps/v1/deployments"
    assert dep.path("ns") == "/apis/apps/v1/namespaces/ns/deployments"
    assert dep.path("ns", "web") == "/apis/apps/v1/namespaces/ns/deployments/web"
