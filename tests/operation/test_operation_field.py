"""Argo CD's way to ask for a sync by editing the Application (`operation: {sync: ...}`): the tick reads
the field into a typed SyncRequest for the `diff` step and clears it, unless an operation is running; a
field it cannot read is dropped with a warning instead of stopping the tick."""

from __future__ import annotations

from typing import Any

from shared.pipeline import app_index
from tests.operation.driver import Driver


def _take(driver: Driver, operation: Any) -> None:  # noqa: ANN401
    obj = {"metadata": {"name": driver.name}, "operation": operation}
    app_index._take_operation_field(driver.svc, driver.cluster, driver.name, obj)  # noqa: SLF001


def test_the_field_becomes_a_sync_request_and_is_cleared(driver: Driver) -> None:
    _take(driver, {"sync": {"revision": 1234567, "prune": True, "syncOptions": ["Replace=true"],
                            "resources": [{"kind": "ConfigMap", "name": "a"}]},
                   "initiatedBy": {"username": "alice"}})
    request = driver.svc.store.take_sync_request(driver.name)
    assert request is not None
    request.pop("requestedAt")
    assert request == {"prune": True, "dryRun": False, "revision": "1234567", "username": "alice",
                       "syncOptions": ["Replace=true"], "resources": [{"kind": "ConfigMap", "name": "a"}]}
    assert driver.cluster.app_patches == [(driver.name, {"operation": None})]


def test_no_request_while_an_operation_runs(driver: Driver) -> None:
    driver.put_app([{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}}])
    driver.start()
    _take(driver, {"sync": {"prune": True}})
    assert driver.svc.store.take_sync_request(driver.name) is None
    assert driver.cluster.app_patches == [(driver.name, {"operation": None})]


def test_an_unreadable_field_is_dropped(driver: Driver) -> None:
    _take(driver, {"sync": {"resources": "everything"}})
    assert driver.svc.store.take_sync_request(driver.name) is None
    assert driver.cluster.app_patches == [(driver.name, {"operation": None})]
    _take(driver, {})  # an empty field asks for a plain sync by the user kubectl, as before
    assert driver.svc.store.take_sync_request(driver.name)["username"] == "kubectl"  # type: ignore[index]
