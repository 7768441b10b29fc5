"""Unknown fields: dropped with a Warning, dropped silently, or refused, per `fieldValidation`; CRD pruning."""

from __future__ import annotations

from kubernetes import client

from tests.sandbox.helpers import call, request, send_bytes, wait_for

_CM_UNKNOWN = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "fv", "bogusMeta": 1},
               "data": {"a": "b"}, "bogus": {"x": 1}}


def _cms(ns: str) -> str:
    return f"/api/v1/namespaces/{ns}/configmaps"


def test_unknown_fields_are_dropped_with_warnings_by_default(kube_api, kube_namespace):
    status, made, warnings = request(kube_api, "POST", _cms(kube_namespace), _CM_UNKNOWN)
    assert status == 201
    assert warnings == ['unknown field "metadata.bogusMeta"', 'unknown field "bogus"']
    assert "bogus" not in made and "bogusMeta" not in made["metadata"] and made["data"] == {"a": "b"}
    _, stored = call(kube_api, "GET", f"{_cms(kube_namespace)}/fv")
    assert "bogus" not in stored


def test_warn_is_the_default_and_ignore_is_silent(kube_api, kube_namespace):
    status, _, warnings = request(kube_api, "POST", _cms(kube_namespace), _CM_UNKNOWN,
                                  query={"fieldValidation": "Warn", "dryRun": "All"})
    assert status == 201 and len(warnings) == 2
    status, made, warnings = request(kube_api, "POST", _cms(kube_namespace), _CM_UNKNOWN,
                                     query={"fieldValidation": "Ignore"})
    assert status == 201 and warnings == [] and "bogus" not in made


def test_strict_refuses_unknown_fields_on_create(kube_api, kube_namespace):
    status, body, _ = request(kube_api, "POST", _cms(kube_namespace), _CM_UNKNOWN,
                              query={"fieldValidation": "Strict"})
    assert status == 400 and body["reason"] == "BadRequest"
    assert body["message"] == ('ConfigMap in version "v1" cannot be handled as a ConfigMap: strict decoding error: '
                               'unknown field "metadata.bogusMeta", unknown field "bogus"')
    assert call(kube_api, "GET", f"{_cms(kube_namespace)}/fv")[0] == 404


def test_nested_unknown_fields_of_a_deployment(kube_api, kube_namespace):
    from tests.sandbox.test_crud import _deployment

    body = _deployment("fvd")
    body["spec"]["template"]["spec"]["containers"][0]["bogusC"] = 1
    body["spec"]["bogusSpec"] = 2
    path = f"/apis/apps/v1/namespaces/{kube_namespace}/deployments"
    status, body_out, _ = request(kube_api, "POST", path, body, query={"fieldValidation": "Strict"})
    assert status == 400
    assert body_out["message"] == (
        'Deployment in version "v1" cannot be handled as a Deployment: strict decoding error: unknown field '
        '"spec.template.spec.containers[0].bogusC", unknown field "spec.bogusSpec"')
    status, made, warnings = request(kube_api, "POST", path, body)
    assert status == 201
    assert warnings == ['unknown field "spec.template.spec.containers[0].bogusC"', 'unknown field "spec.bogusSpec"']
    assert "bogusSpec" not in made["spec"] and "bogusC" not in made["spec"]["template"]["spec"]["containers"][0]


def test_update_and_patches(kube_api, kube_namespace):
    client.CoreV1Api(kube_api).create_namespaced_config_map(kube_namespace, {"metadata": {"name": "fv"}})
    path = f"{_cms(kube_namespace)}/fv"
    _, current = call(kube_api, "GET", path)
    current["bogus"] = 1
    status, body, _ = request(kube_api, "PUT", path, current, query={"fieldValidation": "Strict"})
    assert status == 400 and body["message"] == (
        'ConfigMap in version "v1" cannot be handled as a ConfigMap: strict decoding error: unknown field "bogus"')
    status, updated, warnings = request(kube_api, "PUT", path, current)
    assert status == 200 and warnings == ['unknown field "bogus"'] and "bogus" not in updated
    for content_type, patch in (("application/merge-patch+json", {"bogus": 1}),
                                ("application/strategic-merge-patch+json", {"bogus": 1}),
                                ("application/json-patch+json", [{"op": "add", "path": "/bogus", "value": 1}])):
        status, patched, warnings = request(kube_api, "PATCH", path, patch, content_type=content_type)
        assert (status, warnings) == (200, ['unknown field "bogus"']), content_type
        assert "bogus" not in patched
        status, body, _ = request(kube_api, "PATCH", path, patch, content_type=content_type,
                                  query={"fieldValidation": "Strict"})
        assert status == 422 and body["reason"] == "Invalid", content_type
        assert body["message"].endswith('strict decoding error: unknown field "bogus"')
        assert [c["field"] for c in body["details"]["causes"]] == ["patch"]


