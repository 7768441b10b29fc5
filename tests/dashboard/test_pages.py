"""The dashboard over real HTTP: sign-in, CSRF, the pages' content, the actions' refusals, offline assets.

The server is the real API server (`create_app`) on the test Redis, with status documents written the
way the workers write them; the browser test (test_browser.py) covers the same pages end to end.
"""

from __future__ import annotations

import base64
import json
import re
import time
from pathlib import Path
from typing import Any

import pygit2
import pytest

from scheduler.dashboard.routes import TEMPLATES
from shared.diff.compare import compare
from shared.pipeline.reconcile import diff_key
from shared.pipeline.revision_metadata import read_revisions, record_revision
from shared.state.app_store import AppStore
from tests.dashboard.conftest import READONLY, TOKEN, Served

pytestmark = pytest.mark.integration

STATIC = TEMPLATES.parent / "static"


def application(name: str, *, project: str = "default", automated: bool = False,
                repo: str = "https://git.example.com/org/repo.git", path: str = "app") -> dict[str, Any]:
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
            "metadata": {"name": name, "namespace": "argocd"},
            "spec": {"project": project, "source": {"repoURL": repo, "path": path, "targetRevision": "main"},
                     "destination": {"server": "https://kubernetes.default.svc", "namespace": "dest"},
                     "syncPolicy": {"automated": {"prune": True}} if automated else {}}}


def seed(store: AppStore, app: dict[str, Any], status: dict[str, Any] | None = None,
         operation: dict[str, Any] | None = None) -> None:
    name = app["metadata"]["name"]
    store.put_app(name, app)
    if status is not None:
        store.write_unfenced(name, "status", status)
    if operation is not None:
        store.write_unfenced(name, "operation", operation)


def queued(store: AppStore) -> list[str]:
    """Names of the Celery tasks waiting in any queue (kombu's Redis transport keeps a list per queue)."""
    names = []
    for key in store.redis.keys("*"):
        if store.redis.type(key) != b"list" or key.startswith(b"wavecd:"):
            continue
        for raw in store.redis.lrange(key, 0, -1):
            message = json.loads(raw)
            kwargs = json.loads(base64.b64decode(message["body"]))[1]
            names.append(f"{message['headers']['task']}{kwargs}")
    return names


# -- signing in -----------------------------------------------------------------------------------------


