"""Marking applied objects as an app's own, and refusing to touch objects another app owns.

Argo CD ties a live object to its Application by the `argocd.argoproj.io/tracking-id` annotation
(`<app>:<group>/<kind>:<namespace>/<name>`), by the `app.kubernetes.io/instance` label, or both
(`application.resourceTrackingMethod`). WaveCD writes the same marks, so objects move between Argo CD
and WaveCD unchanged, and applies the same ownership rule: an object whose mark names another app is
never modified or pruned; with `FailOnSharedResource=true` that is an error, otherwise a skip.
"""

from __future__ import annotations

from typing import Any

from shared.core.errors import ConfigurationError, StallingError
from shared.core.resources import INSTANCE_LABEL, TRACKING_ANNOTATION, ResourceKey, TrackingId

ANNOTATION = "annotation"
LABEL = "label"
ANNOTATION_AND_LABEL = "annotation+label"
TRACKING_METHODS = (ANNOTATION, LABEL, ANNOTATION_AND_LABEL)
# Label values are at most 63 characters; Argo CD refuses longer app names with the label method.
MAX_LABEL_VALUE = 63


def validate_method(method: str) -> str:
    """The tracking method, checked; a ConfigurationError naming the allowed values otherwise."""
    if method not in TRACKING_METHODS:
        raise ConfigurationError(
            f"unknown tracking method {method!r}: expected one of {', '.join(TRACKING_METHODS)}")
    return method


def stamp(obj: dict[str, Any], app_name: str, method: str, key: ResourceKey) -> None:
    """Write the tracking marks into `obj` (in place), for the object named by `key`.

    An object without a name yet (a hook with only `generateName`) gets no annotation, since its
    tracking id would name no object; the label, if used, is still written.
    """
    validate_method(method)
    meta = obj.setdefault("metadata", {})
    if method in (ANNOTATION, ANNOTATION_AND_LABEL) and key.name:
        annotations = meta.get("annotations") or {}
        annotations[TRACKING_ANNOTATION] = key.tracking_id(app_name)
        meta["annotations"] = annotations
    if method in (LABEL, ANNOTATION_AND_LABEL):
        if len(app_name) > MAX_LABEL_VALUE:
            raise ConfigurationError(
                f"application name {app_name!r} is longer than {MAX_LABEL_VALUE} characters and cannot be "
                f"a label value; use the annotation tracking method")
        labels = meta.get("labels") or {}
        labels[INSTANCE_LABEL] = app_name
        meta["labels"] = labels


def owner_of(live: dict[str, Any]) -> str | None:
    """The app a live object's marks name: the tracking annotation first, then the instance label."""
    meta = live.get("metadata") or {}
    parsed = TrackingId.parse((meta.get("annotations") or {}).get(TRACKING_ANNOTATION))
    if parsed is not None:
        return parsed.app_name
    label = (meta.get("labels") or {}).get(INSTANCE_LABEL)
    return str(label) if label else None


def is_tracked_by(live: dict[str, Any], app_name: str, method: str = ANNOTATION) -> bool:
    """Whether `live` belongs to `app_name` under `method`, as Argo CD decides it.

    With the annotation methods the tracking id must also name this very object: an annotation copied
    onto another object (an operator copying metadata) does not make that object the app's.
    """
    meta = live.get("metadata") or {}
    if method in (ANNOTATION, ANNOTATION_AND_LABEL):
        parsed = TrackingId.parse((meta.get("annotations") or {}).get(TRACKING_ANNOTATION))
        if parsed is None or parsed.app_name != app_name:
            return False
        return _same_object(parsed.key, live)
    return (meta.get("labels") or {}).get(INSTANCE_LABEL) == app_name


def _same_object(tracked: ResourceKey, live: dict[str, Any]) -> bool:
    actual = ResourceKey.from_object(live)
    return (tracked.group, tracked.kind, tracked.name) == (actual.group, actual.kind, actual.name) and (
        tracked.namespace == actual.namespace or not actual.namespace)


def check_ownership(live: dict[str, Any] | None, app_name: str, fail_on_shared: bool) -> str | None:
    """None when `app_name` may modify or prune `live`; else the reason to skip it.

    An object with no marks, or marks naming this app, may be modified (Argo CD adopts unmarked
    objects). An object marked for another app is skipped with a message, or, with
    `FailOnSharedResource=true`, is a StallingError: the conflict is in git and only a change there
    (or in the other app) resolves it.
    """
    if live is None:
        return None
    other = owner_of(live)
    if other is None or other == app_name:
        return None
    key = ResourceKey.from_object(live)
    message = f"{key} is already part of application {other!r}; not modified by application {app_name!r}"
    if fail_on_shared:
        raise StallingError(f"shared resource found: {message} (FailOnSharedResource=true)")
    return message
