"""compare(), normalize() and the ignore rules as an API: errors, laziness, purity, and properties."""

from __future__ import annotations

import copy

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.core.errors import StallingError
from shared.core.models import ResourceIgnoreDifferences
from shared.core.resources import ResourceKey
from shared.diff.compare import OUT_OF_SYNC, SYNCED, ResourceDiff, compare, prune_diff, requires_pruning
from shared.diff.ignore_differences import delete_paths, jq_paths, parse_json_pointer, rule_matches
from shared.diff.normalize import normalize


def _cm(**data: str) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "ns"}, "data": data}


def test_neither_side_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="desired or a live object"):
        compare(None, None)


def test_result_key_and_summary_carry_no_body() -> None:
    result = compare(_cm(password="hunter2"), _cm(password="other"))
    assert result.key == ResourceKey("", "ConfigMap", "ns", "c")
    assert result.summary() == {"group": "", "kind": "ConfigMap", "namespace": "ns", "name": "c",
                                "status": OUT_OF_SYNC, "requiresPruning": False}


def test_diff_text_is_made_once_and_only_when_asked() -> None:
    result = compare(_cm(a="1"), _cm(a="2"))
    assert result._text is None
    first = result.diff_text()
    assert "-  a: '2'" in first and "+  a: '1'" in first
    assert result.diff_text() is first


def test_prune_helpers() -> None:
    live = _cm(a="1")
    assert requires_pruning(live)
    live["metadata"]["annotations"] = {"argocd.argoproj.io/sync-options": "Prune=false"}
    assert not requires_pruning(live)
    result = prune_diff(live)
    assert isinstance(result, ResourceDiff) and result.status == OUT_OF_SYNC and not result.requires_pruning
    assert compare(None, live).requires_pruning is False


def test_normalize_drops_server_fields_without_touching_the_input() -> None:
    live = {"apiVersion": "v1", "kind": "ConfigMap", "status": {"x": 1},
            "metadata": {"name": "c", "uid": "u", "resourceVersion": "9", "managedFields": [],
                         "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"}}}
    before = copy.deepcopy(live)
    assert normalize(live) == {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}
    assert live == before


@pytest.mark.parametrize(("secret", "fragment"), [
    ({"stringData": {"port": 5432}}, "stringData.port must be a string, got int"),
    ({"stringData": ["a"]}, "stringData must be a map"),
])
def test_bad_secret_string_data_is_a_stalling_error(secret, fragment) -> None:
    obj = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db", "namespace": "ns"}, **secret}
    with pytest.raises(StallingError, match=fragment) as info:
        compare(obj, None)
    assert "ns/db" in str(info.value)


def test_non_object_is_a_stalling_error() -> None:
    with pytest.raises(StallingError, match="expected a Kubernetes object"):
        compare(["not", "an", "object"], None)  # type: ignore[arg-type]


@pytest.mark.parametrize(("pointer", "fragment"), [("spec/replicas", "must be empty or start with '/'"),
                                                   ("/a~2b", "'~' must be followed by 0 or 1")])
def test_bad_json_pointer_is_a_stalling_error(pointer, fragment) -> None:
    rule = ResourceIgnoreDifferences(kind="ConfigMap", json_pointers=[pointer])
    with pytest.raises(StallingError, match=fragment):
        compare(_cm(a="1"), _cm(a="2"), ignore=[rule])


def test_bad_jq_expression_is_a_stalling_error() -> None:
    rule = ResourceIgnoreDifferences(kind="ConfigMap", jq_path_expressions=[".data[ | nope"])
    with pytest.raises(StallingError, match=r"invalid jqPathExpression '\.data\[ \| nope'"):
        compare(_cm(a="1"), _cm(a="2"), ignore=[rule])


def test_pointer_tokens_and_jq_paths() -> None:
    assert parse_json_pointer("/a~1b/~0c/0") == ("a/b", "~c", "0")
    assert parse_json_pointer("") == ()
    obj = {"l": [{"n": "x"}, {"n": "y"}, {"n": "x"}]}
    paths = jq_paths('.l[] | select(.n == "x")', obj)
    assert paths == [("l", 0), ("l", 2)]
    assert delete_paths(obj, paths) == {"l": [{"n": "y"}]}
    assert len(obj["l"]) == 3


