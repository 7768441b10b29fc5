"""Fixtures for the pipeline tests: a controller-simulating cluster, namespaces, and the harness."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kubernetes import client

from tests.pipeline.harness import Harness, KubeTarget, api_for, install_crd, kube_target, unique


@pytest.fixture(scope="session")
def cd_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeTarget]:
    yield from kube_target(tmp_path_factory)


@pytest.fixture(scope="session")
def cd_api(cd_cluster: KubeTarget) -> Iterator[client.ApiClient]:
    api = api_for(cd_cluster)
    install_crd(api)
    yield api
    api.close()


@pytest.fixture()
def harness(redis_url: str, redis_client: object, cd_cluster: KubeTarget,
            cd_api: client.ApiClient) -> Iterator[Harness]:
    core = client.CoreV1Api(cd_api)
    names = [unique("wcd-apps"), unique("wcd-dest")]
    for name in names:
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(
            name=name, labels={"app.kubernetes.io/created-by": "wavecd-tests"})))
    h = Harness(redis_url, cd_api, cd_cluster.kubeconfig, cd_cluster.context, names[0], names[1])
    yield h
    for name in names + h.extra_namespaces:
        try:
            core.delete_namespace(name)
        except client.ApiException as exc:
            if exc.status != 404:
                raise
