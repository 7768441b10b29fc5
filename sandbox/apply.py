"""Server-side apply and managedFields bookkeeping.

Every write records which manager owns which fields (operation Update for create/update/patch, Apply for
apply). Apply merges the manager's configuration into the live object, refuses to change fields another
manager owns (409 with one cause per field) unless forced, and removes fields the manager applied before
and no longer applies, unless someone else still owns them: the contract WaveCD's sync relies on.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sandbox.errors import ApiError
from sandbox.fieldsets import (
    ITEM_PRESENT,
    Path,
    decode,
    describe,
    encode,
    field_values,
    item_key,
    remove_path,
    under,
)
from sandbox.schema import Node

_MISSING = object()


@dataclass
class ManagerEntry:
    manager: str
    operation: str
    api_version: str
    time: str
    subresource: str = ""
    paths: set[Path] = field(default_factory=set)

    def to_json(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"manager": self.manager, "operation": self.operation,
                                 "apiVersion": self.api_version, "time": self.time,
                                 "fieldsType": "FieldsV1", "fieldsV1": encode(self.paths)}
        if self.subresource:
            entry["subresource"] = self.subresource
        return entry


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def load(obj: dict[str, Any] | None) -> list[ManagerEntry]:
    entries = ((obj or {}).get("metadata") or {}).get("managedFields") or []
    out = []
    for e in entries:
        if isinstance(e, dict) and e.get("manager") is not None:
            out.append(ManagerEntry(e.get("manager", ""), e.get("operation", "Update"), e.get("apiVersion", ""),
                                    e.get("time", ""), e.get("subresource", ""), decode(e.get("fieldsV1"))))
    return out


def save(obj: dict[str, Any], entries: list[ManagerEntry]) -> None:
    kept = [e.to_json() for e in entries if e.paths]
    if kept:
        obj.setdefault("metadata", {})["managedFields"] = kept
    else:
        obj.setdefault("metadata", {}).pop("managedFields", None)


def _changed(old: dict[Path, Any], new: dict[Path, Any]) -> set[Path]:
    return {p for p in old.keys() | new.keys() if old.get(p, _MISSING) != new.get(p, _MISSING)}


def _entry(entries: list[ManagerEntry], manager: str, operation: str, api_version: str,
           subresource: str) -> ManagerEntry:
    for e in entries:
        if e.manager == manager and e.operation == operation and e.subresource == subresource:
            e.api_version, e.time = api_version, now()
            return e
    e = ManagerEntry(manager, operation, api_version, now(), subresource)
    entries.append(e)
    return e


def base_entries(old: dict[str, Any] | None, new: dict[str, Any]) -> tuple[list[ManagerEntry], bool]:
    """The manager list a write starts from: the body's when it sets one explicitly, else the old one.

    Returns (entries, reset); reset is True for `managedFields: [{}]`, Kubernetes' way to clear them.
    """
    body = (new.get("metadata") or {}).get("managedFields")
    old_body = ((old or {}).get("metadata") or {}).get("managedFields")
    if body == [{}]:
        return [], True
    if body and body != old_body:
        return load(new), False
    return load(old), False


def record_update(old: dict[str, Any] | None, new: dict[str, Any], node: Node, manager: str, api_version: str,
                  subresource: str, status_subresource: bool) -> None:
    """Record a non-apply write by `manager` in new.metadata.managedFields."""
    entries, reset = base_entries(old, new)
    if reset:
        save(new, [])
        return
    scope = "status" if subresource == "status" else "main"
    old_vals = field_values(old or {}, node, scope, status_subresource)
    new_vals = field_values(new, node, scope, status_subresource)
    changed = _changed(old_vals, new_vals)
    for e in entries:
        e.paths -= changed
    if changed:
        mine = _entry(entries, manager, "Update", api_version, subresource)
        mine.paths |= {p for p in changed if p in new_vals}
    save(new, entries)


def merge_applied(live: Any, config: Any, node: Node) -> Any:
    """Merge an apply configuration into a live value: maps and associative lists merge, others replace."""
    if isinstance(config, dict) and isinstance(live, dict) and not node.atomic_map:
        result = dict(live)
        for key, value in config.items():
            if value is None:
                result.pop(key, None)
            else:
                result[key] = merge_applied(live.get(key), value, node.child(key))
        return result
    if isinstance(config, list) and isinstance(live, list):
        info = node.list_info()
        if info.list_type == "map" and all(isinstance(x, dict) for x in config + live):
            result = list(live)
            item_node = node.items()
            for item in config:
                key = item_key(item, info.keys)
                index = next((i for i, cur in enumerate(result) if item_key(cur, info.keys) == key), None)
                if index is None:
                    result.append(copy.deepcopy(item))
                else:
                    result[index] = merge_applied(result[index], item, item_node)
            return result
        if info.list_type == "set":
            return list(live) + [copy.deepcopy(x) for x in config if x not in live]
    return copy.deepcopy(config)


def server_side_apply(live: dict[str, Any] | None, config: dict[str, Any], node: Node, *, manager: str,
                      force: bool, api_version: str, subresource: str, status_subresource: bool) -> dict[str, Any]:
    """Return the object after `manager` applies `config` to `live` (None when creating).

    Raises a 409 ApiError listing every conflicting field when another manager owns a field whose value
    would change and `force` is false.
    """
    scope = "status" if subresource == "status" else "main"
    applied = {k: v for k, v in config.items()
               if (k == "status") == (scope == "status") or k in ("apiVersion", "kind", "metadata")}
    if scope == "main" and status_subresource:
        applied.pop("status", None)
    if scope == "status":
        applied["metadata"] = {}
    base = copy.deepcopy(live) if live is not None else {
        "apiVersion": config.get("apiVersion"), "kind": config.get("kind"), "metadata": {}}
    entries = load(live)
    new_set = set(field_values(applied, node, scope, status_subresource))
    applied_meta = {k: v for k, v in (applied.get("metadata") or {}).items() if k != "managedFields"}
    merged = merge_applied(base, {**applied, "metadata": applied_meta}, node)
    live_vals = field_values(base, node, scope, status_subresource)
    merged_vals = field_values(merged, node, scope, status_subresource)
    changed = _changed(live_vals, merged_vals)

    others = [e for e in entries if e.manager != manager]
    conflicts: list[tuple[ManagerEntry, Path]] = []
    for e in others:
        for p in sorted(e.paths & changed):
            if merged_vals.get(p, _MISSING) is ITEM_PRESENT and live_vals.get(p, _MISSING) is ITEM_PRESENT:
                continue
            conflicts.append((e, p))
    if conflicts and not force:
        raise _conflict_error(conflicts)
    for e, p in conflicts:
        e.paths.discard(p)
    for e in entries:
        if e.manager == manager and e.operation == "Update":
            e.paths -= new_set

    previous = next((e.paths for e in entries if e.manager == manager and e.operation == "Apply"
                     and e.subresource == subresource), set())
    removed = sorted(previous - new_set, key=len, reverse=True)
    owned_elsewhere = set().union(*(e.paths for e in entries
                                    if not (e.manager == manager and e.operation == "Apply"
                                            and e.subresource == subresource)))
    for p in removed:
        if any(under(q, p) for q in owned_elsewhere | new_set):
            continue
        remove_path(merged, p, node)

    final_vals = field_values(merged, node, scope, status_subresource)
    for e in entries:
        e.paths = {p for p in e.paths if p in final_vals or not _in_scope(p, scope)}
    mine = _entry(entries, manager, "Apply", api_version, subresource)
    mine.paths = {p for p in new_set if p in final_vals}
    save(merged, entries)
    return merged


def _in_scope(path: Path, scope: str) -> bool:
    return (path[:1] == ("f:status",)) == (scope == "status")


def _conflict_error(conflicts: list[tuple[ManagerEntry, Path]]) -> ApiError:
    causes = []
    by_manager: dict[tuple[str, str], list[str]] = {}
    for e, p in conflicts:
        message = f'conflict with "{e.manager}"' + (f" using {e.api_version}" if e.api_version else "")
        causes.append({"reason": "FieldManagerConflict", "message": message, "field": describe(p)})
        by_manager.setdefault((e.manager, e.api_version), []).append(describe(p))
    count = len(conflicts)
    parts = []
    for (name, version), fields in by_manager.items():
        head = f'conflict{"s" if len(fields) > 1 else ""} with "{name}"' + (f" using {version}" if version else "")
        parts.append(head + (":\n- " + "\n- ".join(fields) if len(fields) > 1 else ": " + fields[0]))
    message = f"Apply failed with {count} conflict{'s' if count > 1 else ''}: " + "\n".join(parts)
    error = ApiError(409, message, "Conflict", causes=causes)
    return error
