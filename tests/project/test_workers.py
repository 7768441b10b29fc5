"""Projects through real Celery worker processes (the wiring): beat's tick reads the Applications and
AppProjects from the cluster, the workers refuse an app outside its project, fail a sync whose
manifests hold a kind the project does not permit, and sync the app that stays inside."""

from __future__ import annotations

import pytest
import yaml
from kubernetes import client

from tests.fixtures.celery import WorkerPool
from tests.fixtures.git import GitFactory
from tests.pipeline.conftest import cd_api, cd_cluster, harness  # noqa: F401 - the pipeline's fixtures
from tests.pipeline.harness import GROUP, VERSION, Harness
from tests.project.crds import APPPROJECT_CRD, install_crd
from tests.project.driver import application, configmap, project

pytestmark = pytest.mark.integration


def test_real_workers_enforce_the_project(harness: Harness, git_factory: GitFactory,  # noqa: F811
                                          celery_workers: WorkerPool) -> None:
    install_crd(harness.api, APPPROJECT_CRD)
    ns = harness.app_namespace
    harness.custom.create_namespaced_custom_object(GROUP, VERSION, ns, "appprojects", project("team", ns, {
        "sourceRepos": ["*"],
        "destinations": [{"server": "https://kubernetes.default.svc", "namespace": harness.dest_namespace}]}))
    role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": f"{harness.dest_namespace}-escape"}, "rules": []}
    good = git_factory.create("good", {"cm.yaml": configmap("good")})
    bad = git_factory.create("bad", {"cm.yaml": configmap("bad"), "role.yaml": yaml.safe_dump(role)})
    celery_workers.start(1, concurrency=2, env=harness.worker_env())

    def create(name: str, repo_url: str, namespace: str) -> None:
        harness.custom.create_namespaced_custom_object(GROUP, VERSION, ns, "applications", application(
            name, ns, repo_url, namespace, project="team"))

    create("inside", good.url, harness.dest_namespace)
    create("escaping", bad.url, harness.dest_namespace)
    create("elsewhere", good.url, "kube-system")
    harness.wait_synced("inside", revision=good.head())
    op = harness.wait_operation("escaping", "Failed")
    assert f"ClusterRole {role['metadata']['name']}: resource rbac.authorization.k8s.io:ClusterRole is not " \
           f"permitted in project team" in op["message"]
    harness.wait("elsewhere refused", lambda: any(
        c["type"] == "InvalidSpecError" and "do not match any of the allowed destinations" in c["message"]
        for c in harness.status("elsewhere").get("conditions") or []))
    assert harness.operation("elsewhere") is None
    assert harness.core.read_namespaced_config_map("good", harness.dest_namespace).data == {"k": "v"}
    with pytest.raises(client.ApiException) as info:  # nothing of the refused sync was applied
        harness.core.read_namespaced_config_map("bad", harness.dest_namespace)
    assert info.value.status == 404