def test_without_a_session_only_the_sign_in_page_is_served(served: Served):
    seed(served.store, application("secret-app"), {"sync": {"status": "Synced"}})
    for path in ("/", "/applications", "/applications/secret-app"):
        response = served.client.get(path)
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/login?next=")
    for path in ("/ui/fragments/applications", "/ui/fragments/applications/secret-app"):
        response = served.client.get(path)
        assert response.status_code == 401 and "secret-app" not in response.text
    # The REST API's bearer header is not a dashboard session.
    response = served.client.get("/applications", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 303
    login = served.client.get("/login")
    assert login.status_code == 200 and 'name="token"' in login.text and "secret-app" not in login.text


def test_a_wrong_token_is_refused_and_sets_no_cookie(served: Served):
    response = served.client.post("/login", data={"token": "wrong", "next": "/applications"}, headers=served.origin)
    assert response.status_code == 401
    assert "invalid API token" in response.text
    assert "set-cookie" not in response.headers


def test_signing_in_sets_an_http_only_strict_cookie_and_goes_only_to_local_pages(served: Served):
    response = served.client.post("/login", data={"token": TOKEN, "next": "/applications/x?y=1"},
                                  headers=served.origin)
    assert response.status_code == 303 and response.headers["location"] == "/applications/x?y=1"
    cookie = response.headers["set-cookie"].lower()
    assert "wavecd_session=" in cookie and "httponly" in cookie and "samesite=strict" in cookie and "path=/" in cookie
    for target in ("//evil.example/", "https://evil.example/", "/\\evil.example"):
        again = served.client.post("/login", data={"token": TOKEN, "next": target}, headers=served.origin)
        assert again.headers["location"] == "/applications", target
    # A sign-in form posted from another site is refused (login CSRF).
    forged = served.client.post("/login", data={"token": TOKEN}, headers={"Origin": "http://evil.example"})
    assert forged.status_code == 403 and "set-cookie" not in forged.headers


def test_the_session_cookie_is_not_the_token_and_expires(served: Served):
    from scheduler.dashboard.session import COOKIE, MAX_AGE, Role, Sessions

    with served.signed_in() as browser:
        value = browser.cookies[COOKIE]
        assert TOKEN not in value
        assert browser.get("/applications").status_code == 200
    # Useless against the REST API.
    api = served.client.get("/api/v1/applications", headers={"Authorization": f"Bearer {value}"})
    assert api.status_code in (401, 403)
    now = int(time.time())
    refused = {
        "expired": Sessions(TOKEN).session_value(issued=now - MAX_AGE - 5),
        "from the future": Sessions(TOKEN).session_value(issued=now + 3600),
        "another server's token": Sessions("another-token-0123456789").session_value(issued=now),
        "forged": f"admin.{now}.{'0' * 64}",
        "a read-only session claiming admin": Sessions(TOKEN, READONLY).session_value(Role.READ_ONLY, now)
        .replace("read-only.", "admin.", 1),
        "the raw token": TOKEN,
    }
    for why, cookie in refused.items():
        response = served.client.get("/applications", headers={"Cookie": f"{COOKIE}={cookie}"})
        assert response.status_code == 303 and response.headers["location"].startswith("/login"), why
    recent = Sessions(TOKEN).session_value(issued=now - 60)
    fresh = served.client.get("/applications", headers={"Cookie": f"{COOKIE}={recent}"})
    assert fresh.status_code == 200


def test_pages_forbid_framing_and_foreign_content(served: Served):
    with served.signed_in() as browser:
        response = browser.get("/applications")
    assert response.status_code == 200
    policy = response.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert response.headers["x-frame-options"] == "DENY"


# -- writes: CSRF and the API's refusals ----------------------------------------------------------------


def test_a_write_needs_the_csrf_token_and_our_origin(served: Served):
    seed(served.store, application("a"), {"sync": {"status": "OutOfSync"}})
    with served.signed_in() as browser:
        page = browser.get("/applications/a").text
        csrf = re.search(r'<meta name="csrf-token" content="([0-9a-f]{64})">', page)[1]  # type: ignore[index]
        url = "/ui/actions/applications/a/sync"
        refused = [
            browser.post(url, json={}, headers=served.origin),                                  # no token
            browser.post(url, json={}, headers={**served.origin, "X-CSRF-Token": "0" * 64}),    # wrong token
            browser.post(url, json={}, headers={"Origin": "http://evil.example", "X-CSRF-Token": csrf}),
            browser.post(url, content='{"x":"', headers={**served.origin, "Content-Type": "text/plain"}),
        ]
        for response in refused:
            assert response.status_code == 403, response.text
            assert response.json()["error"].startswith("cross-site request refused")
        assert served.store.peek_sync_request("a") is None and queued(served.store) == []

        ok = browser.post(url, json={"prune": True}, headers={**served.origin, "X-CSRF-Token": csrf})
    assert ok.status_code == 202, ok.text
    request = served.store.peek_sync_request("a")
    assert request is not None and request["prune"] is True and request["username"] == "dashboard"
    assert queued(served.store) == ["wavecd.fetch{'repo': 'https://git.example.com/org/repo.git', 'due': ['a'], "
                                    "'urgent': []}"]
    # Without a session the same request is 401, whatever it carries.
    anonymous = served.client.post(url, json={}, headers={**served.origin, "X-CSRF-Token": csrf})
    assert anonymous.status_code == 401


def _write(served: Served, browser: Any, path: str, body: dict[str, Any] | None = None) -> Any:  # noqa: ANN401
    from scheduler.dashboard.session import Role, Sessions

    headers = {**served.origin, "X-CSRF-Token": Sessions(TOKEN).csrf_token(Role.ADMIN)}
    return browser.post(path, json=body or {}, headers=headers)


@pytest.mark.parametrize(("app", "path", "body", "status", "message"), [
    ("auto", "/ui/actions/applications/auto/rollback", {"id": 0}, 409,
     "rollback cannot be initiated when auto-sync is enabled"),
    ("manual", "/ui/actions/applications/manual/rollback", {"id": 7}, 404,
     "application 'manual' does not have deployment id '7' in history"),
    ("manual", "/ui/actions/applications/manual/terminate", None, 409, "No operation is in progress"),
    ("busy", "/ui/actions/applications/busy/sync", None, 409, "another operation is already in progress"),
    ("manual", "/ui/actions/applications/nope/sync", None, 404, "application 'nope' not found"),
    ("manual", "/ui/actions/applications/manual/sync", {"dryrun": True}, 422, "dryrun"),
    ("manual", "/ui/actions/applications/manual/sync", {"resources": [{"kind": "Deployment"}]}, 422, "name"),
    ("manual", "/ui/actions/applications/manual/delete", {"cascade": "sometimes"}, 422, "cascade"),
])
def test_refused_actions_answer_with_the_api_error_and_change_nothing(served: Served, app: str, path: str,
                                                                      body: dict[str, Any] | None, status: int,
                                                                      message: str):
    seed(served.store, application("auto", automated=True), {"history": [{"id": 0, "revision": "a" * 40}]})
    seed(served.store, application("manual"), {"history": [{"id": 0, "revision": "a" * 40}]})
    seed(served.store, application("busy"), {}, {"id": "op", "phase": "Running", "progress": {"steps": []}})
    with served.signed_in() as browser:
        response = _write(served, browser, path, body)
    assert response.status_code == status, response.text
    assert message in response.json()["error"] and response.json()["code"] == status
    assert queued(served.store) == []
    assert all(served.store.peek_sync_request(n) is None for n in ("auto", "manual"))


def test_accepted_actions_are_recorded_and_handed_to_the_workers(served: Served):
    seed(served.store, application("m"), {"history": [{"id": 3, "revision": "b" * 40}]})
    with served.signed_in() as browser:
        sync = _write(served, browser, "/ui/actions/applications/m/sync",
                      {"dryRun": True, "applyOutOfSyncOnly": True,
                       "resources": [{"group": "apps", "kind": "Deployment", "namespace": "dest", "name": "web"}]})
        assert sync.status_code == 202, sync.text
        request = served.store.take_sync_request("m")
        assert request is not None and request["dryRun"] is True
        assert request["syncOptions"] == ["ApplyOutOfSyncOnly=true"]
        assert request["resources"] == [{"group": "apps", "kind": "Deployment", "namespace": "dest", "name": "web"}]

        hard = _write(served, browser, "/ui/actions/applications/m/refresh?hard=true")
        assert hard.status_code == 202 and served.store.take_hard_refresh("m") is True

        rollback = _write(served, browser, "/ui/actions/applications/m/rollback", {"id": 3})
        assert rollback.status_code == 202
        assert served.store.take_sync_request("m")["revision"] == "b" * 40  # type: ignore[index]

        delete = _write(served, browser, "/ui/actions/applications/m/delete", {"cascade": False})
        assert delete.status_code == 202
    tasks = queued(served.store)
    assert "wavecd.app_admin{'action': 'delete', 'app': 'm', 'stash': None, 'request': None, 'cascade': False}" \
        in tasks
    assert "wavecd.diff{'app': 'm'}" in tasks  # the rollback's refresh


# -- what the pages show --------------------------------------------------------------------------------


def _status(**extra: Any) -> dict[str, Any]:  # noqa: ANN401
    return {"sync": {"status": "Synced", "revision": "c" * 40}, "health": {"status": "Healthy"}, **extra}


def test_the_list_filters_by_status_project_and_text(served: Served):
    seed(served.store, application("web", project="team-a", repo="https://git.example.com/shop.git"), _status())
    seed(served.store, application("db", project="team-a"),
         _status(sync={"status": "OutOfSync"}, health={"status": "Degraded"}))
    seed(served.store, application("tool", project="team-b", path="tools/cli"), _status())

    def names(**params: str) -> list[str]:
        with served.signed_in() as browser:
            response = browser.get("/ui/fragments/applications", params=params)
        assert response.status_code == 200
        return re.findall(r'data-app="([^"]+)"', response.text)

    assert names() == ["db", "tool", "web"]
    assert names(status="OutOfSync") == ["db"]
    assert names(status="Degraded") == ["db"]
    assert names(status="Synced") == ["tool", "web"]
    assert names(project="team-b") == ["tool"]
    assert names(q="shop") == ["web"]
    assert names(q="TOOLS/") == ["tool"]
    assert names(project="team-a", status="Healthy") == ["web"]


def test_one_app_shows_resources_in_apply_order_the_wave_gate_and_conditions(served: Served):
    resources = [
        {"group": "apps", "kind": "Deployment", "namespace": "dest", "name": "web", "status": "OutOfSync",
         "syncWave": 4, "health": {"status": "Progressing", "message": "Waiting for rollout"}},
        {"group": "apps", "kind": "StatefulSet", "namespace": "dest", "name": "db", "status": "Synced",
         "syncWave": 3, "health": {"status": "Progressing", "message": "Waiting for 2 pods to be ready..."}},
        {"group": "", "kind": "Service", "namespace": "dest", "name": "db", "status": "Synced", "syncWave": 3},
        {"group": "", "kind": "Namespace", "namespace": "", "name": "dest", "status": "Synced", "syncWave": -1},
    ]
    steps = [{"phase": "PreSync", "wave": 0, "objects": [
                 {"group": "batch", "kind": "Job", "namespace": "dest", "name": "migrate", "action": "hook"}]},
             {"phase": "Sync", "wave": -1, "objects": [
                 {"group": "", "kind": "Namespace", "namespace": "", "name": "dest", "action": "apply"}]},
             {"phase": "Sync", "wave": 3, "objects": [
                 {"group": "", "kind": "Service", "namespace": "dest", "name": "db", "action": "apply"},
                 {"group": "apps", "kind": "StatefulSet", "namespace": "dest", "name": "db", "action": "apply"}]},
             {"phase": "Sync", "wave": 4, "objects": [
                 {"group": "apps", "kind": "Deployment", "namespace": "dest", "name": "web", "action": "apply"}]}]
    operation = {"id": "op1", "phase": "Running", "startedAt": "2026-01-02T03:04:05Z",
                 "operation": {"sync": {"revision": "d" * 40}, "initiatedBy": {"username": "dashboard"}},
                 "syncResult": {"revision": "d" * 40, "resources": [
                     {"group": "batch", "kind": "Job", "namespace": "dest", "name": "migrate", "status": "Synced",
                      "message": "hook completed", "syncPhase": "PreSync", "hookPhase": "Succeeded"}]},
                 "progress": {"seq": 5, "step": 2, "stage": "wait", "steps": steps, "waitingOn": {
                     "step": 2, "resources": [{"group": "apps", "kind": "StatefulSet", "namespace": "dest",
                                               "name": "db", "health": "Progressing",
                                               "message": "Waiting for 2 pods to be ready..."}]}}}
    conditions = [{"type": "ComparisonError", "message": "rpc error: path app does not exist",
                   "lastTransitionTime": "2026-01-02T03:04:06Z"}]
    seed(served.store, application("shop"), _status(resources=resources, conditions=conditions), operation)
    with served.signed_in() as browser:
        page = browser.get("/applications/shop").text
        fragment = browser.get("/ui/fragments/applications/shop").text

    groups = re.findall(r'data-group="([^"]+)"', page)
    assert groups == ["PreSync:0", "Sync:-1", "Sync:3", "Sync:4"]
    rows = re.findall(r'data-resource="([^"]+)"', page)
    assert rows == ["Job/migrate", "Namespace/dest", "Service/db", "StatefulSet/db", "Deployment/web"]
    states = re.findall(r'data-wave="(-?\d+)" data-state="(\w+)"', page)
    assert states == [("0", "done"), ("-1", "done"), ("3", "running"), ("4", "waiting")]
    assert "waiting for <strong>StatefulSet db</strong>: Waiting for 2 pods to be ready..." in page
    assert 'data-condition="ComparisonError"' in page and "rpc error: path app does not exist" in page
    assert "user dashboard" in page and "Sync wave 3, step 3 of 4" in page
    assert fragment.strip() and "<html" not in fragment and 'data-group="Sync:3"' in fragment


def test_history_shows_each_commits_author_and_subject_recorded_by_the_diff_step(served: Served, tmp_path: Path):
    source = pygit2.init_repository(str(tmp_path / "src"), bare=True, initial_head="main")
    author = pygit2.Signature("Ada Lovelace", "ada@example.com", 1767322800, 0)
    tree = source.TreeBuilder().write()
    first = source.create_commit("refs/heads/main", author, author, "Add the app\n\nWith a body.", tree, [])
    second = source.create_commit("refs/heads/main", author, author, "Scale to 3", tree, [first])
    url = f"file://{tmp_path / 'src'}"
    served.services.repos.fetch(url)
    for sha in (str(first), str(second), "e" * 40):  # the last is unknown: nothing is recorded for it
        record_revision(served.services, url, sha)
    assert set(read_revisions(served.store.redis, [str(first), str(second), "e" * 40])) == {str(first), str(second)}

    history = [{"id": 0, "revision": str(first), "deployedAt": "2026-01-02T03:00:00Z",
                "initiatedBy": {"automated": True}},
               {"id": 1, "revision": str(second), "deployedAt": "2026-01-02T04:00:00Z",
                "initiatedBy": {"username": "rollback"}}]
    seed(served.store, application("h", repo=url), _status(history=history, sync={"status": "Synced",
                                                                                   "revision": str(second)}))
    with served.signed_in() as browser:
        page = browser.get("/applications/h").text
        listing = browser.get("/applications").text
    rows = re.findall(r'<tr data-history="(\d+)">(.*?)</tr>', page, re.S)
    assert [r[0] for r in rows] == ["1", "0"]  # newest first
    assert "Scale to 3" in rows[0][1] and "user rollback" in rows[0][1] and "Ada Lovelace" in rows[0][1]
    assert "Add the app" in rows[1][1] and "With a body" not in rows[1][1]
    assert "automated sync policy" in rows[1][1]
    assert f"{str(second)[:7]}</code> <span class=\"subject\">Scale to 3</span>" in listing


def test_the_diff_is_the_masked_diff_the_api_serves(served: Served):
    desired = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds", "namespace": "dest"},
               "stringData": {"password": "hunter2-new"}}
    live = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds", "namespace": "dest"},
            "data": {"password": base64.b64encode(b"hunter2-old").decode()}}
    text = compare(desired, live).diff_text()
    seed(served.store, application("s"), _status(sync={"status": "OutOfSync"}))
    served.store.redis.set(diff_key("s"), json.dumps({"Secret dest/creds": text}))
    with served.signed_in() as browser:
        page = browser.get("/applications/s").text
    api = served.client.get("/api/v1/applications/s/diff", headers={"Authorization": f"Bearer {TOKEN}"}).json()
    assert [i["diff"] for i in api["items"]] == [text]
    assert "hunter2" not in page and "aHVudGVyMi" not in page
    assert "++++++++" in page
    for line in text.splitlines():
        kind = "add" if line.startswith("+") and not line.startswith("+++") else None
        if kind:
            assert f'<span class="add">{line}</span>' in page


