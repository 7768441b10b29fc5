"""fieldsV1 notation parsed into a tree, its paths, and the removal of owned fields."""

from __future__ import annotations

import json

import pytest

from shared.diff.managed_fields import (
    LAST_APPLIED_ANNOTATION,
    ManagedFieldsError,
    field_paths,
    last_applied_fields,
    owned_fields,
    parse_fields_v1,
    remove_fields,
)

FIELDS = {
    "f:metadata": {"f:labels": {"f:app": {}}},
    "f:spec": {
        "f:replicas": {},
        "f:containers": {
            'k:{"name":"web"}': {".": {}, "f:image": {}, "f:ports": {
                'k:{"containerPort":80,"protocol":"TCP"}': {".": {}, "f:containerPort": {}}}},
        },
        "f:finalizers": {'v:"a/b"': {}},
        "f:args": {"i:0": {}},
    },
}


def test_paths_of_every_notation() -> None:
    paths = field_paths(parse_fields_v1(FIELDS))
    assert ("metadata", "labels", "app") in paths
    assert ("spec", "replicas") in paths
    assert ("spec", "containers", {"name": "web"}) in paths
    assert ("spec", "containers", {"name": "web"}, "image") in paths
    assert ("spec", "containers", {"name": "web"}, "ports", {"containerPort": 80, "protocol": "TCP"}) in paths
    assert ("spec", "finalizers", ("v", "a/b")) in paths
    assert ("spec", "args", 0) in paths
    assert ("spec",) not in paths  # only a parent of members, not a member itself


@pytest.mark.parametrize(("fields", "fragment"), [
    ({"x:foo": {}}, "unknown prefix 'x'"),
    ({"foo": {}}, "expected f:, k:, v:, i:"),
    ({"f:spec": {'k:{"name":': {}}}, "invalid JSON"),
    ({"f:spec": {"k:[1]": {}}}, "non-empty JSON object"),
    ({"f:spec": {"i:one": {}}}, "not an integer"),
    ({"f:spec": []}, "expected a map"),
])
def test_bad_notation_is_a_typed_error(fields, fragment) -> None:
    with pytest.raises(ManagedFieldsError, match=fragment.replace("(", r"\(")):
        parse_fields_v1(fields)


def _obj(entries: list[dict]) -> dict:
    return {"metadata": {"name": "x", "managedFields": entries}}


def test_owned_fields_filters_manager_operation_and_subresource() -> None:
    obj = _obj([
        {"manager": "wavecd", "operation": "Apply", "fieldsV1": {"f:spec": {"f:a": {}}}},
        {"manager": "wavecd", "operation": "Update", "fieldsV1": {"f:spec": {"f:b": {}}}},
        {"manager": "wavecd", "operation": "Apply", "subresource": "status", "fieldsV1": {"f:status": {}}},
        {"manager": "other", "operation": "Apply", "fieldsV1": {"f:spec": {"f:c": {}}}},
    ])
    applied = owned_fields(obj, ["wavecd"], "Apply")
    assert applied is not None and field_paths(applied) == [("spec", "a")]
    both = owned_fields(obj, ["wavecd"])
    assert both is not None and sorted(field_paths(both)) == [("spec", "a"), ("spec", "b")]
    assert owned_fields(obj, ["nobody"]) is None


def test_last_applied_lists_fields_and_treats_lists_as_atomic() -> None:
    applied = {"apiVersion": "v1", "kind": "ConfigMap", "data": {"a": "1"}, "spec": {"args": ["x"]}}
    obj = {"metadata": {"annotations": {LAST_APPLIED_ANNOTATION: json.dumps(applied)}}}
    node = last_applied_fields(obj)
    assert node is not None
    assert sorted(field_paths(node)) == [("apiVersion",), ("data", "a"), ("kind",), ("spec", "args")]
    assert last_applied_fields({"metadata": {}}) is None
    with pytest.raises(ManagedFieldsError, match="not valid JSON"):
        last_applied_fields({"metadata": {"annotations": {LAST_APPLIED_ANNOTATION: "{nope"}}})


