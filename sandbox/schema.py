"""Structural facts about object fields: which lists merge by key, which are sets, which are atomic.

Strategic merge patch and server-side apply both depend on them. For built-in kinds they come from the
Kubernetes OpenAPI definitions shipped by the `kubernetes-validate` package (x-kubernetes-list-type,
-list-map-keys, -patch-merge-key, -patch-strategy, -map-type), so nothing is hand-copied; for custom
resources they come from the CRD's openAPIV3Schema, with Kubernetes' defaults (lists atomic).
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kubernetes_validate

# Key fields Kubernetes defaults when a list item omits them (merge keys of ports).
KEY_DEFAULTS: dict[str, Any] = {"protocol": "TCP"}


@dataclass(frozen=True)
class ListInfo:
    """How a list field behaves under merging."""

    list_type: str  # "map" (associative by keys), "set" (of scalars) or "atomic"
    keys: tuple[str, ...] = ()
    patch_merge: bool = False  # strategic merge patch merges it (patchStrategy contains "merge")
    merge_key: str | None = None


ATOMIC = ListInfo("atomic")


def _version_tuple(name: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", name))


@functools.cache
def _definitions() -> dict[str, dict[str, Any]]:
    base = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema"
    dirs = sorted((d for d in base.iterdir() if d.name.endswith("-local")), key=lambda d: _version_tuple(d.name))
    with open(dirs[-1] / "_definitions.json", encoding="utf-8") as fh:
        return json.load(fh)["$defs"]


@functools.cache
def _gvk_index() -> dict[tuple[str, str, str], str]:
    out: dict[tuple[str, str, str], str] = {}
    for name, node in _definitions().items():
        for gvk in node.get("x-kubernetes-group-version-kind", ()):
            out[(gvk["group"], gvk["version"], gvk["kind"])] = name
    return out


def _resolve(node: dict[str, Any] | None) -> dict[str, Any] | None:
    while node is not None and "$ref" in node:
        node = _definitions().get(node["$ref"].rsplit("/", 1)[-1])
    return node


def object_meta() -> dict[str, Any] | None:
    return _definitions().get("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta")


def builtin_definition_name(group: str, version: str, kind: str) -> str | None:
    return _gvk_index().get((group, version, kind))


def builtin_definition(name: str) -> dict[str, Any] | None:
    return _definitions().get(name)


def builtin_root(group: str, version: str, kind: str) -> dict[str, Any] | None:
    name = _gvk_index().get((group, version, kind))
    return _definitions().get(name) if name else None


class Node:
    """A position in a schema; `None`-schema nodes behave as free-form (maps granular, lists atomic)."""

    __slots__ = ("raw", "custom")

    def __init__(self, raw: dict[str, Any] | None, custom: bool) -> None:
        self.raw = _resolve(raw)
        self.custom = custom

    def child(self, key: str) -> Node:
        raw = self.raw
        if raw is None:
            return Node(None, self.custom)
        props = raw.get("properties") or {}
        if key in props:
            return Node(props[key], self.custom)
        extra = raw.get("additionalProperties")
        return Node(extra if isinstance(extra, dict) else None, self.custom)

    def items(self) -> Node:
        return Node(self.raw.get("items") if self.raw else None, self.custom)

    @property
    def atomic_map(self) -> bool:
        return bool(self.raw and self.raw.get("x-kubernetes-map-type") == "atomic")

    def list_info(self) -> ListInfo:
        raw = self.raw or {}
        strategy = raw.get("x-kubernetes-patch-strategy", "")
        merge_key = raw.get("x-kubernetes-patch-merge-key")
        list_type = raw.get("x-kubernetes-list-type")
        keys = tuple(raw.get("x-kubernetes-list-map-keys") or ())
        if list_type is None:
            if merge_key:
                list_type, keys = "map", (merge_key,)
            elif "merge" in strategy:
                list_type = "set"
            else:
                list_type = "atomic"
        if list_type == "map" and not keys:
            list_type = "atomic"
        return ListInfo(list_type, keys, "merge" in strategy, merge_key)


def root_node(group: str, version: str, kind: str, crd_schema: dict[str, Any] | None, custom: bool) -> Node:
    """The schema root for an object of this kind; custom kinds get ObjectMeta for `metadata`."""
    if not custom:
        return Node(builtin_root(group, version, kind), False)
    schema = dict(crd_schema or {"type": "object", "x-kubernetes-preserve-unknown-fields": True})
    props = dict(schema.get("properties") or {})
    props["metadata"] = object_meta() or {}
    schema["properties"] = props
    return Node(schema, True)


def undeclared_fields(value: Any, node: Node, path: str = "") -> list[str]:
    """Paths in `value` that the schema does not declare (what server-side apply refuses).

    A node without a schema, or one that preserves unknown fields, accepts anything below it; a map
    schema (`additionalProperties`) checks each value against its item schema.
    """
    raw = node.raw
    if raw is None or raw.get("x-kubernetes-preserve-unknown-fields") or raw.get("x-kubernetes-int-or-string"):
        return []
    found: list[str] = []
    if isinstance(value, dict):
        props = raw.get("properties")
        extra = raw.get("additionalProperties")
        if props is None and extra is None:
            return []
        for key, child in value.items():
            if props is not None and key in props:
                found += undeclared_fields(child, node.child(key), f"{path}.{key}")
            elif isinstance(extra, dict):
                found += undeclared_fields(child, node.child(key), f"{path}.{key}")
            elif extra is True:
                continue
            else:
                found.append(f"{path}.{key}")
    elif isinstance(value, list) and raw.get("items") is not None:
        for index, item in enumerate(value):
            found += undeclared_fields(item, node.items(), f"{path}[{index}]")
    return found


class DecodedObject(dict):  # type: ignore[type-arg]
    """A JSON object as decoded from a request, remembering the keys it held more than once."""

    duplicates: tuple[str, ...] = ()


def decode_pairs(pairs: list[tuple[str, Any]]) -> DecodedObject:
    """`json.loads(object_pairs_hook=...)`: the last value of a repeated key wins, as in Go's decoder."""
    obj = DecodedObject()
    repeated = []
    for key, value in pairs:
        if key in obj and key not in repeated:
            repeated.append(key)
        obj[key] = value
    obj.duplicates = tuple(repeated)
    return obj