# -- self-contained -------------------------------------------------------------------------------------


def test_docs_and_the_dashboard_load_nothing_from_outside(served: Served):
    docs = served.client.get("/docs")
    assert docs.status_code == 200
    assets = re.findall(r"""(?:src|href)=['"]([^'"]+)['"]""", docs.text)
    assert assets and all(a.startswith("/") for a in assets), assets
    for asset in ("/ui/vendor/swagger-ui-bundle.js", "/ui/vendor/swagger-ui.css", "/ui/static/dashboard.css",
                  "/ui/static/dashboard.js", "/ui/static/favicon.svg"):
        response = served.client.get(asset)
        assert response.status_code == 200 and len(response.content) > 100, asset
    assert served.client.get("/openapi.json").json()["info"]["title"] == "WaveCD API"
    external = re.compile(r"(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}", re.I)
    for path in [*TEMPLATES.glob("*.html"), *STATIC.glob("*")]:
        text = re.sub(r'xmlns="[^"]*"', "", path.read_text())  # an XML namespace names, it does not load
        assert not external.search(text), f"{path.name} refers to another host"


def test_text_from_git_and_the_cluster_is_escaped(served: Served):
    hostile = '<img src=x onerror="alert(1)">'
    seed(served.store, application("x"), _status(
        conditions=[{"type": "SyncError", "message": hostile}],
        resources=[{"group": "", "kind": "ConfigMap", "namespace": "dest", "name": "c", "status": "Synced",
                    "health": {"status": "Degraded", "message": hostile}}]))
    served.store.redis.set(diff_key("x"), json.dumps({"ConfigMap dest/c": f"+data: {hostile}"}))
    with served.signed_in() as browser:
        page = browser.get("/applications/x").text
    assert hostile not in page and "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in page


