"""A deny window is shown where users look: the Application's status in the API (a `SyncWindow`
condition), Argo CD's application sync-windows endpoint, `wavecd app get`, and the dashboard's page."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr
from typer.testing import CliRunner

from scheduler.api import create_app
from scheduler.cli import cli
from shared.pipeline.services import Services
from tests.api.serving import serve
from tests.fixtures.git import GitFactory
from tests.project.driver import World, application, configmap, reconcile, unique

pytestmark = pytest.mark.integration

TOKEN = "window-views-token-0123456789"


def test_sync_denied_is_shown_in_the_api_and_the_dashboard(world: World, git_factory: GitFactory,
                                                            tmp_path: Path) -> None:
    repo = git_factory.create("app", {"cm.yaml": configmap("held")})
    dest = world.namespace("team")
    world.put_project("team", {"sourceRepos": ["*"], "destinations": [{"server": "*", "namespace": "team-*"}],
                               "syncWindows": [{"kind": "deny", "schedule": "* * * * *", "duration": "1h",
                                                "applications": ["*"]}]})
    name = world.put_app(application(unique("app"), world.control, repo.url, dest, project="team"))
    reconcile(world.svc, name)

    settings = world.svc.settings.model_copy(update={"api_token": SecretStr(TOKEN), "home": tmp_path / "home"})
    api_services = Services(settings, world.svc.redis)
    with serve(create_app(settings, api_services)) as base, httpx.Client(
            base_url=base, timeout=20, headers={"Authorization": f"Bearer {TOKEN}"}) as http:
        status = http.get(f"/api/v1/applications/{name}").json()["status"]
        window = next(c for c in status["conditions"] if c["type"] == "SyncWindow")
        assert window["message"].startswith("Sync Denied")
        assert http.get(f"/api/v1/applications/{name}/syncwindows").json()["status"] == "Sync Denied"

        shown = CliRunner().invoke(cli, ["app", "get", name], env={
            "WAVECD_SERVER": base, "WAVECD_AUTH_TOKEN": TOKEN, "WAVECD_CONFIG": "/nonexistent/cfg"})
        assert shown.exit_code == 0, shown.stdout + shown.stderr
        assert "SyncWindow: Sync Denied" in shown.stdout

        with httpx.Client(base_url=base, timeout=20) as browser:
            signed = browser.post("/login", data={"token": TOKEN, "next": "/applications"},
                                  headers={"Origin": base})
            assert signed.status_code == 303, signed.text
            page = browser.get(f"/applications/{name}")
            assert page.status_code == 200
            assert 'data-condition="SyncWindow"' in page.text and "Sync Denied" in page.text
