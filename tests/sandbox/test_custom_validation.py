"""Custom resources validated against their CRD's schema, judged by a real API server.

The cases in tests/testdata/sandbox/custom_invalid/ are bodies for a `Thing` whose CRD carries the
schema in tests/testdata/sandbox/custom_schema.yaml, with a v1.36 API server's answers. The server
lists several causes in no fixed order, so causes compare as sorted lists.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from kubernetes import client

from tests.sandbox.helpers import call, wait_for

DATA = Path(__file__).parents[1] / "testdata" / "sandbox"
CASES = sorted((DATA / "custom_invalid").glob("*.yaml"))


@pytest.fixture(scope="module")
def things(kube_api: client.ApiClient) -> Iterator[str]:
    schema = yaml.safe_load((DATA / "custom_schema.yaml").read_text())["openAPIV3Schema"]
    group = f"v{uuid.uuid4().hex[:8]}.wavecd.test"
    ext = client.ApiextensionsV1Api(kube_api)
    ext.create_custom_resource_definition({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": f"things.{group}"},
        "spec": {"group": group, "scope": "Namespaced",
                 "names": {"plural": "things", "singular": "thing", "kind": "Thing", "listKind": "ThingList"},
                 "versions": [{"name": "v1", "served": True, "storage": True,
                               "schema": {"openAPIV3Schema": schema}}]}})
    wait_for(lambda: call(kube_api, "GET", f"/apis/{group}/v1")[0] == 200)
    # a new CRD's schema reaches every API server handler a moment after discovery shows it
    wait_for(lambda: call(kube_api, "POST", f"/apis/{group}/v1/namespaces/default/things?dryRun=All",
                          {"apiVersion": f"{group}/v1", "kind": "Thing", "metadata": {"name": "probe"}})[0] == 422)
    yield group
    ext.delete_custom_resource_definition(f"things.{group}")


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_custom_resources_are_validated_against_their_schema(kube_api, kube_namespace, things, case):
    spec = yaml.safe_load(case.read_text())
    body = {"apiVersion": f"{things}/v1", "kind": "Thing", "metadata": {"name": "t"}, **spec["object"]}
    status, answer = call(kube_api, "POST", f"/apis/{things}/v1/namespaces/{kube_namespace}/things", body)
    expect = spec["expect"]
    assert status == expect["code"], answer
    if status == 201:
        assert answer.get("spec") == expect["spec"]
        return
    expected_message = expect["message"].replace("crgen1.wavecd.test", things)
    if len(expect["causes"]) == 1:
        assert answer["message"] == expected_message
    else:
        assert answer["message"].startswith(f'Thing.{things} "t" is invalid: [')
    key = lambda c: (c["field"], c["reason"], c["message"])  # noqa: E731 - a sort key
    assert sorted(answer["details"]["causes"], key=key) == sorted(expect["causes"], key=key)
