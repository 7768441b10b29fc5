"""Label and field selectors with Kubernetes' syntax and matching rules.

List, watch and deletecollection filter with these; a selector Kubernetes cannot parse is a 400 here too.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sandbox.errors import ApiError

_KEY = r"[A-Za-z0-9][-A-Za-z0-9_./]*"
_VALUE = r"[A-Za-z0-9._-]*"
_SET_RE = re.compile(rf"^\s*(?P<key>{_KEY})\s+(?P<op>in|notin)\s*\((?P<values>[^)]*)\)\s*$")
_CMP_RE = re.compile(rf"^\s*(?P<key>{_KEY})\s*(?P<op>==|=|!=|>|<)\s*(?P<value>{_VALUE})\s*$")
_EXISTS_RE = re.compile(rf"^\s*(?P<neg>!?)\s*(?P<key>{_KEY})\s*$")


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # = != in notin exists !exists > <
    values: tuple[str, ...] = ()

    def matches(self, labels: dict[str, str]) -> bool:
        has = self.key in labels
        value = labels.get(self.key)
        if self.op == "exists":
            return has
        if self.op == "!exists":
            return not has
        if self.op in ("=", "in"):
            return has and value in self.values
        if self.op in ("!=", "notin"):
            return not has or value not in self.values
        try:
            number, bound = int(value or ""), int(self.values[0])
        except ValueError:
            return False
        return number > bound if self.op == ">" else number < bound


def _split(selector: str) -> list[str]:
    """Split on commas that are not inside parentheses."""
    parts, depth, current = [], 0, []
    for ch in selector:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return [p for p in (p.strip() for p in parts) if p]


def parse_label_selector(selector: str | None) -> list[Requirement]:
    """Parse `a=b,c!=d,e in (f,g),!h`; raises a 400 ApiError naming the bad requirement."""
    if not selector or not selector.strip():
        return []
    out: list[Requirement] = []
    for part in _split(selector):
        if m := _SET_RE.match(part):
            values = tuple(v.strip() for v in m.group("values").split(",") if v.strip())
            if not values:
                raise ApiError(400, f"unable to parse requirement: values for {m.group('op')} must not be empty")
            out.append(Requirement(m.group("key"), m.group("op"), values))
        elif m := _CMP_RE.match(part):
            op = "=" if m.group("op") == "==" else m.group("op")
            if op in (">", "<") and not m.group("value").lstrip("-").isdigit():
                raise ApiError(400, f"unable to parse requirement: invalid value for {op}: {m.group('value')!r}")
            out.append(Requirement(m.group("key"), op, (m.group("value"),)))
        elif m := _EXISTS_RE.match(part):
            out.append(Requirement(m.group("key"), "!exists" if m.group("neg") else "exists"))
        else:
            raise ApiError(400, f"unable to parse requirement: invalid label selector {part!r}")
    return out


def labels_match(requirements: list[Requirement], obj: dict[str, Any]) -> bool:
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return all(r.matches(labels) for r in requirements)


# Fields Kubernetes lets each kind select on, beyond metadata.name and metadata.namespace.
_EXTRA_FIELDS: dict[str, tuple[str, ...]] = {
    "Pod": ("spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName",
            "status.phase", "status.podIP", "status.nominatedNodeName"),
    "Secret": ("type",),
    "Event": ("involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
              "involvedObject.uid", "involvedObject.apiVersion", "involvedObject.resourceVersion",
              "involvedObject.fieldPath", "reason", "reportingComponent", "source", "type"),
    "Namespace": ("status.phase",),
    "Node": ("spec.unschedulable",),
    "ReplicaSet": ("status.replicas",),
    "Job": ("status.successful",),
}


def _field_value(obj: dict[str, Any], path: str) -> str:
    node: Any = obj
    for part in path.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    if node is None:
        return ""
    if isinstance(node, bool):
        return "true" if node else "false"
    return str(node)


def parse_field_selector(selector: str | None, kind: str) -> Callable[[dict[str, Any]], bool]:
    """Parse `metadata.name=x,metadata.namespace!=y` into a predicate; unsupported fields are a 400."""
    if not selector or not selector.strip():
        return lambda _obj: True
    allowed = {"metadata.name", "metadata.namespace", *_EXTRA_FIELDS.get(kind, ())}
    terms: list[tuple[str, bool, str]] = []
    for part in _split(selector):
        m = re.match(r"^\s*([A-Za-z0-9_.]+)\s*(==|=|!=)\s*(.*?)\s*$", part)
        if not m:
            raise ApiError(400, f"invalid selector: '{selector}'; can't understand '{part}'")
        field, op, value = m.groups()
        if field not in allowed:
            raise ApiError(400, f'field label not supported: {field}')
        terms.append((field, op == "!=", value))

    def predicate(obj: dict[str, Any]) -> bool:
        return all((_field_value(obj, f) == v) != negate for f, negate, v in terms)

    return predicate
