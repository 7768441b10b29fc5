"""The three PATCH bodies Kubernetes accepts besides apply: JSON merge, JSON patch and strategic merge.

RFC 7386 and RFC 6902 are small and exact; strategic merge follows Kubernetes' rules (lists merged by
their patchMergeKey, `$patch` / `$deleteFromPrimitiveList` / `$setElementOrder` / `$retainKeys`
directives), reading merge keys from the OpenAPI schema (see `sandbox.schema`).
"""

from __future__ import annotations

import copy
from typing import Any

from sandbox.errors import ApiError
from sandbox.schema import Node


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: objects merge recursively, null deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise ApiError(422, f"the server rejected our request due to an error in our request: invalid JSON "
                            f"pointer {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _parent(doc: Any, tokens: list[str], op: str) -> tuple[Any, str]:
    node = doc
    for token in tokens[:-1]:
        node = _step(node, token, op)
    return node, tokens[-1]


def _step(node: Any, token: str, op: str) -> Any:
    if isinstance(node, dict):
        if token not in node:
            raise _patch_error(f"{op} operation does not apply: doc is missing path")
        return node[token]
    if isinstance(node, list):
        return node[_index(node, token, op, allow_end=False)]
    raise _patch_error(f"{op} operation does not apply: doc is missing path")


def _index(node: list[Any], token: str, op: str, allow_end: bool) -> int:
    if token == "-" and allow_end:
        return len(node)
    if not token.isdigit() or (len(token) > 1 and token.startswith("0")):
        raise _patch_error(f"{op} operation does not apply: invalid array index {token!r}")
    index = int(token)
    if index > len(node) or (index == len(node) and not allow_end):
        raise _patch_error(f"{op} operation does not apply: array index {index} out of bounds")
    return index


def _patch_error(message: str) -> ApiError:
    return ApiError(422, message, "Invalid")


def _get(doc: Any, tokens: list[str], op: str) -> Any:
    node = doc
    for token in tokens:
        node = _step(node, token, op)
    return node


def _add(doc: Any, tokens: list[str], value: Any, op: str) -> Any:
    if not tokens:
        return copy.deepcopy(value)
    parent, last = _parent(doc, tokens, op)
    if isinstance(parent, dict):
        parent[last] = copy.deepcopy(value)
    elif isinstance(parent, list):
        parent.insert(_index(parent, last, op, allow_end=True), copy.deepcopy(value))
    else:
        raise _patch_error(f"{op} operation does not apply: doc is missing path")
    return doc


def _remove(doc: Any, tokens: list[str], op: str) -> Any:
    if not tokens:
        raise _patch_error(f"{op} operation does not apply: cannot remove the whole document")
    parent, last = _parent(doc, tokens, op)
    if isinstance(parent, dict):
        if last not in parent:
            raise _patch_error(f"{op} operation does not apply: doc is missing key: /{'/'.join(tokens)}")
        return parent.pop(last)
    if isinstance(parent, list):
        return parent.pop(_index(parent, last, op, allow_end=False))
    raise _patch_error(f"{op} operation does not apply: doc is missing path")


def json_patch(doc: Any, operations: Any) -> Any:
    """RFC 6902 JSON patch (add, remove, replace, move, copy, test); a failed op is a 422."""
    if not isinstance(operations, list):
        raise ApiError(400, "json patch must be a list of operations")
    doc = copy.deepcopy(doc)
    for operation in operations:
        if not isinstance(operation, dict) or "op" not in operation or "path" not in operation:
            raise ApiError(400, f"invalid json patch operation: {operation!r}")
        op, tokens = operation["op"], _pointer(operation["path"])
        if op in ("add", "replace", "test") and "value" not in operation:
            raise ApiError(400, f"json patch {op} operation is missing a value")
        if op == "add":
            doc = _add(doc, tokens, operation["value"], op)
        elif op == "remove":
            _remove(doc, tokens, op)
        elif op == "replace":
            _get(doc, tokens, op)
            if not tokens:
                doc = copy.deepcopy(operation["value"])
            else:
                _remove(doc, tokens, op)
                doc = _add(doc, tokens, operation["value"], op)
        elif op in ("move", "copy"):
            source = _pointer(operation.get("from", ""))
            if op == "move" and tokens[: len(source)] == source and tokens != source:
                raise _patch_error("move operation does not apply: cannot move a value into its own child")
            value = _remove(doc, source, op) if op == "move" else copy.deepcopy(_get(doc, source, op))
            doc = _add(doc, tokens, value, op)
        elif op == "test":
            if _get(doc, tokens, op) != operation["value"]:
                raise _patch_error(f"testing value {operation['path']} failed")
        else:
            raise ApiError(400, f"Unexpected kind: {op}")
    return doc


def strategic_merge_patch(original: Any, patch: Any, node: Node) -> Any:
    """Kubernetes strategic merge patch of `patch` onto `original`, guided by the schema `node`."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if not isinstance(original, dict):
        original = {}
    directive = patch.get("$patch")
    if directive == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    if directive == "delete":
        return None
    if directive is not None:
        raise ApiError(422, f"Unknown patch type: {directive!r}")
    result = copy.deepcopy(original)
    retain = patch.get("$retainKeys")
    for key, value in patch.items():
        if key in ("$retainKeys",) or key.startswith("$setElementOrder/"):
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            if isinstance(result.get(field), list):
                result[field] = [x for x in result[field] if x not in (value or [])]
            continue
        child = node.child(key)
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict):
            if key not in result and value.get("$patch") == "replace":
                continue  # kube-apiserver sets nothing when the map it would replace is absent
            merged = strategic_merge_patch(result.get(key), value, child)
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
        elif isinstance(value, list):
            result[key] = _merge_list(result.get(key), value, child)
        else:
            result[key] = copy.deepcopy(value)
    if isinstance(retain, list):
        result = {k: v for k, v in result.items() if k in retain or k.startswith("$")}
    for key, order in patch.items():
        if key.startswith("$setElementOrder/") and isinstance(result.get(key.split("/", 1)[1]), list):
            result[key.split("/", 1)[1]] = _ordered(result[key.split("/", 1)[1]], order,
                                                     node.child(key.split("/", 1)[1]).list_info().merge_key)
    return result


def _ordered(items: list[Any], order: Any, merge_key: str | None) -> list[Any]:
    if not isinstance(order, list):
        return items

    def ident(x: Any) -> Any:
        return x.get(merge_key) if merge_key and isinstance(x, dict) else x

    wanted = [ident(o) for o in order]
    ranked = sorted(range(len(items)), key=lambda i: (wanted.index(ident(items[i])) if ident(items[i]) in wanted
                                                      else len(wanted) + i))
    return [items[i] for i in ranked]


def _merge_list(original: Any, patch: list[Any], node: Node) -> list[Any]:
    info = node.list_info()
    if not isinstance(original, list) or not info.patch_merge:
        if any(isinstance(x, dict) and x.get("$patch") == "replace" for x in patch):
            return [copy.deepcopy(x) for x in patch if not (isinstance(x, dict) and "$patch" in x)]
        return [copy.deepcopy(x) for x in patch if not (isinstance(x, dict) and "$patch" in x)]
    if any(isinstance(x, dict) and x.get("$patch") == "replace" for x in patch):
        return [copy.deepcopy(x) for x in patch if not (isinstance(x, dict) and "$patch" in x)]
    result = copy.deepcopy(original)
    key = info.merge_key
    if key is None:  # a merged list of scalars: union, keeping order
        for item in patch:
            if item not in result:
                result.append(copy.deepcopy(item))
        return result
    item_node = node.items()
    for item in patch:
        if not isinstance(item, dict):
            raise ApiError(422, f"strategic merge patch: list items merged by {key!r} must be objects")
        if key not in item:
            raise ApiError(422, f"map: {item} does not contain declared merge key: {key}")
        index = next((i for i, cur in enumerate(result) if isinstance(cur, dict) and cur.get(key) == item[key]),
                     None)
        if item.get("$patch") == "delete":
            if index is not None:
                result.pop(index)
            continue
        if index is None:
            merged = strategic_merge_patch({}, item, item_node)
            result.append(merged)
        else:
            result[index] = strategic_merge_patch(result[index], item, item_node)
    return result
