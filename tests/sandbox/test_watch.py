"""Watch streams through `kubernetes.watch.Watch`: event types, resume, selectors, timeouts, 410 Gone."""

from __future__ import annotations

import threading
import time

import pytest
from kubernetes import client, watch


def _cm(name: str, labels: dict[str, str] | None = None) -> client.V1ConfigMap:
    return client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name, labels=labels), data={"k": "v"})


def _collect(core: client.CoreV1Api, namespace: str, count: int, **kwargs: object) -> list[tuple[str, str]]:
    events: list[tuple[str, str]] = []
    w = watch.Watch()
    for event in w.stream(core.list_namespaced_config_map, namespace, timeout_seconds=10, **kwargs):
        events.append((event["type"], event["object"].metadata.name))
        if len(events) >= count:
            w.stop()
    return events


def test_watch_from_list_resource_version_sees_changes(kube_api, kube_namespace):
    core = client.CoreV1Api(kube_api)
    rv = core.list_namespaced_config_map(kube_namespace).metadata.resource_version
    core.create_namespaced_config_map(kube_namespace, _cm("w"))
    core.patch_namespaced_config_map("w", kube_namespace, {"data": {"k": "2"}})
    core.delete_namespaced_config_map("w", kube_namespace)
    events = _collect(core, kube_namespace, 3, resource_version=rv)
    assert events == [("ADDED", "w"), ("MODIFIED", "w"), ("DELETED", "w")]


def test_watch_without_version_starts_with_current_objects(kube_api, kube_namespace):
    core = client.CoreV1Api(kube_api)
    core.create_namespaced_config_map(kube_namespace, _cm("present", {"pick": "yes"}))
    # a selector: a real cluster's controller-manager also publishes kube-root-ca.crt in every namespace
    events = _collect(core, kube_namespace, 1, label_selector="pick=yes")
    assert events == [("ADDED", "present")]


def test_watch_streams_live_events(kube_api, kube_namespace):
    core = client.CoreV1Api(kube_api)
    rv = core.list_namespaced_config_map(kube_namespace).metadata.resource_version
    timer = threading.Timer(0.3, lambda: core.create_namespaced_config_map(kube_namespace, _cm("later")))
    timer.start()
    try:
        assert _collect(core, kube_namespace, 1, resource_version=rv) == [("ADDED", "later")]
    finally:
        timer.cancel()


def test_watch_label_selector(kube_api, kube_namespace):
    core = client.CoreV1Api(kube_api)
    rv = core.list_namespaced_config_map(kube_namespace).metadata.resource_version
    core.create_namespaced_config_map(kube_namespace, _cm("skip", {"pick": "no"}))
    core.create_namespaced_config_map(kube_namespace, _cm("take", {"pick": "yes"}))
    events = _collect(core, kube_namespace, 1, resource_version=rv, label_selector="pick=yes")
    assert events == [("ADDED", "take")]


def test_watch_timeout_ends_stream(kube_api, kube_namespace):
    core = client.CoreV1Api(kube_api)
    rv = core.list_namespaced_config_map(kube_namespace).metadata.resource_version
    started = time.monotonic()
    events = list(watch.Watch().stream(core.list_namespaced_config_map, kube_namespace, resource_version=rv,
                                       timeout_seconds=1, _request_timeout=30))
    assert events == []
    assert time.monotonic() - started < 20


@pytest.mark.emulator_only("a private emulator with a short watch history")
def test_too_old_resource_version_is_410(make_sandbox):
    _, api = make_sandbox(watch_history=5)
    core = client.CoreV1Api(api)
    first_rv = core.list_namespaced_config_map("default").metadata.resource_version
    for i in range(10):
        core.create_namespaced_config_map("default", _cm(f"c{i}"))
    with pytest.raises(client.ApiException) as info:
        list(watch.Watch().stream(core.list_namespaced_config_map, "default", resource_version=first_rv,
                                  timeout_seconds=2))
    assert info.value.status == 410
