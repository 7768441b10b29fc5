"""The REST API over real HTTP against a real Redis: status codes, auth, errors, filters, tasks enqueued."""

from __future__ import annotations

import json
import os
import stat

import httpx
import pytest
import redis
from pydantic import SecretStr

from scheduler.api import create_app, token_file
from shared.core.settings import Settings
from shared.pipeline.reconcile import diff_key
from shared.pipeline.services import Services
from shared.state.app_store import AppStore
from tests.api.conftest import AUTH, TOKEN, ApiFactory, application, queued_tasks
from tests.api.serving import serve
from tests.fixtures.redis import free_port
from workers.catalogue import AppAction, AppAdmin, Diff, Fetch


def _error(response: httpx.Response, code: int) -> str:
    assert response.status_code == code, response.text
    body = response.json()
    assert body["code"] == code and isinstance(body["error"], str) and body["error"], body
    return str(body["error"])


def _seed(client: redis.Redis, *apps: dict) -> AppStore:
    store = AppStore(client)
    for app in apps:
        store.put_app(app["metadata"]["name"], app)
    return store


# -- probes, OpenAPI ---------------------------------------------------------------------------------------


def test_probes_and_openapi(api: httpx.Client):
    assert api.get("/healthz").json() == {"status": "ok"}
    assert api.get("/readyz").json() == {"status": "ok"}
    spec = api.get("/openapi.json").json()
    paths = spec["paths"]
    for path in ("/api/v1/applications", "/api/v1/applications/{name}", "/api/v1/applications/{name}/diff",
                 "/api/v1/applications/{name}/history", "/api/v1/applications/{name}/sync",
                 "/api/v1/applications/{name}/rollback", "/api/v1/applications/{name}/operation",
                 "/api/v1/applications/{name}/refresh"):
        assert path in paths, path
    assert "delete" in paths["/api/v1/applications/{name}"]
    assert "post" in paths["/api/v1/applications"]
    assert "dryRun" in json.dumps(spec["components"]["schemas"]["SyncRequest"])
    # Bodies are read after the token check (not FastAPI body parameters) and still documented, $refs resolved.
    sync_body = paths["/api/v1/applications/{name}/sync"]["post"]["requestBody"]
    assert sync_body["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/SyncRequest"}
    assert "SyncResource" in spec["components"]["schemas"]
    assert "RollbackRequest" in spec["components"]["schemas"]
    assert "application/yaml" in paths["/api/v1/applications"]["post"]["requestBody"]["content"]


def test_webhook_receiver_is_mounted(api: httpx.Client):
    response = api.post("/api/webhook", content=b"{}", headers={"Content-Type": "application/json"})
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "ignored"


def test_redis_down_is_503_with_a_message(make_api: ApiFactory):
    api = make_api(redis_url=f"redis://127.0.0.1:{free_port()}/0")
    assert api.get("/healthz").status_code == 200
    assert "Redis is unavailable" in _error(api.get("/readyz"), 503)
    assert "Redis is unavailable" in _error(api.get("/api/v1/applications", headers=AUTH), 503)
    assert "Redis is unavailable" in _error(api.post("/api/v1/applications/x/sync", headers=AUTH), 503)


# -- auth ------------------------------------------------------------------------------------------------------


def test_reads_and_writes_need_the_token(api: httpx.Client, redis_client: redis.Redis):
    _seed(redis_client, application("a"))
    response = api.get("/api/v1/applications")
    assert "Bearer" in _error(response, 401)
    assert response.headers["www-authenticate"] == "Bearer"
    wrong = api.get("/api/v1/applications", headers={"Authorization": "Bearer no"})
    assert "invalid API token" in _error(wrong, 401)  # Argo CD: an unknown token is unauthenticated, not forbidden
    assert wrong.headers["www-authenticate"] == "Bearer"
    _error(api.get("/api/v1/applications", headers={"Authorization": f"Basic {TOKEN}"}), 401)
    assert api.get("/api/v1/applications", headers=AUTH).status_code == 200
    _error(api.post("/api/v1/applications/a/sync"), 401)
    _error(api.delete("/api/v1/applications/a", params={"cascade": "true"}), 401)
    assert redis_client.get("wavecd:sync-request:a") is None


