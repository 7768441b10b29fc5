"""`wavecd app ...` end to end: the CLI talks to a served API, real workers do the work on a Kubernetes API.

Nothing is simulated on WaveCD's side: the CLI runs in-process (typer's runner), the API server over
real HTTP, workers as separate processes, git repositories made with pygit2. A thread plays beat and
sends `wavecd.tick` every second, as in a deployment.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from pydantic import SecretStr
from typer.testing import CliRunner, Result

from scheduler.api import create_app
from scheduler.cli import cli
from shared.core.settings import Settings
from shared.pipeline.services import Services
from tests.api.serving import serve
from tests.pipeline.harness import GROUP, VERSION, Harness, manifests

pytestmark = pytest.mark.integration

TOKEN = "cli-test-token"
SECRET_VALUE = "hunter2-very-secret"
CHANGED_SECRET = "changed-by-hand-secret"


def cm(name: str, wave: int, **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "annotations": {"argocd.argoproj.io/sync-wave": str(wave)}},
            "data": data or {"k": "v"}}


def deployment(name: str, wave: int) -> dict[str, Any]:
    labels = {"app": name}
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "annotations": {"argocd.argoproj.io/sync-wave": str(wave)}},
            "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [{"name": "main", "image": "nginx:1.27"}]}}}}


def secret(value: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds"}, "stringData": {"password": value}}


class Wavecd:
    """Runs `wavecd ...` in-process against the served API."""

    def __init__(self, server: str) -> None:
        self.runner = CliRunner()
        self.env = {"WAVECD_SERVER": server, "WAVECD_AUTH_TOKEN": TOKEN, "WAVECD_CONFIG": "/nonexistent/cfg"}

    def __call__(self, *args: str, code: int | None = 0) -> Result:
        result = self.runner.invoke(cli, list(args), env=self.env)
        if result.exception and not isinstance(result.exception, SystemExit):
            raise result.exception
        if code is not None:
            assert result.exit_code == code, f"wavecd {' '.join(args)} -> {result.exit_code}\n" \
                                             f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
        return result


@pytest.fixture()
def ticking(harness: Harness) -> Iterator[None]:
    """Beat's role: one `wavecd.tick` per second while the test runs."""
    stop = threading.Event()

    def run() -> None:
        while not stop.wait(1.0):
            harness.tick()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    yield
    stop.set()
    thread.join(5)


@pytest.fixture()
def served(harness: Harness, tmp_path: Path) -> Iterator[str]:
    settings = Settings(redis_url=harness.redis_url, home=tmp_path / "api-home", api_token=SecretStr(TOKEN),
                        app_namespace=harness.app_namespace)
    with serve(create_app(settings, Services(settings, harness.redis))) as base:
        yield base


def _every_api_response(base: str, name: str) -> str:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    bodies = []
    for path in ("", f"/{name}", f"/{name}/diff", f"/{name}/history"):
        response = httpx.get(f"{base}/api/v1/applications{path}", headers=headers)
        assert response.status_code == 200, response.text
        bodies.append(response.text)
    return "\n".join(bodies)


