"""The two questions the pipeline asks a project, answered without I/O.

* `app_violations`: may this Application use this project at all (its namespace, every source, its
  destination)? A violation is an `InvalidSpecError` condition and the app is never synced.
* `resource_violations`: may this sync apply these objects (kind by scope, then namespace)? Any
  violation fails the sync before the first wave, naming the object, as Argo CD's permission validator
  does. The scope comes from the cluster's discovery, never from whether a manifest carries a namespace,
  so a cluster-scoped kind written with `metadata.namespace` is still judged as cluster-scoped.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from shared.core.models import Application
from shared.project.model import AppProject
from shared.project.permissions import (
    Destination,
    app_namespace_permitted,
    destination_message,
    destination_permitted,
    group_kind_permitted,
    namespace_message,
    repo_message,
    resource_message,
    source_permitted,
)

__all__ = ["PlannedResource", "ResourceViolation", "app_violations", "missing_project_message",
           "namespaced_mode_violations", "resource_violations"]


@dataclass(frozen=True)
class PlannedResource:
    group: str
    kind: str
    namespace: str
    name: str
    namespaced: bool

    def __str__(self) -> str:
        where = f"{self.namespace}/" if self.namespaced and self.namespace else ""
        return f"{self.group or 'core'}/{self.kind} {where}{self.name}"


@dataclass(frozen=True)
class ResourceViolation:
    resource: PlannedResource
    message: str

    def __str__(self) -> str:
        return f"{self.resource}: {self.message}"


def namespaced_mode_violations(namespaces: Collection[str], cluster_resources: bool, default_namespace: str,
                               resources: list[PlannedResource]) -> list[ResourceViolation]:
    """A cluster whose Secret lists `namespaces` is managed in namespaced mode, as in Argo CD: objects in
    other namespaces, and cluster-scoped objects unless `clusterResources` is true, are refused."""
    found = []
    for res in resources:
        if not res.namespaced:
            if not cluster_resources:
                found.append(ResourceViolation(
                    res, f'Cluster level {res.kind} "{res.name}" can not be managed when in namespaced mode'))
            continue
        namespace = res.namespace or default_namespace
        if namespace not in namespaces:
            found.append(ResourceViolation(res, f'Namespace "{namespace}" for {res.kind} "{res.name}" is not managed'))
    return found


def missing_project_message(name: str) -> str:
    return f"Application referencing project {name} which does not exist"


def app_violations(project: AppProject, app: Application, dest: Destination, control_namespace: str,
                   project_clusters: Collection[Destination] = ()) -> list[str]:
    """Argo CD's ValidateAppProject findings for `app` under `project`; [] when it may proceed
    (`project_clusters`: the clusters scoped to the project, for permitOnlyProjectScopedClusters)."""
    name = project.name
    problems: list[str] = []
    if not app_namespace_permitted(project, app.namespace, control_namespace):
        problems.append(f'app is not allowed in project "{name}", or the project does not exist')
    sources = [s for s in ([app.spec.source] if app.spec.source else []) + list(app.spec.sources or [])]
    for source in sources:
        if not source_permitted(project, source.repo_url):
            problems.append(repo_message(source.repo_url, name))
    if not destination_permitted(project, dest, project_clusters):
        problems.append(destination_message(dest, name))
    return problems


def resource_violations(project: AppProject, dest: Destination, resources: list[PlannedResource],
                        project_clusters: Collection[Destination] = ()) -> list[ResourceViolation]:
    """Every planned object the project does not permit, in plan order."""
    found: list[ResourceViolation] = []
    for res in resources:
        if not group_kind_permitted(project, res.group, res.kind, res.namespaced, res.name):
            found.append(ResourceViolation(res, resource_message(res.group, res.kind, project.name)))
            continue
        if res.namespaced:
            namespace = res.namespace or dest.namespace
            if not destination_permitted(project, Destination(dest.server, dest.name, namespace), project_clusters):
                found.append(ResourceViolation(res, namespace_message(namespace, project.name)))
    return found
