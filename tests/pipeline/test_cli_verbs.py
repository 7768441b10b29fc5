"""`wavecd app` verbs and output against a served API whose Redis holds the apps' status, no workers needed.

Each Argo CD-derived rule comes from a testdata file (tests/testdata/cli/): the columns of `app list`, the
`Sync Policy:` of `app get`, the headers of `app diff`, the Application `app create` builds from flags. The
CLI runs in-process (typer's runner), the API over real HTTP, Redis is real.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml
from pydantic import SecretStr
from typer.testing import CliRunner, Result

from scheduler.api import create_app
from scheduler.cli import cli
from shared.core.settings import Settings
from shared.pipeline.reconcile import diff_key
from shared.pipeline.services import Services
from shared.state.app_store import AppStore
from tests.api.conftest import queued_tasks
from tests.api.serving import serve
from workers.catalogue import AppAdmin

pytestmark = pytest.mark.integration

TOKEN = "cli-verbs-token"
TESTDATA = Path(__file__).resolve().parents[1] / "testdata" / "cli"
LIST_CASES = sorted((TESTDATA / "app_list").glob("*.yaml"))
HEADER_CASES = sorted((TESTDATA / "diff_header").glob("*.yaml"))
CREATE_CASES = sorted((TESTDATA / "app_create").glob("*.yaml"))
LIST_COLUMNS = ["NAME", "CLUSTER", "NAMESPACE", "PROJECT", "STATUS", "HEALTH", "SYNCPOLICY", "CONDITIONS", "REPO",
                "PATH", "TARGET"]


@pytest.fixture()
def served(redis_url: str, redis_client: redis.Redis, tmp_path: Path) -> Iterator[str]:
    settings = Settings(redis_url=redis_url, home=tmp_path / "api-home", api_token=SecretStr(TOKEN))
    with serve(create_app(settings, Services(settings, redis_client))) as base:
        yield base


def wavecd(served: str, *args: str, code: int = 0, **env: str | None) -> Result:
    result = CliRunner().invoke(cli, list(args), env={"WAVECD_SERVER": served, "WAVECD_AUTH_TOKEN": TOKEN,
                                                      "WAVECD_CONFIG": None, "COLUMNS": "200", **env})
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code == code, f"wavecd {' '.join(args)} -> {result.exit_code}\n{result.stdout}\n" \
                                     f"{result.stderr}"
    return result


def seed(client: redis.Redis, name: str, spec: dict[str, Any], status: dict[str, Any] | None = None,
         labels: dict[str, str] | None = None) -> None:
    store = AppStore(client)
    store.put_app(name, {"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
                         "metadata": {"name": name, "namespace": "argocd", "labels": labels or {}}, "spec": spec})
    if status is not None:
        store.write_unfenced(name, "status", status)


def _table(text: str) -> list[dict[str, str]]:
    """A table printed with fixed columns, read back by the header's column positions."""
    lines = [line for line in text.splitlines() if line.strip()]
    found = list(re.finditer(r"\S+", lines[0]))
    names, starts = [m.group() for m in found], [m.start() for m in found]
    rows = []
    for line in lines[1:]:
        cells = [line[start:(starts[i + 1] if i + 1 < len(starts) else None)].strip()
                 for i, start in enumerate(starts)]
        rows.append(dict(zip(names, cells, strict=True)))
    return rows


@pytest.mark.parametrize("path", LIST_CASES, ids=lambda p: p.stem)
def test_app_list_and_get_show_argo_cds_columns_and_policy(path: Path, served: str, redis_client: redis.Redis):
    case = yaml.safe_load(path.read_text())
    seed(redis_client, case["name"], case["spec"], case["status"])
    listing = wavecd(served, "app", "list").stdout
    assert listing.split("\n", 1)[0].split() == LIST_COLUMNS, listing
    assert _table(listing) == [case["row"]], listing
    got = wavecd(served, "app", "get", case["name"]).stdout
    assert f"{'Sync Policy:':<20}{case['sync_policy']}\n" in got, got


