"""dryRun=All on every write, and label / field selectors on lists."""

from __future__ import annotations

import pytest
from kubernetes import client

from tests.sandbox.helpers import api_error


@pytest.mark.emulator_only("reads the emulator's store version")
def test_dry_run_create_stores_nothing_and_consumes_no_version(kube_api, kube_namespace, sandbox_only):
    core = client.CoreV1Api(kube_api)
    before = sandbox_only.store.resource_version
    made = core.create_namespaced_config_map(kube_namespace, client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="dry"), data={"a": "1"}), dry_run="All")
    assert made.data == {"a": "1"} and made.metadata.uid
    assert sandbox_only.store.resource_version == before


def test_dry_run_writes_do_not_persist(kube_api, kube_namespace):
    core = client.CoreV1Api(kube_api)
    core.create_namespaced_config_map(kube_namespace, client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="real"), data={"a": "1"}))
    patched = core.patch_namespaced_config_map("real", kube_namespace, {"data": {"a": "2"}}, dry_run="All")
    assert patched.data == {"a": "2"}
    current = core.read_namespaced_config_map("real", kube_namespace)
    current.data = {"a": "3"}
    replaced = core.replace_namespaced_config_map("real", kube_namespace, current, dry_run="All")
    assert replaced.data == {"a": "3"}
    assert core.read_namespaced_config_map("real", kube_namespace).data == {"a": "1"}


def test_dry_run_create_then_read_is_404(kube_api, kube_namespace):
    core = client.CoreV1Api(kube_api)
    core.create_namespaced_config_map(kube_namespace, client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="ghost"), data={"a": "1"}), dry_run="All")
    status, _ = api_error(core.read_namespaced_config_map, "ghost", kube_namespace)
    assert status == 404


def test_bad_dry_run_value_is_rejected(kube_api, kube_namespace):
    status, _ = api_error(client.CoreV1Api(kube_api).create_namespaced_config_map, kube_namespace,
                          client.V1ConfigMap(metadata=client.V1ObjectMeta(name="x")), dry_run="Some")
    assert status in (400, 422)


LABELS = {
    "a": {"app": "web", "tier": "front", "ver": "1"},
    "b": {"app": "web", "tier": "back"},
    "c": {"app": "db"},
}


@pytest.fixture
def labelled(kube_api, kube_namespace):
    core = client.CoreV1Api(kube_api)
    for name, labels in LABELS.items():
        core.create_namespaced_config_map(kube_namespace, client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name=name, labels=labels)))
    return kube_namespace


@pytest.mark.parametrize(("selector", "expected"), [
    ("app=web", ["a", "b"]),
    ("app==web", ["a", "b"]),
    ("app!=web", ["c"]),
    ("tier in (front,back)", ["a", "b"]),
    ("tier notin (front)", ["b", "c"]),
    ("tier", ["a", "b"]),
    ("!tier", ["c"]),
    ("app=web,tier!=back", ["a"]),
    ("app in (web, db),!ver", ["b", "c"]),
])
def test_label_selectors(kube_api, labelled, selector, expected):
    items = client.CoreV1Api(kube_api).list_namespaced_config_map(labelled, label_selector=selector).items
    assert sorted(i.metadata.name for i in items if i.metadata.name in LABELS) == expected


def test_field_selectors(kube_api, labelled):
    core = client.CoreV1Api(kube_api)
    by_name = core.list_namespaced_config_map(labelled, field_selector="metadata.name=b").items
    assert [i.metadata.name for i in by_name] == ["b"]
    others = core.list_config_map_for_all_namespaces(
        field_selector=f"metadata.namespace={labelled},metadata.name!=b").items
    assert sorted(i.metadata.name for i in others if i.metadata.name in LABELS) == ["a", "c"]


def test_bad_selectors_are_400(kube_api, labelled):
    core = client.CoreV1Api(kube_api)
    assert api_error(core.list_namespaced_config_map, labelled, label_selector="a in (")[0] == 400
    assert api_error(core.list_namespaced_config_map, labelled, field_selector="spec.nothing=x")[0] == 400
