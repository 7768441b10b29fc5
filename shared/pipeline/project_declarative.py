"""Reads Argo CD's declarative setup from the control cluster: AppProjects, cluster Secrets and
repository Secrets, and keeps this process's cluster clients and git credentials current with them.

Secrets are read here and handed to the cluster registry and the credential store; only summaries
(names, servers, URLs, which kind of credential) leave this module. Listing is throttled per process
(`REFRESH_SECONDS`), and a cluster client is rebuilt only when its Secret's content changed.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import threading
import time
import weakref
from typing import TYPE_CHECKING, Any

from shared.cluster.kube_errors import UnknownKind
from shared.core.errors import ConfigurationError, WaveCDError
from shared.core.resources import ResourceKey
from shared.core.thread_pools import thread_pool
from shared.pipeline import project_catalog as catalog
from shared.pipeline.project_catalog import ClusterSummary, ConnectionStatus, cluster_summary, repo_summary
from shared.project.model import DEFAULT_PROJECT, KIND, AppProject, ProjectError, default_project
from shared.project.permissions import Destination, invalid_project_name
from shared.project.verdict import missing_project_message
from shared.state import keys

if TYPE_CHECKING:
    from shared.cluster.client import Cluster, ClusterEntry, ClusterRegistry
    from shared.pipeline.services import Services
    from shared.source.git_credentials import RepoCredential
    from shared.source.git_source import RepoCache

log = logging.getLogger(__name__)

REFRESH_SECONDS = 10.0
SECRET_TYPE_LABEL = "argocd.argoproj.io/secret-type"


def _project_key(namespace: str, name: str, group: str) -> ResourceKey:
    return ResourceKey(group, KIND, namespace, name)


def read_project(svc: Services, name: str) -> AppProject:
    """The AppProject an app names, read fresh from the control cluster.

    `default` is Argo CD's allow-everything project unless one is declared; any other name that is not
    declared (or not a valid name) is an error, never a fall back to `default`.
    """
    if invalid_project_name(name):
        raise ProjectError(missing_project_message(name))
    settings = svc.settings
    cluster = svc.clusters.default()
    try:
        obj = cluster.get(_project_key(settings.app_namespace, name, settings.app_api_group),
                          api_version=f"{settings.app_api_group}/{settings.app_api_version}", fresh=True)
    except UnknownKind:
        obj = None  # the AppProject CRD is not installed: only `default` exists
    if obj is None:
        if name == DEFAULT_PROJECT:
            return default_project(settings.app_namespace)
        raise ProjectError(missing_project_message(name))
    return AppProject.parse(obj)


def list_projects(cluster: Cluster, namespace: str, group: str, version: str) -> list[dict[str, Any]]:
    """Every AppProject object in `namespace` ([] when the CRD is not installed)."""
    try:
        info = cluster.resource_info(f"{group}/{version}", KIND)
    except UnknownKind:
        return []
    body = cluster.transport.request("GET", info.path(namespace), verb="list",
                                     what=f"appprojects.{group} in namespace {namespace}", kind=KIND) or {}
    return list(body.get("items") or [])


def list_typed_secrets(cluster: Cluster, namespace: str, secret_type: str) -> list[dict[str, Any]]:
    """Secrets labelled `argocd.argoproj.io/secret-type=<secret_type>` (full objects: keep them local)."""
    info = cluster.resource_info("v1", "Secret")
    body = cluster.transport.request("GET", info.path(namespace), verb="list",
                                     what=f"{secret_type} Secrets in {namespace}", kind="Secret",
                                     query=[("labelSelector", f"{SECRET_TYPE_LABEL}={secret_type}")]) or {}
    return list(body.get("items") or [])


# -- keeping the process's registries current ---------------------------------------------------------

class _Seen:
    """What this process last loaded from Secrets, per registry / repo cache."""

    def __init__(self) -> None:
        self.at = 0.0
        self.clusters: dict[str, ClusterEntry] = {}
        self.cluster_projects: dict[str, str] = {}
        self.cluster_resources: dict[str, bool] = {}
        self.base_credentials: list[RepoCredential] | None = None
        self.repo_secrets: tuple[RepoCredential, ...] = ()


_seen: weakref.WeakKeyDictionary[Any, _Seen] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def _secret_field(secret: dict[str, Any], key: str) -> str:
    if key in (secret.get("stringData") or {}):
        return str(secret["stringData"][key])
    raw = (secret.get("data") or {}).get(key)
    try:
        return base64.b64decode(str(raw), validate=True).decode("utf-8") if raw else ""
    except (binascii.Error, UnicodeDecodeError):
        return ""


def cluster_entries(secrets: list[dict[str, Any]]) -> list[tuple[ClusterEntry, str, bool]]:
    """(entry, project, clusterResources) for every valid cluster Secret; invalid ones are logged by name
    and skipped."""
    from shared.cluster.client import cluster_entry_from_secret

    found = []
    for secret in secrets:
        try:
            entry = cluster_entry_from_secret(secret)
        except ConfigurationError as exc:
            log.warning("%s", exc)
            continue
        found.append((entry, _secret_field(secret, "project").strip(),
                      _secret_field(secret, "clusterResources").strip().lower() == "true"))
    return found


def sync_cluster_entries(registry: ClusterRegistry, entries: list[ClusterEntry], seen: _Seen) -> list[str]:
    """Register cluster entries whose content changed (their clients are rebuilt) and forget those whose
    Secret is gone; returns the names registered or forgotten."""
    changed = []
    current = {entry.name for entry in entries}
    for name in [n for n in seen.clusters if n not in current]:
        registry.remove(name)
        del seen.clusters[name]
        changed.append(name)
    for entry in entries:
        if seen.clusters.get(entry.name) != entry:
            registry.add(entry)
            seen.clusters[entry.name] = entry
            changed.append(entry.name)
    return changed


def repo_credentials(secrets: list[dict[str, Any]]) -> list[RepoCredential]:
    """Credentials of every valid repository / repo-creds Secret; a broken one is logged and skipped."""
    from shared.source.git_credentials import credentials_from_secrets

    found: list[RepoCredential] = []
    for secret in secrets:
        try:
            found.extend(credentials_from_secrets([secret]))
        except ConfigurationError as exc:
            log.warning("repository Secret skipped: %s", exc)
    return found


def sync_repo_credentials(repos: RepoCache, credentials: list[RepoCredential], seen: _Seen) -> bool:
    """Put repository / repo-creds Secrets before the credentials file's entries; True when changed."""
    from shared.source.git_credentials import CredentialStore

    if seen.base_credentials is None:
        seen.base_credentials = list(repos.credentials.entries)
    entries = tuple(credentials)
    if entries == seen.repo_secrets:
        return False
    seen.repo_secrets = entries
    repos.credentials = CredentialStore([*entries, *seen.base_credentials])
    return True


