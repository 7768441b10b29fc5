"""APIService health, with Argo CD's semantics: its Available condition decides (True is Healthy, anything
else Progressing, no condition yet "Waiting to be processed").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared.health import fields as f
from shared.health.status import HealthStatus, HealthStatusCode

_WAITING = HealthStatus(HealthStatusCode.PROGRESSING, "Waiting to be processed")


def apiservice_health(obj: Mapping[str, Any]) -> HealthStatus:
    for condition in f.conditions(f.status(obj)):
        if condition.get("type") != "Available":
            continue
        reason = f.string(condition, "reason", "condition.reason")
        text = f"{reason}: {f.string(condition, 'message', 'condition.message')}"
        if condition.get("status") == "True":
            return HealthStatus(HealthStatusCode.HEALTHY, text)
        return HealthStatus(HealthStatusCode.PROGRESSING, text)
    return _WAITING
