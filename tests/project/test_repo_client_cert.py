"""A repository Secret with `tlsClientCertData` / `tlsClientCertKey`, as Argo CD users declare it, on the
pipeline: an app whose repository sits behind an HTTPS git server demanding a client certificate is
synced once the Secret exists, and refused (with a TLS error, not fetched) before it does."""

from __future__ import annotations

import json

import pytest

from shared.pipeline.project_declarative import refresh_declarative
from tests.fixtures.git import GitFactory
from tests.git import test_git_client_cert as mtls
from tests.git.test_git_client_cert import GitHttpsServer, Pki
from tests.project.driver import World, application, configmap, reconcile, unique

pytestmark = pytest.mark.integration

# The HTTPS git server, its certificates and the trusted CA, as the git tests make them.
pki, https_server, trust_ca = mtls.pki, mtls.https_server, mtls.trust_ca


@pytest.mark.usefixtures("trust_ca")
def test_an_app_is_synced_from_a_server_that_demands_a_client_certificate(
        world: World, git_factory: GitFactory, https_server: GitHttpsServer, pki: Pki) -> None:
    repo = git_factory.create(unique("mtls"), {"cm.yaml": configmap("from-mtls")})
    url = https_server.url_for(repo)
    dest = world.namespace("mtls")
    name = world.put_app(application(unique("app"), world.control, url, dest))
    reconcile(world.svc, name)
    assert "ComparisonError" in world.conditions(name) and world.svc.store.operation(name) is None

    world.core.create_namespaced_secret(world.control, {
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": unique("repo"), "labels": {"argocd.argoproj.io/secret-type": "repository"}},
        "stringData": {"url": url, "username": https_server.username, "password": https_server.password,
                       "tlsClientCertData": pki.client.cert, "tlsClientCertKey": pki.client.key}})
    refresh_declarative(world.svc, force=True)
    reconcile(world.svc, name)
    assert world.svc.store.operation(name)["phase"] == "Succeeded", world.status(name)
    assert world.configmap_exists(dest, "from-mtls")
    shown = json.dumps(world.status(name))
    assert "PRIVATE KEY" not in shown and https_server.password not in shown
