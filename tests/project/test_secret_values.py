"""After a whole reconcile (render, compare, sync, status) of an app holding a Secret, no Redis value holds
the Secret's value, plain or base64, while the cluster gets the real values."""

from __future__ import annotations

import base64

import pytest

from tests.fixtures.git import GitFactory
from tests.git.test_render_secrets import CM, PLAIN, SECRET, assert_no_secret_in
from tests.project.driver import World, application, reconcile, unique


@pytest.mark.integration
def test_no_secret_value_reaches_redis_during_a_reconcile(world: World, git_factory: GitFactory) -> None:
    repo = git_factory.create(unique("secret-app"), {"secret.yaml": SECRET, "cm.yaml": CM.format("cm")})
    dest = world.namespace("sec")
    name = world.put_app(application(unique("app"), world.control, repo.url, dest))
    reconcile(world.svc, name)
    assert world.svc.store.operation(name)["phase"] == "Succeeded", world.status(name)
    created = world.core.read_namespaced_secret("creds", dest)
    assert base64.b64decode(created.data["password"]).decode() == PLAIN  # applied with its real values
    reconcile(world.svc, name)  # a second comparison, from the cache
    assert world.svc.store.status(name)["sync"]["status"] == "Synced"
    assert_no_secret_in(world.svc.redis)
