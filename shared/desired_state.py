"""What git wants for an app at a commit: rendered (from the shared cache), placed and tracked.

Both the `diff` step and each `wave_apply` step need the same objects; rendering is cached in Redis by
tree id, so a step re-derives them cheaply instead of carrying manifest bodies in task arguments.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from shared import hooks
from shared.errors import ConfigurationError
from shared.manifests import DirectoryOptions
from shared.models import Application
from shared.render import render_app
from shared.resources import ResourceKey

if TYPE_CHECKING:
    from shared.cluster import Cluster
    from shared.services import Services


@dataclass
class DesiredState:
    commit: str
    tree_id: str
    renderer: str
    objects: list[dict[str, Any]]            # every object, hooks included, placed and tracked
    api_versions: dict[ResourceKey, str] = field(default_factory=dict)

    @property
    def managed(self) -> list[dict[str, Any]]:
        """The objects whose sync status counts: hooks and skipped objects are not compared."""
        return [o for o in self.objects if not hooks.is_hook(o) and not hooks.is_skipped(o)]

    def by_key(self) -> dict[ResourceKey, dict[str, Any]]:
        return {ResourceKey.from_object(o): o for o in self.objects if not hooks.is_hook(o)}


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
    objects = []
    api_versions: dict[ResourceKey, str] = {}
    for obj in rendered.objects:
        placed = cluster.prepare(obj, namespace, app.name, svc.settings.tracking_method)
        objects.append(placed)
        api_versions[ResourceKey.from_object(placed)] = str(placed.get("apiVersion", ""))
    return DesiredState(commit, rendered.tree_id, rendered.renderer, objects, api_versions)
