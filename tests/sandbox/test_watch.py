"""Watch streams through `kubernetes.watch.Watch`: event types, resume, selectors, timeouts, 410 Gone."""

from __future__ import annotations

import threading

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
    core.create_namespaced_config_map(kube_namespace, _cm("w", {"pick": "yes"}))
    core.patch_namespaced_config_map("w", kube_namespace, {"data": {"k": "2"}})
    core.delete_namespaced_config_map("w", kube_namespace)
    # a selector: a real cluster's controller-manager also publishes kube-root-ca.crt in every namespace
    events = _collect(core, kube_namespace, 3, resource_version=rv, label_selector="pick=yes")
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
    timer = threading.Timer(0.3, lambda: core.create_namespaced_config_map(kube_namespace,
                                                                          _cm("later", {"pick": "yes"})))
    timer.start()
    try:
        assert _collect(core, kube_namespace, 1, resource_version=rv, label_selector="pick=yes") == [
            ("ADDED", "later")]
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
    # the stream must end by itself: if it did not, the client's read timeout would raise
    events = list(watch.Watch().stream(core.list_namespaced_config_map, kube_namespace, resource_version=rv,
                                       label_selector="pick=yes", timeout_seconds=1, _request_timeout=30))
    assert events == []


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


def _raw_watch(kube_api, namespace: str, query: dict[str, str]) -> tuple[int, list[dict]]:
    """A watch read to its end (it must time out); returns (status, events)."""
    import json

    url = f"{kube_api.configuration.host}/api/v1/namespaces/{namespace}/configmaps"
    query = {"watch": "true", "timeoutSeconds": "3", **query}
    try:
        response = kube_api.call_api("GET", url + "?" + "&".join(f"{k}={v}" for k, v in query.items()),
                                     header_params={"Accept": "application/json"})
        response.read()
        status, data = response.status, response.data
    except client.ApiException as exc:
        return exc.status, [json.loads(exc.body)]
    return status, [json.loads(line) for line in data.decode().splitlines() if line.strip()]


def test_send_initial_events_end_with_a_bookmark(kube_api, kube_namespace):
    core = client.CoreV1Api(kube_api)
    made = core.create_namespaced_config_map(kube_namespace, _cm("present", {"pick": "yes"}))
    status, events = _raw_watch(kube_api, kube_namespace, {
        "sendInitialEvents": "true", "resourceVersionMatch": "NotOlderThan", "allowWatchBookmarks": "true",
        "labelSelector": "pick%3Dyes"})
    assert status == 200
    assert [(e["type"], e["object"]["metadata"].get("name")) for e in events[:2]] == [
        ("ADDED", "present"), ("BOOKMARK", None)]
    end = events[1]["object"]
    assert (end["kind"], end["apiVersion"]) == ("ConfigMap", "v1")
    assert end["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}
    assert int(end["metadata"]["resourceVersion"]) >= int(made.metadata.resource_version)
    assert all(e["type"] == "BOOKMARK" and "annotations" not in e["object"]["metadata"] for e in events[2:])


def test_a_watch_without_version_sends_the_initial_events_end_bookmark_too(kube_api, kube_namespace):
    client.CoreV1Api(kube_api).create_namespaced_config_map(kube_namespace, _cm("present", {"pick": "yes"}))
    status, events = _raw_watch(kube_api, kube_namespace, {"allowWatchBookmarks": "true",
                                                           "labelSelector": "pick%3Dyes"})
    assert status == 200 and [e["type"] for e in events[:2]] == ["ADDED", "BOOKMARK"]
    assert events[1]["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}
    status, events = _raw_watch(kube_api, kube_namespace, {"labelSelector": "pick%3Dyes"})
    assert status == 200 and [e["type"] for e in events] == ["ADDED"]  # no bookmarks unless allowed


def test_send_initial_events_false_starts_from_now(kube_api, kube_namespace):
    client.CoreV1Api(kube_api).create_namespaced_config_map(kube_namespace, _cm("present", {"pick": "yes"}))
    status, events = _raw_watch(kube_api, kube_namespace, {
        "sendInitialEvents": "false", "resourceVersionMatch": "NotOlderThan", "labelSelector": "pick%3Dyes"})
    assert status == 200 and events == []


@pytest.mark.parametrize(("query", "causes"), [
    ({"sendInitialEvents": "true"},
     [("FieldValueForbidden", "Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan")]),
    ({"resourceVersionMatch": "NotOlderThan"},
     [("FieldValueForbidden",
       "Forbidden: resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided")]),
    ({"resourceVersionMatch": "Exact", "resourceVersion": "1"},
     [("FieldValueForbidden",
       "Forbidden: resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided"),
      ("FieldValueNotSupported", 'Unsupported value: "Exact": supported values: "NotOlderThan"')]),
])
def test_watch_list_options_are_checked(kube_api, kube_namespace, query, causes):
    status, (body,) = _raw_watch(kube_api, kube_namespace, query)
    assert status == 422 and body["reason"] == "Invalid"
    assert body["details"]["kind"] == "ListOptions" and body["details"]["group"] == "meta.k8s.io"
    assert [(c["reason"], c["message"]) for c in body["details"]["causes"]] == causes
    assert all(c["field"] == "resourceVersionMatch" for c in body["details"]["causes"])


def test_initial_events_not_older_than_a_future_version_time_out(kube_api, kube_namespace):
    status, events = _raw_watch(kube_api, kube_namespace, {
        "sendInitialEvents": "true", "resourceVersionMatch": "NotOlderThan", "resourceVersion": "999999999"})
    assert status == 200 and len(events) == 1 and events[0]["type"] == "ERROR"
    error = events[0]["object"]
    assert (error["code"], error["reason"]) == (504, "Timeout")
    assert error["message"].startswith("Timeout: Too large resource version: 999999999, current: ")
    assert error["details"] == {"causes": [{"reason": "ResourceVersionTooLarge",
                                            "message": "Too large resource version"}], "retryAfterSeconds": 1}
