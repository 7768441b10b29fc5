"""What git wants for an app at a commit: rendered (from the shared cache), placed and tracked.

Both the `diff` step and each `wave_apply` step need the same objects; rendering is cached in Redis by
tree id, so a step re-derives them cheaply instead of carrying manifest bodies in task arguments.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from shared.cluster.kube_errors import UnknownKind
from shared.core.errors import ConfigurationError
from shared.core.models import Application
from shared.core.resources import ResourceKey
from shared.core.tracking import stamp
from shared.source.manifests import DirectoryOptions
from shared.source.render import render_app
from shared.sync import hooks

if TYPE_CHECKING:
    from shared.cluster.client import Cluster
    from shared.pipeline.services import Services


@dataclass
class DesiredState:
    commit: str
    tree_id: str
    renderer: str
    objects: list[dict[str, Any]]            # every object, hooks included, placed and tracked
    api_versions: dict[ResourceKey, str] = field(default_factory=dict)

    @cached_property
    def index(self) -> dict[ResourceKey, dict[str, Any]]:
        """Non-hook objects by key: a step looks up each of its objects here, not by scanning."""
        return {ResourceKey.from_object(o): o for o in self.objects if not hooks.is_hook(o)}

    @property
    def managed(self) -> list[dict[str, Any]]:
        """The objects whose sync status counts: hooks and skipped objects are not compared."""
        return [o for o in self.objects if not hooks.is_hook(o) and not hooks.is_skipped(o)]


def resolve_commit(svc: Services, app: Application, revision: str | None = None) -> str:
    """The commit `revision` (default: the app's targetRevision) names now, fetching when needed."""
    source = app.spec.primary_source
    wanted = revision or source.target_revision
    try:
        return svc.repos.resolve(source.repo_url, wanted)
    except ConfigurationError:
        svc.repos.fetch(source.repo_url)
        return svc.repos.resolve(source.repo_url, wanted)


def load_desired(svc: Services, app: Application, commit: str, cluster: Cluster, *,
                 hard: bool = False) -> DesiredState:
    """`hard` (a hard refresh) renders again instead of trusting the shared render cache."""
    source = app.spec.primary_source
    options = DirectoryOptions.from_source(source.directory)
    try:
        rendered = render_app(svc.repos, svc.redis, source.repo_url, commit, source.path, options, refresh=hard)
    except ConfigurationError:
        # The commit is not in this host's cache yet (another host fetched it): fetch once, retry.
        svc.repos.fetch(source.repo_url)
        rendered = render_app(svc.repos, svc.redis, source.repo_url, commit, source.path, options, refresh=hard)
    namespace = app.spec.destination.namespace
    crd_scopes = _crd_scopes(rendered.objects)
    objects = []
    api_versions: dict[ResourceKey, str] = {}
    for obj in rendered.objects:
        try:
            placed = cluster.prepare(obj, namespace, app.name, svc.settings.tracking_method)
        except UnknownKind:
            # A custom resource whose CRD is in this same app and not applied yet: its scope comes from
            # that CRD, and the sync applies the CRD first (kind order), as Argo CD does.
            group = str(obj.get("apiVersion", "")).rpartition("/")[0]
            scope = crd_scopes.get((group, str(obj.get("kind", ""))))
            if scope is None:
                raise
            placed = _place(obj, namespace if scope == "Namespaced" else None, app.name,
                            svc.settings.tracking_method)
        objects.append(placed)
        api_versions[ResourceKey.from_object(placed)] = str(placed.get("apiVersion", ""))
    return DesiredState(commit, rendered.tree_id, rendered.renderer, objects, api_versions)


def _crd_scopes(objects: list[dict[str, Any]]) -> dict[tuple[str, str], str]:
    """(group, kind) -> scope for every CustomResourceDefinition among `objects`."""
    scopes = {}
    for obj in objects:
        if obj.get("kind") == "CustomResourceDefinition" and str(obj.get("apiVersion", "")).startswith(
                "apiextensions.k8s.io/"):
            spec = obj.get("spec") or {}
            kind = (spec.get("names") or {}).get("kind")
            if spec.get("group") and kind:
                scopes[(str(spec["group"]), str(kind))] = str(spec.get("scope") or "Namespaced")
    return scopes


def _place(obj: dict[str, Any], namespace: str | None, app_name: str, method: str) -> dict[str, Any]:
    """What `Cluster.prepare` does, for a kind discovery cannot know yet."""
    meta = dict(obj.get("metadata") or {})
    for part in ("annotations", "labels"):
        if isinstance(meta.get(part), dict):
            meta[part] = dict(meta[part])
    if namespace is None:
        meta.pop("namespace", None)
    else:
        meta["namespace"] = meta.get("namespace") or namespace or "default"
    out = {**obj, "metadata": meta}
    stamp(out, app_name, method, ResourceKey.from_object(out))
    return out
