"""A damaged operation document in Redis (written by hand, or by a bug) never turns a user's request into
a server error: the refusals still read its phase, terminate still records its flag, and the API's view
still shows what it can. Only the chain itself, which must not guess, reads the typed model."""

from __future__ import annotations

import pytest

from shared.apps.app_actions import IN_PROGRESS, ActionConflict, AppActions
from shared.operation.model import public_view
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
