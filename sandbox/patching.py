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
        # kube-apiserver answers this with a bare 500 (no reason), and so do we
        raise ApiError(500, f"unknown patch type: {directive} in map: {go_format(patch)}", "")
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
        field = key.split("/", 1)[1] if key.startswith("$setElementOrder/") else ""
        if field and isinstance(order, list) and isinstance(result.get(field), list):
            original_list = original.get(field) if isinstance(original.get(field), list) else []
            result[field] = _normalize_order(result[field], order, original_list,
                                             node.child(field).list_info().merge_key)
    return result


def go_format(value: Any) -> str:
    """A value as Go's fmt prints it in apimachinery's messages: map[a:1 b:[x y]]."""
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{go_format(v)}" for k, v in sorted(value.items())) + "]"
    if isinstance(value, list):
        return "[" + " ".join(go_format(v) for v in value) + "]"
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _normalize_order(merged: list[Any], order: list[Any], original: list[Any], merge_key: str | None) -> list[Any]:
    """The order Kubernetes gives a merged list (apimachinery's normalizeElementOrder).

    Items named by `order` (the patch, or its $setElementOrder) come in that order, the other items in
    their original order, and the two runs interleave by original position; an item the original did
    not have goes before the original items still waiting.
    """
    def ident(x: Any) -> Any:
        return x.get(merge_key) if merge_key and isinstance(x, dict) else x

    wanted = [ident(o) for o in order if not (isinstance(o, dict) and "$patch" in o)]
    before = [ident(o) for o in original]
    named = sorted((m for m in merged if ident(m) in wanted), key=lambda m: wanted.index(ident(m)))
    rest = [m for m in merged if ident(m) not in wanted]
    out: list[Any] = []
    i = j = 0
    while i < len(rest) or j < len(named):
        if j >= len(named):
            out.append(rest[i])
            i += 1
        elif i >= len(rest):
            out.append(named[j])
            j += 1
        else:
            left, right = ident(rest[i]), ident(named[j])
            if left in before and right in before and before.index(left) < before.index(right):
                out.append(rest[i])
                i += 1
            else:
                out.append(named[j])
                j += 1
    return out


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
    if key is None:  # a merged list of scalars: union
        for item in patch:
            if item not in result:
                result.append(copy.deepcopy(item))
        return _normalize_order(result, patch, original, None)
    item_node = node.items()
    for item in patch:
        if not isinstance(item, dict):
            raise ApiError(500, f"strategic merge patch: list items merged by {key!r} must be objects", "")
        if key not in item:
            raise ApiError(500, f"map: {go_format(item)} does not contain declared merge key: {key}", "")
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
    return _normalize_order(result, patch, original, key)
