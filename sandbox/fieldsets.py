"""Field sets: which fields of an object a manager owns, in Kubernetes' FieldsV1 notation.

A path is a tuple of FieldsV1 elements (`f:spec`, `k:{"name":"app"}`, `v:"x"`); a field set holds the
leaves and the associative-list items of an object, which is what server-side apply tracks. The same
module converts sets to and from the nested `fieldsV1` JSON stored in `metadata.managedFields`.
"""

from __future__ import annotations

import json
from typing import Any

from sandbox.schema import KEY_DEFAULTS, Node

Path = tuple[str, ...]

# Metadata fields the API server itself owns; they never appear in managedFields.
_SERVER_META = frozenset({"name", "namespace", "uid", "resourceVersion", "generation", "creationTimestamp",
                          "managedFields", "selfLink", "deletionTimestamp", "deletionGracePeriodSeconds"})
ITEM_PRESENT = object()


def item_key(item: dict[str, Any], keys: tuple[str, ...]) -> str:
    values = {k: item.get(k, KEY_DEFAULTS.get(k)) for k in keys}
    return "k:" + json.dumps({k: v for k, v in sorted(values.items()) if v is not None}, separators=(",", ":"))


def _walk(value: Any, node: Node, path: Path, out: dict[Path, Any]) -> None:
    if isinstance(value, dict) and not node.atomic_map:
        if not value and path:
            out[path] = value
        for key, child in value.items():
            _walk(child, node.child(key), (*path, f"f:{key}"), out)
        return
    if isinstance(value, list):
        info = node.list_info()
        if info.list_type == "map" and all(isinstance(x, dict) for x in value):
            item_node = node.items()
            for item in value:
                item_path = (*path, item_key(item, info.keys))
                out[item_path] = ITEM_PRESENT
                for key, child in item.items():
                    _walk(child, item_node.child(key), (*item_path, f"f:{key}"), out)
            return
        if info.list_type == "set" and all(not isinstance(x, dict | list) for x in value):
            for item in value:
                out[(*path, "v:" + json.dumps(item, separators=(",", ":")))] = ITEM_PRESENT
            return
    out[path] = value


def field_values(obj: dict[str, Any], node: Node, scope: str = "main", status_subresource: bool = False
                 ) -> dict[Path, Any]:
    """Every tracked path of `obj` with its value (list items map to ITEM_PRESENT).

    scope "main" ignores status when the kind has a status subresource; scope "status" keeps only status.
    """
    out: dict[Path, Any] = {}
    for key, value in obj.items():
        if key in ("apiVersion", "kind"):
            continue
        if scope == "status" and key != "status":
            continue
        if scope == "main" and key == "status" and status_subresource:
            continue
        if key == "metadata" and isinstance(value, dict):
            meta_node = node.child("metadata")
            for mkey, mvalue in value.items():
                if mkey not in _SERVER_META:
                    _walk(mvalue, meta_node.child(mkey), ("f:metadata", f"f:{mkey}"), out)
            continue
        _walk(value, node.child(key), (f"f:{key}",), out)
    return out


def encode(paths: set[Path]) -> dict[str, Any]:
    """Field set -> nested FieldsV1 JSON (`.` marks a member that also has members below it)."""
    root: dict[str, Any] = {}
    for path in sorted(paths):
        node = root
        for element in path:
            node = node.setdefault(element, {})
    for path in paths:
        node = root
        for element in path:
            node = node[element]
        if node and "." not in node:
            node["."] = {}
    return _sorted(root)


def _sorted(node: dict[str, Any]) -> dict[str, Any]:
    return {k: _sorted(v) for k, v in sorted(node.items(), key=lambda kv: (kv[0] != ".", kv[0]))}


def decode(fields: dict[str, Any] | None) -> set[Path]:
    out: set[Path] = set()

    def walk(node: dict[str, Any], path: Path) -> None:
        children = {k: v for k, v in node.items() if k != "."}
        if path and (not children or "." in node):
            out.add(path)
        for key, child in children.items():
            walk(child if isinstance(child, dict) else {}, (*path, key))

    walk(fields or {}, ())
    return out


def describe(path: Path) -> str:
    """Kubernetes' human form of a path, e.g. `.spec.template.spec.containers[name="app"].image`."""
    text = ""
    for element in path:
        kind, _, rest = element.partition(":")
        if kind == "f":
            text += "." + rest
        elif kind == "k":
            pairs = json.loads(rest)
            text += "[" + ",".join(f"{k}={json.dumps(v)}" for k, v in pairs.items()) + "]"
        elif kind == "v":
            text += f"[={rest}]"
        else:
            text += f"[{rest}]"
    return text


def under(path: Path, prefix: Path) -> bool:
    return path[: len(prefix)] == prefix


def remove_path(obj: dict[str, Any], path: Path, node: Node) -> None:
    """Delete the field or list item at `path` from `obj` in place (missing paths are ignored)."""
    parent: Any = obj
    parent_node = node
    for i, element in enumerate(path):
        last = i == len(path) - 1
        kind, _, rest = element.partition(":")
        if kind == "f":
            if not isinstance(parent, dict) or rest not in parent:
                return
            if last:
                del parent[rest]
                return
            parent, parent_node = parent[rest], parent_node.child(rest)
            continue
        if not isinstance(parent, list):
            return
        info = parent_node.list_info()
        if kind == "k":
            index = next((j for j, item in enumerate(parent)
                          if isinstance(item, dict) and item_key(item, info.keys) == element), None)
        elif kind == "v":
            wanted = json.loads(rest)
            index = next((j for j, item in enumerate(parent) if item == wanted), None)
        else:
            index = int(rest) if rest.isdigit() and int(rest) < len(parent) else None
        if index is None:
            return
        if last:
            parent.pop(index)
            return
        parent, parent_node = parent[index], parent_node.items()
