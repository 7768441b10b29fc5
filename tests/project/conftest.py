"""The `world` fixture of the project tests: CRDs installed, a control namespace, and Services bound to
the suite's Kubernetes API, real Redis and a private git cache."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from shared.core.settings import Settings
from shared.pipeline.services import Services
from tests.fixtures.kube import KubeEnv
from tests.project.crds import APPLICATION_CRD, APPPROJECT_CRD, install_crd
from tests.project.driver import World


@pytest.fixture
def world(kube_env: KubeEnv, kube_api: client.ApiClient, redis_client: object, tmp_path: Path) -> Iterator[World]:
    install_crd(kube_api, APPLICATION_CRD)
    install_crd(kube_api, APPPROJECT_CRD)
    probe = World(None, kube_api, "")  # type: ignore[arg-type]
    control = probe.namespace("wcd-ctl")
    settings = Settings(kubeconfig=kube_env.kubeconfig, kube_context=kube_env.context, app_namespace=control,
                        git_cache_dir=tmp_path / "git-cache")
    svc = Services(settings, redis_client=redis_client)  # type: ignore[arg-type]
    world = World(svc, kube_api, control, probe.namespaces)
    yield world
    svc.clusters.close()
    for name in world.namespaces:
        try:
            world.core.delete_namespace(name)
        except client.ApiException as exc:
            if exc.status != 404:
                raise
