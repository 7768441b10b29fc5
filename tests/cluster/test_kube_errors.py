"""ApiException -> typed errors: the type decides retry vs stall; messages are precise and body-free."""

from __future__ import annotations

import json

import pytest
from kubernetes.client.exceptions import ApiException

from shared.cluster.kube_errors import (
    KubeConflict,
    KubeForbidden,
    KubeInvalid,
    KubeNotFound,
    KubeRejected,
    KubeUnavailable,
    scrub,
    translate,
    transport_error,
)
from shared.core.errors import ConfigurationError, StallingError, TransientError


def status(code: int, reason: str, message: str, causes: list[dict] | None = None) -> str:
    body = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": code, "reason": reason,
            "message": message}
    if causes is not None:
        body["details"] = {"causes": causes}
    return json.dumps(body)


@pytest.mark.parametrize("code,reason,cls,base", [
    (400, "BadRequest", KubeInvalid, StallingError),
    (401, "Unauthorized", KubeForbidden, ConfigurationError),
    (403, "Forbidden", KubeForbidden, ConfigurationError),
    (404, "NotFound", KubeNotFound, StallingError),
    (409, "Conflict", KubeConflict, TransientError),
    (410, "Expired", KubeUnavailable, TransientError),
    (415, "UnsupportedMediaType", KubeRejected, StallingError),
    (422, "Invalid", KubeInvalid, StallingError),
    (429, "TooManyRequests", KubeUnavailable, TransientError),
    (500, "InternalError", KubeUnavailable, TransientError),
    (503, "ServiceUnavailable", KubeUnavailable, TransientError),
])
def test_codes_map_to_types(code: int, reason: str, cls: type, base: type) -> None:
    exc = ApiException(status=code, reason=reason, body=status(code, reason, f"the {reason}"))
    err = translate(exc, verb="apply", what="ConfigMap demo/x")
    assert isinstance(err, cls) and isinstance(err, base)
    assert err.code == code and err.reason == reason
    assert str(err).startswith("apply ConfigMap demo/x: ")
    assert f"the {reason}" in str(err)


def test_invalid_lists_causes() -> None:
    bad = "Invalid value: -1: must be >= 0"
    body = status(422, "Invalid", f'Deployment.apps "web" is invalid: spec.replicas: {bad}',
                  [{"reason": "FieldValueInvalid", "field": "spec.replicas", "message": bad},
                   {"reason": "FieldValueRequired", "field": "spec.selector", "message": "Required value"}])
    err = translate(ApiException(status=422, reason="Unprocessable Entity", body=body), verb="apply",
                    what="Deployment.apps demo/web")
    assert isinstance(err, KubeInvalid)
    assert [c.field for c in err.causes] == ["spec.replicas", "spec.selector"]
    assert str(err) == (f"apply Deployment.apps demo/web: invalid: spec.replicas: {bad}; "
                        "spec.selector: Required value")


def test_a_long_echoed_value_is_shortened_so_the_reason_survives() -> None:
    template = json.dumps({"metadata": {"labels": {"controller-uid": "x" * 300}},
                           "spec": {"containers": [{"name": "main", "command": ["sh", "-c", "exit 0"]}]}})
    message = f"Invalid value: {template}: field is immutable"
    body = status(422, "Invalid", f'Job.batch "migrate" is invalid: spec.template: {message}',
                  [{"reason": "FieldValueInvalid", "field": "spec.template", "message": message}])
    err = translate(ApiException(status=422, reason="Unprocessable Entity", body=body), verb="apply",
                    what="Job.batch demo/migrate")
    assert str(err).endswith("...: field is immutable"), str(err)
    assert str(err).startswith('apply Job.batch demo/migrate: invalid: spec.template: Invalid value: {"metadata"')
    assert len(str(err)) < 200


def test_secret_values_are_masked() -> None:
    body = status(422, "Invalid", 'Secret "s" is invalid: data[tok en]: Invalid value: "hunter2": bad key',
                  [{"field": "data[tok en]",
                    "message": 'Invalid value: "hunter2": a valid config key must ...'}])
    err = translate(ApiException(status=422, body=body), verb="apply", what="Secret demo/s", kind="Secret")
    assert "hunter2" not in str(err)
    assert "<masked>" in str(err) and "data[tok en]" in str(err)


def test_non_status_body_and_long_messages() -> None:
    err = translate(ApiException(status=502, reason="Bad Gateway", body="<html>" + "x" * 5000),
                    verb="get", what="ConfigMap demo/x", cluster="prod")
    assert isinstance(err, KubeUnavailable)
    assert "<html>" not in str(err)
    assert "cluster prod" in str(err)
    long = translate(ApiException(status=403, body=status(403, "Forbidden", "y" * 5000)), verb="get",
                     what="x")
    assert len(str(long)) <= 600


def test_status_zero_is_transport() -> None:
    err = translate(ApiException(status=0, reason="SSLError\nhandshake failed"), verb="get", what="x",
                    cluster="prod")
    assert isinstance(err, KubeUnavailable) and err.retryable
    assert "cannot reach the API server (cluster prod): SSLError" in str(err)


def test_transport_error_scrubs_credentials() -> None:
    text = "https://admin:pw@api.example.com failed; Authorization: Bearer abc.def"
    err = transport_error(ConnectionError(text), verb="list", what="pods", cluster="edge")
    assert "pw" not in str(err) and "abc.def" not in str(err)
    assert "https://api.example.com" in str(err)
    assert scrub("bearer XYZ") == "bearer ***"


def test_conflict_with_causes() -> None:
    body = status(409, "Conflict", "Apply failed with 1 conflict: conflict with \"kubectl\": .data.a",
                  [{"reason": "FieldManagerConflict", "field": ".data.a",
                    "message": 'conflict with "kubectl"'}])
    err = translate(ApiException(status=409, body=body), verb="apply", what="ConfigMap demo/x")
    assert isinstance(err, KubeConflict) and err.retryable
    assert 'conflict with "kubectl"' in str(err)