def test_unsupported_field_validation_value(kube_api, kube_namespace):
    status, body, _ = request(kube_api, "POST", _cms(kube_namespace), _CM_UNKNOWN, query={"fieldValidation": "bogus"})
    assert status == 422
    assert body["message"] == ('CreateOptions.meta.k8s.io "" is invalid: fieldValidation: Unsupported value: '
                               '"bogus": supported values: "", "Ignore", "Strict", "Warn"')
    assert body["details"] == {"group": "meta.k8s.io", "kind": "CreateOptions", "causes": [
        {"reason": "FieldValueNotSupported", "field": "fieldValidation",
         "message": 'Unsupported value: "bogus": supported values: "", "Ignore", "Strict", "Warn"'}]}


def test_custom_resources_are_pruned_to_their_schema(kube_api, kube_namespace, gadgets):
    path = f"/apis/{gadgets}/v1/namespaces/{kube_namespace}/gadgets"
    body = {"apiVersion": f"{gadgets}/v1", "kind": "Gadget", "metadata": {"name": "a", "bogusMeta": 1},
            "spec": {"size": 1, "x": 2, "free": {"any": 1}, "items": [{"n": "a", "m": 1}]}, "top": 1}
    expected = ['unknown field "metadata.bogusMeta"', 'unknown field "spec.items[0].m"', 'unknown field "spec.x"',
                'unknown field "top"']
    status, refused, _ = request(kube_api, "POST", path, body, query={"fieldValidation": "Strict"})
    assert status == 400 and refused["message"] == (
        "Gadget in version \"v1\" cannot be handled as a Gadget: strict decoding error: " + ", ".join(expected))
    # the CRD may still be settling into the served schema on a real server: wait until pruning applies
    status, made, warnings = wait_for(lambda: (lambda r: r if r[0] == 201 else None)(
        request(kube_api, "POST", path, body)))
    assert warnings == expected
    assert made["spec"] == {"size": 1, "free": {"any": 1}, "items": [{"n": "a"}]}
    assert "top" not in made and "bogusMeta" not in made["metadata"]


def test_duplicate_fields_warn_or_refuse_in_document_order(kube_api, kube_namespace):
    raw = ('{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"dup","labels":{"x":"1","x":"2"}},'
           '"bogus":1,"data":{"a":"1","a":"2"},"zz":1}')
    expected = ['duplicate field "metadata.labels.x"', 'unknown field "bogus"', 'duplicate field "data.a"',
                'unknown field "zz"']
    status, body, _ = send_bytes(kube_api, "POST", _cms(kube_namespace), raw.encode(),
                                 query={"fieldValidation": "Strict"})
    assert status == 400 and body["message"] == (
        'ConfigMap in version "v1" cannot be handled as a ConfigMap: strict decoding error: ' + ", ".join(expected))
    status, made, warnings = send_bytes(kube_api, "POST", _cms(kube_namespace), raw.encode())
    assert status == 201 and warnings == expected
    assert made["metadata"]["labels"] == {"x": "2"} and made["data"] == {"a": "2"}  # the last value wins
    status, _, warnings = request(kube_api, "PATCH", f"{_cms(kube_namespace)}/dup", [
        {"op": "add", "path": "/data/b", "value": "3"}], content_type="application/json-patch+json")
    assert status == 200 and warnings == []  # the stored object keeps no trace of the request's repeats
