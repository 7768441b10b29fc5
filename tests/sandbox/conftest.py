"""Fixtures the emulator's conformance tests share (they run on the emulator and on a real API server)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from kubernetes import client

from tests.sandbox.helpers import call, wait_for


@pytest.fixture
def gadgets(kube_api: client.ApiClient) -> Iterator[str]:
    """A CRD with a structural schema (one free-form field), its status and scale subresources."""
    group = f"p{uuid.uuid4().hex[:8]}.wavecd.test"
    spec_props = {"size": {"type": "integer"}, "replicas": {"type": "integer"},
                  "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                  "items": {"type": "array", "items": {"type": "object", "properties": {"n": {"type": "string"}}}}}
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "metadata": {"name": f"gadgets.{group}"},
           "spec": {"group": group, "scope": "Namespaced",
                    "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget", "listKind": "GadgetList"},
                    "versions": [{"name": "v1", "served": True, "storage": True,
                                  "subresources": {"status": {}, "scale": {
                                      "specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas",
                                      "labelSelectorPath": ".status.selector"}},
                                  "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                                      "spec": {"type": "object", "properties": spec_props},
                                      "status": {"type": "object", "properties": {
                                          "replicas": {"type": "integer"}, "selector": {"type": "string"}}}}}}}]}}
    ext = client.ApiextensionsV1Api(kube_api)
    ext.create_custom_resource_definition(crd)
    wait_for(lambda: call(kube_api, "GET", f"/apis/{group}/v1")[0] == 200)
    yield group
    ext.delete_custom_resource_definition(f"gadgets.{group}")
