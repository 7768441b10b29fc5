"""Applications stored as custom resources: list, get, create, patch, status, finalizers, delete, and a
clear answer when the CRD is not installed. Each test installs its own CRD in a unique group."""

from __future__ import annotations

import pytest

from shared.cluster.client import Cluster
from shared.cluster.kube_errors import KubeConflict
from shared.core.resources import RESOURCES_FINALIZER
from tests.cluster.conftest import wait_for

pytestmark = pytest.mark.integration


def app(name: str) -> dict:
    return {"metadata": {"name": name},
            "spec": {"project": "default", "source": {"repoURL": "https://example.com/r.git", "path": "."},
                     "destination": {"server": "https://kubernetes.default.svc", "namespace": "demo"}}}


def _installed(cluster: Cluster, group: str) -> bool:
    cluster.list_applications(group, "v1", "default")
    return cluster.applications_unavailable is None


def test_missing_crd_gives_empty_list_and_reason(cluster: Cluster) -> None:
    assert cluster.list_applications("absent.wavecd.test", "v1", "argocd") == []
    assert "not installed" in (cluster.applications_unavailable or "")


@pytest.mark.parametrize("status_subresource", [True, False], ids=["status-subresource", "no-subresource"])
def test_application_lifecycle(cluster: Cluster, crd_factory, kube_namespace: str,
                               status_subresource: bool) -> None:
    group, _ = crd_factory(kind="Application", status_subresource=status_subresource)
    wait_for(lambda: _installed(cluster, group), timeout=30)
    ns = kube_namespace
    created = cluster.create_application(group, "v1", ns, app("guestbook"))
    assert created["metadata"]["namespace"] == ns
    assert [a["metadata"]["name"] for a in cluster.list_applications(group, "v1", ns)] == ["guestbook"]

    cluster.patch_application_status(group, "v1", ns, "guestbook",
                                     {"sync": {"status": "Synced"}, "health": {"status": "Healthy"}})
    got = cluster.get_application(group, "v1", ns, "guestbook")
    assert got["status"]["sync"]["status"] == "Synced"
    assert got["spec"]["destination"]["namespace"] == "demo"

    patched = cluster.patch_application(group, "v1", ns, "guestbook",
                                        {"metadata": {"annotations": {"a": "b"}}})
    assert patched["metadata"]["annotations"] == {"a": "b"}
    assert patched["status"]["health"]["status"] == "Healthy"

    assert cluster.add_application_finalizer(group, "v1", ns, "guestbook", RESOURCES_FINALIZER)
    assert cluster.add_application_finalizer(group, "v1", ns, "guestbook", RESOURCES_FINALIZER)
    got = cluster.get_application(group, "v1", ns, "guestbook")
    assert got["metadata"]["finalizers"] == [RESOURCES_FINALIZER]

    stale = got["metadata"]["resourceVersion"]
    cluster.patch_application(group, "v1", ns, "guestbook", {"metadata": {"labels": {"x": "y"}}})
    with pytest.raises(KubeConflict):
        cluster.set_application_finalizers(group, "v1", ns, "guestbook", [], stale)

    cluster.delete_application(group, "v1", ns, "guestbook")
    held = cluster.get_application(group, "v1", ns, "guestbook")
    assert held is not None and held["metadata"].get("deletionTimestamp")  # the finalizer holds it
    assert cluster.remove_application_finalizer(group, "v1", ns, "guestbook", RESOURCES_FINALIZER)
    wait_for(lambda: cluster.get_application(group, "v1", ns, "guestbook") is None)
    assert not cluster.remove_application_finalizer(group, "v1", ns, "guestbook", RESOURCES_FINALIZER)
    cluster.delete_application(group, "v1", ns, "guestbook")  # already gone: not an error
