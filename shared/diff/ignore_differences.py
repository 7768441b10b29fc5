"""Argo CD's `ignoreDifferences`: fields removed from both sides before they are compared.

A rule selects resources by group, kind (both may be globs such as `*`; an empty group is the core
group, as in Argo CD), and optionally name and namespace (empty matches any). It then names fields
three ways: RFC 6901 JSON pointers, jq path expressions (evaluated with the `jq` package as
`[path(EXPR)]`), and managed-fields managers (every field those managers own in the live object,
which lets an HPA own `spec.replicas`). The same rules serve the app level
(`spec.ignoreDifferences`) and the global setting (Argo CD's
`resource.customizations.ignoreDifferences.all`): the caller passes both lists together.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import jq

from shared.core.errors import StallingError
from shared.core.globs import glob_match
from shared.core.models import ResourceIgnoreDifferences
from shared.core.resources import ResourceKey
from shared.diff.managed_fields import FieldNode, ManagedFieldsError, owned_fields, remove_fields

Path = tuple[str | int, ...]


def rule_matches(rule: ResourceIgnoreDifferences, key: ResourceKey) -> bool:
    """Group and kind match as globs (`*` = any; `""` group = core), name/namespace exactly or empty."""
    if not glob_match(rule.kind or "*", key.kind):
        return False
    if not glob_match(rule.group, key.group):
        return False
    if rule.name and rule.name != key.name:
        return False
    return not rule.namespace or rule.namespace == key.namespace


def matching_rules(key: ResourceKey, rules: Sequence[ResourceIgnoreDifferences]
                   ) -> list[ResourceIgnoreDifferences]:
    return [rule for rule in rules if rule_matches(rule, key)]


@lru_cache(maxsize=1024)
def parse_json_pointer(pointer: str) -> tuple[str, ...]:
    """RFC 6901 tokens of `pointer` (`/a~1b/0` -> ("a/b", "0")); `StallingError` when malformed."""
    if pointer == "":
        return ()
    if not pointer.startswith("/"):
        raise StallingError(f"invalid jsonPointer {pointer!r}: must be empty or start with '/'")
    tokens = []
    for raw in pointer[1:].split("/"):
        if "~" in raw.replace("~0", "").replace("~1", ""):
            raise StallingError(f"invalid jsonPointer {pointer!r}: '~' must be followed by 0 or 1")
        tokens.append(raw.replace("~1", "/").replace("~0", "~"))
    return tuple(tokens)


def _pointer_path(obj: Any, tokens: tuple[str, ...]) -> Path | None:
    """The concrete path (list indices as ints) that `tokens` names in `obj`, or None if absent."""
    path: list[str | int] = []
    node = obj
    for token in tokens:
        if isinstance(node, dict):
            if token not in node:
                return None
            path.append(token)
            node = node[token]
        elif isinstance(node, list):
            if not token.isdigit() or (len(token) > 1 and token[0] == "0") or int(token) >= len(node):
                return None
            path.append(int(token))
            node = node[int(token)]
        else:
            return None
    return tuple(path)


@lru_cache(maxsize=1024)
def _compile_jq(expression: str) -> Any:
    try:
        return jq.compile(f"[path({expression})]")
    except ValueError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "does not compile"
        raise StallingError(f"invalid jqPathExpression {expression!r}: {first}") from None


def jq_paths(expression: str, obj: Any) -> list[Path]:
    """The paths `expression` selects in `obj`. An expression that fails on this object (e.g. `[]`
    on a missing list) selects nothing; one that does not compile is a `StallingError`."""
    program = _compile_jq(expression)
    try:
        found = program.input_value(obj).first()
    except ValueError:
        return []
    return [tuple(p) for p in found or [] if isinstance(p, list) and p]


def delete_path(obj: Any, path: Sequence[str | int]) -> Any:
    """`obj` without the value at `path`; copies only the containers on the path; absent = no-op."""
    if not path:
        return obj
    head, rest = path[0], path[1:]
    if isinstance(obj, dict) and isinstance(head, str) and head in obj:
        result = dict(obj)
        if rest:
            result[head] = delete_path(obj[head], rest)
        else:
            del result[head]
        return result
    if isinstance(obj, list) and isinstance(head, int) and not isinstance(head, bool) \
            and -len(obj) <= head < len(obj):
        items = list(obj)
        if rest:
            items[head] = delete_path(obj[head], rest)
        else:
            del items[head]
        return items
    return obj


def delete_paths(obj: Any, paths: Sequence[Path]) -> Any:
    """Delete several paths; list items go from the highest index down so indices stay valid."""
    def order(path: Path) -> tuple[tuple[int, str | int], ...]:
        return tuple((1, p) if isinstance(p, int) else (0, p) for p in path)  # type: ignore[misc]

    for path in sorted(set(paths), key=order, reverse=True):
        obj = delete_path(obj, path)
    return obj


def _paths_of(obj: Any, rule: ResourceIgnoreDifferences) -> list[Path]:
    paths: list[Path] = []
    for pointer in rule.json_pointers:
        found = _pointer_path(obj, parse_json_pointer(pointer))
        if found:
            paths.append(found)
    for expression in rule.jq_path_expressions:
        paths.extend(jq_paths(expression, obj))
    return paths


def trusted_fields(live: dict[str, Any] | None, managers: Sequence[str]) -> FieldNode | None:
    """Fields the named managers own in `live` (any operation), or None."""
    if live is None or not managers:
        return None
    try:
        return owned_fields(live, managers)
    except ManagedFieldsError as exc:
        raise StallingError(f"cannot read managedFields of the live object: {exc}") from None


def apply_ignore_differences(desired: dict[str, Any] | None, live: dict[str, Any] | None,
                             rules: Sequence[ResourceIgnoreDifferences],
                             raw_live: dict[str, Any] | None = None
                             ) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """Desired and live with every ignored field removed (copies where changed).

    The rules must already match the resource (`matching_rules`). `raw_live` is the live object
    before normalization, whose `metadata.managedFields` names what each manager owns.
    """
    if not rules:
        return desired, live
    managers = sorted({m for rule in rules for m in rule.managed_fields_managers})
    trusted = trusted_fields(raw_live if raw_live is not None else live, managers)
    out: list[dict[str, Any] | None] = []
    for obj in (desired, live):
        if obj is None:
            out.append(None)
            continue
        paths = [p for rule in rules for p in _paths_of(obj, rule)]
        if paths:
            obj = delete_paths(obj, paths)
        if trusted is not None:
            try:
                obj = remove_fields(obj, trusted)
            except ManagedFieldsError as exc:  # the tree is parsed as it is walked
                raise StallingError(f"cannot read managedFields of the live object: {exc}") from None
        out.append(obj)
    return out[0], out[1]
