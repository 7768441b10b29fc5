"""Access to the destination clusters: one facade over the official Kubernetes client.

Every part of the pipeline that touches a cluster (diff reads live state, wave_apply applies, prune
deletes, health reads fresh objects, the scheduler reads Applications) goes through `Cluster`, so that
discovery is cached once, server-side apply is spoken correctly (the typed clients cannot send
`application/apply-patch+yaml`), live state comes from the per-process `LiveCache` instead of one GET
per object, API failures become typed errors with clear messages, and every request is counted.

Clusters are named as Argo CD names them: `in-cluster` / `https://kubernetes.default.svc` is the
default cluster (WaveCD's own kubeconfig, context or in-cluster config); other clusters come from Argo
CD-style cluster Secrets or from the contexts of the kubeconfig (a context name is a destination name).
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
import logging
import os
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import urllib3
import yaml
from kubernetes import config as kube_config
from kubernetes.client import ApiClient, Configuration
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from shared.cluster.discovery import DEFAULT_REFRESH_INTERVAL, Discovery, ResourceInfo
from shared.cluster.kube_errors import KubeConflict, KubeNotFound, UnknownKind, translate, transport_error
from shared.cluster.live_cache import LiveCache
from shared.core import tracking
from shared.core.errors import ConfigurationError, StallingError
from shared.core.models import ApplicationDestination
from shared.core.resources import ResourceKey
from shared.core.settings import Settings

__all__ = [
    "IN_CLUSTER_NAME", "IN_CLUSTER_SERVER", "Cluster", "ClusterEntry", "ClusterRegistry", "KubeTransport",
    "ResourceInfo", "cluster_entry_from_secret", "entries_from_kubeconfig", "on_request",
]

log = logging.getLogger(__name__)

IN_CLUSTER_NAME = "in-cluster"
IN_CLUSTER_SERVER = "https://kubernetes.default.svc"
CLUSTER_SECRET_LABEL = "argocd.argoproj.io/secret-type"
FIELD_MANAGER = "wavecd"
APPLY_PATCH = "application/apply-patch+yaml"
MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
PROPAGATION_POLICIES = {"foreground": "Foreground", "background": "Background", "orphan": "Orphan"}
DEFAULT_TIMEOUT = (10.0, 60.0)  # (connect, read) seconds
# What the client's kubeconfig loader raises on a broken or incomplete file.
_CONFIG_ERRORS = (ConfigException, OSError, ValueError, TypeError, KeyError, AttributeError, yaml.YAMLError)

# Set by the metrics module: called with (verb, HTTP code; 0 when no answer, kind, namespace; "" when not
# known or cluster-scoped) after every request.
on_request: Callable[[str, int, str, str], None] | None = None
_NAMESPACE_IN_PATH = re.compile(r"/namespaces/([^/]+)/")


# -- transport ----------------------------------------------------------------------------------------

class KubeTransport:
    """Raw REST calls through the official client's ApiClient (auth, TLS, serialization), counted and
    with failures translated into typed errors."""

    def __init__(self, api_client: ApiClient, cluster_name: str = IN_CLUSTER_NAME,
                 timeout: tuple[float, float] = DEFAULT_TIMEOUT) -> None:
        self.api_client = api_client
        self.cluster_name = cluster_name
        self.timeout = timeout
        self.counts: Counter[tuple[str, int]] = Counter()
        self._count_lock = threading.Lock()
        self._pid = os.getpid()

    def _count(self, verb: str, code: int, kind: str = "", path: str = "") -> None:
        with self._count_lock:
            self.counts[(verb, code)] += 1
        hook = on_request
        if hook is not None:
            found = _NAMESPACE_IN_PATH.search(path)
            try:
                hook(verb, code, kind, found.group(1) if found else "")
            except Exception:  # a metrics failure must never fail a request
                log.exception("on_request hook failed")

    @property
    def request_total(self) -> int:
        with self._count_lock:
            return sum(self.counts.values())

    def _send(self, method: str, path: str, *, verb: str, what: str, kind: str = "",
              query: Iterable[tuple[str, str]] = (), body: Any = None,
              content_type: str | None = None, timeout: Any = None) -> Any:
        if self._pid != os.getpid():
            # A forked child (Celery prefork) must not reuse the parent's keep-alive sockets.
            self.api_client.rest_client.pool_manager.clear()
            self._pid = os.getpid()
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = content_type or "application/json"
        try:
            serialized = self.api_client.param_serialize(method, path, query_params=list(query),
                                                         header_params=headers, body=body,
                                                         auth_settings=["BearerToken"])
            return self.api_client.call_api(*serialized, _request_timeout=timeout or self.timeout)
        except ApiException as exc:  # raised below HTTP, e.g. TLS failures, with status 0
            self._count(verb, int(exc.status or 0), kind, path)
            raise translate(exc, verb=verb, what=what, kind=kind, cluster=self.cluster_name) from None
        except (urllib3.exceptions.HTTPError, OSError, ConfigException) as exc:
            self._count(verb, 0, kind, path)
            raise transport_error(exc, verb=verb, what=what, cluster=self.cluster_name) from None

    def request(self, method: str, path: str, *, verb: str, what: str, kind: str = "",
                query: Iterable[tuple[str, str]] = (), body: Any = None,
                content_type: str | None = None, not_found_ok: bool = False) -> dict[str, Any] | None:
        """One request; the JSON answer, None for a 404 when `not_found_ok`, else a KubeError."""
        response = self._send(method, path, verb=verb, what=what, kind=kind, query=query, body=body,
                              content_type=content_type)
        try:
            data = response.read()
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            self._count(verb, 0, kind, path)
            raise transport_error(exc, verb=verb, what=what, cluster=self.cluster_name) from None
        self._count(verb, response.status, kind, path)
        if 200 <= response.status < 300:
            try:
                return json.loads(data) if data else {}
            except ValueError:
                raise translate(ApiException(status=502, reason="the answer is not JSON"), verb=verb,
                                what=what, cluster=self.cluster_name) from None
        if response.status == 404 and not_found_ok:
            return None
        text = data.decode("utf-8", errors="replace") if isinstance(data, bytes) else str(data or "")
        raise translate(ApiException(status=response.status, reason=response.reason, body=text), verb=verb,
                        what=what, kind=kind, cluster=self.cluster_name)

    # DiscoveryTransport
    def get_json(self, path: str) -> dict[str, Any] | None:
        return self.request("GET", path, verb="get", what=f"discovery {path}", not_found_ok=True)

    # ListWatchTransport
    def list_page(self, info: ResourceInfo, *, limit: int, continue_token: str | None) -> dict[str, Any]:
        query = [("limit", str(limit))]
        if continue_token:
            query.append(("continue", continue_token))
        result = self.request("GET", info.path(), verb="list", what=f"{info.plural}.{info.group or 'core'}",
                              kind=info.kind, query=query)
        return result or {}

    def open_watch(self, info: ResourceInfo, *, resource_version: str, timeout_seconds: int) -> Any:
        """The streaming response of a watch; an error status raises ApiException (kubernetes.watch's
        contract, so it can react to 410 Gone itself)."""
        query = [("watch", "true"), ("allowWatchBookmarks", "true"), ("timeoutSeconds", str(timeout_seconds))]
        if resource_version:
            query.append(("resourceVersion", resource_version))
        what = f"{info.plural}.{info.group or 'core'}"
        response = self._send("GET", info.path(), verb="watch", what=what, kind=info.kind, query=query,
                              timeout=(self.timeout[0], timeout_seconds + 30))
        self._count("watch", response.status, info.kind)
        if not 200 <= response.status < 300:
            data = response.read()
            text = data.decode("utf-8", errors="replace") if isinstance(data, bytes) else str(data or "")
            raise ApiException(status=response.status, reason=response.reason, body=text)
        return response.response


# -- one cluster --------------------------------------------------------------------------------------

def _what(obj_or_key: dict[str, Any] | ResourceKey, namespace: str | None = None) -> str:
    key = obj_or_key if isinstance(obj_or_key, ResourceKey) else ResourceKey.from_object(obj_or_key)
    if namespace is not None and key.namespace != namespace:
        key = ResourceKey(key.group, key.kind, namespace, key.name)
    return str(key)


def _dry_run(query: list[tuple[str, str]], dry_run: bool) -> list[tuple[str, str]]:
    return [*query, ("dryRun", "All")] if dry_run else query


class Cluster:
    """One destination cluster: discovery, live state, writes, and Applications stored as resources."""

    def __init__(self, api_client: ApiClient, *, name: str = IN_CLUSTER_NAME, server: str | None = None,
                 discovery_refresh_interval: float = DEFAULT_REFRESH_INTERVAL,
                 watch_timeout_seconds: int = 300) -> None:
        self.name = name
        self.server = server or str(api_client.configuration.host)
        self.api_client = api_client
        self.transport = KubeTransport(api_client, name)
        self.discovery = Discovery(self.transport, refresh_interval=discovery_refresh_interval)
        self._watch_timeout_seconds = watch_timeout_seconds
        self._live: LiveCache | None = None
        self._live_lock = threading.Lock()
        self.applications_unavailable: str | None = None

    @classmethod
    def from_kubeconfig(cls, path: str | None, context: str | None = None, name: str = IN_CLUSTER_NAME,
                        **kwargs: Any) -> Cluster:
        """A cluster from a kubeconfig file (None: $KUBECONFIG or ~/.kube/config) and context."""
        try:
            api_client = kube_config.new_client_from_config(config_file=path, context=context)
        except _CONFIG_ERRORS as exc:
            where = f"kubeconfig {path or '$KUBECONFIG/~/.kube/config'}" + (f" context {context!r}" if context
                                                                            else "")
            raise ConfigurationError(f"cannot load {where}: {_first_line(exc)}") from None
        return cls(api_client, name=name, **kwargs)

    @classmethod
    def in_cluster(cls, name: str = IN_CLUSTER_NAME, **kwargs: Any) -> Cluster:
        """The cluster this process runs in, through its ServiceAccount."""
        configuration = Configuration()
        try:
            kube_config.load_incluster_config(client_configuration=configuration)
        except ConfigException as exc:
            raise ConfigurationError(f"cannot load in-cluster configuration: {_first_line(exc)}") from None
        return cls(ApiClient(configuration), name=name, server=IN_CLUSTER_SERVER, **kwargs)

    @classmethod
    def from_entry(cls, entry: ClusterEntry, **kwargs: Any) -> Cluster:
        if entry.in_cluster:
            return cls.in_cluster(entry.name, **kwargs)
        if entry.config is not None:
            try:
                api_client = kube_config.new_client_from_config_dict(_kubeconfig_dict(entry))
            except _CONFIG_ERRORS as exc:
                raise ConfigurationError(f"cluster {entry.name!r}: invalid connection settings: "
                                         f"{type(exc).__name__}") from None
            return cls(api_client, name=entry.name, server=entry.server, **kwargs)
        cluster = cls.from_kubeconfig(entry.kubeconfig, entry.context, entry.name, **kwargs)
        if entry.server:
            cluster.server = entry.server
        return cluster

    def close(self) -> None:
        """Stop the watch threads and close connections (tests, shutdown)."""
        with self._live_lock:
            if self._live is not None:
                self._live.stop()
                self._live = None
        self.api_client.close()

    @property
    def live(self) -> LiveCache:
        """This process' live cache; a forked child (Celery prefork) gets its own, with its own threads."""
        with self._live_lock:
            if self._live is None or self._live.pid != os.getpid():
                self._live = LiveCache(self.transport, name=self.name,
                                       watch_timeout_seconds=self._watch_timeout_seconds)
            return self._live

    @property
    def request_total(self) -> int:
        return self.transport.request_total

    # -- discovery and preparation ------------------------------------------------------------------

    def resource_info(self, api_version: str, kind: str) -> ResourceInfo:
        return self.discovery.resource_info(api_version, kind)

    def info_for_key(self, key: ResourceKey, api_version: str | None = None) -> ResourceInfo:
        if api_version:
            return self.resource_info(api_version, key.kind)
        return self.discovery.for_group_kind(key.group, key.kind)

    def prepare(self, obj: dict[str, Any], default_namespace: str, app_name: str, tracking_method: str
                ) -> dict[str, Any]:
        """A copy ready to apply: namespace filled (namespaced kinds) or removed (cluster-scoped),
        tracking marks stamped. Unknown kinds are a StallingError (UnknownKind). A hook with only
        `generateName` is accepted (it gets the label mark, not the annotation: it has no name yet).

        Only what this writes is copied (the object, its metadata, annotations and labels): the rest is
        shared with `obj`, which is never modified. A no-op reconcile prepares every object of an app,
        so a deep copy here was the largest single cost of a reconcile."""
        _check_object(obj, need_name=False)
        meta_in = obj.get("metadata") or {}
        out = {**obj, "metadata": {**meta_in}}
        for part in ("annotations", "labels"):
            if isinstance(meta_in.get(part), dict):
                out["metadata"][part] = dict(meta_in[part])
        info = self.resource_info(str(out["apiVersion"]), str(out["kind"]))
        meta = out["metadata"]
        if info.namespaced:
            # Argo CD: destination.namespace applies only where the manifest sets none; with neither,
            # kubectl's default namespace is used.
            meta["namespace"] = meta.get("namespace") or default_namespace or "default"
        else:
            meta.pop("namespace", None)
        tracking.stamp(out, app_name, tracking_method, ResourceKey.from_object(out))
        return out

    def _target(self, obj: dict[str, Any], *, need_name: bool = True) -> tuple[ResourceInfo, str, str]:
        _check_object(obj, need_name=need_name)
        info = self.resource_info(str(obj["apiVersion"]), str(obj["kind"]))
        meta = obj["metadata"]
        namespace = str(meta.get("namespace") or "") if info.namespaced else ""
        if info.namespaced and not namespace:
            raise StallingError(f"{_what(obj)}: a namespaced object needs metadata.namespace "
                                f"(call Cluster.prepare first)")
        return info, namespace, str(meta.get("name") or "")

    # -- reads ---------------------------------------------------------------------------------------

    def get(self, key: ResourceKey, *, api_version: str | None = None, fresh: bool = False
            ) -> dict[str, Any] | None:
        """The live object or None. From the live cache unless `fresh` (one GET, e.g. for health)."""
        info = self.info_for_key(key, api_version)
        namespace = key.namespace if info.namespaced else ""
        if not fresh:
            served, obj = self.live.lookup(info, namespace, key.name)
            if served:
                return obj
        return self._get_direct(info, namespace, key.name)

    def _get_direct(self, info: ResourceInfo, namespace: str, name: str) -> dict[str, Any] | None:
        what = str(ResourceKey(info.group, info.kind, namespace, name))
        obj = self.transport.request("GET", info.path(namespace, name), verb="get", what=what,
                                     kind=info.kind, not_found_ok=True)
        if obj is not None:
            obj.setdefault("apiVersion", info.api_version)
            obj.setdefault("kind", info.kind)
            self.live.observe(info, obj)
        return obj

    def live_for(self, keys: Iterable[tuple[str, ResourceKey]]) -> dict[ResourceKey, dict[str, Any]]:
        """The live objects of (apiVersion, key) pairs that exist; kinds the cluster lacks have none."""
        result: dict[ResourceKey, dict[str, Any]] = {}
        for api_version, key in keys:
            try:
                obj = self.get(key, api_version=api_version or None)
            except UnknownKind:
                continue
            if obj is not None:
                result[key] = obj
        return result

    def list(self, api_version: str, kind: str, namespace: str | None = None) -> list[dict[str, Any]]:
        """Every live object of a kind (in a namespace if given), from the live cache when it serves."""
        info = self.resource_info(api_version, kind)
        cached = self.live.list(info, namespace if info.namespaced else None)
        if cached is not None:
            return cached
        path = info.path(namespace if info.namespaced else None)
        body = self.transport.request("GET", path, verb="list", what=f"{info.plural}.{info.group or 'core'}",
                                      kind=info.kind) or {}
        return list(body.get("items") or [])

    def namespace_exists(self, name: str) -> bool:
        """Whether the namespace exists (cache first; a miss is confirmed by a GET)."""
        info = self.resource_info("v1", "Namespace")
        served, obj = self.live.lookup(info, "", name)
        if served and obj is not None:
            return True
        return self._get_direct(info, "", name) is not None

    # -- writes --------------------------------------------------------------------------------------

    def apply(self, obj: dict[str, Any], *, dry_run: bool = False, force: bool = True,
              manager: str = FIELD_MANAGER) -> dict[str, Any]:
        """Server-side apply: fields in `obj` are ours, fields we applied before and dropped are removed."""
        info, namespace, name = self._target(obj)
        query = _dry_run([("fieldManager", manager), ("force", "true" if force else "false")], dry_run)
        body = _apply_body(obj)
        result = self.transport.request("PATCH", info.path(namespace, name), verb="patch",
                                        what=f"apply {_what(obj)}", kind=info.kind, query=query, body=body,
                                        content_type=APPLY_PATCH) or {}
        if not dry_run:
            self.live.observe(info, result)
        return result

    def dry_run_apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        """What the server would make of `obj` (defaults, webhooks, merges), for a server-side diff."""
        return self.apply(obj, dry_run=True)

    def replace(self, obj: dict[str, Any], *, dry_run: bool = False) -> dict[str, Any]:
        """Argo CD's `Replace=true`: PUT over the live object (created if missing)."""
        info, namespace, name = self._target(obj)
        live = self._get_direct(info, namespace, name)
        if live is None:
            return self.create(obj, dry_run=dry_run)
        body = copy.deepcopy(obj)
        body["metadata"]["resourceVersion"] = (live.get("metadata") or {}).get("resourceVersion")
        result = self.transport.request("PUT", info.path(namespace, name), verb="update",
                                        what=f"replace {_what(obj)}", kind=info.kind,
                                        query=_dry_run([("fieldManager", FIELD_MANAGER)], dry_run),
                                        body=body) or {}
        if not dry_run:
            self.live.observe(info, result)
        return result

    def create(self, obj: dict[str, Any], *, dry_run: bool = False) -> dict[str, Any]:
        """POST a new object; `metadata.generateName` lets the server pick the name (hooks)."""
        info, namespace, _ = self._target(obj, need_name=False)
        result = self.transport.request("POST", info.path(namespace), verb="create",
                                        what=f"create {_what(obj)}", kind=info.kind,
                                        query=_dry_run([("fieldManager", FIELD_MANAGER)], dry_run),
                                        body=obj) or {}
        if not dry_run:
            self.live.observe(info, result)
        return result

    def delete(self, api_version: str, key: ResourceKey, *, propagation: str = "Foreground",
               dry_run: bool = False) -> bool:
        """Delete with a propagation policy (Foreground, Background, Orphan; any case, as Argo CD's
        `PrunePropagationPolicy=foreground`). False when the object was already gone."""
        policy = PROPAGATION_POLICIES.get(propagation.lower())
        if policy is None:
            raise StallingError(f"unknown propagation policy {propagation!r}: expected foreground, "
                                f"background or orphan")
        info = self.info_for_key(key, api_version)
        namespace = key.namespace if info.namespaced else ""
        if info.namespaced and not namespace:
            raise StallingError(f"delete {key}: a namespaced object needs a namespace")
        # A DELETE with a body takes its options from the body alone (the API server then ignores the
        # query string), so dry run goes in the body next to the propagation policy.
        body: dict[str, Any] = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": policy}
        if dry_run:
            body["dryRun"] = ["All"]
        result = self.transport.request("DELETE", info.path(namespace, key.name), verb="delete",
                                        what=f"delete {key}", kind=info.kind, body=body, not_found_ok=True)
        if result is None:
            if not dry_run:
                self.live.forget(info, namespace, key.name)
            return False
        return True

    # -- Applications as cluster resources ----------------------------------------------------------

    def _app_info(self, group: str, version: str) -> ResourceInfo:
        return self.resource_info(f"{group}/{version}", "Application")

    def list_applications(self, group: str, version: str, namespace: str) -> list[dict[str, Any]]:
        """Applications in `namespace` ([] with `applications_unavailable` set when the CRD is missing)."""
        try:
            info = self._app_info(group, version)
        except UnknownKind:
            self.applications_unavailable = (f"the Application CRD ({group}/{version}) is not installed in "
                                             f"cluster {self.name}")
            log.info("%s; no Applications read from the cluster", self.applications_unavailable)
            return []
        self.applications_unavailable = None
        body = self.transport.request("GET", info.path(namespace), verb="list",
                                      what=f"applications.{group} in namespace {namespace}") or {}
        items = list(body.get("items") or [])
        for item in items:
            item.setdefault("apiVersion", info.api_version)
            item.setdefault("kind", info.kind)
        return items

    def get_application(self, group: str, version: str, namespace: str, name: str) -> dict[str, Any] | None:
        info = self._app_info(group, version)
        return self.transport.request("GET", info.path(namespace, name), verb="get",
                                      what=f"Application {namespace}/{name}", not_found_ok=True)

    def patch_application_status(self, group: str, version: str, namespace: str, name: str,
                                 status: dict[str, Any]) -> None:
        """Merge-patch `status`: on the status subresource when the CRD enables it, else on the object
        (Argo CD's own CRD has no status subresource)."""
        info = self._app_info(group, version)
        sub = "status" if "status" in info.subresources else None
        self.transport.request("PATCH", info.path(namespace, name, sub), verb="patch",
                               what=f"status of Application {namespace}/{name}", body={"status": status},
                               content_type=MERGE_PATCH)

    def patch_application(self, group: str, version: str, namespace: str, name: str, patch: dict[str, Any]
                          ) -> dict[str, Any]:
        """A JSON merge patch; put `metadata.resourceVersion` in it to make it conditional (409 if stale)."""
        info = self._app_info(group, version)
        return self.transport.request("PATCH", info.path(namespace, name), verb="patch",
                                      what=f"Application {namespace}/{name}", body=patch,
                                      content_type=MERGE_PATCH) or {}

    def set_application_finalizers(self, group: str, version: str, namespace: str, name: str,
                                   finalizers: list[str], resource_version: str) -> dict[str, Any]:
        """Replace the finalizer list only if the object is still at `resource_version` (else 409, a
        KubeConflict to retry after rereading)."""
        patch = {"metadata": {"finalizers": finalizers or None, "resourceVersion": resource_version}}
        return self.patch_application(group, version, namespace, name, patch)

    def add_application_finalizer(self, group: str, version: str, namespace: str, name: str,
                                  finalizer: str) -> bool:
        """Add `finalizer` unless present; False when the Application does not exist."""
        return self._edit_finalizers(group, version, namespace, name, finalizer, add=True)

    def remove_application_finalizer(self, group: str, version: str, namespace: str, name: str,
                                     finalizer: str) -> bool:
        """Remove `finalizer` if present; False when the Application does not exist."""
        return self._edit_finalizers(group, version, namespace, name, finalizer, add=False)

    def _edit_finalizers(self, group: str, version: str, namespace: str, name: str, finalizer: str, *,
                         add: bool, attempts: int = 5) -> bool:
        for attempt in range(attempts):
            app = self.get_application(group, version, namespace, name)
            if app is None:
                return False
            meta = app.get("metadata") or {}
            current = list(meta.get("finalizers") or [])
            if add:
                wanted = current if finalizer in current else [*current, finalizer]
            else:
                wanted = [f for f in current if f != finalizer]
            if wanted == current:
                return True
            try:
                self.set_application_finalizers(group, version, namespace, name, wanted,
                                                str(meta.get("resourceVersion", "")))
                return True
            except KubeConflict:
                if attempt == attempts - 1:
                    raise
            except KubeNotFound:
                return False
        return False

    def create_application(self, group: str, version: str, namespace: str, obj: dict[str, Any]
                           ) -> dict[str, Any]:
        info = self._app_info(group, version)
        body = copy.deepcopy(obj)
        body.setdefault("apiVersion", info.api_version)
        body.setdefault("kind", info.kind)
        body.setdefault("metadata", {})["namespace"] = namespace
        name = body["metadata"].get("name", "")
        return self.transport.request("POST", info.path(namespace), verb="create",
                                      what=f"Application {namespace}/{name}", body=body,
                                      query=[("fieldManager", FIELD_MANAGER)]) or {}

    def delete_application(self, group: str, version: str, namespace: str, name: str) -> None:
        """Delete (finalizers then run); an Application already gone is not an error."""
        info = self._app_info(group, version)
        self.transport.request("DELETE", info.path(namespace, name), verb="delete",
                               what=f"Application {namespace}/{name}", not_found_ok=True,
                               body={"kind": "DeleteOptions", "apiVersion": "v1",
                                     "propagationPolicy": "Background"})

    def __repr__(self) -> str:
        return f"Cluster(name={self.name!r}, server={self.server!r})"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