def test_app_lifecycle_through_the_cli(harness: Harness, git_factory, celery_workers, ticking, served,
                                       tmp_path: Path):
    repo = git_factory.create("cli", {"app/all.yaml": manifests(
        cm("first", -1), secret(SECRET_VALUE), deployment("web", 1), cm("last", 2, k="one"))})
    first = repo.head()
    celery_workers.start(1, concurrency=2, env=harness.worker_env())
    wavecd = Wavecd(served)
    name = "cli-app"
    manifest = tmp_path / "app.yaml"
    manifest.write_text(yaml.safe_dump({
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "Application", "metadata": {"name": name},
        "spec": {"project": "default", "source": {"repoURL": repo.url, "path": "app", "targetRevision": "main"},
                 "destination": {"server": "https://kubernetes.default.svc", "namespace": harness.dest_namespace},
                 "syncPolicy": {}}}))

    assert f"application '{name}' created" in wavecd("app", "create", "-f", str(manifest)).stdout
    assert harness.application_exists(name)
    # The same Application from flags, as `argocd app create` takes them: the same spec, so "unchanged".
    again = wavecd("app", "create", name, "--repo", repo.url, "--path", "app", "--revision", "main",
                   "--dest-server", "https://kubernetes.default.svc", "--dest-namespace", harness.dest_namespace,
                   "--sync-policy", "manual")
    assert again.stdout.strip() == f"application '{name}' unchanged"

    # Nothing deployed yet: OutOfSync, diff exit 1 (the Secret's value is masked).
    out = wavecd("app", "diff", name, code=1).stdout
    assert "ConfigMap" in out and SECRET_VALUE not in out

    # Sync, followed step by step until it ends.
    result = wavecd("app", "sync", name, "--timeout", "90")
    assert "Phase:              Succeeded" in result.stdout, result.stdout
    assert "step " in result.stdout  # the waves were shown while they ran
    assert harness.core.read_namespaced_config_map("last", harness.dest_namespace).data == {"k": "one"}

    wavecd("app", "wait", name, "--sync", "--health", "--timeout", "60")
    wavecd("app", "diff", name, code=0)
    listing = wavecd("app", "list").stdout
    row = next(line for line in listing.splitlines() if line.startswith(name))
    assert listing.split()[:11] == ["NAME", "CLUSTER", "NAMESPACE", "PROJECT", "STATUS", "HEALTH", "SYNCPOLICY",
                                    "CONDITIONS", "REPO", "PATH", "TARGET"], listing
    assert row.split() == [name, "https://kubernetes.default.svc", harness.dest_namespace, "default", "Synced",
                           "Healthy", "Manual", "<none>", repo.url, "app", "main"], listing
    got = json.loads(wavecd("app", "get", name, "-o", "json").stdout)
    assert got["status"]["sync"]["status"] == "Synced"
    table = wavecd("app", "get", name, "--show-operation").stdout
    assert "Deployment" in table and "Succeeded" in table
    assert {(r["kind"], r["name"]) for r in got["status"]["resources"]} >= {
        ("ConfigMap", "first"), ("Secret", "creds"), ("Deployment", "web"), ("ConfigMap", "last")}

    # A new commit with autosync off: diff exit 1; sync; history has two entries.
    second = repo.commit({"app/all.yaml": manifests(
        cm("first", -1), secret(SECRET_VALUE), deployment("web", 1), cm("last", 2, k="two"))})
    out = wavecd("app", "diff", name, code=1).stdout
    assert "two" in out
    resync = wavecd("app", "sync", name, "--timeout", "90").stdout
    assert harness.core.read_namespaced_config_map("last", harness.dest_namespace).data == {"k": "two"}
    # As kubectl and Argo CD say it: only the changed object was configured, the others are unchanged.
    assert "configmap/last configured" in resync, resync
    for unchanged in ("configmap/first unchanged", "deployment/web unchanged", "secret/creds unchanged"):
        assert unchanged in resync, resync
    history = json.loads(wavecd("app", "history", name, "-o", "json").stdout)
    assert [h["revision"] for h in history] == [first, second]
    assert second in wavecd("app", "history", name).stdout

    # Rollback to the previous deployment (the default ID).
    wavecd("app", "rollback", name, "--timeout", "90")
    assert harness.core.read_namespaced_config_map("last", harness.dest_namespace).data == {"k": "one"}
    after = json.loads(wavecd("app", "get", name, "-o", "json").stdout)["status"]
    assert after["operationState"]["syncResult"]["revision"] == first
    assert after["history"][-1]["revision"] == first

    # A manual change of the Secret: the diff shows it, masked; no API answer carries either value.
    harness.core.patch_namespaced_secret("creds", harness.dest_namespace, {"stringData": {"password": CHANGED_SECRET}})
    out = wavecd("app", "diff", name, code=1).stdout
    assert "Secret" in out
    for value in (SECRET_VALUE, CHANGED_SECRET):
        encoded = base64.b64encode(value.encode()).decode()
        text = _every_api_response(served, name) + out
        assert value not in text and encoded not in text

    # Terminating with nothing running, unknown apps, bad flags: one line on stderr, non-zero exit.
    result = wavecd("app", "terminate-op", name, code=1)
    assert result.stderr.strip() == "error: No operation is in progress"
    assert "not found" in wavecd("app", "diff", "no-such-app", code=2).stderr
    assert "not found" in wavecd("app", "get", "no-such-app", code=1).stderr
    assert "GROUP:KIND:NAME" in wavecd("app", "sync", name, "--resource", "bad", code=1).stderr

    # Delete without cascade: the Application goes, its resources stay.
    wavecd("app", "delete", name, "--no-cascade", "--wait", "--timeout", "60")
    assert not harness.application_exists(name)
    assert harness.core.read_namespaced_config_map("last", harness.dest_namespace).data == {"k": "one"}


