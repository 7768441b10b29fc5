"""The Application CRD is accepted by a Kubernetes API (the sandbox, or the cluster named by
WAVECD_TEST_KUBECONFIG), serves the Application kind with its short names, and stores the example
Application and its status subresource as Argo CD users expect."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from tests.deploy.manifests import CRD_FILE, EXAMPLE_APP, load_docs

GROUP, VERSION, PLURAL = "argoproj.io", "v1alpha1", "applications"

pytestmark = pytest.mark.integration


def _established(crd: Any) -> bool:
    conditions = (crd.status.conditions if crd.status else None) or []
    return any(c.type == "Established" and c.status == "True" for c in conditions)


@pytest.fixture(scope="module")
def application_crd(kube_api: client.ApiClient, kube_env: Any) -> Iterator[dict[str, Any]]:
    """Our CRD, created from the exact file operators apply; removed afterwards only from a real cluster
    where this test created it (deleting it deletes every Application)."""
    ext = client.ApiextensionsV1Api(kube_api)
    (body,) = load_docs(CRD_FILE)
    created = False
    try:
        ext.create_custom_resource_definition(body)
        created = True
    except client.ApiException as exc:
        if exc.status != 409:
            raise
        existing = kube_api.sanitize_for_serialization(
            ext.read_custom_resource_definition(body["metadata"]["name"])
        )
        if existing["spec"]["versions"][0]["schema"] != body["spec"]["versions"][0]["schema"]:
            pytest.skip("another applications.argoproj.io CRD is installed in this cluster; not replacing it")
    deadline = time.monotonic() + 30
    while not _established(ext.read_custom_resource_definition(body["metadata"]["name"])):
        assert time.monotonic() < deadline, "the CRD never became Established"
        time.sleep(0.2)
    yield body
    if created and kube_env.real:
        ext.delete_custom_resource_definition(body["metadata"]["name"])


def test_kind_is_served_with_short_names(kube_api, application_crd):
    resources = client.CustomObjectsApi(kube_api).get_api_resources(GROUP, VERSION)
    by_name = {r.name: r for r in resources.resources}
    assert by_name["applications"].kind == "Application"
    assert by_name["applications"].namespaced is True
    assert sorted(by_name["applications"].short_names) == ["app", "apps"]
    assert "applications/status" in by_name


def test_example_application_is_stored_and_status_is_a_subresource(kube_api, kube_namespace, application_crd):
    api = client.CustomObjectsApi(kube_api)
    (app,) = load_docs(EXAMPLE_APP)
    created = api.create_namespaced_custom_object(GROUP, VERSION, kube_namespace, PLURAL, app)
    assert created["metadata"]["namespace"] == kube_namespace
    # Nothing the CRD knows was pruned: the spec comes back as written.
    assert created["spec"] == app["spec"]
    assert created["metadata"]["finalizers"] == ["resources-finalizer.argocd.argoproj.io"]

    status = {"sync": {"status": "Synced", "revision": "0" * 40}, "health": {"status": "Healthy"}, "extra": 1}
    patched = api.patch_namespaced_custom_object_status(
        GROUP, VERSION, kube_namespace, PLURAL, "guestbook", {"status": status}
    )
    assert patched["status"] == status, "unknown status fields are preserved"

    # Writing the main resource does not touch status (it is a subresource).
    current = api.get_namespaced_custom_object(GROUP, VERSION, kube_namespace, PLURAL, "guestbook")
    current["status"] = {"sync": {"status": "OutOfSync"}}
    current["spec"]["project"] = "team-web"
    updated = api.replace_namespaced_custom_object(
        GROUP, VERSION, kube_namespace, PLURAL, "guestbook", current
    )
    assert updated["spec"]["project"] == "team-web"
    assert updated["status"] == status

    # Let the namespace go without waiting on the finalizer that only WaveCD would remove.
    api.patch_namespaced_custom_object(
        GROUP, VERSION, kube_namespace, PLURAL, "guestbook", {"metadata": {"finalizers": None}}
    )