def prune_undeclared(value: Any, node: Node, path: str = "") -> list[str]:
    """Remove, in place, the fields the schema does not declare; return the problems in document order.

    This is what kube-apiserver's decoder does with unknown fields of built-in kinds and what structural
    pruning does for custom resources (unless `x-kubernetes-preserve-unknown-fields`). Problems read as
    the API server prints them: `unknown field "spec.template.spec.containers[0].bogus"`, and `duplicate
    field "data.a"` for a key a request body repeated.
    """
    raw = node.raw
    found: list[str] = []
    if isinstance(value, dict):
        for key in getattr(value, "duplicates", ()):
            found.append(f'duplicate field "{path}.{key}"' if path else f'duplicate field "{key}"')
    if raw is None or raw.get("x-kubernetes-preserve-unknown-fields") or raw.get("x-kubernetes-int-or-string"):
        return found
    if isinstance(value, dict):
        props = raw.get("properties")
        extra = raw.get("additionalProperties")
        if props is None and extra is None:
            return found
        for key in list(value):
            where = f"{path}.{key}" if path else key
            if (props is not None and key in props) or isinstance(extra, dict):
                found += prune_undeclared(value[key], node.child(key), where)
            elif extra is not True:
                found.append(f'unknown field "{where}"')
                del value[key]
    elif isinstance(value, list) and raw.get("items") is not None:
        for index, item in enumerate(value):
            found += prune_undeclared(item, node.items(), f"{path}[{index}]")
    return found