def test_cli_errors_without_a_server(tmp_path: Path):
    runner = CliRunner()
    env = {"WAVECD_SERVER": "http://127.0.0.1:9", "WAVECD_AUTH_TOKEN": "x", "WAVECD_CONFIG": str(tmp_path / "no")}
    result = runner.invoke(cli, ["app", "list"], env=env)
    assert result.exit_code == 1
    assert result.stderr.startswith("error: cannot reach the WaveCD API at http://127.0.0.1:9")
    assert "Traceback" not in result.stderr + result.stdout
    diff = runner.invoke(cli, ["app", "diff", "x"], env=env)
    assert diff.exit_code == 2


def test_cli_reads_server_and_token_from_the_config_file(served: str, harness: Harness, tmp_path: Path):
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"server": served, "auth-token": TOKEN}))
    runner = CliRunner()
    result = runner.invoke(cli, ["app", "list", "-o", "json"], env={"WAVECD_CONFIG": str(config),
                                                                    "WAVECD_SERVER": None, "WAVECD_AUTH_TOKEN": None})
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == []
    config.write_text(yaml.safe_dump({"server": served, "auth-token": "wrong"}))
    result = runner.invoke(cli, ["app", "list"], env={"WAVECD_CONFIG": str(config), "WAVECD_SERVER": None,
                                                      "WAVECD_AUTH_TOKEN": None})
    assert result.exit_code == 1 and result.stderr.strip() == "error: invalid API token"


def test_app_set_unset_patch_and_upsert_change_the_application(harness: Harness, git_factory, celery_workers,
                                                                ticking, served):
    """Each change goes API -> worker -> the Application in the cluster, and back into what `app get` shows."""
    repo = git_factory.create("cli-set", {"app/all.yaml": manifests(cm("one", 0)),
                                          "other/all.yaml": manifests(cm("two", 0))})
    celery_workers.start(1, concurrency=2, env=harness.worker_env())
    wavecd = Wavecd(served)
    name = "cli-set"
    flags = ["--repo", repo.url, "--path", "app", "--revision", "main", "--dest-server",
             "https://kubernetes.default.svc", "--dest-namespace", harness.dest_namespace]
    assert wavecd("app", "create", name, *flags).stdout.strip() == f"application '{name}' created"

    def spec() -> dict[str, Any]:
        shown = json.loads(wavecd("app", "get", name, "-o", "json").stdout)["spec"]
        in_cluster = harness.custom.get_namespaced_custom_object(GROUP, VERSION, harness.app_namespace,
                                                                  "applications", name)["spec"]
        assert {k: v for k, v in in_cluster.items() if v not in ({}, [], None)} == \
            {k: v for k, v in shown.items() if v not in ({}, [], None)}
        return shown

    out = wavecd("app", "set", name, "--sync-option", "CreateNamespace=true", "--sync-option", "Prune=false")
    assert out.stdout.strip() == f"application '{name}' updated"
    assert spec()["syncPolicy"]["syncOptions"] == ["CreateNamespace=true", "Prune=false"]
    wavecd("app", "set", name, "--sync-option", "Prune=true")  # a new value replaces the option
    assert spec()["syncPolicy"]["syncOptions"] == ["CreateNamespace=true", "Prune=true"]
    wavecd("app", "unset", name, "--sync-option", "Prune")
    assert spec()["syncPolicy"]["syncOptions"] == ["CreateNamespace=true"]

    wavecd("app", "patch", name, "--patch", '[{"op": "replace", "path": "/spec/source/path", "value": "other"}]')
    assert spec()["source"]["path"] == "other"
    wavecd("app", "patch", name, "--type", "merge", "--patch",
           '{"spec": {"syncPolicy": {"automated": {"prune": true, "selfHeal": true}}}}')
    assert "Sync Policy:        Automated (Prune)" in wavecd("app", "get", name).stdout
    wavecd("app", "unset", name, "--auto-prune")
    assert spec()["syncPolicy"]["automated"] == {"selfHeal": True}
    assert wavecd("app", "set", name, "--sync-policy", "automated").stdout.strip() == f"application '{name}' unchanged"

    # `create --upsert` with the original flags puts the original spec back.
    assert "spec is different, use the --upsert flag" in wavecd("app", "create", name, *flags, code=1).stderr
    assert wavecd("app", "create", name, *flags, "--upsert").stdout.strip() == f"application '{name}' updated"
    back = spec()
    assert back["source"] == {"repoURL": repo.url, "path": "app", "targetRevision": "main"}
    assert not (back.get("syncPolicy") or {}).get("automated")

    bad = wavecd("app", "patch", name, "--patch", '[{"op": "remove", "path": "/spec/nothing"}]', code=1)
    assert bad.stderr.startswith("error: the JSON patch does not apply") and "Traceback" not in bad.stderr
    invalid = wavecd("app", "patch", name, "--type", "merge", "--patch", '{"spec": {"source": null}}', code=1)
    assert invalid.stderr.startswith("error: ") and "Traceback" not in invalid.stderr