def test_a_damaged_status_document_shows_what_it_can(served: Served):
    seed(served.store, application("odd"),
         {"sync": {"status": "Synced"}, "resources": [{"kind": "ConfigMap"}, "junk", {"kind": "Secret", "name": "s"}],
          "history": ["junk", {"id": 0, "revision": "a" * 40}], "conditions": ["junk"]},
         {"id": "op", "phase": "Running", "progress": {"step": 0, "stage": "wait", "steps": [
             {"objects": [{"kind": "Job"}, {"kind": "Job", "name": "j", "action": "hook"}]}, "junk",
             {"phase": "Sync", "wave": "not-a-number", "objects": None}],
             "waitingOn": {"step": 0, "resources": [{"health": "Progressing"}]}}})
    with served.signed_in() as browser:
        page = browser.get("/applications/odd")
        listing = browser.get("/ui/fragments/applications")
    assert page.status_code == 200 and listing.status_code == 200
    assert 'data-resource="Secret/s"' in page.text and 'data-resource="Job/j"' in page.text
    assert re.findall(r'<tr data-history="(\d+)">', page.text) == ["0"]
    assert re.findall(r'data-wave="(-?\d+)" data-state="(\w+)"', page.text) == [("0", "running"), ("0", "waiting")]


def test_a_sync_of_a_commit_a_webhook_announced_says_so(served: Served):
    case = json.loads((Path(__file__).parents[1] / "testdata" / "webhooks" / "providers" / "github-push.json")
                      .read_text())
    pushed = case["body"]["after"]
    polled = "f" * 40
    seed(served.store, application("guestbook", automated=True, repo="https://github.com/acme/gitops.git",
                                   path="apps/guestbook"))
    response = served.client.post("/api/webhook", content=json.dumps(case["body"]).encode(), headers=case["headers"])
    assert response.status_code == 202 and response.json()["status"] == "accepted", response.text
    history = [{"id": 0, "revision": polled, "initiatedBy": {"automated": True}},
               {"id": 1, "revision": pushed, "initiatedBy": {"automated": True}}]
    served.store.write_unfenced("guestbook", "status", _status(history=history))
    with served.signed_in() as browser:
        page = browser.get("/applications/guestbook").text
    rows = dict(re.findall(r'<tr data-history="(\d+)">(.*?)</tr>', page, re.S))
    assert "automated sync policy, after a webhook push" in rows["1"]
    assert "automated sync policy" in rows["0"] and "webhook" not in rows["0"]


