"""Argo CD repository Secrets (`repository`, `repo-creds`) as credentials, one case per file under
tests/testdata/repo_secrets: which URL they match, and a summary that never holds a secret value."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from shared.pipeline.project_declarative import refresh_declarative
from shared.source.git_credentials import CredentialStore, GitCallbacks, credentials_from_secrets
from tests.fixtures.git import GitFactory, GitHttpServer
from tests.project.driver import World, application, configmap, reconcile, unique

CASES = sorted((Path(__file__).parent.parent / "testdata" / "repo_secrets").glob("*.yaml"))


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_repo_secret_case(path: Path) -> None:
    case = yaml.safe_load(path.read_text(encoding="utf-8"))
    entries = credentials_from_secrets([case["secret"]])
    found = CredentialStore(entries).for_url(case["lookup"])
    assert (found is not None) is case["expect"]["matched"]
    if found is None:
        return
    summary = found.summary()
    assert summary == case["expect"]["summary"]
    assert "s3cr3t" not in repr(found) and "s3cr3t" not in str(summary)


def test_insecure_accepts_any_certificate_and_secure_defers_to_libgit2() -> None:
    case = yaml.safe_load((Path(__file__).parent.parent / "testdata" / "repo_secrets" /
                           "tls_client_cert_insecure.yaml").read_text(encoding="utf-8"))
    (insecure,) = credentials_from_secrets([case["secret"]])
    assert GitCallbacks(insecure).certificate_check(None, False, b"git.internal") is True
    secure = yaml.safe_load((Path(__file__).parent.parent / "testdata" / "repo_secrets" /
                             "https_password.yaml").read_text(encoding="utf-8"))
    (entry,) = credentials_from_secrets([secure["secret"]])
    import pygit2

    with pytest.raises(pygit2.Passthrough):
        GitCallbacks(entry).certificate_check(None, False, b"git.example.com")
    assert "s3cr3t-key" in insecure.secrets()  # scrubbed from libgit2 errors like the other secrets


# -- on the pipeline: a private repository reached with the credentials of a Secret ---------------------

def _secret(kind: str, name: str, url: str, username: str, password: str) -> dict[str, object]:
    return {"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": name, "labels": {"argocd.argoproj.io/secret-type": kind}},
            "stringData": {"url": url, "username": username, "password": password}}


@pytest.mark.integration
@pytest.mark.parametrize("kind", ["repository", "repo-creds"])
def test_private_repository_is_fetched_with_the_secret_credentials(world: World, git_factory: GitFactory,
                                                                  git_http_server: GitHttpServer, kind: str) -> None:
    repo = git_factory.create("private", {"cm.yaml": configmap("from-private")})
    url = git_http_server.url_for(repo)
    dest = world.namespace("team")
    name = world.put_app(application(unique("app"), world.control, url, dest))
    reconcile(world.svc, name)
    refused = world.conditions(name)["ComparisonError"]
    assert "credentials" in refused and git_http_server.password not in refused

    secret_url = url if kind == "repository" else url.rsplit("/", 1)[0]  # a template: the URL prefix
    world.core.create_namespaced_secret(world.control, _secret(kind, unique("repo"), secret_url,
                                                               git_http_server.username, git_http_server.password))
    refresh_declarative(world.svc, force=True)
    reconcile(world.svc, name)
    assert world.svc.store.operation(name)["phase"] == "Succeeded"
    assert world.configmap_exists(dest, "from-private")
    assert git_http_server.password not in json.dumps(world.status(name))
