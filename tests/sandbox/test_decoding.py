"""Bodies whose values have the wrong JSON type: 400 BadRequest with the API server's decoder message.

Each case in tests/testdata/sandbox/undecodable/ holds an object and a v1.36 API server's answer; a
patch whose result does not decode is refused with 422 on the `patch` field instead.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from kubernetes import client

from tests.sandbox.helpers import call

CASES = sorted((Path(__file__).parents[1] / "testdata" / "sandbox" / "undecodable").glob("*.yaml"))


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_undecodable_bodies_are_bad_requests(kube_api, kube_namespace, case):
    spec = yaml.safe_load(case.read_text())
    api, plural = spec["resource"].rsplit("/", 1)
    status, body = call(kube_api, "POST", f"{api}/namespaces/{kube_namespace}/{plural}", spec["object"])
    expect = spec["expect"]
    assert (status, body["reason"], body["message"]) == (expect["code"], expect["reason"], expect["message"])


def test_a_patch_that_does_not_decode_is_invalid(kube_api, kube_namespace):
    client.CoreV1Api(kube_api).create_namespaced_config_map(kube_namespace, {"metadata": {"name": "tp"}})
    path = f"/api/v1/namespaces/{kube_namespace}/configmaps/tp"
    status, body = call(kube_api, "PATCH", path, {"data": {"a": 1}}, content_type="application/merge-patch+json")
    assert status == 422 and body["reason"] == "Invalid"
    assert [c["field"] for c in body["details"]["causes"]] == ["patch"]
    assert body["message"].endswith("json: cannot unmarshal number into Go struct field ConfigMap.data of type string")
    _, current = call(kube_api, "GET", path)
    current["data"] = {"a": True}
    status, body = call(kube_api, "PUT", path, current)
    assert status == 400
    assert body["message"] == ('ConfigMap in version "v1" cannot be handled as a ConfigMap: json: cannot unmarshal '
                               "bool into Go struct field ConfigMap.data of type string")
