"""Which built-in rule assesses which group/kind, as Argo CD's GetHealthCheckFunc decides.

Kinds not listed here have no built-in health (assess returns None unless a Lua rule covers them).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from shared.health.apiservice import apiservice_health
from shared.health.daemonset import daemonset_health
from shared.health.deployment import deployment_health
from shared.health.hpa import hpa_health
from shared.health.ingress import ingress_health
from shared.health.job import job_health
from shared.health.pod import pod_health
from shared.health.pvc import pvc_health
from shared.health.replicaset import replicaset_health
from shared.health.service import service_health
from shared.health.statefulset import statefulset_health
from shared.health.status import HealthStatus
from shared.health.workflow import workflow_health

BuiltinRule = Callable[[Mapping[str, Any]], HealthStatus]

# (group, kind) -> rule; the core group is "". "extensions" holds the pre-1.16 workload kinds.
BUILTIN_RULES: dict[tuple[str, str], BuiltinRule] = {
    ("apps", "Deployment"): deployment_health,
    ("extensions", "Deployment"): deployment_health,
    ("apps", "StatefulSet"): statefulset_health,
    ("apps", "DaemonSet"): daemonset_health,
    ("extensions", "DaemonSet"): daemonset_health,
    ("apps", "ReplicaSet"): replicaset_health,
    ("extensions", "ReplicaSet"): replicaset_health,
    ("", "Pod"): pod_health,
    ("", "PersistentVolumeClaim"): pvc_health,
    ("", "Service"): service_health,
    ("networking.k8s.io", "Ingress"): ingress_health,
    ("extensions", "Ingress"): ingress_health,
    ("batch", "Job"): job_health,
    ("autoscaling", "HorizontalPodAutoscaler"): hpa_health,
    ("apiregistration.k8s.io", "APIService"): apiservice_health,
    ("argoproj.io", "Workflow"): workflow_health,
}


def builtin_rule(group: str, kind: str) -> BuiltinRule | None:
    """The built-in rule for a group/kind, or None when Argo CD has none."""
    return BUILTIN_RULES.get((group, kind))