def test_open_reads_setting_opens_reads_only(make_api: ApiFactory, redis_client: redis.Redis):
    api = make_api(api_open_reads=True)
    _seed(redis_client, application("a"))
    assert api.get("/api/v1/applications/a").status_code == 200
    _error(api.post("/api/v1/applications/a/refresh"), 401)
    _error(api.delete("/api/v1/applications/a/operation"), 401)


def test_without_a_configured_token_one_is_generated_for_the_cli(make_api: ApiFactory, tmp_path, redis_client):
    _seed(redis_client, application("a"))
    api = make_api(api_token=None)
    path = token_file(Settings(home=tmp_path / "home"))
    token = path.read_text().strip()
    assert len(token) >= 32
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    _error(api.post("/api/v1/applications/a/refresh"), 401)
    assert api.post("/api/v1/applications/a/refresh",
                    headers={"Authorization": f"Bearer {token}"}).status_code == 202
    again = make_api(api_token=None)  # a restart keeps the same token
    assert again.get("/api/v1/applications/a", headers={"Authorization": f"Bearer {token}"}).status_code == 200


# -- reads ----------------------------------------------------------------------------------------------------


def test_list_filters_by_project_and_labels(api: httpx.Client, redis_client: redis.Redis):
    _seed(redis_client,
          application("web", project="team-a", labels={"tier": "front", "env": "prod"}),
          application("db", project="team-a", labels={"tier": "data", "env": "prod"}),
          application("tool", project="team-b", labels={"env": "dev"}))

    def names(**params: object) -> list[str]:
        response = api.get("/api/v1/applications", params=params, headers=AUTH)
        assert response.status_code == 200, response.text
        return [item["metadata"]["name"] for item in response.json()["items"]]

    assert names() == ["db", "tool", "web"]
    assert names(project="team-a") == ["db", "web"]
    assert names(project=["team-a", "team-b"]) == ["db", "tool", "web"]
    assert names(selector="env=prod,tier!=data") == ["web"]
    assert names(selector="tier in (front,data)") == ["db", "web"]
    assert names(selector="!tier") == ["tool"]
    assert names(project="team-b", selector="env=prod") == []
    message = _error(api.get("/api/v1/applications", params={"selector": "env=prod,,x"}, headers=AUTH), 422)
    assert "empty requirement" in message


def test_get_shows_status_and_the_live_operation_without_internals(api: httpx.Client, redis_client: redis.Redis):
    store = _seed(redis_client, application("a"))
    store.write_unfenced("a", "status", {
        "sync": {"status": "OutOfSync", "revision": "abc"}, "health": {"status": "Healthy"},
        "resources": [{"group": "", "kind": "ConfigMap", "namespace": "dest", "name": "c", "version": "v1",
                       "status": "OutOfSync", "health": {"status": "Healthy"}}],
        "inventory": [{"apiVersion": "v1", "kind": "ConfigMap", "namespace": "dest", "name": "c"}],
        "operationState": {"id": "old", "phase": "Succeeded"}, "history": [{"id": 0, "revision": "abc"}],
    })
    store.write_unfenced("a", "operation", {
        "id": "op1", "phase": "Running", "operation": {"sync": {"revision": "abc"}},
        "progress": {"seq": 1, "step": 1, "stage": "wait",
                     "steps": [{"phase": "PreSync", "wave": 0}, {"phase": "Sync", "wave": 2}]}})
    body = api.get("/api/v1/applications/a", headers=AUTH).json()
    assert body["metadata"]["name"] == "a" and body["spec"]["project"] == "default"
    status = body["status"]
    assert status["sync"] == {"status": "OutOfSync", "revision": "abc"}
    assert status["resources"][0]["name"] == "c"
    assert "inventory" not in status
    op = status["operationState"]
    assert op["id"] == "op1" and "progress" not in op
    assert op["currentStep"] == {"index": 1, "total": 2, "phase": "Sync", "wave": 2, "stage": "wait"}
    assert body["pending"] == {"sync": False, "refresh": False}
    assert "not found" in _error(api.get("/api/v1/applications/nope", headers=AUTH), 404)


