"""The catalog of API resources the emulator serves: built-in kinds plus kinds added by CRDs.

Routing, discovery, storage and validation all ask this one registry what a resource is (its group,
version, kind, scope, subresources), so a CRD that starts serving a kind is seen by all of them at once.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

ALL_VERBS: tuple[str, ...] = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")

# Kinds whose registry strategy sets metadata.generation (workloads and spec-carrying policy kinds).
GENERATION_KINDS = frozenset({
    "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "ReplicationController", "Job", "CronJob",
    "Ingress", "IngressClass", "NetworkPolicy", "PodDisruptionBudget", "HorizontalPodAutoscaler",
    "CustomResourceDefinition",
})


@dataclass(frozen=True)
class ScalePaths:
    """Where a kind keeps what its `/scale` subresource shows (CRD `subresources.scale` spelling)."""

    spec_replicas: str = ".spec.replicas"
    status_replicas: str = ".status.replicas"
    label_selector: str = ".spec.selector"


BUILTIN_SCALE = ScalePaths()


@dataclass(frozen=True)
class ResourceType:
    """One resource of one group/version, as discovery describes it."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    singular: str = ""
    short_names: tuple[str, ...] = ()
    status: bool = False
    verbs: tuple[str, ...] = ALL_VERBS
    custom: bool = False
    categories: tuple[str, ...] = ()
    # A CRD's openAPIV3Schema for this version (custom kinds only), used for list/map semantics.
    schema: dict[str, Any] | None = field(default=None, compare=False, hash=False)
    name_rule: str = "subdomain"  # subdomain | label | path | crd
    # The scale subresource: JSON paths of the desired and observed replicas and of the selector (a
    # LabelSelector / map in built-in specs, a string for custom resources); None: no scale subresource.
    scale: ScalePaths | None = None

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def storage_key(self) -> tuple[str, str]:
        """All versions of one group/resource share storage, as in Kubernetes."""
        return (self.group, self.plural)

    @property
    def sets_generation(self) -> bool:
        return self.custom or self.kind in GENERATION_KINDS


def _rt(group: str, version: str, plural: str, kind: str, namespaced: bool, short: str = "",
        status: bool = False, verbs: tuple[str, ...] = ALL_VERBS, name_rule: str = "subdomain",
        categories: str = "", scale: bool = False) -> ResourceType:
    return ResourceType(group=group, version=version, plural=plural, kind=kind, namespaced=namespaced,
                        singular=kind.lower(), short_names=tuple(s for s in short.split(",") if s),
                        status=status, verbs=verbs, name_rule=name_rule,
                        categories=tuple(c for c in categories.split(",") if c),
                        scale=BUILTIN_SCALE if scale else None)


