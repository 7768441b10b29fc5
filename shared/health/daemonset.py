"""DaemonSet health, with Argo CD's semantics and messages (after kubectl's rollout status).

Progressing while the spec is not observed or fewer pods are updated/available than desired; with the
OnDelete strategy a DaemonSet whose spec is observed is Healthy (pods update only when deleted).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared.health import fields as f
from shared.health.status import HEALTHY, HealthStatus, HealthStatusCode

PROGRESSING = HealthStatusCode.PROGRESSING


def daemonset_health(obj: Mapping[str, Any]) -> HealthStatus:
    meta, spec, status = f.metadata(obj), f.spec(obj), f.status(obj)
    if f.observed_behind(meta, status):
        return HealthStatus(
            PROGRESSING,
            "Waiting for rollout to finish: observed daemon set generation less then desired generation",
        )
    strategy = f.mapping(spec, "updateStrategy", "spec.updateStrategy")
    updated = f.integer(status, "updatedNumberScheduled", "status.updatedNumberScheduled")
    desired = f.integer(status, "desiredNumberScheduled", "status.desiredNumberScheduled")
    if f.string(strategy, "type", "spec.updateStrategy.type") == "OnDelete":
        return HealthStatus(
            HealthStatusCode.HEALTHY, f"daemon set {updated} out of {desired} new pods have been updated"
        )
    name = f.string(meta, "name", "metadata.name")
    if updated < desired:
        return HealthStatus(
            PROGRESSING,
            f'Waiting for daemon set "{name}" rollout to finish: '
            f"{updated} out of {desired} new pods have been updated...",
        )
    available = f.integer(status, "numberAvailable", "status.numberAvailable")
    if available < desired:
        return HealthStatus(
            PROGRESSING,
            f'Waiting for daemon set "{name}" rollout to finish: '
            f"{available} of {desired} updated pods are available...",
        )
    return HEALTHY
