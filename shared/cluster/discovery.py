"""Which resources a cluster serves: apiVersion/kind -> plural and scope, cached per process.

Every apply, get and delete needs the plural name and the scope of a kind, and asking the API server
each time would double the requests. Discovery answers are cached per group/version; a miss (a kind
not in the cached answer, or a group/version never seen) refetches that one group/version, so a CRD
created a moment ago is found, but at most once per `refresh_interval` per group/version, so a manifest
naming a kind that does not exist cannot set off a storm of discovery requests.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import quote

from shared.cluster.kube_errors import UnknownKind, unknown_kind
from shared.core.resources import split_api_version

DEFAULT_REFRESH_INTERVAL = 3.0


@dataclass(frozen=True)
class ResourceInfo:
    """What discovery says about one kind in one group/version."""

    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool
    subresources: frozenset[str] = field(default=frozenset(), compare=False)
    verbs: frozenset[str] = field(default=frozenset(), compare=False)

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_version_resource(self) -> tuple[str, str, str]:
        return self.group, self.version, self.plural

    def base_path(self) -> str:
        return f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"

    def path(self, namespace: str | None = None, name: str | None = None, subresource: str | None = None
             ) -> str:
        """The REST path: the collection when `name` is None, across all namespaces when `namespace` is."""
        parts = [self.base_path()]
        if self.namespaced and namespace:
            parts.append(f"namespaces/{quote(namespace, safe='')}")
        parts.append(self.plural)
        if name is not None:
            parts.append(quote(name, safe=""))
            if subresource:
                parts.append(subresource)
        return "/".join(parts)


class DiscoveryTransport(Protocol):
    """What discovery needs of a client: GET a path, JSON back, None on 404."""

    def get_json(self, path: str) -> dict[str, Any] | None: ...


class Discovery:
    """Thread-safe cache of APIResourceLists, refreshed on a miss, rate-limited per group/version."""

    def __init__(self, transport: DiscoveryTransport, *, refresh_interval: float = DEFAULT_REFRESH_INTERVAL,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._transport = transport
        self.refresh_interval = refresh_interval
        self._clock = clock
        self._lock = threading.Lock()
        self._by_gv: dict[tuple[str, str], dict[str, ResourceInfo]] = {}
        self._fetched_at: dict[tuple[str, str], float] = {}
        self._groups: dict[str, list[str]] | None = None
        self._groups_fetched_at = float("-inf")
        self.fetches = 0

    # -- lookups -------------------------------------------------------------------------------------

    def resource_info(self, api_version: str, kind: str) -> ResourceInfo:
        """The resource serving `kind` at `api_version`; UnknownKind (a StallingError) when none does."""
        if not api_version or not kind:
            raise unknown_kind(api_version or "<empty>", kind or "<empty>",
                               detail="(the object has no apiVersion or kind)")
        group, version = split_api_version(api_version)
        with self._lock:
            found = self._lookup(group, version, kind)
            if found is None and self._may_refresh((group, version)):
                self._fetch_gv(group, version)
                found = self._lookup(group, version, kind)
        if found is None:
            raise unknown_kind(api_version, kind)
        return found

    def for_group_kind(self, group: str, kind: str) -> ResourceInfo:
        """The kind in its group's preferred version (or the first version serving it)."""
        with self._lock:
            versions = self._group_versions(group)
            if versions is None and self._may_refresh_groups():
                self._fetch_groups()
                versions = self._group_versions(group)
        for version in versions or []:
            try:
                return self.resource_info(f"{group}/{version}" if group else version, kind)
            except UnknownKind:
                continue
        raise unknown_kind(f"{group}/*" if group else "v1", kind)

    def invalidate(self) -> None:
        """Forget everything; the next lookups refetch (rate limits reset too)."""
        with self._lock:
            self._by_gv.clear()
            self._fetched_at.clear()
            self._groups = None
            self._groups_fetched_at = float("-inf")

    # -- internals (called with the lock held) ------------------------------------------------------

    def _lookup(self, group: str, version: str, kind: str) -> ResourceInfo | None:
        kinds = self._by_gv.get((group, version))
        return None if kinds is None else kinds.get(kind)

    def _may_refresh(self, gv: tuple[str, str]) -> bool:
        last = self._fetched_at.get(gv)
        return last is None or self._clock() - last >= self.refresh_interval

    def _may_refresh_groups(self) -> bool:
        return self._clock() - self._groups_fetched_at >= self.refresh_interval

    def _fetch_gv(self, group: str, version: str) -> None:
        path = f"/apis/{group}/{version}" if group else f"/api/{version}"
        self.fetches += 1
        self._fetched_at[(group, version)] = self._clock()
        body = self._transport.get_json(path)
        self._by_gv[(group, version)] = parse_resource_list(body, group, version) if body else {}

    def _group_versions(self, group: str) -> list[str] | None:
        if self._groups is None:
            return None
        return self._groups.get(group)

    def _fetch_groups(self) -> None:
        self.fetches += 2
        self._groups_fetched_at = self._clock()
        groups: dict[str, list[str]] = {}
        core = self._transport.get_json("/api") or {}
        groups[""] = [str(v) for v in core.get("versions") or []]
        for entry in (self._transport.get_json("/apis") or {}).get("groups") or []:
            name = str(entry.get("name", ""))
            preferred = str((entry.get("preferredVersion") or {}).get("version", ""))
            versions = [str(v.get("version", "")) for v in entry.get("versions") or []]
            ordered = ([preferred] if preferred else []) + [v for v in versions if v != preferred]
            groups[name] = [v for v in ordered if v]
        self._groups = groups


def parse_resource_list(body: dict[str, Any], group: str, version: str) -> dict[str, ResourceInfo]:
    """An APIResourceList as kind -> ResourceInfo; `x/status`-style entries become subresources."""
    subresources: dict[str, set[str]] = {}
    mains: list[dict[str, Any]] = []
    for entry in body.get("resources") or []:
        name = str(entry.get("name", ""))
        if "/" in name:
            plural, sub = name.split("/", 1)
            subresources.setdefault(plural, set()).add(sub)
        elif name:
            mains.append(entry)
    result: dict[str, ResourceInfo] = {}
    for entry in mains:
        plural = str(entry["name"])
        kind = str(entry.get("kind", ""))
        if not kind or kind in result:
            continue
        result[kind] = ResourceInfo(group, version, kind, plural, bool(entry.get("namespaced")),
                                    frozenset(subresources.get(plural, set())),
                                    frozenset(str(v) for v in entry.get("verbs") or []))
    return result
