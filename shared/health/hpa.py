"""HorizontalPodAutoscaler health, with Argo CD's semantics and messages.

Conditions come from `status.conditions` (autoscaling/v2, v2beta1, v2beta2) or, for autoscaling/v1, from
the `autoscaling.alpha.kubernetes.io/conditions` annotation (JSON). Any condition that reports a failure
to read the scale or the metrics (AbleToScale FailedGetScale/FailedUpdateScale, ScalingActive
FailedGet*Metric/InvalidSelector) makes the HPA Degraded, whatever its position in the list (as in
Argo CD since the fix that checks every condition for failure first). Otherwise the first AbleToScale or
ScalingLimited condition whose status is True makes it Healthy, with that condition's message. With no
such condition it is Progressing, "Waiting to Autoscale".
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from shared.health import fields as f
from shared.health.status import HealthStatus, HealthStatusCode

CONDITIONS_ANNOTATION = "autoscaling.alpha.kubernetes.io/conditions"

_WAITING = HealthStatus(HealthStatusCode.PROGRESSING, "Waiting to Autoscale")
_DEGRADED_REASONS: dict[str, frozenset[str]] = {
    "AbleToScale": frozenset({"FailedGetScale", "FailedUpdateScale"}),
    "ScalingActive": frozenset({
        "FailedGetResourceMetric",
        "FailedGetContainerResourceMetric",
        "FailedGetObjectMetric",
        "FailedGetPodsMetric",
        "FailedGetExternalMetric",
        "InvalidSelector",
    }),
}
_HEALTHY_TYPES = frozenset({"AbleToScale", "ScalingLimited"})


def _annotation_conditions(obj: Mapping[str, Any]) -> list[Any]:
    annotations = f.mapping(f.metadata(obj), "annotations", "metadata.annotations")
    text = annotations.get(CONDITIONS_ANNOTATION)
    if text is None:
        return []
    try:
        parsed = json.loads(text)
    except (TypeError, ValueError) as exc:
        raise f.FieldTypeError(f"failed to convert conditions annotation to typed: {exc}") from exc
    if parsed is None:
        return []
    if not isinstance(parsed, list) or not all(isinstance(item, Mapping) for item in parsed):
        raise f.FieldTypeError("failed to convert conditions annotation to typed: expected a list of objects")
    return parsed


def hpa_health(obj: Mapping[str, Any]) -> HealthStatus:
    if obj.get("apiVersion") == "autoscaling/v1":
        conditions = _annotation_conditions(obj)
    else:
        conditions = f.conditions(f.status(obj))
    for condition in conditions:
        reasons = _DEGRADED_REASONS.get(condition.get("type"))  # type: ignore[arg-type]
        if reasons is not None and condition.get("reason") in reasons:
            message = f.string(condition, "message", "condition.message")
            return HealthStatus(HealthStatusCode.DEGRADED, message)
    for condition in conditions:
        if condition.get("type") in _HEALTHY_TYPES and condition.get("status") == "True":
            message = f.string(condition, "message", "condition.message")
            return HealthStatus(HealthStatusCode.HEALTHY, message)
    return _WAITING
