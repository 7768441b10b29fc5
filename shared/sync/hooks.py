"""Resource hooks: which objects are hooks, in which sync phases they run, and when they are deleted.

Argo CD users mark hooks with `argocd.argoproj.io/hook` (a comma list of phases) and choose cleanup
with `argocd.argoproj.io/hook-delete-policy`; charts rendered with Helm carry `helm.sh/hook*`
annotations, which Argo CD maps onto its own. WaveCD reads both the same way, so hooks written for
Argo CD run unchanged. The rules, as Argo CD documents them:

* `Skip` alone means the object is never applied; `Skip` next to a phase is ignored.
* When an object has any Argo CD hook annotation value, its Helm hook annotations are ignored.
* Helm `pre-install`/`pre-upgrade` -> PreSync, `post-install`/`post-upgrade` -> PostSync,
  `pre-delete` -> PreDelete, `post-delete` -> PostDelete; `crd-install` is an ordinary resource;
  any other Helm hook (tests, rollback hooks) is unsupported and the object is skipped.
* Delete policies: BeforeHookCreation (the default when none is given), HookSucceeded, HookFailed;
  Helm's `before-hook-creation`, `hook-succeeded`, `hook-failed` map onto them.
* A hook's wave is its sync wave (`argocd.argoproj.io/sync-wave`, else `helm.sh/hook-weight`).
* A hook with `generateName` and no name is named `<generateName><rev7>-<phase>-<unix time>`, lower case.

PreDelete and PostDelete hooks run when the Application is deleted, never during a sync; the sync
planner leaves them out.
"""

from __future__ import annotations

from typing import Any

from shared.core.errors import StallingError
from shared.core.resources import HELM_HOOK_ANNOTATION, HOOK_ANNOTATION, HOOK_DELETE_POLICY_ANNOTATION, ResourceKey

PRE_SYNC = "PreSync"
SYNC = "Sync"
POST_SYNC = "PostSync"
SYNC_FAIL = "SyncFail"
PRE_DELETE = "PreDelete"
POST_DELETE = "PostDelete"
SKIP = "Skip"

SYNC_PHASES: tuple[str, ...] = (PRE_SYNC, SYNC, POST_SYNC, SYNC_FAIL)
"""The phases of a sync operation, in the order they run (SyncFail only when the sync failed)."""

HOOK_TYPES: tuple[str, ...] = (PRE_SYNC, SYNC, POST_SYNC, SYNC_FAIL, PRE_DELETE, POST_DELETE)
"""Every hook type, in canonical order (`hook_types` returns them in this order)."""

BEFORE_HOOK_CREATION = "BeforeHookCreation"
HOOK_SUCCEEDED = "HookSucceeded"
HOOK_FAILED = "HookFailed"
DELETE_POLICIES: tuple[str, ...] = (BEFORE_HOOK_CREATION, HOOK_SUCCEEDED, HOOK_FAILED)

HOOK_FINALIZER = "argocd.argoproj.io/hook-finalizer"
"""The finalizer Argo CD puts on hooks so their result can be read before Kubernetes removes them."""

HELM_HOOK_DELETE_POLICY_ANNOTATION = "helm.sh/hook-delete-policy"
HELM_HOOK_WEIGHT_ANNOTATION = "helm.sh/hook-weight"

_HELM_HOOK_TYPES = {
    "pre-install": PRE_SYNC,
    "pre-upgrade": PRE_SYNC,
    "post-install": POST_SYNC,
    "post-upgrade": POST_SYNC,
    "pre-delete": PRE_DELETE,
    "post-delete": POST_DELETE,
}
_HELM_ORDINARY = "crd-install"
_HELM_DELETE_POLICIES = {
    "before-hook-creation": BEFORE_HOOK_CREATION,
    "hook-succeeded": HOOK_SUCCEEDED,
    "hook-failed": HOOK_FAILED,
}


