"""Ingress health, with Argo CD's semantics: Progressing until the controller publishes an address."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared.health.service import load_balancer_ingress
from shared.health.status import HEALTHY, HealthStatus, HealthStatusCode

_WAITING = HealthStatus(HealthStatusCode.PROGRESSING)


def ingress_health(obj: Mapping[str, Any]) -> HealthStatus:
    return HEALTHY if load_balancer_ingress(obj) else _WAITING
