"""Which live objects stay out of an app's health: hooks, and objects that ask to be ignored.

Argo CD leaves hooks (`argocd.argoproj.io/hook`, or Helm's `helm.sh/hook`) out of app health, since their
health belongs to the sync operation, and honours `argocd.argoproj.io/ignore-healthcheck: "true"`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared.core.resources import HELM_HOOK_ANNOTATION, HOOK_ANNOTATION, IGNORE_HEALTHCHECK_ANNOTATION


def _annotations(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = obj.get("metadata")
    if not isinstance(meta, Mapping):
        return {}
    annotations = meta.get("annotations")
    return annotations if isinstance(annotations, Mapping) else {}


def is_hook(obj: Mapping[str, Any]) -> bool:
    """True for an Argo CD or Helm hook."""
    annotations = _annotations(obj)
    return bool(annotations.get(HOOK_ANNOTATION) or annotations.get(HELM_HOOK_ANNOTATION))


def is_health_ignored(obj: Mapping[str, Any]) -> bool:
    """True when the object's health must not count in its app's health (a hook, or ignore-healthcheck)."""
    annotations = _annotations(obj)
    if annotations.get(HOOK_ANNOTATION) or annotations.get(HELM_HOOK_ANNOTATION):
        return True
    return str(annotations.get(IGNORE_HEALTHCHECK_ANNOTATION, "")).strip().lower() == "true"