@pytest.mark.parametrize(("rule", "key", "matches"), [
    ({"group": "apps", "kind": "Deployment"}, ("apps", "Deployment", "ns", "a"), True),
    ({"group": "*", "kind": "*"}, ("", "ConfigMap", "ns", "a"), True),
    ({"kind": "Service"}, ("", "Service", "ns", "a"), True),
    ({"kind": "Service"}, ("serving.knative.dev", "Service", "ns", "a"), False),
    ({"group": "*.example.com", "kind": "Widget"}, ("shop.example.com", "Widget", "", "w"), True),
    ({"group": "apps", "kind": "Deployment", "namespace": "x"}, ("apps", "Deployment", "ns", "a"), False),
])
def test_rule_matching(rule, key, matches) -> None:
    assert rule_matches(ResourceIgnoreDifferences.model_validate(rule), ResourceKey(*key)) is matches


# Properties over arbitrary JSON-like objects.
_scalars = st.one_of(st.text(max_size=6), st.integers(-5, 5), st.booleans())
_json = st.recursive(_scalars, lambda inner: st.one_of(
    st.lists(inner, min_size=1, max_size=3),
    st.dictionaries(st.from_regex(r"[a-z]{1,5}", fullmatch=True), inner, min_size=1, max_size=3)),
    max_leaves=12)
_spec = st.dictionaries(st.from_regex(r"[a-z]{1,5}", fullmatch=True), _json, min_size=1, max_size=4)


def _obj(spec: dict) -> dict:
    return {"apiVersion": "example.com/v1", "kind": "Thing", "metadata": {"name": "t", "namespace": "n"},
            "spec": spec}


@settings(max_examples=150, deadline=None)
@given(_spec)
def test_an_object_equals_itself(spec: dict) -> None:
    result = compare(_obj(spec), _obj(copy.deepcopy(spec)))
    assert result.status == SYNCED
    assert result.diff_text() == ""


@settings(max_examples=150, deadline=None)
@given(_spec, _json)
def test_fields_only_live_has_are_not_drift(spec: dict, extra: object) -> None:
    live = _obj(copy.deepcopy(spec))
    live["spec"]["zzzextra"] = extra
    live["status"] = {"phase": "Ready"}
    assert compare(_obj(spec), live).status == SYNCED


@settings(max_examples=150, deadline=None)
@given(_spec, st.text(min_size=1, max_size=6))
def test_a_changed_field_is_drift(spec: dict, value: str) -> None:
    live = _obj(copy.deepcopy(spec))
    key = next(iter(spec))
    live["spec"][key] = [value] if spec[key] != [value] else [value, value]
    result = compare(_obj(spec), live)
    assert result.status == OUT_OF_SYNC
    assert result.diff_text().startswith("--- live\n+++ desired\n")


def test_unreadable_managed_fields_fall_back_to_the_subset_rule() -> None:
    desired = _cm(a="1")
    desired["metadata"]["finalizers"] = ["x/y"]
    live = _cm(a="1", b="2")
    live["metadata"]["finalizers"] = ["x/y"]
    live["metadata"]["managedFields"] = [{"manager": "wavecd", "operation": "Apply", "fieldsV1": {
        "f:data": {"f:a": {}, "f:b": {}}, "f:metadata": {"f:finalizers": {'k:{"broken': {}}}}}]
    # b was applied by us and is gone from git, but the entry cannot be read as a whole: subset rule.
    assert compare(desired, live).status == SYNCED
    live["metadata"]["managedFields"] = [{"manager": "wavecd", "operation": "Apply", "fieldsV1": "nope"}]
    assert compare(_cm(a="1"), live).status == SYNCED


def test_unreadable_managed_fields_of_a_trusted_manager_is_a_stalling_error() -> None:
    live = _cm(a="2")
    live["metadata"]["managedFields"] = [
        {"manager": "hpa", "operation": "Update", "fieldsV1": {"f:data": {"q:a": {}}}}]
    rule = ResourceIgnoreDifferences(kind="ConfigMap", managed_fields_managers=["hpa"])
    with pytest.raises(StallingError, match="cannot read managedFields of the live object"):
        compare(_cm(a="1"), live, ignore=[rule])
