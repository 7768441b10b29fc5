"""The order in which kinds are applied within one sync wave, as Argo CD (after Helm) orders them.

Inside a wave, objects that others depend on go first: namespaces and policies, then identities and
configuration, storage, CRDs and RBAC, then workloads, then routing. Every kind not listed (custom
resources, newer built-ins) goes after all listed kinds, so a CRD always precedes its custom resources.
The list matches by kind name only, ignoring the API group, as Argo CD does.
"""

from __future__ import annotations

from types import MappingProxyType

KIND_ORDER: tuple[str, ...] = (
    "Namespace",
    "NetworkPolicy",
    "ResourceQuota",
    "LimitRange",
    "PodSecurityPolicy",
    "PodDisruptionBudget",
    "ServiceAccount",
    "Secret",
    "SecretList",
    "ConfigMap",
    "StorageClass",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "CustomResourceDefinition",
    "ClusterRole",
    "ClusterRoleList",
    "ClusterRoleBinding",
    "ClusterRoleBindingList",
    "Role",
    "RoleList",
    "RoleBinding",
    "RoleBindingList",
    "Service",
    "DaemonSet",
    "Pod",
    "ReplicationController",
    "ReplicaSet",
    "Deployment",
    "HorizontalPodAutoscaler",
    "StatefulSet",
    "Job",
    "CronJob",
    "IngressClass",
    "Ingress",
    "APIService",
)

_INDEX = MappingProxyType({kind: position for position, kind in enumerate(KIND_ORDER)})

UNLISTED_KIND_INDEX = len(KIND_ORDER)
"""The index every kind outside KIND_ORDER shares; such kinds are then ordered by name."""


def kind_order_index(kind: str) -> int:
    """Position of `kind` in the apply order: 0 for Namespace, UNLISTED_KIND_INDEX for unlisted kinds."""
    return _INDEX.get(kind, UNLISTED_KIND_INDEX)