def project_clusters(svc: Services, project: str) -> list[Destination]:
    """The clusters whose Secret names `project` (Argo CD's project-scoped clusters), as this process
    last loaded them."""
    seen = _seen.get(svc.clusters)
    if seen is None:
        return []
    return [Destination(entry.server.rstrip("/"), entry.name, "") for name, entry in seen.clusters.items()
            if seen.cluster_projects.get(name) == project]


def namespaced_mode(svc: Services, cluster_name: str) -> tuple[tuple[str, ...], bool] | None:
    """(namespaces, clusterResources) when the cluster's Secret lists namespaces (Argo CD's namespaced
    mode), else None."""
    seen = _seen.get(svc.clusters)
    if seen is None:
        return None
    entry = seen.clusters.get(cluster_name)
    if entry is None or not entry.namespaces:
        return None
    return entry.namespaces, seen.cluster_resources.get(cluster_name, False)


def refresh_declarative(svc: Services, *, force: bool = False) -> None:
    """At most every REFRESH_SECONDS per process: load cluster and repository Secrets from WaveCD's
    namespace into this process's cluster registry and git credential store. Failures are logged and
    the previous configuration stays in force."""
    registry = svc.clusters
    with _lock:
        seen = _seen.get(registry)
        if seen is None:
            seen = _seen[registry] = _Seen()
        if not force and time.monotonic() - seen.at < REFRESH_SECONDS:
            return
        seen.at = time.monotonic()
    settings = svc.settings
    namespace = settings.app_namespace
    try:
        control = registry.default()
        found = cluster_entries(list_typed_secrets(control, namespace, "cluster"))
        sync_cluster_entries(registry, [entry for entry, _, _ in found], seen)
        seen.cluster_projects = {entry.name: project for entry, project, _ in found if project}
        seen.cluster_resources = {entry.name: allowed for entry, _, allowed in found}
        credentials = repo_credentials(list_typed_secrets(control, namespace, "repository")
                                       + list_typed_secrets(control, namespace, "repo-creds"))
        sync_repo_credentials(svc.repos, credentials, seen)
        projects = list_projects(control, namespace, settings.app_api_group, settings.app_api_version)
    except WaveCDError as exc:
        log.warning("declarative clusters/repositories not refreshed: %s", exc)
        return
    from shared.cluster.client import IN_CLUSTER_NAME, IN_CLUSTER_SERVER

    summaries = [ClusterSummary(name=IN_CLUSTER_NAME, server=IN_CLUSTER_SERVER, source="in-cluster")]
    summaries += [cluster_summary(entry, project) for entry, project, _ in found]
    if not any((p.get("metadata") or {}).get("name") == DEFAULT_PROJECT for p in projects):
        projects.append(default_project(namespace).dump())
    catalog.publish(svc.redis, projects=projects, clusters=summaries,
                    repos=[*(repo_summary(c) for c in credentials),
                           *(repo_summary(c, "file") for c in seen.base_credentials or [])])
    probe_clusters(svc, [s.name for s in summaries], force=force)


