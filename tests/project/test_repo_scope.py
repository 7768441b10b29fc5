"""Project-scoped repositories (a repository Secret's `project`): its credentials serve only apps of that
project. The lookup rules are tested from tests/testdata/repo_scope (one case per file); on the pipeline,
an app of another project that tries to reach the repository (the same URL, another spelling of it,
made-up credentials in its URL, a wrong credential of its own project, or by moving an admitted app to
another project) is refused with an InvalidSpecError and never synced, and `wavecd repo list` shows each
Secret's project."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import SecretStr
from typer.testing import CliRunner

from scheduler.api import create_app
from scheduler.cli import cli
from shared.core.settings import Settings
from shared.pipeline import project_catalog as catalog
from shared.pipeline.project_declarative import refresh_declarative
from shared.pipeline.services import Services
from shared.source.git_credentials import CredentialStore, credentials_from_secrets
from tests.api.serving import serve
from tests.fixtures.git import GitFactory, GitHttpServer
from tests.project.driver import World, application, configmap, reconcile, unique

CASES = sorted((Path(__file__).parent.parent / "testdata" / "repo_scope").glob("*.yaml"))


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_repo_scope_case(path: Path) -> None:
    case = yaml.safe_load(path.read_text(encoding="utf-8"))
    store = CredentialStore(credentials_from_secrets(case["secrets"]))
    for lookup in case["lookups"]:
        found = store.for_url(lookup["url"], lookup["project"])
        assert (found.username if found else None) == lookup["expect"], lookup
        if "scopedToOthers" in lookup:
            assert store.scoped_to_others(lookup["url"], lookup["project"]) is lookup["scopedToOthers"], lookup


def _scoped_secret(name: str, url: str, server: GitHttpServer, project: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": name, "labels": {"argocd.argoproj.io/secret-type": "repository"}},
            "stringData": {"url": url, "username": server.username, "password": server.password,
                           "project": project}}


@pytest.mark.integration
def test_a_scoped_repository_serves_its_project_only(world: World, git_factory: GitFactory,
                                                     git_http_server: GitHttpServer) -> None:
    repo = git_factory.create("scoped", {"cm.yaml": configmap("from-scoped")})
    url = git_http_server.url_for(repo)
    for team in ("team-a", "team-b"):
        world.put_project(team, {"sourceRepos": ["*"], "destinations": [{"server": "*", "namespace": "*"}]})
    # Named to list after the bogus team-b Secret below, so that the fetch (no project) then picks that
    # one: the clone still holds what team-a's credential fetched, and must stay closed to team-b.
    world.core.create_namespaced_secret(world.control, _scoped_secret(unique("repo-z"), url, git_http_server,
                                                                      "team-a"))
    refresh_declarative(world.svc, force=True)

    dest_a = world.namespace("a")
    owner = world.put_app(application(unique("owner"), world.control, url, dest_a, project="team-a"))
    reconcile(world.svc, owner)
    assert world.svc.store.operation(owner)["phase"] == "Succeeded"
    assert world.configmap_exists(dest_a, "from-scoped")  # the cache now holds what team-a's credential fetched

    attempts = {  # an app of team-b reaching the same repository
        "same URL": url,
        "no .git": url.removesuffix(".git"),
        "trailing slash": url.removesuffix(".git") + "/",
        "made-up userinfo": url.replace("http://", "http://nobody:guess@"),
        "scheme in capitals": url.replace("http://", "HTTP://"),
    }
    for why, attempt in attempts.items():
        dest_b = world.namespace("b")
        intruder = world.put_app(application(unique("intruder"), world.control, attempt, dest_b, project="team-b"))
        reconcile(world.svc, intruder)
        refused = world.conditions(intruder).get("InvalidSpecError", "")
        assert "declared for another project" in refused and "team-b" in refused, (why, world.status(intruder))
        assert "team-a" not in refused and git_http_server.password not in json.dumps(world.status(intruder))
        assert world.svc.store.operation(intruder) is None, why
        assert not world.configmap_exists(dest_b, "from-scoped"), why

    # The admitted app moved to team-b: refused from its next reconcile on.
    moved = application(owner, world.control, url, dest_a, project="team-b")
    world.put_app(moved)
    reconcile(world.svc, owner)
    assert "declared for another project" in world.conditions(owner).get("InvalidSpecError", "")

    # team-b declares a Secret of its own for the repository whose password is wrong: still refused.
    bogus = _scoped_secret(unique("repo-a"), url, git_http_server, "team-b")
    bogus["stringData"]["password"] = "not-the-password"  # type: ignore[index]
    world.core.create_namespaced_secret(world.control, bogus)
    refresh_declarative(world.svc, force=True)
    reconcile(world.svc, owner)
    refused = world.conditions(owner).get("InvalidSpecError", "")
    assert "credentials of project 'team-b' for it are refused" in refused, world.status(owner)
    assert "not-the-password" not in json.dumps(world.status(owner))
    world.core.delete_namespaced_secret(bogus["metadata"]["name"], world.control)  # type: ignore[index]

    # team-b declares its own Secret for the repository (Argo CD allows one per project): served again.
    world.core.create_namespaced_secret(world.control, _scoped_secret(unique("repo"), url, git_http_server,
                                                                      "team-b"))
    refresh_declarative(world.svc, force=True)
    dest_b = world.namespace("b")
    own = world.put_app(application(unique("own"), world.control, url, dest_b, project="team-b"))
    reconcile(world.svc, own)
    assert world.svc.store.operation(own)["phase"] == "Succeeded"
    assert world.configmap_exists(dest_b, "from-scoped")


@pytest.mark.integration
def test_repo_list_shows_the_project(redis_url: str, redis_client: Any, tmp_path: Path) -> None:  # noqa: ANN401
    token = "repo-scope-token-0123456789"
    settings = Settings(redis_url=redis_url, home=tmp_path / "home", api_token=SecretStr(token))
    svc = Services(settings, redis_client)
    secrets = [{"metadata": {"name": "web", "labels": {"argocd.argoproj.io/secret-type": "repository"}},
                "stringData": {"url": "https://git.example.com/acme/web.git", "username": "bot",
                               "password": "s3cr3t-never-shown", "project": "team-a"}}]
    catalog.publish(svc.redis, repos=[catalog.repo_summary(c) for c in credentials_from_secrets(secrets)])
    with serve(create_app(settings, svc)) as base:
        result = CliRunner().invoke(cli, ["repo", "list"], env={
            "WAVECD_SERVER": base, "WAVECD_AUTH_TOKEN": token, "WAVECD_CONFIG": "/nonexistent/cfg"})
    assert result.exit_code == 0, result.stdout + result.stderr
    header, row = result.stdout.splitlines()[:2]
    column = header.index("PROJECT")  # columns are aligned; an empty NAME leaves no word to count
    assert row[column:].split()[0] == "team-a", result.stdout
    assert "s3cr3t" not in result.stdout