def test_diff_and_history(api: httpx.Client, redis_client: redis.Redis):
    store = _seed(redis_client, application("a"))
    store.write_unfenced("a", "status", {"sync": {"status": "OutOfSync", "revision": "r2"},
                                         "reconciledAt": "2024-05-01T10:00:00Z",
                                         "history": [{"id": 0, "revision": "r1"}, {"id": 1, "revision": "r2"}]})
    redis_client.set(diff_key("a"), json.dumps({"ConfigMap dest/c": "--- live\n+++ desired\n-a\n+b\n"}))
    diff = api.get("/api/v1/applications/a/diff", headers=AUTH).json()
    assert diff["syncStatus"] == "OutOfSync" and diff["revision"] == "r2"
    assert diff["items"] == [{"resource": "ConfigMap dest/c", "diff": "--- live\n+++ desired\n-a\n+b\n"}]
    history = api.get("/api/v1/applications/a/history", headers=AUTH).json()["items"]
    assert [h["revision"] for h in history] == ["r1", "r2"]
    _error(api.get("/api/v1/applications/b/diff", headers=AUTH), 404)
    _error(api.get("/api/v1/applications/b/history", headers=AUTH), 404)


# -- actions ----------------------------------------------------------------------------------------------------


def test_sync_records_the_request_and_fetches_the_repo(api: httpx.Client, redis_client: redis.Redis):
    store = _seed(redis_client, application("a"))
    body = {"prune": True, "dryRun": False, "resources": [{"kind": "ConfigMap", "name": "c"}],
            "syncOptions": ["Replace=true"]}
    response = api.post("/api/v1/applications/a/sync", json=body, headers=AUTH)
    assert response.status_code == 202, response.text
    request = store.peek_sync_request("a")
    assert request is not None and request["prune"] is True and request["syncOptions"] == ["Replace=true"]
    assert request["resources"] == [{"group": "", "kind": "ConfigMap", "name": "c", "namespace": ""}]
    assert queued_tasks(redis_client, "git") == [Fetch(repo="https://git.example.com/org/repo.git", due=["a"])]
    assert api.get("/api/v1/applications/a", headers=AUTH).json()["pending"]["sync"] is True
    again = api.post("/api/v1/applications/a/sync", headers=AUTH)
    assert "already in progress" in _error(again, 409)


def test_sync_to_a_revision_enqueues_one_coalesced_refresh(api: httpx.Client, redis_client: redis.Redis):
    _seed(redis_client, application("a"))
    assert api.post("/api/v1/applications/a/sync", json={"revision": "v1.2"}, headers=AUTH).status_code == 202
    assert queued_tasks(redis_client, "git") == [Diff(app="a")]


@pytest.mark.parametrize(("body", "field"), [
    ({"dryrun": True}, "dryrun"),
    ({"prune": "maybe"}, "prune"),
    ({"resources": [{"kind": "ConfigMap"}]}, "resources.0.name"),
    ({"revision": ""}, "revision"),
])
def test_invalid_sync_bodies_are_422_naming_the_field(api: httpx.Client, redis_client: redis.Redis, body, field):
    _seed(redis_client, application("a"))
    message = _error(api.post("/api/v1/applications/a/sync", json=body, headers=AUTH), 422)
    assert field in message
    assert redis_client.get("wavecd:sync-request:a") is None


def test_sync_refusals(api: httpx.Client, redis_client: redis.Redis):
    store = _seed(redis_client, application("a"))
    _error(api.post("/api/v1/applications/zzz/sync", headers=AUTH), 404)
    store.write_unfenced("a", "operation", {"id": "op", "phase": "Running", "progress": {}})
    assert "another operation is already in progress" in _error(
        api.post("/api/v1/applications/a/sync", headers=AUTH), 409)
    _error(api.post("/api/v1/applications/a/sync", content=b"{not json", headers={
        **AUTH, "Content-Type": "application/json"}), 422)