# -- connection status ------------------------------------------------------------------------------------

_probing: set[str] = set()
_probing_pid = [os.getpid()]


def _probe_one(svc: Services, name: str) -> None:
    from shared.core.models import ApplicationDestination

    try:
        cluster = svc.clusters.for_destination(ApplicationDestination(name=name))
        version = cluster.transport.get_json("/version") or {}
        status = ConnectionStatus(status="Successful", version=str(version.get("gitVersion") or ""), at=time.time())
    except WaveCDError as exc:
        status = ConnectionStatus(status="Failed", message=str(exc)[:300], at=time.time())
    except Exception as exc:  # noqa: BLE001 - a probe thread must record something, never die silently
        log.exception("probe of cluster %s failed unexpectedly", name)
        status = ConnectionStatus(status="Failed", message=f"probe failed: {type(exc).__name__}", at=time.time())
    finally:
        with _lock:
            _probing.discard(name)
    catalog.record_connection(svc.redis, name, status)


def probe_clusters(svc: Services, names: list[str], *, force: bool = False) -> None:
    """Ask each cluster its version in the background (never blocking the caller; one probe in flight
    per cluster and process, and, unless `force`, one per REFRESH_SECONDS across all processes), and
    record Successful or Failed with the reason, as `argocd cluster list` shows."""
    if not force:
        names = [n for n in names if svc.redis.set(keys.catalog_probing(n), os.getpid(), nx=True,
                                                   ex=max(1, int(REFRESH_SECONDS)))]
    with _lock:
        if _probing_pid[0] != os.getpid():  # a forked worker child: the parent's probes never finish here
            _probing_pid[0] = os.getpid()
            _probing.clear()
        todo = [n for n in names if n not in _probing]
        _probing.update(todo)
    pool = thread_pool("probe", 4)
    for name in todo:
        pool.submit(_probe_one, svc, name)
