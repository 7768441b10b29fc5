"""A deny window is shown where users look: the Application's status in the API (a `SyncWindow`
condition), Argo CD's application sync-windows endpoint, `wavecd app get`, and the dashboard's page."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr
from typer.testing import CliRunner

from scheduler.api import create_app
from scheduler.cli import cli
from shared.core.settings import Settings
from shared.pipeline import project_catalog as catalog
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
        assert re.search(r"^SyncWindow:\s+Sync Denied$", shown.stdout, re.M), shown.stdout

        with httpx.Client(base_url=base, timeout=20) as browser:
            signed = browser.post("/login", data={"token": TOKEN, "next": "/applications"},
                                  headers={"Origin": base})
            assert signed.status_code == 303, signed.text
            page = browser.get(f"/applications/{name}")
            assert page.status_code == 200
            assert 'data-condition="SyncWindow"' in page.text and "Sync Denied" in page.text


def _project(name: str, windows: list[dict[str, object]]) -> dict[str, object]:
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "AppProject", "metadata": {"name": name},
            "spec": {"sourceRepos": ["*"], "destinations": [{"server": "*", "namespace": "*"}],
                     "syncWindows": windows}}


def _app(name: str, project: str, namespace: str = "web") -> dict[str, object]:
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Application", "metadata": {"name": name},
            "spec": {"project": project, "source": {"repoURL": "https://git.example.com/r.git", "path": "."},
                     "destination": {"server": "https://kubernetes.default.svc", "namespace": namespace}}}


ALWAYS = "* * * * *"
NEVER_NOW = "0 0 1 1 *"  # once a year, for a minute: not active while the test runs (outside New Year)


@pytest.mark.parametrize(("windows", "shown"), [
    ([], None),                                                                            # no window: no line
    ([{"kind": "deny", "schedule": ALWAYS, "duration": "1h", "namespaces": ["other"]}], None),  # not this app's
    ([{"kind": "allow", "schedule": ALWAYS, "duration": "1h", "applications": ["*"]}], "Sync Allowed"),
    ([{"kind": "deny", "schedule": ALWAYS, "duration": "1h", "applications": ["*"]}], "Sync Denied"),
    ([{"kind": "deny", "schedule": ALWAYS, "duration": "1h", "applications": ["*"], "manualSync": True}],
     "Manual Allowed"),
    ([{"kind": "allow", "schedule": NEVER_NOW, "duration": "1m", "applications": ["*"]}], "Sync Denied"),
    ([{"kind": "deny", "schedule": NEVER_NOW, "duration": "1m", "applications": ["*"]}], "Sync Allowed"),
])
def test_app_get_shows_the_window_verdict_of_now(redis_url: str, redis_client: object, tmp_path: Path,
                                                 windows: list[dict[str, object]], shown: str | None) -> None:
    """`app get`'s SyncWindow line comes from the project's windows at this moment, in Argo CD's words,
    and is left out (as Argo CD does) when no window applies to the app."""
    settings = Settings(redis_url=redis_url, home=tmp_path / "home", api_token=SecretStr(TOKEN))
    svc = Services(settings, redis_client)  # type: ignore[arg-type]
    catalog.publish(svc.redis, projects=[_project("timed", windows)])
    svc.store.put_app("timed-app", _app("timed-app", "timed"))
    with serve(create_app(settings, svc)) as base:
        result = CliRunner().invoke(cli, ["app", "get", "timed-app"], env={
            "WAVECD_SERVER": base, "WAVECD_AUTH_TOKEN": TOKEN, "WAVECD_CONFIG": "/nonexistent/cfg"})
    assert result.exit_code == 0, result.stdout + result.stderr
    lines = [line for line in result.stdout.splitlines() if line.startswith("SyncWindow:")]
    assert lines == ([] if shown is None else [f"{'SyncWindow:':<20}{shown}"])
