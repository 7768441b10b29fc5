"""Orphaned resources, as a project's `orphanedResources` asks: top-level objects in an app's destination
namespace that no application tracks.

`find_orphans` is Argo CD's rule, pure: objects with an owner are not top-level; objects any app tracks
are not orphans; never orphaned are kinds the project denies, the `default` ServiceAccount (and its
token Secret), the `kubernetes` Service in `default`, the `kube-root-ca.crt` ConfigMap, the kinds
Argo CD excludes by default (Events, Endpoints, EndpointSlices, Leases, metrics), and whatever
`orphanedResources.ignore` names. With `warn: true` the app gets an `OrphanedResourceWarning`.
`list_namespace` reads the namespace: every listable namespaced kind the cluster serves (the kind list
is discovered once per minute per cluster).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shared.cluster.discovery import ResourceInfo, parse_resource_list
from shared.core.globs import glob_match
from shared.core.resources import split_api_version, tracking_app_of
from shared.project.model import AppProject
from shared.project.permissions import group_kind_permitted

if TYPE_CHECKING:
    from shared.cluster.client import Cluster

log = logging.getLogger(__name__)

WARNING_CONDITION = "OrphanedResourceWarning"
KINDS_TTL = 60.0
_EXCLUDED_GROUPS = {"events.k8s.io", "metrics.k8s.io", "coordination.k8s.io", "discovery.k8s.io"}
_EXCLUDED_KINDS = {("", "Event"), ("", "Endpoints")}


@dataclass(frozen=True)
class Orphan:
    group: str
    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.group or 'core'}/{self.kind} {self.namespace}/{self.name}"


def warning_message(count: int) -> str:
    return f"Application has {count} orphaned resources"


def _never_orphaned(group: str, kind: str, namespace: str, name: str, obj: dict[str, Any]) -> bool:
    if group in _EXCLUDED_GROUPS or (group, kind) in _EXCLUDED_KINDS:
        return True
    if group == "" and kind == "ServiceAccount" and name == "default":
        return True
    if group == "" and kind == "Secret" and obj.get("type") == "kubernetes.io/service-account-token" and \
            ((obj.get("metadata") or {}).get("annotations") or {}).get("kubernetes.io/service-account.name") \
            == "default":
        return True
    if group == "" and kind == "Service" and name == "kubernetes" and namespace == "default":
        return True
    return group == "" and kind == "ConfigMap" and name == "kube-root-ca.crt"


def find_orphans(project: AppProject, objects: list[dict[str, Any]], namespace: str) -> list[Orphan]:
    """The orphans among the live `objects` of `namespace` (sorted)."""
    ignore = (project.spec.orphaned_resources.ignore if project.spec.orphaned_resources else []) or []
    found = []
    for obj in objects:
        meta = obj.get("metadata") or {}
        if meta.get("ownerReferences") or tracking_app_of(obj):
            continue
        group, _ = split_api_version(str(obj.get("apiVersion", "")))
        kind, name = str(obj.get("kind", "")), str(meta.get("name", ""))
        if (meta.get("namespace") or namespace) != namespace or _never_orphaned(group, kind, namespace, name, obj):
            continue
        if not group_kind_permitted(project, group, kind, namespaced=True, name=name):
            continue
        if any(glob_match(str(rule.get("group", "*") or ""), group) and glob_match(str(rule.get("kind", "*")
               or "*"), kind) and glob_match(str(rule.get("name") or "*"), name) for rule in ignore):
            continue
        found.append(Orphan(group, kind, namespace, name))
    return sorted(found, key=str)


_kinds: dict[int, tuple[float, list[ResourceInfo]]] = {}
_kinds_lock = threading.Lock()


def _listable_kinds(cluster: Cluster) -> list[ResourceInfo]:
    with _kinds_lock:
        cached = _kinds.get(id(cluster))
        if cached is not None and time.monotonic() - cached[0] < KINDS_TTL:
            return cached[1]
    infos: list[ResourceInfo] = []
    get = cluster.transport.get_json
    core = get("/api/v1") or {}
    infos += parse_resource_list(core, "", "v1").values()
    for group in (get("/apis") or {}).get("groups") or []:
        name = str(group.get("name", ""))
        version = str((group.get("preferredVersion") or {}).get("version", ""))
        if not name or not version or name in _EXCLUDED_GROUPS:
            continue
        infos += parse_resource_list(get(f"/apis/{name}/{version}") or {}, name, version).values()
    listable = [i for i in infos if i.namespaced and "list" in i.verbs and (i.group, i.kind) not in _EXCLUDED_KINDS]
    with _kinds_lock:
        _kinds[id(cluster)] = (time.monotonic(), listable)
    return listable


def list_namespace(cluster: Cluster, namespace: str) -> list[dict[str, Any]]:
    """Every object of every listable namespaced kind in `namespace`, with apiVersion and kind set."""
    objects: list[dict[str, Any]] = []
    for info in _listable_kinds(cluster):
        for obj in cluster.list(info.api_version, info.kind, namespace):
            objects.append({**obj, "apiVersion": obj.get("apiVersion") or info.api_version,
                            "kind": obj.get("kind") or info.kind})
    return objects
