"""Clusters declared as Argo CD cluster Secrets: destinations by name or server reach them, projects
judge them by either, a changed Secret rebuilds the client, and an unreachable cluster marks only its
own apps. Two clusters: two emulators, or (on any backend) the suite's cluster reached under a
second name through a Secret built from its kubeconfig."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
import yaml
from kubernetes import client

from sandbox.server import SandboxServer
from shared.pipeline import project_catalog as catalog
from shared.pipeline.project_declarative import refresh_declarative
from tests.fixtures.git import GitFactory
from tests.fixtures.kube import KubeEnv
from tests.fixtures.redis import free_port
from tests.project.driver import (
    World,
    application,
    argo_config_from_kubeconfig,
    cluster_secret,
    configmap,
    reconcile,
    unique,
)

pytestmark = pytest.mark.integration


def wait_connection(world: World, name: str, wanted: str, timeout: float = 30.0) -> None:
    """Until the background probe recorded `wanted` for the cluster (bounded poll of Redis)."""
    deadline = time.monotonic() + timeout
    while (status := catalog.connection(world.svc.redis, name)) is None or status.status != wanted:
        assert time.monotonic() < deadline, f"cluster {name} never probed {wanted}: {status}"
        time.sleep(0.05)


def add_secret(world: World, body: dict) -> None:
    world.core.create_namespaced_secret(world.control, body)
    refresh_declarative(world.svc, force=True)


def test_same_cluster_under_a_second_name(world: World, kube_env: KubeEnv, git_factory: GitFactory) -> None:
    server, config = argo_config_from_kubeconfig(kube_env.kubeconfig, kube_env.context)
    add_secret(world, cluster_secret(unique("staging"), world.control, "staging", server, config))
    dest = world.namespace("team")
    repo = git_factory.create("app", {"cm.yaml": configmap("via-staging")})
    world.put_project("team", {"sourceRepos": ["*"], "destinations": [{"name": "staging", "namespace": "team-*"}]})

    by_name = world.put_app(application(unique("app"), world.control, repo.url, dest, project="team",
                                        destination={"name": "staging"}))
    reconcile(world.svc, by_name)
    assert world.svc.store.operation(by_name)["phase"] == "Succeeded"
    assert world.configmap_exists(dest, "via-staging")

    by_server = world.put_app(application(unique("app"), world.control, repo.url, dest, project="team",
                                          destination={"server": server}))
    reconcile(world.svc, by_server)
    assert "InvalidSpecError" not in world.conditions(by_server)  # the server resolves to the name staging

    in_cluster = world.put_app(application(unique("app"), world.control, repo.url, dest, project="team"))
    reconcile(world.svc, in_cluster)
    assert "do not match any of the allowed destinations" in world.conditions(in_cluster)["InvalidSpecError"]


def test_two_emulators(world: World, git_factory: GitFactory, kube_env: KubeEnv,
                       make_sandbox: Callable[..., tuple[SandboxServer, client.ApiClient]]) -> None:
    production, prod_api = make_sandbox()
    prod_core = client.CoreV1Api(prod_api)
    dest = unique("team")
    prod_core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=dest)))
    secret_name = unique("prod")
    add_secret(world, cluster_secret(secret_name, world.control, "production", production.url, {}))
    repo = git_factory.create("app", {"cm.yaml": configmap("in-prod")})
    world.put_project("team", {"sourceRepos": ["*"], "destinations": [{"server": production.url, "namespace": "*"}]})
    name = world.put_app(application(unique("app"), world.control, repo.url, dest, project="team",
                                     destination={"name": "production"}))
    reconcile(world.svc, name)
    assert world.svc.store.operation(name)["phase"] == "Succeeded"
    assert world.configmap_exists(dest, "in-prod", api=prod_api)
    assert not world.configmap_exists(dest, "in-prod")  # not in the control cluster

    world.core.delete_namespaced_secret(secret_name, world.control)  # the cluster is withdrawn
    refresh_declarative(world.svc, force=True)
    reconcile(world.svc, name)
    assert "unknown destination cluster 'production'" in world.conditions(name)["InvalidSpecError"]


def test_changed_secret_rebuilds_the_client_and_unreachable_cluster_marks_only_its_apps(
        world: World, git_factory: GitFactory, kube_env: KubeEnv) -> None:
    secret_name = unique("edge")
    dead = f"http://127.0.0.1:{free_port()}"
    add_secret(world, cluster_secret(secret_name, world.control, "edge", dead, {}))
    repo = git_factory.create("app", {"cm.yaml": configmap("edge-cfg")})
    edge_dest, local_dest = world.namespace("team"), world.namespace("team")
    on_edge = world.put_app(application(unique("app"), world.control, repo.url, edge_dest,
                                        destination={"name": "edge"}))
    local = world.put_app(application(unique("app"), world.control, repo.url, local_dest))

    wait_connection(world, "edge", "Failed")  # the background probe found it down
    reconcile(world.svc, on_edge)
    reconcile(world.svc, local)
    refused = world.conditions(on_edge)["ComparisonError"]
    assert refused.startswith("cluster 'edge' is unreachable (probed") and "cannot reach the API server" in refused
    assert world.svc.store.operation(on_edge) is None
    assert world.svc.store.operation(local)["phase"] == "Succeeded"

    # The Secret now points at the suite's cluster (reached under the name "edge"): a new client is built.
    server, config = argo_config_from_kubeconfig(kube_env.kubeconfig, kube_env.context)
    world.core.replace_namespaced_secret(secret_name, world.control,
                                         cluster_secret(secret_name, world.control, "edge", server, config))
    refresh_declarative(world.svc, force=True)
    wait_connection(world, "edge", "Successful")
    reconcile(world.svc, on_edge)
    assert world.svc.store.operation(on_edge)["phase"] == "Succeeded"
    assert world.configmap_exists(edge_dest, "edge-cfg")


def test_permit_only_project_scoped_clusters(world: World, kube_env: KubeEnv, git_factory: GitFactory) -> None:
    server, config = argo_config_from_kubeconfig(kube_env.kubeconfig, kube_env.context)
    add_secret(world, cluster_secret(unique("scoped"), world.control, "team-cluster", server, config, project="team"))
    dest = world.namespace("team")
    repo = git_factory.create("app", {"cm.yaml": configmap("scoped")})
    world.put_project("team", {"sourceRepos": ["*"], "destinations": [{"server": "*", "namespace": "team-*"}],
                               "permitOnlyProjectScopedClusters": True})
    scoped = world.put_app(application(unique("app"), world.control, repo.url, dest, project="team",
                                       destination={"name": "team-cluster"}))
    reconcile(world.svc, scoped)
    assert world.svc.store.operation(scoped)["phase"] == "Succeeded"

    in_cluster = world.put_app(application(unique("app"), world.control, repo.url, dest, project="team"))
    reconcile(world.svc, in_cluster)
    assert "do not match any of the allowed destinations" in world.conditions(in_cluster)["InvalidSpecError"]


def test_cluster_in_namespaced_mode(world: World, kube_env: KubeEnv, git_factory: GitFactory) -> None:
    dest, other = world.namespace("team"), world.namespace("other")
    server, config = argo_config_from_kubeconfig(kube_env.kubeconfig, kube_env.context)
    body = cluster_secret(unique("ns-mode"), world.control, "tenant", server, config)
    body["stringData"]["namespaces"] = dest
    add_secret(world, body)
    role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": unique("role")},
            "rules": []}
    repo = git_factory.create("app", {"cm.yaml": configmap("inside"), "other.yaml": configmap("outside", other),
                                      "role.yaml": yaml.safe_dump(role)})
    name = world.put_app(application(unique("app"), world.control, repo.url, dest, destination={"name": "tenant"}))
    reconcile(world.svc, name)
    op = world.svc.store.operation(name)
    assert op["phase"] == "Failed"
    assert f'Cluster level ClusterRole "{role["metadata"]["name"]}" can not be managed when in namespaced mode' \
        in op["message"]
    assert f'Namespace "{other}" for ConfigMap "outside" is not managed' in op["message"]
    assert not world.configmap_exists(dest, "inside")
