"""Who may do what (issue #13, point 8): 401 without a valid token, 403 for a token without the right.

As in Argo CD: a missing or unknown token is unauthenticated (401, with `WWW-Authenticate: Bearer`); the
read-only token (`WAVECD_API_READONLY_TOKEN`) is authenticated but may not change anything (403).
`/api/version` answers anyone with the version, and an authenticated caller with the build details too.
"""

from __future__ import annotations

import platform
from importlib.metadata import version
from pathlib import Path

import httpx
import pytest
import redis
import yaml
from pydantic import SecretStr

from shared.core.errors import ConfigurationError
from tests.api.conftest import AUTH, TOKEN, ApiFactory, application, queued_tasks
from tests.api.test_api import _error, _seed

READONLY = "read-only-token-9876543210"
RO = {"Authorization": f"Bearer {READONLY}"}

CASES = sorted((Path(__file__).parents[1] / "testdata" / "api_auth").glob("*.yaml"))
AUTHORIZATION = {"none": None, "wrong": "Bearer wrong-token", "basic": f"Basic {TOKEN}", "empty": "Bearer",
                 "readonly": f"Bearer {READONLY}", "admin": f"Bearer {TOKEN}"}

WRITES = [
    ("POST", "/api/v1/applications/a/sync", None),
    ("POST", "/api/v1/applications/a/rollback", None),
    ("POST", "/api/v1/applications/a/refresh", None),
    ("DELETE", "/api/v1/applications/a/operation", None),
    ("DELETE", "/api/v1/applications/a", {"cascade": "true"}),
    ("POST", "/api/v1/applications", None),
]


@pytest.fixture()
def api_ro(make_api: ApiFactory) -> httpx.Client:
    return make_api(api_readonly_token=SecretStr(READONLY))


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_argo_cd_auth_rule(api_ro: httpx.Client, redis_client: redis.Redis, path: Path):
    case = yaml.safe_load(path.read_text())
    _seed(redis_client, application("a"))
    request = case["request"]
    headers = {"Content-Type": request["contentType"]} if "contentType" in request else {}
    if AUTHORIZATION[case["token"]] is not None:
        headers["Authorization"] = AUTHORIZATION[case["token"]]
    response = api_ro.request(request["method"], request["path"], headers=headers,
                              content=request.get("body", "").encode())
    assert response.status_code == case["status"], response.text
    for name, value in (case.get("headers") or {}).items():
        assert response.headers.get(name) == value, name
    if "error" in case:
        assert case["error"] in _error(response, case["status"])
    if "bodyKeys" in case:
        assert sorted(response.json()) == case["bodyKeys"]
    if case["status"] >= 400:
        assert queued_tasks(redis_client, "git") == [] and queued_tasks(redis_client, "apply") == []
        assert redis_client.get("wavecd:sync-request:a") is None


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong-token"}, {"Authorization": "Basic x"},
                                     {"Authorization": "Bearer"}], ids=["none", "wrong", "basic", "empty"])
def test_no_valid_token_is_401(api_ro: httpx.Client, redis_client: redis.Redis, headers: dict[str, str]):
    _seed(redis_client, application("a"))
    for method, path, params in [("GET", "/api/v1/applications", None), *WRITES]:
        response = api_ro.request(method, path, params=params, headers=headers)
        _error(response, 401)
        assert response.headers["www-authenticate"] == "Bearer", path
    assert queued_tasks(redis_client, "apply") == [] and queued_tasks(redis_client, "git") == []


def test_the_read_only_token_reads_but_may_not_write(api_ro: httpx.Client, redis_client: redis.Redis):
    _seed(redis_client, application("a"))
    assert api_ro.get("/api/v1/applications", headers=RO).status_code == 200
    assert api_ro.get("/api/v1/applications/a", headers=RO).status_code == 200
    assert api_ro.get("/api/v1/applications/a/history", headers=RO).status_code == 200
    for method, path, params in WRITES:
        response = api_ro.request(method, path, params=params, headers=RO, json={"id": 0})
        assert "read-only" in _error(response, 403), path
    assert queued_tasks(redis_client, "apply") == [] and queued_tasks(redis_client, "git") == []
    assert redis_client.get("wavecd:sync-request:a") is None
    assert api_ro.post("/api/v1/applications/a/refresh", headers=AUTH).status_code == 202


def test_without_a_read_only_token_configured_it_is_just_a_wrong_token(api: httpx.Client,
                                                                          redis_client: redis.Redis):
    _seed(redis_client, application("a"))
    _error(api.get("/api/v1/applications", headers=RO), 401)


def test_version_answers_anyone_and_details_only_the_authenticated(api_ro: httpx.Client):
    expected = f"v{version('wavecd')}"
    assert api_ro.get("/api/version").json() == {"Version": expected}
    assert api_ro.get("/api/version", headers={"Authorization": "Bearer wrong"}).json() == {"Version": expected}
    for headers in (AUTH, RO):
        body = api_ro.get("/api/version", headers=headers).json()
        assert body["Version"] == expected
        assert body["PythonVersion"] == platform.python_version()
        assert body["Platform"].startswith(platform.system().lower())


def test_the_read_only_token_must_differ_from_the_admin_token(make_api: ApiFactory):
    with pytest.raises(ConfigurationError, match="must differ"):
        make_api(api_readonly_token=SecretStr(TOKEN))