def _check_object(obj: Any, *, need_name: bool = True) -> None:
    if not isinstance(obj, dict):
        raise StallingError(f"a Kubernetes object must be a mapping, not {type(obj).__name__}")
    meta = obj.get("metadata")
    if not obj.get("apiVersion") or not obj.get("kind"):
        raise StallingError("object has no apiVersion or kind")
    if not isinstance(meta, dict):
        raise StallingError(f"{obj.get('kind')} has no metadata")
    if not meta.get("name") and not (not need_name and meta.get("generateName")):
        raise StallingError(f"{obj.get('kind')} has no metadata.name"
                            + ("" if need_name else " or metadata.generateName"))


def _apply_body(obj: dict[str, Any]) -> dict[str, Any]:
    """An apply body must not carry managedFields (the server refuses them); everything else is ours."""
    meta = obj.get("metadata") or {}
    if "managedFields" not in meta:
        return obj
    body = dict(obj)
    body["metadata"] = {k: v for k, v in meta.items() if k != "managedFields"}
    return body


# -- cluster configuration ----------------------------------------------------------------------------

@dataclass(frozen=True)
class ClusterEntry:
    """How to reach one cluster. `config` is Argo CD's cluster config JSON and never printed."""

    name: str
    server: str = ""
    kubeconfig: str | None = None
    context: str | None = None
    config: Mapping[str, Any] | None = field(default=None, repr=False)
    in_cluster: bool = False
    namespaces: tuple[str, ...] = ()


