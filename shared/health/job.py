"""Job health, with Argo CD's semantics: Failed Degraded, Suspended Suspended, Complete Healthy, else
Progressing.

Read from the Job's conditions, the messages are the conditions' own.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared.health import fields as f
from shared.health.status import HealthStatus, HealthStatusCode


def job_health(obj: Mapping[str, Any]) -> HealthStatus:
    failed = complete = suspended = False
    fail_message = message = ""
    for condition in f.conditions(f.status(obj)):
        kind = condition.get("type")
        if kind == "Failed":
            failed = complete = True
            fail_message = f.string(condition, "message", "status.conditions[Failed].message")
        elif kind == "Complete":
            complete = True
            message = f.string(condition, "message", "status.conditions[Complete].message")
        elif kind == "Suspended":
            complete = True
            message = f.string(condition, "message", "status.conditions[Suspended].message")
            suspended = suspended or condition.get("status") == "True"
    if not complete:
        return HealthStatus(HealthStatusCode.PROGRESSING, message)
    if failed:
        return HealthStatus(HealthStatusCode.DEGRADED, fail_message)
    if suspended:
        return HealthStatus(HealthStatusCode.SUSPENDED, message)
    return HealthStatus(HealthStatusCode.HEALTHY, message)
