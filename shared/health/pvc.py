"""PersistentVolumeClaim health, with Argo CD's semantics: Bound Healthy, Pending Progressing, Lost
Degraded.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared.health import fields as f
from shared.health.status import HealthStatus, HealthStatusCode

_BY_PHASE = {
    "Bound": HealthStatus(HealthStatusCode.HEALTHY),
    "Pending": HealthStatus(HealthStatusCode.PROGRESSING),
    "Lost": HealthStatus(HealthStatusCode.DEGRADED),
}
_UNKNOWN = HealthStatus(HealthStatusCode.UNKNOWN)


def pvc_health(obj: Mapping[str, Any]) -> HealthStatus:
    phase = f.string(f.status(obj), "phase", "status.phase")
    return _BY_PHASE.get(phase, _UNKNOWN)
