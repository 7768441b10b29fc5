"""The pipeline's project decisions with a fixed clock: sync windows where a sync is decided, and the
fast failure for a cluster the background probe found down (real Redis for the probe record)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import redis

from shared.core.models import Application
from shared.core.settings import Settings
from shared.pipeline import project_catalog as catalog
from shared.pipeline.project_gate import Admitted, ClusterUnreachable, ensure_reachable, window_gate
from shared.pipeline.services import Services
from shared.project.model import AppProject
from shared.project.permissions import Destination

NOON = datetime(2026, 5, 4, 12, 0, tzinfo=UTC).timestamp()  # a Monday
APP = Application.parse({"metadata": {"name": "web"}, "spec": {
    "source": {"repoURL": "https://g/x"}, "destination": {"server": "https://kubernetes.default.svc",
                                                          "namespace": "web"}}})


def admitted(*windows: dict[str, Any]) -> Admitted:
    project = AppProject.parse({"metadata": {"name": "team"}, "spec": {"syncWindows": list(windows)}})
    return Admitted(project, Destination("https://kubernetes.default.svc", "in-cluster", "web"))


DENY = {"kind": "deny", "schedule": "0 11 * * *", "duration": "2h", "applications": ["*"]}
ALLOW_MORNING = {"kind": "allow", "schedule": "0 6 * * *", "duration": "2h", "applications": ["*"]}


def conditions(status: dict[str, Any]) -> dict[str, str]:
    return {c["type"]: c["message"] for c in status.get("conditions") or []}


def test_no_window_passes_the_sync_and_adds_nothing() -> None:
    status: dict[str, Any] = {"conditions": []}
    start = ({"prune": True}, True)
    assert window_gate(admitted(), APP, start, status, now=NOON) is start
    assert status["conditions"] == []


def test_active_deny_holds_an_automated_sync_and_says_so() -> None:
    status: dict[str, Any] = {"conditions": []}
    assert window_gate(admitted(DENY), APP, ({"prune": True}, True), status, now=NOON) is None
    assert conditions(status) == {"SyncWindow": "Sync Denied (deny:0 11 * * *:2h)"}


def test_active_deny_refuses_a_manual_sync() -> None:
    status: dict[str, Any] = {"conditions": []}
    assert window_gate(admitted(DENY), APP, ({}, False), status, now=NOON) is None
    assert conditions(status)["SyncError"] == "Cannot sync: Blocked by sync window"


def test_manual_sync_flag_lets_a_manual_sync_through_but_not_an_automated_one() -> None:
    window = {**DENY, "manualSync": True}
    status: dict[str, Any] = {"conditions": []}
    request = ({"prune": False}, False)
    assert window_gate(admitted(window), APP, request, status, now=NOON) is request
    assert conditions(status) == {"SyncWindow": "Manual Allowed (deny:0 11 * * *:2h)"}
    assert window_gate(admitted(window), APP, ({}, True), {"conditions": []}, now=NOON) is None


def test_outside_the_only_allow_window_nothing_syncs_and_inside_everything_does() -> None:
    status: dict[str, Any] = {"conditions": []}
    assert window_gate(admitted(ALLOW_MORNING), APP, ({}, True), status, now=NOON) is None
    assert conditions(status)["SyncWindow"].startswith("Sync Denied")
    seven = datetime(2026, 5, 4, 7, 0, tzinfo=UTC).timestamp()
    start = ({}, True)
    assert window_gate(admitted(ALLOW_MORNING), APP, start, {"conditions": []}, now=seven) is start


@pytest.fixture
def svc(redis_client: redis.Redis) -> Services:
    return Services(Settings(), redis_client)


def test_a_cluster_found_down_fails_fast_until_the_hold_expires(svc: Services) -> None:
    who = admitted()
    catalog.record_connection(svc.redis, "in-cluster", catalog.ConnectionStatus(
        status="Failed", message="get /version: cannot reach the API server", at=NOON))
    with pytest.raises(ClusterUnreachable) as info:
        ensure_reachable(svc, who, now=NOON + 10)
    assert str(info.value).startswith("cluster 'in-cluster' is unreachable (probed 10s ago: get /version")
    ensure_reachable(svc, who, now=NOON + 31)  # too old to trust: the comparison itself decides


def test_a_cluster_that_answered_or_was_never_probed_is_compared(svc: Services) -> None:
    who = admitted()
    ensure_reachable(svc, who, now=NOON)
    catalog.record_connection(svc.redis, "in-cluster", catalog.ConnectionStatus(status="Successful", at=NOON))
    ensure_reachable(svc, who, now=NOON + 1)