BUILTIN: tuple[ResourceType, ...] = (
    _rt("", "v1", "namespaces", "Namespace", False, "ns", True, name_rule="label",
        verbs=("create", "delete", "get", "list", "patch", "update", "watch")),
    _rt("", "v1", "pods", "Pod", True, "po", True, categories="all"),
    _rt("", "v1", "services", "Service", True, "svc", True, name_rule="label", categories="all",
        verbs=("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")),
    _rt("", "v1", "configmaps", "ConfigMap", True, "cm"),
    _rt("", "v1", "secrets", "Secret", True),
    _rt("", "v1", "serviceaccounts", "ServiceAccount", True, "sa"),
    _rt("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim", True, "pvc", True),
    _rt("", "v1", "persistentvolumes", "PersistentVolume", False, "pv", True),
    _rt("", "v1", "endpoints", "Endpoints", True, "ep"),
    _rt("", "v1", "events", "Event", True, "ev"),
    _rt("", "v1", "limitranges", "LimitRange", True, "limits"),
    _rt("", "v1", "resourcequotas", "ResourceQuota", True, "quota", True),
    _rt("", "v1", "replicationcontrollers", "ReplicationController", True, "rc", True, categories="all", scale=True),
    _rt("", "v1", "nodes", "Node", False, "no", True),
    _rt("apps", "v1", "deployments", "Deployment", True, "deploy", True, categories="all", scale=True),
    _rt("apps", "v1", "statefulsets", "StatefulSet", True, "sts", True, categories="all", scale=True),
    _rt("apps", "v1", "daemonsets", "DaemonSet", True, "ds", True, categories="all"),
    _rt("apps", "v1", "replicasets", "ReplicaSet", True, "rs", True, categories="all", scale=True),
    _rt("apps", "v1", "controllerrevisions", "ControllerRevision", True),
    _rt("batch", "v1", "jobs", "Job", True, "", True, categories="all"),
    _rt("batch", "v1", "cronjobs", "CronJob", True, "cj", True, categories="all"),
    _rt("networking.k8s.io", "v1", "ingresses", "Ingress", True, "ing", True),
    _rt("networking.k8s.io", "v1", "ingressclasses", "IngressClass", False),
    _rt("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy", True, "netpol"),
    _rt("rbac.authorization.k8s.io", "v1", "roles", "Role", True, name_rule="path"),
    _rt("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", True, name_rule="path"),
    _rt("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", False, name_rule="path"),
    _rt("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", False,
        name_rule="path"),
    _rt("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", True, "pdb", True),
    _rt("autoscaling", "v2", "horizontalpodautoscalers", "HorizontalPodAutoscaler", True, "hpa", True,
        categories="all"),
    _rt("autoscaling", "v1", "horizontalpodautoscalers", "HorizontalPodAutoscaler", True, "hpa", True,
        categories="all"),
    _rt("storage.k8s.io", "v1", "storageclasses", "StorageClass", False, "sc"),
    _rt("apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition", False,
        "crd,crds", True, name_rule="crd"),
    _rt("apiregistration.k8s.io", "v1", "apiservices", "APIService", False, "", True, name_rule="path"),
    _rt("coordination.k8s.io", "v1", "leases", "Lease", True),
)

# Preferred version per built-in group (first listed wins); autoscaling prefers v2 as Kubernetes does.
_GROUP_ORDER = ("", "apiregistration.k8s.io", "apps", "events.k8s.io", "autoscaling", "batch",
                "networking.k8s.io", "policy", "rbac.authorization.k8s.io", "storage.k8s.io",
                "apiextensions.k8s.io", "coordination.k8s.io")


class Registry:
    """Thread-safe lookup of resource types by URL segment or by apiVersion/kind."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._types: list[ResourceType] = list(BUILTIN)
        self._index()

    def _index(self) -> None:
        self._by_path = {(t.group, t.version, t.plural): t for t in self._types}
        self._by_gvk = {(t.group, t.version, t.kind): t for t in self._types}

    def all(self) -> list[ResourceType]:
        with self._lock:
            return list(self._types)

    def by_path(self, group: str, version: str, plural: str) -> ResourceType | None:
        with self._lock:
            return self._by_path.get((group, version, plural))

    def by_gvk(self, api_version: str, kind: str) -> ResourceType | None:
        group, _, version = api_version.rpartition("/")
        with self._lock:
            return self._by_gvk.get((group, version, kind))

    def group_versions(self) -> dict[str, list[str]]:
        """group -> versions, preferred first, in a stable order (built-ins first, then CRD groups)."""
        with self._lock:
            out: dict[str, list[str]] = {g: [] for g in _GROUP_ORDER}
            for t in self._types:
                versions = out.setdefault(t.group, [])
                if t.version not in versions:
                    versions.append(t.version)
            return {g: v for g, v in out.items() if v}

    def versions_of(self, group: str, plural: str) -> list[ResourceType]:
        with self._lock:
            return [t for t in self._types if t.group == group and t.plural == plural]

    def replace_custom(self, crd_name: str, types: list[ResourceType]) -> None:
        """Serve exactly `types` for the CRD named `crd_name` (an empty list stops serving it)."""
        with self._lock:
            keep = [t for t in self._types if not (t.custom and f"{t.plural}.{t.group}" == crd_name)]
            self._types = keep + types
            self._index()