def test_remove_fields_copies_and_removes_members_whole() -> None:
    obj = {
        "metadata": {"labels": {"app": "web", "keep": "1"}},
        "spec": {
            "replicas": 3, "paused": False,
            "containers": [{"name": "web", "image": "a"}, {"name": "side", "image": "b"}],
            "finalizers": ["a/b", "c/d"],
            "args": ["x", "y"],
        },
    }
    before = json.dumps(obj, sort_keys=True)
    result = remove_fields(obj, parse_fields_v1(FIELDS))
    assert json.dumps(obj, sort_keys=True) == before
    assert result == {
        "metadata": {"labels": {"keep": "1"}},
        "spec": {"paused": False, "containers": [{"name": "side", "image": "b"}], "finalizers": ["c/d"],
                 "args": ["y"]},
    }


def test_remove_fields_descends_into_item_without_dot() -> None:
    fields = {"f:spec": {"f:containers": {'k:{"name":"web"}': {"f:image": {}}}}}
    obj = {"spec": {"containers": [{"name": "web", "image": "a", "args": ["z"]}]}}
    assert remove_fields(obj, parse_fields_v1(fields)) == {"spec": {"containers": [{"name": "web",
                                                                                   "args": ["z"]}]}}


def test_applied_fields_merges_apply_entries_and_falls_back_to_last_applied() -> None:
    from shared.diff.managed_fields import applied_fields_v1

    obj = _obj([
        {"manager": "wavecd", "operation": "Apply", "fieldsV1": {"f:spec": {"f:a": {}}}},
        {"manager": "wavecd", "operation": "Apply", "fieldsV1": {"f:spec": {"f:b": {}}}},
    ])
    assert applied_fields_v1(obj, "wavecd") == {"f:spec": {"f:a": {}, "f:b": {}}}
    csa = {"metadata": {"annotations": {LAST_APPLIED_ANNOTATION: json.dumps(
        {"data": {"x": "1"}, "spec": {"l": [1]}, "status": {"s": 1}})}}}
    assert applied_fields_v1(csa, "wavecd") == {"f:data": {"f:x": {}}, "f:spec": {"f:l": {}}}
    assert applied_fields_v1({"metadata": {}}, "wavecd") is None


def test_last_applied_of_a_builtin_kind_owns_merge_lists_item_by_item() -> None:
    """kubectl's strategic merge: containers by name, container ports by containerPort, finalizers by value;
    a custom resource's lists stay whole (JSON merge patch); a Secret's stringData keys are data keys."""
    from shared.diff.managed_fields import applied_fields_v1

    applied = {"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": {"name": "w", "finalizers": ["a/b"]},
               "spec": {"template": {"spec": {"containers": [
                   {"name": "app", "image": "x", "ports": [{"containerPort": 80}], "args": ["-v"]}]}}}}
    live = {"metadata": {"annotations": {LAST_APPLIED_ANNOTATION: json.dumps(applied)}}}
    fields = applied_fields_v1(live, "wavecd")
    assert fields is not None
    assert fields["f:metadata"]["f:finalizers"] == {'v:"a/b"': {}}
    container = fields["f:spec"]["f:template"]["f:spec"]["f:containers"]['k:{"name":"app"}']
    assert container == {".": {}, "f:name": {}, "f:image": {}, "f:args": {},
                         "f:ports": {'k:{"containerPort":80}': {".": {}, "f:containerPort": {}}}}

    custom = {**applied, "apiVersion": "example.com/v1"}
    live = {"metadata": {"annotations": {LAST_APPLIED_ANNOTATION: json.dumps(custom)}}}
    fields = applied_fields_v1(live, "wavecd")
    assert fields is not None
    assert fields["f:spec"]["f:template"]["f:spec"]["f:containers"] == {}
    assert fields["f:metadata"]["f:finalizers"] == {}

    secret = {"apiVersion": "v1", "kind": "Secret", "data": {"a": "YQ=="}, "stringData": {"b": "x"}}
    live = {"metadata": {"annotations": {LAST_APPLIED_ANNOTATION: json.dumps(secret)}}}
    fields = applied_fields_v1(live, "wavecd")
    assert fields is not None
    assert fields["f:data"] == {"f:a": {}, "f:b": {}} and "f:stringData" not in fields


def test_lazy_tree_reports_bad_notation_when_walked() -> None:
    from shared.diff.managed_fields import FieldNode

    node = FieldNode.lazy({"f:spec": {"x:bad": {}}})
    spec = node.fields["spec"]
    with pytest.raises(ManagedFieldsError, match="unknown prefix 'x'"):
        spec.fields  # noqa: B018 - parsing happens on access
