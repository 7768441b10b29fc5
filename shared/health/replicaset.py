"""ReplicaSet health, with Argo CD's semantics and messages.

A ReplicaFailure condition that is True is Degraded (with the condition's message); a stale
observedGeneration or fewer available replicas than desired is Progressing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared.health import fields as f
from shared.health.status import HEALTHY, HealthStatus, HealthStatusCode

PROGRESSING = HealthStatusCode.PROGRESSING


def replicaset_health(obj: Mapping[str, Any]) -> HealthStatus:
    meta, spec, status = f.metadata(obj), f.spec(obj), f.status(obj)
    if f.observed_behind(meta, status):
        return HealthStatus(
            PROGRESSING,
            "Waiting for rollout to finish: observed replica set generation less then desired generation",
        )
    condition = f.find_condition(status, "ReplicaFailure")
    if condition is not None and condition.get("status") == "True":
        return HealthStatus(HealthStatusCode.DEGRADED, f.string(condition, "message", "condition.message"))
    desired = f.integer(spec, "replicas", "spec.replicas", default=None)
    available = f.integer(status, "availableReplicas", "status.availableReplicas")
    if desired is not None and available < desired:
        return HealthStatus(
            PROGRESSING,
            f"Waiting for rollout to finish: {available} out of {desired} new replicas are available...",
        )
    return HEALTHY