def test_rollback(api: httpx.Client, redis_client: redis.Redis):
    store = _seed(redis_client, application("manual"), application("auto", automated=True))
    store.write_unfenced("manual", "status", {"history": [{"id": 0, "revision": "r0"}, {"id": 1, "revision": "r1"}]})
    response = api.post("/api/v1/applications/manual/rollback", json={"id": 0}, headers=AUTH)
    assert response.status_code == 202, response.text
    assert store.peek_sync_request("manual")["revision"] == "r0"
    assert queued_tasks(redis_client, "git") == [Diff(app="manual")]
    redis_client.delete("wavecd:sync-request:manual")
    assert "deployment id '7'" in _error(
        api.post("/api/v1/applications/manual/rollback", json={"id": 7}, headers=AUTH), 404)
    assert "auto-sync is enabled" in _error(
        api.post("/api/v1/applications/auto/rollback", json={"id": 0}, headers=AUTH), 409)
    assert "id" in _error(api.post("/api/v1/applications/manual/rollback", json={}, headers=AUTH), 422)


def test_terminate(api: httpx.Client, redis_client: redis.Redis):
    store = _seed(redis_client, application("a"))
    assert _error(api.delete("/api/v1/applications/a/operation", headers=AUTH), 409) == "No operation is in progress"
    store.write_unfenced("a", "operation", {"id": "op", "phase": "Running", "progress": {}})
    assert api.delete("/api/v1/applications/a/operation", headers=AUTH).status_code == 200
    assert store.terminate_requested("a")


def test_refresh_hard(api: httpx.Client, redis_client: redis.Redis):
    store = _seed(redis_client, application("a"))
    assert api.post("/api/v1/applications/a/refresh", params={"hard": "true"}, headers=AUTH).status_code == 202
    assert store.take_hard_refresh("a")
    assert queued_tasks(redis_client, "git") == [Fetch(repo="https://git.example.com/org/repo.git", due=["a"])]
    _error(api.post("/api/v1/applications/a/refresh", params={"hard": "perhaps"}, headers=AUTH), 422)


# -- create / delete -------------------------------------------------------------------------------------------


def test_create_stashes_the_manifest_and_sends_only_its_key(api: httpx.Client, redis_client: redis.Redis):
    manifest = application("new-app")
    manifest["metadata"]["uid"] = "client-set"
    manifest["status"] = {"sync": {"status": "Synced"}}
    response = api.post("/api/v1/applications", json=manifest, headers=AUTH)
    assert response.status_code == 202, response.text
    [call] = queued_tasks(redis_client, "apply")
    assert isinstance(call, AppAdmin) and call.action == AppAction.CREATE and call.app is None
    assert call.stash is not None and call.stash.startswith("wavecd:stash:")
    assert "repo.git" not in call.shown()  # the body stays in Redis, not in task arguments
    stashed = json.loads(redis_client.get(call.stash))
    assert stashed["metadata"] == {"name": "new-app", "labels": {}}
    assert stashed["spec"] == manifest["spec"] and "status" not in stashed
    _seed(redis_client, application("new-app"))
    assert "already exists" in _error(api.post("/api/v1/applications", json=manifest, headers=AUTH), 409)


def test_create_accepts_yaml(api: httpx.Client, redis_client: redis.Redis):
    text = ("apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata: {name: y}\n"
            "spec: {source: {repoURL: 'https://h/r.git', path: p}, destination: {namespace: d}}\n")
    response = api.post("/api/v1/applications", content=text, headers={**AUTH, "Content-Type": "application/yaml"})
    assert response.status_code == 202, response.text
    assert response.json()["name"] == "y"


@pytest.mark.parametrize(("body", "expected"), [
    (b"", "one Application object"),
    (b"[1, 2]", "one Application object"),
    (b"{a: [", "not a JSON or YAML document"),
    (b"\xff\xfe", "not a JSON or YAML document"),
    (json.dumps({"kind": "ConfigMap", "metadata": {"name": "x"}}).encode(), "kind must be Application"),
    (json.dumps({"kind": "Application", "spec": {}}).encode(), "metadata.name"),
    (json.dumps({"kind": "Application", "metadata": {"name": "x"}, "spec": {}}).encode(), "spec.source"),
    (json.dumps({"kind": "Application", "metadata": {"name": "Bad_Name"},
                 "spec": {"source": {"repoURL": "https://h/r"}}}).encode(), "not a valid Kubernetes name"),
])
def test_create_refuses_bad_manifests(api: httpx.Client, redis_client: redis.Redis, body: bytes, expected: str):
    message = _error(api.post("/api/v1/applications", content=body,
                              headers={**AUTH, "Content-Type": "application/json"}), 422)
    assert expected in message
    assert queued_tasks(redis_client, "apply") == []


