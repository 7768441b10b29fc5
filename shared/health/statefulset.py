"""StatefulSet health, with Argo CD's semantics and messages (after kubectl's rollout status).

Progressing until the spec is observed and every replica is ready; a partitioned rolling update is done
once the pods above the partition are updated; OnDelete is Healthy once ready; otherwise Progressing
while updateRevision differs from currentRevision.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared.health import fields as f
from shared.health.status import HealthStatus, HealthStatusCode

PROGRESSING = HealthStatusCode.PROGRESSING
HEALTHY = HealthStatusCode.HEALTHY


def statefulset_health(obj: Mapping[str, Any]) -> HealthStatus:
    meta, spec, status = f.metadata(obj), f.spec(obj), f.status(obj)
    generation = f.integer(meta, "generation", "metadata.generation")
    observed = f.integer(status, "observedGeneration", "status.observedGeneration")
    if observed == 0 or generation > observed:
        return HealthStatus(PROGRESSING, "Waiting for statefulset spec update to be observed...")
    desired = f.integer(spec, "replicas", "spec.replicas", default=None)
    ready = f.integer(status, "readyReplicas", "status.readyReplicas")
    if desired is not None and ready < desired:
        return HealthStatus(PROGRESSING, f"Waiting for {desired - ready} pods to be ready...")
    strategy = f.mapping(spec, "updateStrategy", "spec.updateStrategy")
    strategy_type = f.string(strategy, "type", "spec.updateStrategy.type")
    updated = f.integer(status, "updatedReplicas", "status.updatedReplicas")
    rolling = strategy.get("rollingUpdate")
    if strategy_type == "RollingUpdate" and rolling is not None:
        rolling = f.mapping(strategy, "rollingUpdate", "spec.updateStrategy.rollingUpdate")
        partition = f.integer(rolling, "partition", "spec.updateStrategy.rollingUpdate.partition", None)
        if desired is not None and partition is not None and updated < desired - partition:
            return HealthStatus(
                PROGRESSING,
                "Waiting for partitioned roll out to finish: "
                f"{updated} out of {desired - partition} new pods have been updated...",
            )
        return HealthStatus(
            HEALTHY, f"partitioned roll out complete: {updated} new pods have been updated..."
        )
    if strategy_type == "OnDelete":
        return HealthStatus(HEALTHY, f"statefulset has {ready} ready pods")
    update_revision = f.string(status, "updateRevision", "status.updateRevision")
    current_revision = f.string(status, "currentRevision", "status.currentRevision")
    if update_revision != current_revision:
        return HealthStatus(
            PROGRESSING,
            "waiting for statefulset rolling update to complete "
            f"{updated} pods at revision {update_revision}...",
        )
    current = f.integer(status, "currentReplicas", "status.currentReplicas")
    return HealthStatus(
        HEALTHY, f"statefulset rolling update complete {current} pods at revision {current_revision}..."
    )