@pytest.mark.parametrize("path", HEADER_CASES, ids=lambda p: p.stem)
def test_app_diff_headers_are_argo_cds(path: Path, served: str, redis_client: redis.Redis):
    case = yaml.safe_load(path.read_text())
    seed(redis_client, "app", {"project": "default", "source": {"repoURL": "https://git.example.com/a.git",
                                                                "path": "a"}},
         {"sync": {"status": "OutOfSync"}, "health": {"status": "Healthy"}})
    redis_client.set(diff_key("app"), json.dumps({case["resource"]: "-a: 1\n+a: 2\n"}))
    out = wavecd(served, "app", "diff", "app", "--no-refresh", code=1).stdout
    assert f"\n===== {case['header']} ======\n-a: 1\n+a: 2\n" in out, out


@pytest.mark.parametrize("path", CREATE_CASES, ids=lambda p: p.stem)
def test_app_create_from_flags(path: Path, served: str, redis_client: redis.Redis, tmp_path: Path):
    case = yaml.safe_load(path.read_text())
    args = [str(a) for a in case["args"]]
    if "file" in case:
        manifest = tmp_path / "app.yaml"
        manifest.write_text(yaml.safe_dump(case["file"]))
        args += ["-f", str(manifest)]
    if "error" in case:
        result = wavecd(served, "app", "create", *args, code=1)
        assert result.stderr.startswith("error: ") and case["error"] in result.stderr, result.stderr
        return
    # An app of that name with exactly the expected spec exists: as Argo CD, creating the same spec again
    # is no error ("unchanged"), while any difference in what the flags built is refused.
    expected = case["application"]
    seed(redis_client, expected["metadata"]["name"], expected["spec"])
    result = wavecd(served, "app", "create", *args)
    assert result.stdout.strip() == f"application '{expected['metadata']['name']}' unchanged"


def test_app_create_refuses_a_different_spec_for_an_existing_app(served: str, redis_client: redis.Redis):
    spec = {"project": "default", "source": {"repoURL": "https://git.example.com/a.git", "path": "a"},
            "destination": {"server": "https://kubernetes.default.svc", "namespace": "a"}}
    seed(redis_client, "a", spec)
    args = ["app", "create", "a", "--repo", "https://git.example.com/a.git", "--path", "b", "--dest-server",
            "https://kubernetes.default.svc", "--dest-namespace", "a"]
    assert "existing application 'a' spec is different, use the --upsert flag" in wavecd(served, *args, code=1).stderr
    # With --upsert the new spec goes to the workers (none run here: the CLI says so after its timeout).
    late = wavecd(served, *args, "--upsert", "--timeout", "1", code=1)
    assert "new spec of application 'a' was accepted but not applied within 1s (are workers running?)" \
        in late.stderr, late.stderr
    (task,) = queued_tasks(redis_client, "apply")
    assert isinstance(task, AppAdmin) and task.action == "update" and task.stash is not None
    assert json.loads(redis_client.get(task.stash))["spec"]["source"]["path"] == "b"


def test_app_resources_lists_what_the_app_manages(served: str, redis_client: redis.Redis):
    seed(redis_client, "shop", {"project": "default"}, {"resources": [
        {"group": "apps", "kind": "Deployment", "namespace": "shop", "name": "web", "status": "Synced",
         "health": {"status": "Healthy"}},
        {"group": "", "kind": "Namespace", "namespace": "", "name": "shop", "status": "OutOfSync"}]})
    rows = _table(wavecd(served, "app", "resources", "shop").stdout)
    assert rows == [{"GROUP": "apps", "KIND": "Deployment", "NAMESPACE": "shop", "NAME": "web", "ORPHANED": "No"},
                    {"GROUP": "", "KIND": "Namespace", "NAMESPACE": "", "NAME": "shop", "ORPHANED": "No"}]
    wide = _table(wavecd(served, "app", "resources", "shop", "-o", "wide").stdout)
    assert [(r["STATUS"], r["HEALTH"]) for r in wide] == [("Synced", "Healthy"), ("OutOfSync", "")]
    assert wavecd(served, "app", "resources", "shop", "--orphaned").stdout.split() == [
        "GROUP", "KIND", "NAMESPACE", "NAME", "ORPHANED"]
    assert "not found" in wavecd(served, "app", "resources", "nope", code=1).stderr