def _annotations(obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj.get("metadata") or {}
    annotations = meta.get("annotations") if isinstance(meta, dict) else None
    return annotations if isinstance(annotations, dict) else {}


def _csv(value: Any) -> list[str]:
    return [part.strip() for part in str(value).split(",") if part.strip()]


def describe(obj: dict[str, Any]) -> str:
    """`Job default/migrate` (or its generateName) for error messages; never the object's body."""
    meta = obj.get("metadata") or {}
    key = ResourceKey.from_object(obj)
    if not key.name and isinstance(meta, dict) and meta.get("generateName"):
        key = ResourceKey(key.group, key.kind, key.namespace, f"{meta['generateName']}*")
    return str(key)


def _argo_types(obj: dict[str, Any]) -> list[str] | None:
    """The Argo CD hook annotation's values, validated; None when the annotation is absent."""
    raw = _annotations(obj).get(HOOK_ANNOTATION)
    if raw is None:
        return None
    values = _csv(raw)
    for value in values:
        if value not in HOOK_TYPES and value != SKIP:
            raise StallingError(
                f"{describe(obj)}: unknown hook type {value!r} in annotation {HOOK_ANNOTATION} "
                f"(expected one of {', '.join((*HOOK_TYPES, SKIP))})"
            )
    return values


def _helm_values(obj: dict[str, Any]) -> list[str]:
    raw = _annotations(obj).get(HELM_HOOK_ANNOTATION)
    return _csv(raw) if raw is not None else []


def is_skipped(obj: dict[str, Any]) -> bool:
    """True when the object must never be applied: `hook: Skip` alone, or only unsupported Helm hooks."""
    argo = _argo_types(obj)
    if argo:
        return set(argo) == {SKIP}
    helm = _helm_values(obj)
    if not helm:
        return False
    supported = [value for value in helm if value in _HELM_HOOK_TYPES or value == _HELM_ORDINARY]
    return not supported


def unsupported_helm_hooks(obj: dict[str, Any]) -> tuple[str, ...]:
    """Helm hook types on the object that Argo CD (and so WaveCD) does not support, for warnings."""
    if _argo_types(obj):
        return ()
    return tuple(v for v in _helm_values(obj) if v not in _HELM_HOOK_TYPES and v != _HELM_ORDINARY)


def hook_types(obj: dict[str, Any]) -> tuple[str, ...]:
    """The hook types of the object in canonical order, or () for an ordinary (or skipped) resource.

    An unknown value in `argocd.argoproj.io/hook` is a StallingError naming the object.
    """
    argo = _argo_types(obj)
    if argo:
        found = set(argo) - {SKIP}
    else:
        found = {_HELM_HOOK_TYPES[value] for value in _helm_values(obj) if value in _HELM_HOOK_TYPES}
    return tuple(hook_type for hook_type in HOOK_TYPES if hook_type in found)


def is_hook(obj: dict[str, Any]) -> bool:
    return bool(hook_types(obj))


def sync_phases(obj: dict[str, Any]) -> tuple[str, ...]:
    """The sync phases the object takes part in: its hook phases, Sync for a resource, () if skipped.

    A hook of only PreDelete/PostDelete takes part in no sync phase.
    """
    if is_skipped(obj):
        return ()
    types = hook_types(obj)
    if not types:
        return (SYNC,)
    return tuple(phase for phase in SYNC_PHASES if phase in types)


def delete_policies(obj: dict[str, Any]) -> tuple[str, ...]:
    """The hook's deletion policies in canonical order; (BeforeHookCreation,) when none is given.

    Argo CD's annotation and Helm's are combined, as Argo CD does. An unknown value in Argo CD's
    annotation is a StallingError naming the object; unknown Helm values are ignored, as in Argo CD.
    """
    annotations = _annotations(obj)
    found: set[str] = set()
    for value in _csv(annotations.get(HOOK_DELETE_POLICY_ANNOTATION, "")):
        if value not in DELETE_POLICIES:
            raise StallingError(
                f"{describe(obj)}: unknown hook delete policy {value!r} in annotation "
                f"{HOOK_DELETE_POLICY_ANNOTATION} (expected one of {', '.join(DELETE_POLICIES)})"
            )
        found.add(value)
    for value in _csv(annotations.get(HELM_HOOK_DELETE_POLICY_ANNOTATION, "")):
        if value in _HELM_DELETE_POLICIES:
            found.add(_HELM_DELETE_POLICIES[value])
    if not found:
        return (BEFORE_HOOK_CREATION,)
    return tuple(policy for policy in DELETE_POLICIES if policy in found)


def generated_hook_name(generate_name: str, revision: str, phase: str, started_at: int) -> str:
    """The name Argo CD gives a hook that has only `generateName`: deterministic for one operation.

    `started_at` is the operation's start time in Unix seconds; the revision is cut to 7 characters.
    """
    short_revision = revision[:7]
    return f"{generate_name}{short_revision}-{phase}-{int(started_at)}".lower()


def hook_name(obj: dict[str, Any], phase: str, *, revision: str = "", started_at: int = 0) -> str:
    """The hook's name in `phase`: metadata.name, else one generated from metadata.generateName.

    An object with neither is a StallingError naming its kind.
    """
    meta = obj.get("metadata") or {}
    name = str(meta.get("name") or "")
    if name:
        return name
    generate_name = str(meta.get("generateName") or "")
    if not generate_name:
        raise StallingError(f"{describe(obj)}: hook has neither metadata.name nor metadata.generateName")
    return generated_hook_name(generate_name, revision, phase, started_at)