def test_delete(api: httpx.Client, redis_client: redis.Redis):
    _seed(redis_client, application("a"))
    _error(api.delete("/api/v1/applications/none", params={"cascade": "true"}, headers=AUTH), 404)
    assert api.delete("/api/v1/applications/a", params={"cascade": "false"}, headers=AUTH).status_code == 202
    assert api.delete("/api/v1/applications/a", params={"cascade": "true"}, headers=AUTH).status_code == 202
    assert queued_tasks(redis_client, "apply") == [AppAdmin(action=AppAction.DELETE, app="a", cascade=True),
                                                   AppAdmin(action=AppAction.DELETE, app="a", cascade=False)]


# -- hostile input never gives a 5xx ---------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path", "params", "content"), [
    ("GET", "/api/v1/applications/%00", None, None),
    ("GET", "/api/v1/applications/" + "x" * 5000, None, None),
    ("GET", "/api/v1/applications/%E2%9C%93/diff", None, None),
    ("GET", "/api/v1/applications", {"selector": "a in (b"}, None),
    ("GET", "/api/v1/applications", {"selector": "=" * 5000}, None),
    ("GET", "/api/v1/applications", {"selector": "k notin ()"}, None),
    ("POST", "/api/v1/applications/a/rollback", None, None),
    ("POST", "/api/v1/applications/a/sync", None, b"[1]"),
    ("POST", "/api/v1/applications/a/sync", None, b'{"resources": "all"}'),
    ("DELETE", "/api/v1/applications/a", {"cascade": "sometimes"}, None),
    ("PUT", "/api/v1/applications/a", None, None),
])
def test_hostile_requests_get_4xx_json(api: httpx.Client, redis_client: redis.Redis, method, path, params, content):
    _seed(redis_client, application("a"))
    response = api.request(method, path, params=params, content=content,
                           headers={**AUTH, "Content-Type": "application/json"})
    assert 400 <= response.status_code < 500, response.text
    assert response.json()["code"] == response.status_code


def test_module_level_app_is_built_lazily(redis_url: str, tmp_path, monkeypatch):
    from shared.core.settings import get_settings

    monkeypatch.setenv("WAVECD_REDIS_URL", redis_url)
    monkeypatch.setenv("WAVECD_HOME", str(tmp_path))
    monkeypatch.setenv("WAVECD_API_TOKEN", "lazy")
    get_settings.cache_clear()
    try:
        import scheduler.api as module

        monkeypatch.delitem(module.__dict__, "app", raising=False)
        with serve(module.app) as base:
            assert httpx.get(f"{base}/api/v1/applications", headers={"Authorization": "Bearer lazy"}).status_code \
                == 200
    finally:
        get_settings.cache_clear()


def test_services_are_used_as_given(redis_client: redis.Redis, redis_url: str, tmp_path):
    settings = Settings(redis_url=redis_url, home=tmp_path, api_token=SecretStr("s"))
    _seed(redis_client, application("given"))
    with serve(create_app(settings, Services(settings, redis_client))) as base:
        names = [i["metadata"]["name"] for i in httpx.get(
            f"{base}/api/v1/applications", headers={"Authorization": "Bearer s"}).json()["items"]]
    assert names == ["given"]


def test_parsed_apps_reparse_only_changed_entries_and_skip_invalid(redis_client: redis.Redis):
    from scheduler.api import ParsedApps

    store = _seed(redis_client, application("a"), application("b"))
    parsed = ParsedApps(redis_client)
    first = {app.name: app for app in parsed.current()}
    assert sorted(first) == ["a", "b"]
    store.put_app("b", application("b", project="other"))
    redis_client.hset("wavecd:apps", "broken", json.dumps({"metadata": {"name": "broken"}, "spec": {}}))
    second = {app.name: app for app in parsed.current()}
    assert sorted(second) == ["a", "b"]
    assert second["a"] is first["a"]  # unchanged: the parsed object is reused
    assert second["b"].spec.project == "other"
