"""Where the pipeline asks the app's project and cluster for permission: one call, one line at each site.

* `admit` at the start of a reconcile: the project exists and permits the app's namespace, sources and
  destination, and no source's credentials are scoped to another project, else a ProjectError (an
  `InvalidSpecError` condition; the app is never synced). `admit_source` is the same check for a read of
  the app's git content outside a reconcile.
* `window_gate` where a reconcile decides to sync: sync windows hold back automated syncs, and manual
  ones unless `manualSync`; the verdict is shown as a `SyncWindow` condition ("Sync Denied").
* `ensure_reachable` before the comparison: a cluster the background probe found down fails fast.
* `warn_orphans` after the comparison: Argo CD's orphaned resources warning, when the project asks.
* `refuse_plan` before the first wave: every planned object's kind (by the cluster's scope) and
  namespace must be permitted, else the sync fails before anything is applied, naming the objects.
Each reads the project fresh, so a project made stricter stops the very next sync.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from shared.cluster.kube_errors import UnknownKind
from shared.core.errors import TransientError, WaveCDError
from shared.core.models import Application
from shared.core.repo_url import redact_url
from shared.core.resources import ResourceKey
from shared.operation.model import ACTIVE_PHASES
from shared.pipeline import project_catalog as catalog
from shared.pipeline.project_declarative import namespaced_mode, project_clusters, read_project, refresh_declarative
from shared.pipeline.project_orphans import WARNING_CONDITION as ORPHAN_WARNING
from shared.pipeline.project_orphans import find_orphans, list_namespace, warning_message
from shared.project.model import AppProject, ProjectError, default_project
from shared.project.permissions import Destination
from shared.project.verdict import PlannedResource, app_violations, namespaced_mode_violations, resource_violations
from shared.project.windows import BLOCKED_MESSAGE, WindowVerdict, window_state

if TYPE_CHECKING:
    from collections.abc import Callable

    from shared.cluster.client import Cluster, ClusterRegistry
    from shared.pipeline.desired_state import DesiredState
    from shared.pipeline.services import Services

__all__ = ["Admitted", "ClusterUnreachable", "admit", "admit_source", "ensure_reachable", "ensure_repo_scope",
           "refuse_plan", "repo_scope_problems", "resolve_destination", "warn_orphans", "window_gate"]

log = logging.getLogger(__name__)

SYNC_WINDOW_CONDITION = "SyncWindow"
UNREACHABLE_HOLD = 30.0
INVALID_TASKS = "one or more synchronization tasks are not valid"


@dataclass(frozen=True)
class Admitted:
    project: AppProject
    destination: Destination
    resuming: bool = False  # an operation is running: the reconcile resumes it and decides nothing else


def resolve_destination(registry: ClusterRegistry, app: Application) -> Destination:
    """The app's destination with both the cluster's server and its name, as Argo CD infers them before
    it checks the project; a destination naming no known cluster is a ConfigurationError."""
    from shared.cluster.client import IN_CLUSTER_NAME, IN_CLUSTER_SERVER

    dst = app.spec.destination
    name, server = (dst.name or "").strip(), (dst.server or "").strip().rstrip("/")
    cluster = registry.for_destination(dst)
    if cluster.name == IN_CLUSTER_NAME:
        return Destination(server or IN_CLUSTER_SERVER, name or IN_CLUSTER_NAME, dst.namespace)
    return Destination(server or cluster.server.rstrip("/"), name or cluster.name, dst.namespace)


def admit(svc: Services, app: Application, operation: dict[str, Any] | None) -> Admitted:
    """The app's project and resolved destination; a ProjectError when the project refuses the app.

    While an operation runs (a chain being resumed; `operation` is the app's stored one, if any) the project
    is not judged again: it judged that operation's objects at its start, as Argo CD validates a sync when
    it starts, and it judges the next.
    """
    refresh_declarative(svc)
    ensure_repo_scope(svc, app)
    destination = resolve_destination(svc.clusters, app)
    if (operation or {}).get("phase") in ACTIVE_PHASES:
        return Admitted(default_project(svc.settings.app_namespace), destination, resuming=True)
    project = read_project(svc, app.spec.project)
    problems = app_violations(project, app, destination, svc.settings.app_namespace,
                              project_clusters(svc, project.name))
    if problems:
        raise ProjectError("; ".join(problems))
    return Admitted(project, destination)


def repo_scope_problems(svc: Services, app: Application) -> list[str]:
    """Argo CD's project-scoped repositories: a repository Secret with `project: p` serves only apps of p.

    The git cache holds one clone per repository, fetched with the credential `CredentialStore.for_url`
    gives the fetch (unscoped first), or with whichever credential matched at an earlier fetch. When any
    Secret for the repository is scoped to another project, an app may read the clone only if what Argo
    CD would fetch it with, its own project's credential or an unscoped one or none at all, reaches the
    repository too (an ls-remote, remembered a few minutes); else it is refused, naming no other project.
    Credentials in the app's own URL do not count: the fetch ignores them when a Secret matches."""
    repos = svc.repos
    credentials = repos.credentials
    project = app.spec.project or "default"
    sources = ([app.spec.source] if app.spec.source else []) + list(app.spec.sources or [])
    problems = []
    for source in sources:
        url = source.repo_url
        if not credentials.scoped_to_others(url, project):
            continue
        own = credentials.for_url(url, project)
        refused = repos.probe(url, own)
        if refused is not None:
            why = (f"the credentials of project '{project}' for it are refused" if own is not None
                   else f"project '{project}' has no credentials for it")
            problems.append(f"repository {redact_url(url)} is declared for another project and {why} ({refused})")
    return problems


def ensure_repo_scope(svc: Services, app: Application) -> None:
    """ProjectError (InvalidSpecError) when a source's repository credentials belong to another project."""
    problems = repo_scope_problems(svc, app)
    if problems:
        raise ProjectError("; ".join(dict.fromkeys(problems)))


def admit_source(svc: Services, app: Application) -> None:
    """What reading the app's git content (outside a reconcile, e.g. `app manifests`) needs: the project
    exists and permits the app, and the repository's credentials serve the app's project."""
    refresh_declarative(svc)
    ensure_repo_scope(svc, app)
    project = read_project(svc, app.spec.project)
    problems = app_violations(project, app, resolve_destination(svc.clusters, app), svc.settings.app_namespace,
                              project_clusters(svc, project.name))
    if problems:
        raise ProjectError("; ".join(problems))


class ClusterUnreachable(TransientError):
    """The destination cluster failed its last probe: the comparison is skipped instead of waiting on it."""


def ensure_reachable(svc: Services, admitted: Admitted, now: float | None = None) -> None:
    """Fail fast when the background probe found the app's cluster unreachable in the last
    UNREACHABLE_HOLD seconds, so apps on a dead cluster do not hold workers other clusters' apps need."""
    status = catalog.connection(svc.redis, admitted.destination.name)
    moment = time.time() if now is None else now
    if status is None or status.status != "Failed" or moment - status.at > UNREACHABLE_HOLD:
        return
    raise ClusterUnreachable(f"cluster '{admitted.destination.name}' is unreachable (probed {moment - status.at:.0f}s "
                             f"ago: {status.message}); compared again once it answers")


def window_gate(admitted: Admitted, app: Application, start: tuple[dict[str, Any], bool] | None,
                status: dict[str, Any], now: float | None = None) -> tuple[dict[str, Any], bool] | None:
    """`start` unless a sync window holds it back; records the window verdict as a condition."""
    if admitted.resuming:
        return None
    moment = datetime.fromtimestamp(time.time() if now is None else now, UTC)
    state = window_state(admitted.project, app.name, admitted.destination, moment)
    if state is None:
        return start
    conditions = status.setdefault("conditions", [])
    if state.verdict != WindowVerdict.ALLOWED:
        conditions.append({"type": SYNC_WINDOW_CONDITION, "message": state.condition_message(),
                           "lastTransitionTime": moment.strftime("%Y-%m-%dT%H:%M:%SZ")})
    if start is None:
        return None
    _request, automated = start
    if automated and state.verdict != WindowVerdict.ALLOWED:
        return None
    if not automated and state.verdict == WindowVerdict.DENIED:
        conditions.append({"type": "SyncError", "message": BLOCKED_MESSAGE,
                           "lastTransitionTime": moment.strftime("%Y-%m-%dT%H:%M:%SZ")})
        return None
    return start


def warn_orphans(svc: Services, admitted: Admitted, app: Application, cluster: Cluster,
                 status: dict[str, Any]) -> None:
    """With the project's orphanedResources set (warn defaults to true, as in Argo CD): an
    `OrphanedResourceWarning` when the destination namespace holds objects no app tracks."""
    settings = admitted.project.spec.orphaned_resources
    namespace = app.spec.destination.namespace
    if settings is None or not namespace or settings.warn is False:
        return
    try:
        orphans = find_orphans(admitted.project, list_namespace(cluster, namespace), namespace)
    except WaveCDError as exc:
        log.warning("app %s: orphaned resources not checked: %s", app.name, exc)
        return
    if orphans:
        status.setdefault("conditions", []).append({
            "type": ORPHAN_WARNING, "message": warning_message(len(orphans)),
            "lastTransitionTime": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")})


def _scope_from_crds(objects: list[dict[str, Any]]) -> dict[tuple[str, str], bool]:
    scopes = {}
    for obj in objects:
        if obj.get("kind") == "CustomResourceDefinition" and str(obj.get("apiVersion", "")).startswith(
                "apiextensions.k8s.io/"):
            spec = obj.get("spec") or {}
            names = spec.get("names") or {}
            scopes[(str(spec.get("group", "")), str(names.get("kind", "")))] = spec.get("scope") != "Cluster"
    return scopes


def planned_resources(cluster: Cluster, records: list[dict[str, Any]],
                      desired_objects: list[dict[str, Any]]) -> list[PlannedResource]:
    """The objects of the planned steps with their scope as the cluster serves it (a CRD in the same
    sync decides for its kind; a kind nobody knows is judged both ways)."""
    crd_scopes = _scope_from_crds(desired_objects)
    found: list[PlannedResource] = []
    for record in records:
        for item in record.get("objects") or []:
            if item.get("action") == "prune-skipped":
                continue
            key = ResourceKey.from_dict(item)
            scopes: tuple[bool, ...]
            try:
                scopes = (cluster.info_for_key(key, item.get("apiVersion") or None).namespaced,)
            except UnknownKind:
                known = crd_scopes.get((key.group, key.kind))
                scopes = (known,) if known is not None else (False, True)
            for namespaced in scopes:
                found.append(PlannedResource(key.group, key.kind, key.namespace, key.name, namespaced))
    return found


def refuse_plan(svc: Services, app: Application | None, cluster: Cluster | None, progress: dict[str, Any],
                desired: Callable[[], DesiredState]) -> str | None:
    """Why the project refuses this operation's objects, or None. Reads the project fresh; `desired`
    (the rendered manifests, for CRDs of the same sync) is loaded only when there are objects."""
    assert app is not None and cluster is not None
    try:
        project = read_project(svc, app.spec.project)
    except ProjectError as exc:
        return str(exc)
    records = list(progress.get("steps") or []) + list(progress.get("syncFailSteps") or [])
    namespace_to_create = progress.get("namespaceToCreate")
    if not namespace_to_create and not any(record.get("objects") for record in records):
        return None
    resources = planned_resources(cluster, records, desired().objects) if records else []
    if namespace_to_create:  # CreateNamespace=true creates a Namespace: a cluster-scoped kind like any other
        resources.insert(0, PlannedResource("", "Namespace", "", str(namespace_to_create), False))
    destination = resolve_destination(svc.clusters, app)
    violations = resource_violations(project, destination, resources, project_clusters(svc, project.name))
    scope = namespaced_mode(svc, destination.name)
    if scope is not None:
        violations += namespaced_mode_violations(scope[0], scope[1], destination.namespace, resources)
    if not violations:
        return None
    shown = "; ".join(str(v) for v in violations[:5])
    more = f" (and {len(violations) - 5} more)" if len(violations) > 5 else ""
    return f"{INVALID_TASKS}: {shown}{more}"
