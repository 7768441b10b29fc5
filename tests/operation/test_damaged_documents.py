"""A damaged operation document in Redis (written by hand, or by a bug) never turns a user's request into
a server error: the refusals still read its phase, terminate still records its flag, and the API's view
still shows what it can. The chain, which must not guess, ends such a record as Argo CD's phase Error
(whether a step or a resume finds it) and releases the app."""

from __future__ import annotations

import pytest

from shared.apps.app_actions import IN_PROGRESS, ActionConflict, AppActions
from shared.operation.model import public_view
from shared.pipeline import reconcile
from tests.operation.driver import Driver, application

DAMAGED = {"id": "op", "phase": "Running", "progress": {"steps": ["junk", {"wave": "x"}], "seq": "?"}}


def test_a_damaged_running_operation_still_refuses_a_sync_and_can_be_terminated(driver: Driver) -> None:
    driver.svc.store.put_app("demo", application("demo"))
    driver.svc.store.write_unfenced("demo", "operation", DAMAGED)
    actions = AppActions(driver.svc.store, driver.svc.locks)
    with pytest.raises(ActionConflict, match=IN_PROGRESS):
        actions.sync("demo")
    actions.terminate("demo")
    assert driver.svc.store.terminate_requested("demo")
    assert driver.svc.store.operation("demo") == DAMAGED  # left as it was
    view = public_view(driver.svc.store.operation("demo"))
    assert view is not None and view["phase"] == "Running" and "progress" not in view


def test_a_chain_that_finds_its_record_damaged_ends_it_as_error(driver: Driver) -> None:
    driver.put_app([{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}}])
    call = driver.start()
    driver.svc.store.write_unfenced("demo", "operation", {**DAMAGED, "id": call.operation})
    assert driver.step(call) is None
    assert driver.outcomes[-1].finished and "could not be read" in driver.outcomes[-1].summary
    stored = driver.svc.store.operation("demo")
    assert stored is not None and stored["phase"] == "Error" and "progress" in stored  # kept for a human
    assert "progress.seq" in stored["message"]
    assert driver.svc.locks.holder("demo") is None and "demo" not in driver.svc.store.running()
    assert driver.cluster.log == []


def test_a_damaged_record_found_on_resume_ends_as_error(driver: Driver) -> None:
    token = driver.svc.locks.acquire("demo")
    assert token is not None
    driver.svc.store.write_unfenced("demo", "operation", DAMAGED)
    outcome = reconcile._resume(driver.svc, token, DAMAGED)  # noqa: SLF001
    assert outcome.next is None and "could not be read" in outcome.summary
    assert driver.svc.store.operation("demo")["phase"] == "Error"  # type: ignore[index]