def test_the_read_only_token_shows_everything_and_changes_nothing(served: Served):
    seed(served.store, application("a"), _status(history=[{"id": 0, "revision": "a" * 40}]))
    with served.signed_in(READONLY) as browser:
        page = browser.get("/applications/a")
        assert page.status_code == 200 and "read-only session" in page.text
        assert 'data-open="dlg-sync"' not in page.text and "data-history-id" not in page.text
        csrf = re.search(r'<meta name="csrf-token" content="([0-9a-f]{64})">', page.text)[1]  # type: ignore[index]
        headers = {**served.origin, "X-CSRF-Token": csrf}
        for action in ("sync", "refresh", "terminate", "delete"):
            response = browser.post(f"/ui/actions/applications/a/{action}", json={}, headers=headers)
            assert response.status_code == 403, action
            assert response.json()["error"] == "permission denied: the read-only API token may not change anything"
        assert browser.post("/logout", headers=headers).status_code == 200
        assert browser.get("/applications").status_code == 303
    assert served.store.peek_sync_request("a") is None and queued(served.store) == []


def test_the_list_counts_apps_per_status(served: Served):
    seed(served.store, application("web"), _status())
    seed(served.store, application("db"), _status(sync={"status": "OutOfSync"}, health={"status": "Degraded"}))
    seed(served.store, application("tool"), _status(health={"status": "Progressing"}))
    with served.signed_in() as browser:
        text = browser.get("/ui/fragments/applications", params={"status": "Degraded"}).text
    summary = re.sub(r"<[^>]+>", "", re.search(r'<p class="count muted">(.*?)</p>', text, re.S)[1])  # type: ignore[index]
    assert summary == "1 of 3 applications · Synced 2 · OutOfSync 1 · Healthy 1 · Progressing 1 · Degraded 1"