def test_app_delete_resource_deletes_one_object_of_the_app(harness: Harness, git_factory, celery_workers, ticking,
                                                           served):
    from kubernetes.client import ApiException

    repo = git_factory.create("cli-delres", {"app/all.yaml": manifests(cm("keep", 0), cm("drop", 0))})
    celery_workers.start(1, concurrency=2, env=harness.worker_env())
    wavecd = Wavecd(served)
    name = "cli-delres"
    wavecd("app", "create", name, "--repo", repo.url, "--path", "app", "--dest-server",
           "https://kubernetes.default.svc", "--dest-namespace", harness.dest_namespace)
    wavecd("app", "sync", name, "--timeout", "90")
    namespace = harness.dest_namespace

    missing = wavecd("app", "delete-resource", name, "--kind", "ConfigMap", "--resource-name", "nope",
                     "--namespace", namespace, code=1)
    assert missing.stderr.strip() == (f"error: application '{name}' has no resource /ConfigMap "
                                      f"{namespace}/nope")
    out = wavecd("app", "delete-resource", name, "--kind", "ConfigMap", "--resource-name", "drop",
                 "--namespace", namespace).stdout
    assert out.strip() == f"delete of /ConfigMap {namespace}/drop of application '{name}' requested"

    def gone() -> bool:
        try:
            harness.core.read_namespaced_config_map("drop", namespace)
            return False
        except ApiException as exc:
            return exc.status == 404

    harness.wait("the ConfigMap deleted", gone)
    assert harness.core.read_namespaced_config_map("keep", namespace).data == {"k": "v"}
    harness.wait("the app OutOfSync", lambda: harness.status(name).get("sync", {}).get("status") == "OutOfSync")


def test_app_manifests_from_git_and_live_with_secrets_masked(harness: Harness, git_factory, celery_workers,
                                                             ticking, served):
    repo = git_factory.create("cli-manifests", {"app/all.yaml": manifests(cm("conf", 0), secret(SECRET_VALUE))})
    celery_workers.start(1, concurrency=2, env=harness.worker_env())
    wavecd = Wavecd(served)
    name = "cli-manifests"
    wavecd("app", "create", name, "--repo", repo.url, "--path", "app", "--dest-server",
           "https://kubernetes.default.svc", "--dest-namespace", harness.dest_namespace)
    encoded = base64.b64encode(SECRET_VALUE.encode()).decode()

    target = list(yaml.safe_load_all(wavecd("app", "manifests", name).stdout))
    assert sorted((d["kind"], d["metadata"]["name"]) for d in target) == [("ConfigMap", "conf"), ("Secret", "creds")]
    assert all(d["metadata"]["namespace"] == harness.dest_namespace for d in target)  # as the sync applies them
    assert all(d["metadata"]["annotations"]["argocd.argoproj.io/tracking-id"].startswith(f"{name}:")
               for d in target)

    assert wavecd("app", "manifests", name, "--source", "live").stdout.strip() == ""  # nothing deployed yet
    wavecd("app", "sync", name, "--timeout", "90")
    live_text = wavecd("app", "manifests", name, "--source", "live").stdout
    live = list(yaml.safe_load_all(live_text))
    assert sorted((d["kind"], d["metadata"]["name"]) for d in live) == [("ConfigMap", "conf"), ("Secret", "creds")]
    assert all(d["metadata"].get("resourceVersion") and "managedFields" not in d["metadata"] for d in live)

    shown = wavecd("app", "manifests", name).stdout + live_text
    assert SECRET_VALUE not in shown and encoded not in shown  # masked in both

    bad = wavecd("app", "manifests", name, "--revision", "no-such-branch", code=1)
    assert bad.stderr.startswith(f"error: cannot show the git manifests of application '{name}': "), bad.stderr
    assert "--source git" in wavecd("app", "manifests", name, "--source", "live", "--revision", "x", code=1).stderr