def _decode_secret_data(secret: Mapping[str, Any]) -> dict[str, str]:
    name = (secret.get("metadata") or {}).get("name", "<unnamed>")
    values: dict[str, str] = {}
    for key, value in (secret.get("data") or {}).items():
        try:
            values[str(key)] = base64.b64decode(str(value), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise ConfigurationError(
                f"cluster Secret {name!r}: data.{key} is not base64-encoded text") from None
    for key, value in (secret.get("stringData") or {}).items():
        values[str(key)] = str(value)
    return values


_SUPPORTED_CONFIG_KEYS = {"bearerToken", "username", "password", "tlsClientConfig", "execProviderConfig"}
_UNSUPPORTED_CONFIG_KEYS = {"awsAuthConfig": "AWS IAM authentication (awsAuthConfig)"}


def cluster_entry_from_secret(secret: Mapping[str, Any]) -> ClusterEntry:
    """An Argo CD declarative cluster Secret (label `argocd.argoproj.io/secret-type: cluster`; data
    `name`, `server`, `config`, `namespaces`) as a ClusterEntry. Pure: it reads nothing else.

    Errors name the Secret and the field, never a value.
    """
    meta = secret.get("metadata") or {}
    secret_name = str(meta.get("name") or "<unnamed>")
    labels = meta.get("labels") or {}
    if labels.get(CLUSTER_SECRET_LABEL) != "cluster":
        raise ConfigurationError(f"Secret {secret_name!r} is not a cluster Secret "
                                 f"(label {CLUSTER_SECRET_LABEL}=cluster is missing)")
    data = _decode_secret_data(secret)
    server = data.get("server", "").strip()
    if not server:
        raise ConfigurationError(f"cluster Secret {secret_name!r}: data.server is required")
    raw_config = data.get("config", "").strip() or "{}"
    try:
        config = json.loads(raw_config)
    except ValueError:
        raise ConfigurationError(f"cluster Secret {secret_name!r}: data.config is not valid JSON") from None
    if not isinstance(config, dict):
        raise ConfigurationError(f"cluster Secret {secret_name!r}: data.config must be a JSON object")
    for key, what in _UNSUPPORTED_CONFIG_KEYS.items():
        if config.get(key):
            raise ConfigurationError(f"cluster Secret {secret_name!r}: {what} is not supported; use a "
                                     f"bearerToken, client certificates or execProviderConfig")
    tls = config.get("tlsClientConfig") or {}
    if not isinstance(tls, dict):
        raise ConfigurationError(f"cluster Secret {secret_name!r}: config.tlsClientConfig must be an object")
    namespaces = tuple(n.strip() for n in data.get("namespaces", "").split(",") if n.strip())
    name = data.get("name", "").strip() or server
    return ClusterEntry(name=name, server=server.rstrip("/"), config=config, namespaces=namespaces)


def _kubeconfig_dict(entry: ClusterEntry) -> dict[str, Any]:
    """Argo CD's cluster config as a one-context kubeconfig, so the client's loader does auth and TLS."""
    config = dict(entry.config or {})
    tls = config.get("tlsClientConfig") or {}
    cluster: dict[str, Any] = {"server": entry.server}
    if tls.get("insecure"):
        cluster["insecure-skip-tls-verify"] = True
    if tls.get("caData"):
        cluster["certificate-authority-data"] = tls["caData"]
    if tls.get("serverName"):
        cluster["tls-server-name"] = tls["serverName"]
    user: dict[str, Any] = {}
    if config.get("bearerToken"):
        user["token"] = config["bearerToken"]
    if config.get("username"):
        user["username"] = config["username"]
        user["password"] = config.get("password", "")
    if tls.get("certData"):
        user["client-certificate-data"] = tls["certData"]
    if tls.get("keyData"):
        user["client-key-data"] = tls["keyData"]
    exec_config = config.get("execProviderConfig")
    if exec_config:
        env = exec_config.get("env") or {}
        user["exec"] = {
            "command": exec_config.get("command"), "args": list(exec_config.get("args") or []),
            "env": [{"name": k, "value": v} for k, v in env.items()] if isinstance(env, dict) else env,
            "apiVersion": exec_config.get("apiVersion", "client.authentication.k8s.io/v1beta1"),
        }
    return {
        "apiVersion": "v1", "kind": "Config", "current-context": entry.name,
        "clusters": [{"name": entry.name, "cluster": cluster}],
        "users": [{"name": entry.name, "user": user}],
        "contexts": [{"name": entry.name, "context": {"cluster": entry.name, "user": entry.name}}],
    }


def entries_from_kubeconfig(path: str | None) -> dict[str, ClusterEntry]:
    """One entry per context of a kubeconfig: the context name is the destination name."""
    try:
        contexts, _ = kube_config.list_kube_config_contexts(config_file=path)
    except _CONFIG_ERRORS as exc:
        raise ConfigurationError(
            f"cannot read kubeconfig {path or '$KUBECONFIG'}: {_first_line(exc)}") from None
    servers = _kubeconfig_servers(path)
    entries: dict[str, ClusterEntry] = {}
    for ctx in contexts or []:
        name = str(ctx.get("name") or "")
        cluster_name = str((ctx.get("context") or {}).get("cluster") or "")
        if name:
            entries[name] = ClusterEntry(name=name, server=servers.get(cluster_name, ""), kubeconfig=path,
                                         context=name)
    return entries


def _kubeconfig_servers(path: str | None) -> dict[str, str]:
    from_env = os.environ.get("KUBECONFIG", "").split(os.pathsep)[0]
    file = path or from_env or os.path.expanduser("~/.kube/config")
    try:
        with open(file, encoding="utf-8") as handle:
            doc = yaml.safe_load(handle) or {}
    except (OSError, yaml.YAMLError):
        return {}
    return {str(c.get("name")): str((c.get("cluster") or {}).get("server") or "").rstrip("/")
            for c in doc.get("clusters") or [] if isinstance(c, dict)}


class ClusterRegistry:
    """Maps an Application's destination to a Cluster; one Cluster object per destination per process."""

    def __init__(self, settings: Settings, extra: Mapping[str, ClusterEntry] | None = None, *,
                 cluster_options: Mapping[str, Any] | None = None) -> None:
        self.settings = settings
        self._entries: dict[str, ClusterEntry] = dict(extra or {})
        self._clusters: dict[str, Cluster] = {}
        self._kubeconfig_entries: dict[str, ClusterEntry] | None = None
        self._cluster_options = dict(cluster_options or {})
        self._lock = threading.RLock()

    # -- configuration -------------------------------------------------------------------------------

    def default_entry(self) -> ClusterEntry:
        """WaveCD's own cluster: Settings.kubeconfig/kube_context, else in-cluster, else $KUBECONFIG."""
        s = self.settings
        if s.kubeconfig or s.kube_context:
            return ClusterEntry(IN_CLUSTER_NAME, IN_CLUSTER_SERVER, kubeconfig=s.kubeconfig,
                                context=s.kube_context)
        if os.environ.get("KUBERNETES_SERVICE_HOST"):
            return ClusterEntry(IN_CLUSTER_NAME, IN_CLUSTER_SERVER, in_cluster=True)
        return ClusterEntry(IN_CLUSTER_NAME, IN_CLUSTER_SERVER)

    def add(self, entry: ClusterEntry) -> None:
        """Register (or replace) a cluster; a replaced cluster's client is dropped."""
        with self._lock:
            self._entries[entry.name] = entry
            old = self._clusters.pop(entry.name, None)
        if old is not None:
            old.close()

    def remove(self, name: str) -> None:
        """Forget a cluster (its Secret was deleted); its client is closed."""
        with self._lock:
            self._entries.pop(name, None)
            old = self._clusters.pop(name, None)
        if old is not None:
            old.close()

    def _kubeconfig_contexts(self) -> dict[str, ClusterEntry]:
        if self._kubeconfig_entries is None:
            default = self.default_entry()
            if default.in_cluster:
                self._kubeconfig_entries = {}
            else:
                try:
                    self._kubeconfig_entries = entries_from_kubeconfig(default.kubeconfig)
                except ConfigurationError as exc:
                    log.info("no kubeconfig contexts as destinations: %s", exc)
                    self._kubeconfig_entries = {}
        return self._kubeconfig_entries

    def names(self) -> list[str]:
        with self._lock:
            return sorted({IN_CLUSTER_NAME, *self._entries, *self._kubeconfig_contexts()})

    # -- lookups -------------------------------------------------------------------------------------

    def default(self) -> Cluster:
        return self._cluster(IN_CLUSTER_NAME)

    def _cluster(self, name: str) -> Cluster:
        with self._lock:
            cluster = self._clusters.get(name)
            if cluster is None:
                entry = self._entries.get(name)
                if entry is None and name == IN_CLUSTER_NAME:
                    entry = self.default_entry()
                if entry is None:
                    entry = self._kubeconfig_contexts().get(name)
                if entry is None:
                    raise ConfigurationError(f"unknown destination cluster {name!r} (known: "
                                             f"{', '.join(self.names())})")
                cluster = Cluster.from_entry(entry, **self._cluster_options)
                self._clusters[name] = cluster
            return cluster

    def _name_for_server(self, server: str) -> str | None:
        wanted = server.strip().rstrip("/")
        if wanted == IN_CLUSTER_SERVER:
            return IN_CLUSTER_NAME
        with self._lock:
            for entry in self._entries.values():
                if entry.server.rstrip("/") == wanted:
                    return entry.name
            for entry in self._kubeconfig_contexts().values():
                if entry.server and entry.server.rstrip("/") == wanted:
                    return entry.name
        return None

    def for_destination(self, destination: ApplicationDestination) -> Cluster:
        """The cluster an Application deploys to, by `destination.name` or `destination.server`."""
        name = (destination.name or "").strip()
        server = (destination.server or "").strip()
        if not name and not server:
            raise ConfigurationError("application destination needs a server or a name")
        if name:
            cluster = self._cluster(name)
            if server and server.rstrip("/") not in (cluster.server.rstrip("/"), self._entry_server(name)):
                raise ConfigurationError(f"application destination has both name {name!r} and server "
                                         f"{server!r}, and they name different clusters")
            return cluster
        by_server = self._name_for_server(server)
        if by_server is None:
            raise ConfigurationError(f"unknown destination server {server!r}: no cluster is configured "
                                     f"with that server (add an Argo CD cluster Secret or a kubeconfig "
                                     f"context)")
        return self._cluster(by_server)

    def _entry_server(self, name: str) -> str:
        if name == IN_CLUSTER_NAME:
            return IN_CLUSTER_SERVER
        entry = self._entries.get(name) or self._kubeconfig_contexts().get(name)
        return entry.server.rstrip("/") if entry else ""

    def close(self) -> None:
        with self._lock:
            clusters = list(self._clusters.values())
            self._clusters.clear()
        for cluster in clusters:
            cluster.close()
