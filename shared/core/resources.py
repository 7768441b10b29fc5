"""How WaveCD names a Kubernetes object, and Argo CD's tracking id that ties an object to an app.

Every layer (manifests, plan, diff, apply, prune, status) talks about objects by the same key, so the
key and its text forms live in one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

TRACKING_ANNOTATION = "argocd.argoproj.io/tracking-id"
INSTANCE_LABEL = "app.kubernetes.io/instance"
SYNC_WAVE_ANNOTATION = "argocd.argoproj.io/sync-wave"
SYNC_OPTIONS_ANNOTATION = "argocd.argoproj.io/sync-options"
HOOK_ANNOTATION = "argocd.argoproj.io/hook"
HOOK_DELETE_POLICY_ANNOTATION = "argocd.argoproj.io/hook-delete-policy"
HELM_HOOK_ANNOTATION = "helm.sh/hook"
IGNORE_HEALTHCHECK_ANNOTATION = "argocd.argoproj.io/ignore-healthcheck"
COMPARE_OPTIONS_ANNOTATION = "argocd.argoproj.io/compare-options"
MANIFEST_GENERATE_PATHS_ANNOTATION = "argocd.argoproj.io/manifest-generate-paths"
WAVE_TIMEOUT_ANNOTATION = "wavecd.io/wave-timeout"
RESOURCES_FINALIZER = "resources-finalizer.argocd.argoproj.io"


def split_api_version(api_version: str) -> tuple[str, str]:
    """`apps/v1` -> (`apps`, `v1`); `v1` -> (``, `v1`): the core group is the empty string."""
    if "/" in api_version:
        group, version = api_version.split("/", 1)
        return group, version
    return "", api_version


@dataclass(frozen=True, order=True, slots=True)
class ResourceKey:
    """group/kind/namespace/name: what Argo CD calls a ResourceKey. The core group is ``."""

    group: str
    kind: str
    namespace: str
    name: str

    @classmethod
    def from_object(cls, obj: dict[str, Any], default_namespace: str = "") -> ResourceKey:
        meta = obj.get("metadata") or {}
        group, _ = split_api_version(str(obj.get("apiVersion", "")))
        return cls(group, str(obj.get("kind", "")), str(meta.get("namespace") or default_namespace),
                   str(meta.get("name", "")))

    @property
    def group_kind(self) -> str:
        """`apps/Deployment`, or `/Service` for the core group, as in tracking ids."""
        return f"{self.group}/{self.kind}"

    def tracking_id(self, app_name: str) -> str:
        """Argo CD's exact tracking id: `<app>:<group>/<kind>:<namespace>/<name>`."""
        return f"{app_name}:{self.group}/{self.kind}:{self.namespace}/{self.name}"

    def __str__(self) -> str:
        ns = f"{self.namespace}/" if self.namespace else ""
        kind = f"{self.kind}.{self.group}" if self.group else self.kind
        return f"{kind} {ns}{self.name}"

    def to_dict(self) -> dict[str, str]:
        return {"group": self.group, "kind": self.kind, "namespace": self.namespace, "name": self.name}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ResourceKey:
        return cls(str(data.get("group", "")), str(data["kind"]), str(data.get("namespace", "")),
                   str(data["name"]))


@dataclass(frozen=True, slots=True)
class TrackingId:
    """A parsed tracking id; `None` from `parse` when the text is not one."""

    app_name: str
    key: ResourceKey

    @classmethod
    def parse(cls, text: str | None) -> TrackingId | None:
        if not text or ":" not in text:
            return None
        try:
            app, group_kind, ns_name = text.split(":", 2)
            group, kind = group_kind.split("/", 1)
            namespace, name = ns_name.split("/", 1)
        except ValueError:
            return None
        if not app or not kind or not name:
            return None
        return cls(app, ResourceKey(group, kind, namespace, name))


def tracking_app_of(obj: dict[str, Any]) -> str | None:
    """The app that owns a live object by its tracking annotation (or instance label), if any."""
    meta = obj.get("metadata") or {}
    parsed = TrackingId.parse((meta.get("annotations") or {}).get(TRACKING_ANNOTATION))
    if parsed is not None:
        return parsed.app_name
    label = (meta.get("labels") or {}).get(INSTANCE_LABEL)
    return str(label) if label else None


def annotation(obj: dict[str, Any], name: str) -> str | None:
    value = ((obj.get("metadata") or {}).get("annotations") or {}).get(name)
    return None if value is None else str(value)


def parse_options(text: str | None) -> dict[str, str]:
    """`Prune=false,Replace=true` -> {"Prune": "false", "Replace": "true"} (Argo CD's sync-options form)."""
    result: dict[str, str] = {}
    for part in (text or "").split(","):
        part = part.strip()
        if not part:
            continue
        key, _, value = part.partition("=")
        result[key.strip()] = value.strip()
    return result
