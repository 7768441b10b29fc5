"""Deployment health, with Argo CD's semantics and messages (after kubectl's rollout status).

Paused is Suspended; a Progressing condition with reason ProgressDeadlineExceeded is Degraded; a stale
observedGeneration or fewer updated/available replicas than desired is Progressing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared.health import fields as f
from shared.health.status import HEALTHY, HealthStatus, HealthStatusCode

PROGRESSING = HealthStatusCode.PROGRESSING


def deployment_health(obj: Mapping[str, Any]) -> HealthStatus:
    meta, spec, status = f.metadata(obj), f.spec(obj), f.status(obj)
    if f.boolean(spec, "paused", "spec.paused"):
        return HealthStatus(HealthStatusCode.SUSPENDED, "Deployment is paused")
    if f.observed_behind(meta, status):
        return HealthStatus(
            PROGRESSING,
            "Waiting for rollout to finish: observed deployment generation less then desired generation",
        )
    condition = f.find_condition(status, "Progressing")
    if condition is not None and condition.get("reason") == "ProgressDeadlineExceeded":
        name = f.string(meta, "name", "metadata.name")
        return HealthStatus(HealthStatusCode.DEGRADED, f'Deployment "{name}" exceeded its progress deadline')
    desired = f.integer(spec, "replicas", "spec.replicas", default=None)
    updated = f.integer(status, "updatedReplicas", "status.updatedReplicas")
    replicas = f.integer(status, "replicas", "status.replicas")
    available = f.integer(status, "availableReplicas", "status.availableReplicas")
    if desired is not None and updated < desired:
        return HealthStatus(
            PROGRESSING,
            f"Waiting for rollout to finish: {updated} out of {desired} new replicas have been updated...",
        )
    if replicas > updated:
        return HealthStatus(
            PROGRESSING,
            f"Waiting for rollout to finish: {replicas - updated} old replicas are pending termination...",
        )
    if available < updated:
        return HealthStatus(
            PROGRESSING,
            f"Waiting for rollout to finish: {available} of {updated} updated replicas are available...",
        )
    return HEALTHY
