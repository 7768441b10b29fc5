"""A request body is read only for a caller who may send it: the dashboard's actions and the project
API's routes check the session or token first, so an anonymous client gets 401 whatever body it sends
(oversized, not JSON, not the right shape), never a 413 or 422 that shows the body was read."""

from __future__ import annotations

import pytest

from scheduler.dashboard.session import Role, Sessions
from tests.dashboard.conftest import TOKEN, Served
from tests.dashboard.test_pages import application, seed

pytestmark = pytest.mark.integration

OVERSIZED = b"{" + b" " * (1024 * 1024 + 10) + b"}"  # over the default api_max_body_bytes (1 MiB)
BODIES = {"oversized": OVERSIZED, "not-json": b'{"prune": tru', "wrong-shape": b'{"dryrun": "x", "id": "no"}'}
DASHBOARD_ACTIONS = ["/ui/actions/applications/a/sync", "/ui/actions/applications/a/rollback",
                     "/ui/actions/applications/a/delete"]
PROJECT_ROUTES = ["/api/v1/projects/team/destinations", "/api/v1/projects/team/sources", "/api/v1/projects"]


@pytest.mark.parametrize("kind", sorted(BODIES))
@pytest.mark.parametrize("path", DASHBOARD_ACTIONS)
def test_dashboard_action_without_a_session_is_401_whatever_the_body(served: Served, path: str, kind: str) -> None:
    seed(served.store, application("a"), {"sync": {"status": "OutOfSync"}})
    csrf = Sessions(TOKEN).csrf_token(Role.ADMIN)
    response = served.client.post(path, content=BODIES[kind], headers={
        **served.origin, "X-CSRF-Token": csrf, "Content-Type": "application/json"})
    assert response.status_code == 401, response.text
    assert served.store.peek_sync_request("a") is None


@pytest.mark.parametrize("kind", sorted(BODIES))
@pytest.mark.parametrize("path", PROJECT_ROUTES)
def test_project_api_without_a_token_is_401_whatever_the_body(served: Served, path: str, kind: str) -> None:
    response = served.client.post(path, content=BODIES[kind], headers={"Content-Type": "application/json"})
    assert response.status_code == 401, response.text
    wrong = served.client.post(path, content=BODIES[kind], headers={
        "Content-Type": "application/json", "Authorization": "Bearer not-the-token-0123456789"})
    assert wrong.status_code == 401, wrong.text


def test_signed_in_callers_still_get_the_body_checks(served: Served) -> None:
    """The same bodies from a caller with the right are refused for what they are: 413 and 422."""
    seed(served.store, application("a"), {"sync": {"status": "OutOfSync"}})
    auth = {"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"}
    assert served.client.post(PROJECT_ROUTES[0], content=OVERSIZED, headers=auth).status_code == 413
    invalid = served.client.post(PROJECT_ROUTES[1], content=BODIES["not-json"], headers=auth)
    assert invalid.status_code == 422 and invalid.json()["code"] == 422
    missing = served.client.post(PROJECT_ROUTES[1], content=b"{}", headers=auth)
    assert missing.status_code == 422 and "repoURL" in missing.json()["error"]
    with served.signed_in() as browser:
        headers = {**served.origin, "X-CSRF-Token": Sessions(TOKEN).csrf_token(Role.ADMIN),
                   "Content-Type": "application/json"}
        assert browser.post(DASHBOARD_ACTIONS[0], content=OVERSIZED, headers=headers).status_code == 413
        shaped = browser.post(DASHBOARD_ACTIONS[0], content=BODIES["wrong-shape"], headers=headers)
        assert shaped.status_code == 422 and "dryrun" in shaped.json()["error"]
    assert served.store.peek_sync_request("a") is None


def test_the_project_bodies_are_still_documented(served: Served) -> None:
    paths = served.client.get("/openapi.json").json()["paths"]
    source = paths["/api/v1/projects/{name}/sources"]["post"]["requestBody"]["content"]["application/json"]
    assert "repoURL" in source["schema"]["properties"]
    destination = paths["/api/v1/projects/{name}/destinations"]["post"]["requestBody"]["content"]
    assert set(destination["application/json"]["schema"]["properties"]) == {"server", "name", "namespace"}
