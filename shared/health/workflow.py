"""Argo Workflows' `Workflow` (argoproj.io) health, a built-in rule of Argo CD.

A Workflow is finite work, like a Job: only `status.phase` and `status.message` count. No phase yet,
Pending or Running is Progressing; Succeeded is Healthy; Failed or Error is Degraded; any other phase is
Unknown. The message is the workflow's own `status.message`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared.health import fields as f
from shared.health.status import HealthStatus, HealthStatusCode

_BY_PHASE = {
    "": HealthStatusCode.PROGRESSING,
    "Pending": HealthStatusCode.PROGRESSING,
    "Running": HealthStatusCode.PROGRESSING,
    "Succeeded": HealthStatusCode.HEALTHY,
    "Failed": HealthStatusCode.DEGRADED,
    "Error": HealthStatusCode.DEGRADED,
}


def workflow_health(obj: Mapping[str, Any]) -> HealthStatus:
    status = f.status(obj)
    phase = f.string(status, "phase", "status.phase")
    message = f.string(status, "message", "status.message")
    return HealthStatus(_BY_PHASE.get(phase, HealthStatusCode.UNKNOWN), message)
