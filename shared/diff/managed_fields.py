"""Server-side apply's field ownership (`metadata.managedFields`, `fieldsV1`) as a tree we can walk.

Two rules of the diff need to know who set which field: a field WaveCD applied earlier that git no
longer sets is drift, and `ignoreDifferences.managedFieldsManagers` hides fields other managers own.
`fieldsV1` spells a field set as nested maps keyed `f:<field>` (a map field), `k:{json}` (an item of a
keyed list, by its key fields), `v:<json>` (an item of a set list, by value), `i:<n>` (an item by
index) and `.` (the node itself is a member). This module parses that notation, lists the paths,
builds the same tree from a client-side `last-applied-configuration`, and removes owned fields from
an object the way structured-merge-diff's `RemoveItems` does.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from functools import lru_cache
from typing import Any

LAST_APPLIED_ANNOTATION = "kubectl.kubernetes.io/last-applied-configuration"


class ManagedFieldsError(ValueError):
    """`fieldsV1` (or a last-applied configuration) that does not follow the notation."""


class FieldNode:
    """One node of a field set. `member`: the node itself is owned (a leaf, or `.` in fieldsV1).

    A node made from fieldsV1 parses its own level only when first asked (`fields`, `keys`, ...): a
    comparison visits a small part of the tree, and parsing all of it would dominate its cost.
    """

    __slots__ = ("member", "_raw", "_where", "_fields", "_keys", "_values", "_indices")

    def __init__(self, member: bool = False, fields: dict[str, FieldNode] | None = None,
                 keys: list[tuple[dict[str, Any], FieldNode]] | None = None,
                 values: list[tuple[Any, FieldNode]] | None = None,
                 indices: dict[int, FieldNode] | None = None) -> None:
        self.member = member
        self._raw: dict[str, Any] | None = None
        self._where = ""
        self._fields = fields if fields is not None else {}
        self._keys = keys if keys is not None else []
        self._values = values if values is not None else []
        self._indices = indices if indices is not None else {}

    @classmethod
    def lazy(cls, raw: Any, where: str = "") -> FieldNode:
        """A node over raw fieldsV1 whose children are parsed on first access."""
        if not isinstance(raw, dict):
            raise ManagedFieldsError(f"fieldsV1{' ' + repr(where) if where else ''}: expected a map, "
                                     f"got {type(raw).__name__}")
        node = cls(member=not raw or "." in raw)
        node._raw = raw
        node._where = where
        return node

    def _parse(self) -> None:
        raw, self._raw = self._raw, None
        assert raw is not None
        for name, sub in raw.items():
            where = f"{self._where}.{name}" if self._where else str(name)
            if name == ".":
                continue
            prefix, sep, rest = str(name).partition(":")
            if not sep:
                raise ManagedFieldsError(f"fieldsV1 {where!r}: expected f:, k:, v:, i: or '.'")
            child = FieldNode.lazy(sub, where)
            if prefix == "f":
                self._fields[rest] = child
            elif prefix == "i":
                try:
                    self._indices[int(rest)] = child
                except ValueError:
                    raise ManagedFieldsError(f"fieldsV1 {where!r}: index is not an integer") from None
            elif prefix in ("k", "v"):
                try:
                    parsed = json.loads(rest)
                except json.JSONDecodeError as exc:
                    raise ManagedFieldsError(f"fieldsV1 {where!r}: invalid JSON ({exc.msg})") from None
                if prefix == "v":
                    self._values.append((parsed, child))
                elif isinstance(parsed, dict) and parsed:
                    self._keys.append((parsed, child))
                else:
                    raise ManagedFieldsError(f"fieldsV1 {where!r}: a k: key must be a non-empty JSON object")
            else:
                raise ManagedFieldsError(f"fieldsV1 {where!r}: unknown prefix {prefix!r}")

    @property
    def fields(self) -> dict[str, FieldNode]:
        if self._raw is not None:
            self._parse()
        return self._fields

    @property
    def keys(self) -> list[tuple[dict[str, Any], FieldNode]]:
        if self._raw is not None:
            self._parse()
        return self._keys

    @property
    def values(self) -> list[tuple[Any, FieldNode]]:
        if self._raw is not None:
            self._parse()
        return self._values

    @property
    def indices(self) -> dict[int, FieldNode]:
        if self._raw is not None:
            self._parse()
        return self._indices

    @property
    def has_children(self) -> bool:
        return bool(self.fields or self.keys or self.values or self.indices)

    def validate(self) -> FieldNode:
        """Parse the whole tree now (raising `ManagedFieldsError` on bad notation); returns self."""
        for child in [*self.fields.values(), *(n for _, n in self.keys), *(n for _, n in self.values),
                      *self.indices.values()]:
            child.validate()
        return self

    def key_for(self, item: Any, *, partial: bool = False) -> FieldNode | None:
        """The `k:` child naming this list item. `partial`: key fields missing from the item (a
        desired item before the server defaulted e.g. `protocol`) are not required to match."""
        if not isinstance(item, dict):
            return None
        for key, node in self.keys:
            if _key_matches(key, item, partial):
                return node
        return None

    def value_for(self, item: Any) -> FieldNode | None:
        for value, node in self.values:
            if _same_json(value, item):
                return node
        return None

    def merge(self, other: FieldNode) -> None:
        """Add `other`'s members into this node (the union of two managers' sets)."""
        self.member = self.member or other.member
        for name, child in other.fields.items():
            mine = self.fields.get(name)
            if mine is None:
                self.fields[name] = child
            else:
                mine.merge(child)
        for key, child in other.keys:
            for my_key, mine in self.keys:
                if my_key == key:
                    mine.merge(child)
                    break
            else:
                self.keys.append((key, child))
        for value, child in other.values:
            for my_value, mine in self.values:
                if _same_json(my_value, value):
                    mine.merge(child)
                    break
            else:
                self.values.append((value, child))
        for index, child in other.indices.items():
            mine = self.indices.get(index)
            if mine is None:
                self.indices[index] = child
            else:
                mine.merge(child)


def _same_json(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b if not isinstance(a, dict | list) else a == b


def _key_matches(key: dict[str, Any], item: dict[str, Any], partial: bool) -> bool:
    seen = 0
    for name, value in key.items():
        if name in item:
            if not _same_json(item[name], value):
                return False
            seen += 1
        elif not partial:
            return False
    return seen > 0


def parse_fields_v1(fields: Any) -> FieldNode:
    """Parse one `fieldsV1` map into a `FieldNode` tree, all of it now; `ManagedFieldsError` on bad
    notation. (`FieldNode.lazy` parses as the tree is walked instead.)"""
    return FieldNode.lazy(fields).validate()


def _entries(obj: dict[str, Any]) -> Iterator[dict[str, Any]]:
    entries = (obj.get("metadata") or {}).get("managedFields") or []
    if not isinstance(entries, list):
        raise ManagedFieldsError("metadata.managedFields: expected a list")
    for entry in entries:
        if isinstance(entry, dict) and not entry.get("subresource"):
            yield entry


def owned_fields(obj: dict[str, Any], managers: Iterable[str], operation: str | None = None
                 ) -> FieldNode | None:
    """The union of the field sets that `managers` own in `obj` (main resource, not subresources).

    `operation` ("Apply" or "Update") restricts the entries; None takes both. None when no entry matches.
    """
    wanted = set(managers)
    result: FieldNode | None = None
    for entry in _entries(obj):
        if entry.get("manager") not in wanted:
            continue
        if operation is not None and entry.get("operation") != operation:
            continue
        if entry.get("fieldsType", "FieldsV1") != "FieldsV1":
            continue
        node = FieldNode.lazy(entry.get("fieldsV1") or {}, "")
        if result is None:
            result = node
        else:
            result.merge(node)
    return result


def fields_from_object(obj: Any) -> FieldNode:
    """The field set a client-side apply owns: every field of its last-applied object.

    Maps are walked field by field; a list is owned as a whole (client-side apply gives no keys).
    """
    if isinstance(obj, dict):
        node = FieldNode()
        for name, value in obj.items():
            node.fields[str(name)] = fields_from_object(value)
        node.member = not node.fields
        return node
    return FieldNode(member=True)


def last_applied_fields(obj: dict[str, Any]) -> FieldNode | None:
    """The field set of `kubectl.kubernetes.io/last-applied-configuration`, if the annotation is there."""
    text = ((obj.get("metadata") or {}).get("annotations") or {}).get(LAST_APPLIED_ANNOTATION)
    if not text:
        return None
    applied = _parse_last_applied(text)
    node = fields_from_object(applied)
    node.fields.pop("status", None)
    return node


@lru_cache(maxsize=4096)
def parse_item_key(raw: str) -> Any:
    """The JSON after `k:` or `v:` (cached: the same keys recur in every object). Read-only result."""
    try:
        return json.loads(raw[2:])
    except json.JSONDecodeError as exc:
        raise ManagedFieldsError(f"fieldsV1 {raw!r}: invalid JSON ({exc.msg})") from None


def merge_fields_v1(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """The union of two raw fieldsV1 maps (a new map; the inputs are untouched)."""
    result = dict(a)
    for name, sub in b.items():
        mine = result.get(name)
        result[name] = merge_fields_v1(mine, sub) if isinstance(mine, dict) and isinstance(sub, dict) else sub
    return result


# API groups served by Kubernetes itself. kubectl (and Argo CD's three-way diff) merges their lists with the
# strategic merge patch, by each list's patchMergeKey; a custom resource's lists are replaced whole (JSON
# merge patch).
BUILTIN_GROUPS = frozenset({
    "", "apps", "batch", "extensions", "policy", "autoscaling", "networking.k8s.io", "rbac.authorization.k8s.io",
    "storage.k8s.io", "scheduling.k8s.io", "coordination.k8s.io", "node.k8s.io", "discovery.k8s.io",
    "admissionregistration.k8s.io", "apiextensions.k8s.io", "apiregistration.k8s.io", "certificates.k8s.io",
    "events.k8s.io", "flowcontrol.apiserver.k8s.io", "resource.k8s.io",
})
# The patchMergeKey of the built-in types' lists of objects, by field name (`ports` goes by its items:
# `containerPort` in a container, `port` in a Service).
STRATEGIC_MERGE_KEYS = {
    "containers": "name", "initContainers": "name", "ephemeralContainers": "name", "env": "name",
    "volumes": "name", "volumeMounts": "mountPath", "volumeDevices": "devicePath", "imagePullSecrets": "name",
    "hostAliases": "ip", "topologySpreadConstraints": "topologyKey", "ownerReferences": "uid",
    "resourceClaims": "name", "schedulingGates": "name", "secrets": "name",
}
PORT_MERGE_KEYS = ("containerPort", "port")
# Lists of scalars that the strategic merge patch merges as sets.
STRATEGIC_SET_LISTS = frozenset({"finalizers"})


def _item_key(name: str, items: list[Any]) -> str | None:
    """The merge key of list `name` when every item carries it, else None (the list is replaced whole)."""
    key = STRATEGIC_MERGE_KEYS.get(name)
    if key is None and name == "ports":
        key = next((k for k in PORT_MERGE_KEYS if items and all(isinstance(i, dict) and k in i for i in items)),
                   None)
    if key is None or not all(isinstance(i, dict) and i.get(key) is not None for i in items):
        return None
    return key


def _value_fields_v1(name: str, value: Any, strategic: bool) -> dict[str, Any]:  # noqa: ANN401
    if isinstance(value, dict):
        return {f"f:{k}": _value_fields_v1(str(k), v, strategic) for k, v in value.items()} if value else {}
    if strategic and isinstance(value, list) and value:
        key = _item_key(name, value)
        if key is not None:
            return {"k:" + json.dumps({key: item[key]}, separators=(",", ":")):
                    {".": {}, **_value_fields_v1("", item, strategic)} for item in value}
        if name in STRATEGIC_SET_LISTS and all(isinstance(i, str | int | float | bool) for i in value):
            return {"v:" + json.dumps(item, separators=(",", ":")): {} for item in value}
    return {}


def fields_v1_from_object(obj: Any, *, strategic: bool = False) -> dict[str, Any]:  # noqa: ANN401
    """Raw fieldsV1 for what a client-side apply of `obj` owns: maps by field; lists as a whole, or with
    `strategic` (a built-in kind) the lists kubectl merges by key (containers by name, ports by port...) item
    by item (`k:`), and set-like lists (finalizers) value by value (`v:`), as a three-way merge sees them."""
    return _value_fields_v1("", obj, strategic) if isinstance(obj, dict) else {}


def _secret_string_data_as_data(applied: dict[str, Any]) -> dict[str, Any]:
    """A last-applied Secret normalized as Argo CD normalizes it: `stringData` keys are `data` keys."""
    string_data = applied.get("stringData")
    if applied.get("kind") != "Secret" or applied.get("apiVersion") != "v1" or not isinstance(string_data, dict):
        return applied
    data = applied.get("data")
    merged = {**(data if isinstance(data, dict) else {}), **string_data}
    return {**{k: v for k, v in applied.items() if k != "stringData"}, "data": merged}


def applied_fields_v1(obj: dict[str, Any], manager: str) -> dict[str, Any] | None:
    """Raw fieldsV1 of what `manager` applied to `obj`: its server-side Apply entries (merged), else
    the last-applied-configuration annotation (client-side apply); None when neither exists."""
    result: dict[str, Any] | None = None
    for entry in _entries(obj):
        if entry.get("manager") == manager and entry.get("operation") == "Apply" \
                and entry.get("fieldsType", "FieldsV1") == "FieldsV1":
            fields = entry.get("fieldsV1") or {}
            if not isinstance(fields, dict):
                raise ManagedFieldsError(f"managedFields entry of {manager!r}: fieldsV1 is not a map")
            result = fields if result is None else merge_fields_v1(result, fields)
    if result is not None:
        return result
    text = ((obj.get("metadata") or {}).get("annotations") or {}).get(LAST_APPLIED_ANNOTATION)
    if not text:
        return None
    applied = _secret_string_data_as_data(_parse_last_applied(text))
    applied.pop("status", None)
    group = str(applied.get("apiVersion") or "").rpartition("/")[0]
    return fields_v1_from_object(applied, strategic=group in BUILTIN_GROUPS)


def _parse_last_applied(text: Any) -> dict[str, Any]:
    try:
        applied = json.loads(text)
    except (TypeError, json.JSONDecodeError) as exc:
        raise ManagedFieldsError(f"{LAST_APPLIED_ANNOTATION} is not valid JSON ({exc})") from None
    if not isinstance(applied, dict):
        raise ManagedFieldsError(f"{LAST_APPLIED_ANNOTATION} is not a JSON object")
    return applied


PathElement = str | int | dict[str, Any] | tuple[str, Any]


def field_paths(node: FieldNode, prefix: tuple[PathElement, ...] = ()) -> list[tuple[PathElement, ...]]:
    """Every member path: a str is a map field, a dict a keyed-list item, ("v", x) a set item, an int
    an index. `.metadata.labels.app` is `("metadata", "labels", "app")`."""
    paths: list[tuple[PathElement, ...]] = []
    if node.member and prefix:
        paths.append(prefix)
    for name, child in node.fields.items():
        paths.extend(field_paths(child, (*prefix, name)))
    for key, child in node.keys:
        paths.extend(field_paths(child, (*prefix, key)))
    for value, child in node.values:
        paths.extend(field_paths(child, (*prefix, ("v", value))))
    for index, child in node.indices.items():
        paths.extend(field_paths(child, (*prefix, index)))
    return paths


def remove_fields(obj: Any, node: FieldNode) -> Any:
    """`obj` without the fields in `node` (a new object where anything changed; `obj` is untouched).

    As structured-merge-diff's RemoveItems: a member is removed with everything below it; a node that
    only has children is descended into. Keyed-list items match on the key fields they carry.
    """
    if isinstance(obj, dict):
        if not node.fields:
            return obj
        result: dict[str, Any] | None = None
        for name, child in node.fields.items():
            if name not in obj:
                continue
            if result is None:
                result = dict(obj)
            if child.member or not child.has_children:
                del result[name]
            else:
                result[name] = remove_fields(obj[name], child)
        return obj if result is None else result
    if isinstance(obj, list):
        if not (node.keys or node.values or node.indices):
            return obj
        items: list[Any] = []
        for index, item in enumerate(obj):
            child = node.indices.get(index) or node.key_for(item, partial=True) or node.value_for(item)
            if child is None:
                items.append(item)
            elif child.member or not child.has_children:
                continue
            else:
                items.append(remove_fields(item, child))
        return items
    return obj
