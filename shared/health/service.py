"""Service health, with Argo CD's semantics: a LoadBalancer waits (Progressing) for an ingress address."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared.health import fields as f
from shared.health.status import HEALTHY, HealthStatus, HealthStatusCode

_WAITING = HealthStatus(HealthStatusCode.PROGRESSING)


def load_balancer_ingress(obj: Mapping[str, Any]) -> list[Any]:
    """`status.loadBalancer.ingress`: the addresses a load balancer (or ingress controller) assigned."""
    balancer = f.mapping(f.status(obj), "loadBalancer", "status.loadBalancer")
    return f.sequence(balancer, "ingress", "status.loadBalancer.ingress")


def service_health(obj: Mapping[str, Any]) -> HealthStatus:
    if f.string(f.spec(obj), "type", "spec.type") != "LoadBalancer":
        return HEALTHY
    return HEALTHY if load_balancer_ingress(obj) else _WAITING
