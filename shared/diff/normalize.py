"""Objects reduced to what the diff should compare: no server bookkeeping, no status, Secret data in one form.

Live objects carry fields the API server writes (uid, resourceVersion, managedFields, timestamps)
and a `status` that controllers own; neither is part of what git declares, so both are dropped
before comparing, as Argo CD does. A Secret's `stringData` is write-only: the server folds it into
`data` as base64, so desired's `stringData` is folded the same way before it meets live's `data`. As in
Argo CD's NormalizeSecret, a null value in `data` or `stringData` is the empty value (`""`), which is how the
server stores it; a null or empty `data`/`stringData` as a whole declares nothing.

Normalization never mutates its input and copies only the levels it changes (a Deployment's pod
template is shared, not copied), which keeps the per-resource cost of a comparison low.
"""

from __future__ import annotations

import base64
from typing import Any

from shared.core.errors import StallingError
from shared.diff.managed_fields import LAST_APPLIED_ANNOTATION

# metadata fields the API server sets; never declared in git, never compared.
SERVER_METADATA_FIELDS = frozenset({
    "uid", "resourceVersion", "generation", "creationTimestamp", "managedFields", "selfLink",
    "deletionTimestamp", "deletionGracePeriodSeconds",
})
# annotations that record how an object was applied, not what it should be.
BOOKKEEPING_ANNOTATIONS = frozenset({LAST_APPLIED_ANNOTATION})


def is_secret(obj: dict[str, Any] | None) -> bool:
    """A core-group Secret (`apiVersion: v1`, `kind: Secret`)."""
    return bool(obj) and obj.get("kind") == "Secret" and obj.get("apiVersion") == "v1"  # type: ignore[union-attr]


def normalize(obj: dict[str, Any]) -> dict[str, Any]:
    """`obj` without status, server-set metadata and the last-applied annotation; a Secret's
    `stringData` folded into `data` (base64). Raises `StallingError` for a non-map object or a
    non-string `stringData` value (the API server rejects both)."""
    if not isinstance(obj, dict):
        raise StallingError(f"expected a Kubernetes object (a map), got {type(obj).__name__}")
    result = {k: v for k, v in obj.items() if k != "status"}
    meta = obj.get("metadata")
    if isinstance(meta, dict):
        new_meta = {k: v for k, v in meta.items() if k not in SERVER_METADATA_FIELDS}
        annotations = meta.get("annotations")
        if isinstance(annotations, dict) and not BOOKKEEPING_ANNOTATIONS.isdisjoint(annotations):
            kept = {k: v for k, v in annotations.items() if k not in BOOKKEEPING_ANNOTATIONS}
            if kept:
                new_meta["annotations"] = kept
            else:
                del new_meta["annotations"]
        result["metadata"] = new_meta
    if is_secret(obj):
        data = obj.get("data")
        if isinstance(data, dict) and any(value is None for value in data.values()):
            result["data"] = {k: "" if v is None else v for k, v in data.items()}
        if "stringData" in obj:
            result = fold_string_data(result)
    return result


def fold_string_data(secret: dict[str, Any]) -> dict[str, Any]:
    """A Secret with `stringData` merged into `data` as base64 (stringData wins, as on the server)."""
    string_data = secret.get("stringData")
    result = {k: v for k, v in secret.items() if k != "stringData"}
    if not string_data:
        return result
    if not isinstance(string_data, dict):
        raise StallingError(f"Secret {_name(secret)}: stringData must be a map of strings")
    current = secret.get("data")
    if current is not None and not isinstance(current, dict):
        raise StallingError(f"Secret {_name(secret)}: data must be a map of strings")
    data = dict(current or {})
    for key, value in string_data.items():
        if value is None:
            value = ""  # a null string is the empty string, as the server stores it
        if not isinstance(value, str):
            raise StallingError(
                f"Secret {_name(secret)}: stringData.{key} must be a string, got {type(value).__name__}")
        data[key] = base64.b64encode(value.encode("utf-8")).decode("ascii")
    result["data"] = data
    return result


def strip_empty(value: Any) -> Any:
    """`value` without nulls and without empty maps/lists under map keys (for showing a manifest the
    way the server would store it: `resources: {}` and `creationTimestamp: null` disappear)."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if v is None:
                continue
            v = strip_empty(v)
            if (isinstance(v, dict | list)) and not v:
                continue
            out[k] = v
        return out
    if isinstance(value, list):
        return [strip_empty(v) for v in value]
    return value


def _name(obj: dict[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace")
    return f"{ns}/{meta.get('name')}" if ns else str(meta.get("name"))
