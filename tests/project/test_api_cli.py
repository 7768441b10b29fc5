"""`wavecd proj|cluster|repo` end to end: the CLI in-process (typer's runner) against the API served over
real HTTP, a real Celery worker applying project changes to the suite's Kubernetes API, and the catalog
in real Redis. Refusals are 4xx with Argo CD's messages; no secret value ever reaches the output."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from kubernetes import client
from pydantic import SecretStr
from typer.testing import CliRunner, Result

from scheduler.api import create_app
from scheduler.cli import cli
from shared.core.settings import Settings
from shared.pipeline import project_catalog as catalog
from shared.pipeline.services import Services
from tests.api.serving import serve
from tests.fixtures.celery import WorkerPool
from tests.fixtures.kube import KubeEnv
from tests.project.crds import APPLICATION_CRD, APPPROJECT_CRD, install_crd
from tests.project.driver import World, application, cluster_secret

pytestmark = pytest.mark.integration

TOKEN = "proj-test-token"
SECRET = "s3cr3t-value-never-shown"


class Wavecd:
    def __init__(self, server: str) -> None:
        self.runner = CliRunner()
        self.env = {"WAVECD_SERVER": server, "WAVECD_AUTH_TOKEN": TOKEN, "WAVECD_CONFIG": "/nonexistent/cfg"}

    def __call__(self, *args: str, code: int = 0) -> Result:
        result = self.runner.invoke(cli, list(args), env=self.env)
        if result.exception and not isinstance(result.exception, SystemExit):
            raise result.exception
        assert result.exit_code == code, f"wavecd {' '.join(args)} -> {result.exit_code}\n" \
                                         f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
        assert SECRET not in result.stdout + result.stderr
        return result


@pytest.fixture
def setup(kube_env: KubeEnv, kube_api: client.ApiClient, redis_url: str, redis_client: Any, tmp_path: Path,
          celery_workers: WorkerPool) -> Iterator[tuple[Wavecd, World, httpx.Client]]:
    install_crd(kube_api, APPLICATION_CRD)
    install_crd(kube_api, APPPROJECT_CRD)
    probe = World(None, kube_api, "")  # type: ignore[arg-type]
    control = probe.namespace("wcd-ctl")
    settings = Settings(redis_url=redis_url, home=tmp_path / "home", api_token=SecretStr(TOKEN),
                        app_namespace=control, kubeconfig=kube_env.kubeconfig, kube_context=kube_env.context)
    svc = Services(settings, redis_client)
    world = World(svc, kube_api, control, probe.namespaces)
    creds_file = tmp_path / "repo-credentials.yaml"
    creds_file.write_text(yaml.safe_dump({"https://git.example.com/files": {"username": "bot", "password": SECRET}}))
    celery_workers.start(queues="apply", env={"WAVECD_APP_NAMESPACE": control,
                                              "WAVECD_REPO_CREDENTIALS_FILE": str(creds_file)})
    with serve(create_app(settings, svc)) as base, httpx.Client(
            base_url=base, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=20) as http:
        yield Wavecd(base), world, http
    for name in world.namespaces:
        try:
            world.core.delete_namespace(name)
        except client.ApiException as exc:
            if exc.status != 404:
                raise


def test_project_verbs(setup: tuple[Wavecd, World, httpx.Client], tmp_path: Path) -> None:
    wavecd, world, http = setup
    assert "default" in wavecd("proj", "list", "-o", "name").stdout.split()

    out = wavecd("proj", "create", "team", "--description", "Team A", "-d", "https://kubernetes.default.svc,team-*",
                 "-s", "https://github.com/acme/*", "--allow-cluster-resource", "/Namespace").stdout
    assert "project team created" in out
    stored = world.custom.get_namespaced_custom_object("argoproj.io", "v1alpha1", world.control, "appprojects", "team")
    assert stored["spec"]["destinations"] == [{"server": "https://kubernetes.default.svc", "namespace": "team-*"}]

    listing = wavecd("proj", "list").stdout
    team_row = next(line for line in listing.splitlines() if line.startswith("team"))
    assert "https://kubernetes.default.svc,team-*" in team_row and "https://github.com/acme/*" in team_row
    shown = wavecd("proj", "get", "team").stdout
    assert "Allowed Cluster Resources:    /Namespace" in shown

    assert "already exists" in wavecd("proj", "create", "team", code=1).stderr
    wavecd("proj", "add-destination", "team", "https://kubernetes.default.svc", "team-b")
    wavecd("proj", "add-destination", "team", "staging", "*", "--name")
    assert "already added" in wavecd("proj", "add-destination", "team", "https://kubernetes.default.svc", "team-b",
                                     code=1).stderr
    wavecd("proj", "add-source", "team", "https://github.com/acme/extra")
    assert "must not carry credentials" in wavecd("proj", "add-source", "team",
                                                  f"https://bot:{SECRET}@github.com/acme/x", code=1).stderr
    spec = json.loads(wavecd("proj", "get", "team", "-o", "json").stdout)["spec"]
    assert [d.get("server") or d.get("name") for d in spec["destinations"]] == [
        "https://kubernetes.default.svc", "https://kubernetes.default.svc", "staging"]
    assert spec["sourceRepos"] == ["https://github.com/acme/*", "https://github.com/acme/extra"]

    world.put_app(application("uses-team", world.control, "https://github.com/acme/web", "team-a", project="team"))
    assert "project is referenced by 1 applications" in wavecd("proj", "delete", "team", code=1).stderr
    assert "cannot be deleted" in wavecd("proj", "delete", "default", code=1).stderr
    assert "not found" in wavecd("proj", "get", "nope", code=1).stderr

    manifest = tmp_path / "windowed.yaml"
    manifest.write_text(yaml.safe_dump({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "AppProject", "metadata": {"name": "windowed"},
        "spec": {"sourceRepos": ["*"], "destinations": [{"server": "*", "namespace": "*"}],
                 "syncWindows": [{"kind": "deny", "schedule": "* * * * *", "duration": "1h", "applications": ["*"]},
                                 {"kind": "allow", "schedule": "0 0 1 1 *", "duration": "1m", "namespaces": ["x"],
                                  "manualSync": True, "timeZone": "Europe/Berlin"}]}}))
    wavecd("proj", "create", "-f", str(manifest))
    rows = [line.split() for line in wavecd("proj", "windows", "list", "windowed").stdout.splitlines()[1:]]
    assert rows[0][:3] == ["0", "Active", "deny"]
    assert rows[1][:3] == ["1", "Inactive", "allow"] and rows[1][-2:] == ["Enabled", "Europe/Berlin"]

    world.put_app(application("held", world.control, "https://github.com/acme/web", "web", project="windowed"))
    windows = http.get("/api/v1/applications/held/syncwindows").json()
    assert (windows["status"], windows["canSync"], windows["canManualSync"]) == ("Sync Denied", False, False)
    assert len(windows["activeWindows"]) == 1

    world.svc.store.remove_app("held")
    wavecd("proj", "delete", "windowed")
    assert "not found" in wavecd("proj", "get", "windowed", code=1).stderr


def test_api_refusals_are_4xx(setup: tuple[Wavecd, World, httpx.Client]) -> None:
    _, world, http = setup
    assert http.post("/api/v1/projects", content=b"{not yaml: [").status_code == 422
    bad = http.post("/api/v1/projects", json={"metadata": {"name": "p"}, "spec": {"syncWindows": [
        {"kind": "deny", "schedule": "61 * * * *", "duration": "1h", "applications": ["*"]}]}})
    assert bad.status_code == 422 and "5-field cron" in bad.json()["error"]
    assert http.post("/api/v1/projects", json={"metadata": {"name": "Not_Valid"}}).status_code == 422
    untargeted = http.post("/api/v1/projects", json={"metadata": {"name": "p"}, "spec": {"syncWindows": [
        {"kind": "deny", "schedule": "0 0 * * *", "duration": "1h"}]}})
    assert untargeted.status_code == 422 and "requires one of application, cluster or namespace" in \
        untargeted.json()["error"]
    both = http.post("/api/v1/projects/default/destinations", json={"server": "https://x", "name": "x"})
    assert both.status_code == 422
    assert http.get("/api/v1/projects/nope/windows").status_code == 404
    assert http.get("/api/v1/project-changes/not-an-id").status_code == 404
    assert http.delete("/api/v1/projects/default").status_code == 409
    assert httpx.get(http.base_url.join("/api/v1/projects")).status_code == 401

    # A project the cluster holds in a form WaveCD cannot read is a 409 naming why, never a 500.
    catalog.publish(world.svc.redis, projects=[{"metadata": {"name": "broken"}, "spec": {"syncWindows": [
        {"kind": "deny", "schedule": "not cron", "duration": "1h", "applications": ["*"]}]}}])
    broken = http.get("/api/v1/projects/broken/windows")
    assert broken.status_code == 409 and "5-field cron" in broken.json()["error"]
    world.put_app(application("on-broken", world.control, "https://github.com/acme/web", "web", project="broken"))
    assert http.get("/api/v1/applications/on-broken/syncwindows").status_code == 409


def test_cluster_and_repo_lists_show_no_secret(setup: tuple[Wavecd, World, httpx.Client]) -> None:
    wavecd, world, _ = setup
    world.core.create_namespaced_secret(world.control, cluster_secret(
        "staging", world.control, "staging", "https://staging.example.com:6443",
        {"bearerToken": SECRET, "tlsClientConfig": {"insecure": True}}))
    world.core.create_namespaced_secret(world.control, {
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "repo-web", "labels": {"argocd.argoproj.io/secret-type": "repository"}},
        "stringData": {"url": "https://git.example.com/acme/web.git", "username": "bot", "password": SECRET,
                       "project": "team"}})
    world.core.create_namespaced_secret(world.control, {
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "creds-acme", "labels": {"argocd.argoproj.io/secret-type": "repo-creds"}},
        "stringData": {"url": "https://git.example.com/acme", "sshPrivateKey": SECRET}})
    wavecd("proj", "create", "refresh-catalog")  # a worker applies it and refreshes the catalog

    clusters = wavecd("cluster", "list").stdout
    assert "https://staging.example.com:6443" in clusters and "staging" in clusters and "bearerToken" in clusters
    assert "https://kubernetes.default.svc" in clusters

    def connection(name: str) -> dict[str, str]:
        listed = json.loads(wavecd("cluster", "list", "-o", "json").stdout)
        return next(c for c in listed if c["name"] == name)["connection"]

    # The worker probes each cluster in the background: the suite's cluster answers, staging does not.
    deadline = time.monotonic() + 60
    while connection("in-cluster")["status"] == "Unknown" or connection("staging")["status"] == "Unknown":
        assert time.monotonic() < deadline, "no connection status was recorded"
        time.sleep(0.2)
    assert connection("in-cluster")["status"] == "Successful" and connection("in-cluster")["version"]
    assert connection("staging")["status"] == "Failed"
    assert "cannot reach the API server" in connection("staging")["message"]
    repos = wavecd("repo", "list").stdout
    web = next(line for line in repos.splitlines() if "acme/web" in line).split()
    assert web == ["git", "https://git.example.com/acme/web.git", "repository", "false", "true", "team", "Secret"]
    assert any("repo-creds" in line for line in repos.splitlines())
    from_file = next(line for line in repos.splitlines() if "git.example.com/files" in line).split()
    assert from_file == ["git", "https://git.example.com/files", "repo-creds", "false", "true", "file"]
    for args in (("cluster", "list", "-o", "json"), ("repo", "list", "-o", "yaml")):
        wavecd(*args)  # the SECRET check runs on every output
