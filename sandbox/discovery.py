"""Discovery documents (`/version`, `/api`, `/apis`, APIResourceList) built from the registry.

Clients such as `kubernetes.dynamic.DynamicClient` and kubectl learn every kind, scope and verb from these
documents, so they are generated from the same registry that routes requests and never drift from it.
"""

from __future__ import annotations

import re
from typing import Any

from sandbox.resources import Registry, ResourceType

# The release whose behaviour the emulator follows (checked against a real v1.36 control plane).
VERSION_INFO: dict[str, str] = {
    "major": "1",
    "minor": "36",
    "gitVersion": "v1.36.3-wavecd-sandbox",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2026-01-01T00:00:00Z",
    "goVersion": "go1.26.8",
    "compiler": "gc",
    "platform": "linux/amd64",
}

_VERSION_RE = re.compile(r"^v(\d+)(?:(alpha|beta)(\d+))?$")


def version_priority(version: str) -> tuple[int, int, int]:
    """Kubernetes' version ordering: GA before beta before alpha, higher numbers first; others last."""
    m = _VERSION_RE.match(version)
    if not m:
        return (0, 0, 0)
    major, stage, minor = int(m.group(1)), m.group(2), int(m.group(3) or 0)
    return ({None: 3, "beta": 2, "alpha": 1}[stage], major, minor)


def _gv(group: str, version: str) -> dict[str, str]:
    return {"groupVersion": f"{group}/{version}", "version": version}


def api_versions() -> dict[str, Any]:
    return {"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]}


def _ordered_versions(registry: Registry, group: str, versions: list[str]) -> list[str]:
    custom = any(t.custom for t in registry.all() if t.group == group)
    return sorted(versions, key=version_priority, reverse=True) if custom else versions


def api_group(registry: Registry, group: str) -> dict[str, Any] | None:
    versions = registry.group_versions().get(group)
    if not versions or not group:
        return None
    ordered = _ordered_versions(registry, group, versions)
    return {
        "kind": "APIGroup",
        "apiVersion": "v1",
        "name": group,
        "versions": [_gv(group, v) for v in ordered],
        "preferredVersion": _gv(group, ordered[0]),
    }


def api_group_list(registry: Registry) -> dict[str, Any]:
    groups = [api_group(registry, g) for g in registry.group_versions() if g]
    for g in groups:
        if g:
            g.pop("kind")
            g.pop("apiVersion")
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [g for g in groups if g]}


def _resource_entry(t: ResourceType) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": t.plural,
        "singularName": t.singular,
        "namespaced": t.namespaced,
        "kind": t.kind,
        "verbs": list(t.verbs),
    }
    if t.short_names:
        entry["shortNames"] = list(t.short_names)
    if t.categories:
        entry["categories"] = list(t.categories)
    return entry


def resource_list(registry: Registry, group: str, version: str) -> dict[str, Any] | None:
    types = [t for t in registry.all() if t.group == group and t.version == version]
    if not types:
        return None
    resources: list[dict[str, Any]] = []
    for t in types:
        resources.append(_resource_entry(t))
        if t.status:
            resources.append({"name": f"{t.plural}/status", "singularName": "", "namespaced": t.namespaced,
                              "kind": t.kind, "verbs": ["get", "patch", "update"]})
        if t.kind == "Namespace" and not t.group:
            resources.append({"name": "namespaces/finalize", "singularName": "", "namespaced": False,
                              "kind": "Namespace", "verbs": ["update"]})
        if t.scale is not None:
            resources.append({"name": f"{t.plural}/scale", "singularName": "", "namespaced": t.namespaced,
                              "group": "autoscaling", "version": "v1", "kind": "Scale",
                              "verbs": ["get", "patch", "update"]})
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group}/{version}" if group else version,
        "resources": resources,
    }
