"""Secret masking as Argo CD shows it: a run of '+' per distinct value, per key."""

from __future__ import annotations

import base64
import json

from hypothesis import given
from hypothesis import strategies as st

from shared.diff.compare import compare
from shared.diff.masking import mask_object, mask_secret_pair


def _secret(data: dict | None = None, string_data: dict | None = None, annotations: dict | None = None) -> dict:
    obj: dict = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "ns"}}
    if annotations:
        obj["metadata"]["annotations"] = annotations
    if data is not None:
        obj["data"] = data
    if string_data is not None:
        obj["stringData"] = string_data
    return obj


def test_distinct_values_get_growing_masks_equal_values_equal_masks() -> None:
    desired = _secret({"a": "one", "b": "same", "c": "only-desired"})
    live = _secret({"a": "two", "b": "same", "d": "only-live"})
    masked_desired, masked_live = mask_secret_pair(desired, live)
    assert masked_desired is not None and masked_live is not None
    assert masked_desired["data"] == {"a": "+" * 8, "b": "+" * 8, "c": "+" * 8}
    assert masked_live["data"] == {"a": "+" * 12, "b": "+" * 8, "d": "+" * 8}
    assert desired["data"]["a"] == "one", "the inputs are not modified"


def test_third_distinct_value_gets_sixteen() -> None:
    applied = json.dumps(_secret({"k": "three"}))
    desired = _secret({"k": "one"})
    live = _secret({"k": "two"}, annotations={"kubectl.kubernetes.io/last-applied-configuration": applied})
    _, masked_live = mask_secret_pair(desired, live)
    assert masked_live is not None
    embedded = json.loads(masked_live["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"])
    assert masked_live["data"]["k"] == "+" * 12
    assert embedded["data"]["k"] == "+" * 16
    assert "three" not in json.dumps(masked_live)


def test_string_data_and_unparseable_annotation_are_masked() -> None:
    obj = _secret(string_data={"token": "t0ps3cret"},
                  annotations={"kubectl.kubernetes.io/last-applied-configuration": "not json t0ps3cret"})
    masked = mask_object(obj)
    assert masked["stringData"] == {"token": "+" * 8}
    assert "t0ps3cret" not in json.dumps(masked)
    assert obj["stringData"]["token"] == "t0ps3cret"


def test_non_secret_objects_pass_unchanged() -> None:
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "visible"}}
    assert mask_object(cm) is cm
    assert mask_secret_pair(cm, None) == (cm, None)
    crd_secret = {"apiVersion": "example.com/v1", "kind": "Secret", "data": {"a": "visible"}}
    assert mask_object(crd_secret)["data"]["a"] == "visible"


# A marker prefix keeps a generated value from coinciding with YAML structure or a mask run.
_text = st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126, exclude_characters="+"),
                max_size=20).map(lambda t: f"SECRET-{t}")


@given(st.dictionaries(st.from_regex(r"[a-z]{1,8}", fullmatch=True), _text, min_size=1, max_size=5),
       st.dictionaries(st.from_regex(r"[a-z]{1,8}", fullmatch=True), _text, min_size=1, max_size=5))
def test_no_secret_value_reaches_a_diff(desired_values: dict, live_values: dict) -> None:
    desired = _secret(string_data=desired_values)
    live = _secret({k: base64.b64encode(v.encode()).decode() for k, v in live_values.items()})
    result = compare(desired, live)
    shown = result.diff_text() + json.dumps([result.normalized_desired, result.normalized_live])
    for value in [*desired_values.values(), *live_values.values()]:
        assert value not in shown
        assert base64.b64encode(value.encode()).decode() not in shown
    if result.status == "OutOfSync":
        assert "+" * 8 in result.diff_text()