def test_app_wait_for_several_apps_and_a_selector(served: str, redis_client: redis.Redis):
    done = {"sync": {"status": "Synced"}, "health": {"status": "Healthy"}}
    seed(redis_client, "a", {"project": "default"}, done, labels={"team": "x"})
    seed(redis_client, "b", {"project": "default"}, done, labels={"team": "x"})
    seed(redis_client, "c", {"project": "default"}, {"sync": {"status": "OutOfSync"}, "health": {"status": "Healthy"}},
         labels={"team": "y"})
    out = wavecd(served, "app", "wait", "-l", "team=x", "--sync", "--health", "--timeout", "10").stdout
    assert sorted(out.splitlines()) == ["application 'a': Synced, Healthy, operation none",
                                        "application 'b': Synced, Healthy, operation none"]
    # Several names: it waits for all, and a timeout names the ones still waited for.
    late = wavecd(served, "app", "wait", "a", "c", "--sync", "--timeout", "1", code=1)
    assert "application 'a': Synced" in late.stdout
    assert "waiting for application 'c' (sync OutOfSync" in late.stderr and "'a'" not in late.stderr
    # Health alone is met by c.
    wavecd(served, "app", "wait", "a", "c", "--health", "--timeout", "10")
    assert "no application matches" in wavecd(served, "app", "wait", "-l", "team=z", code=1).stderr
    assert "name at least one application" in wavecd(served, "app", "wait", code=1).stderr


def test_without_a_token_the_error_says_where_one_comes_from(served: str, tmp_path: Path):
    result = wavecd(served, "app", "list", code=1, WAVECD_AUTH_TOKEN=None, WAVECD_HOME=str(tmp_path / "home"))
    assert "needs a token and none is configured: pass --auth-token, set WAVECD_AUTH_TOKEN, or put `auth-token`" \
        in result.stderr, result.stderr
    assert str(tmp_path / "home" / "config.yaml") in result.stderr
    missing = tmp_path / "nope.yaml"
    result = wavecd(served, "app", "list", code=1, WAVECD_AUTH_TOKEN=None, WAVECD_CONFIG=str(missing))
    assert result.stderr.strip() == f"error: WAVECD_CONFIG names {missing}, which does not exist"


def test_help_names_values_as_argocd_does_and_never_cuts_option_names():
    runner = CliRunner()
    for args in (["app", "sync", "--help"], ["app", "create", "--help"], ["up", "--help"], ["app", "wait", "--help"]):
        result = runner.invoke(cli, args, env={"COLUMNS": "80"}, terminal_width=80)
        assert result.exit_code == 0, result.output
        assert "<bool>" not in result.output and "<str>" not in result.output, result.output
        assert "<float>" not in result.output and "<list" not in result.output, result.output
    sync_help = runner.invoke(cli, ["app", "sync", "--help"], env={"COLUMNS": "80"}, terminal_width=80).output
    for option in ("--apply-out-of-sync-only", "--revision string", "--resource stringArray", "--force"):
        assert option in sync_help, sync_help
    create_help = runner.invoke(cli, ["app", "create", "--help"], env={"COLUMNS": "80"}, terminal_width=80).output
    for option in ("--dest-namespace string", "--sync-policy string", "--sync-option stringArray", "--upsert"):
        assert option in create_help, create_help
