"""One object's health: deletion first, then a Lua customization, then the built-in rule.

This is Argo CD's GetResourceHealth order: an object being deleted is Progressing "Pending deletion";
a Lua rule (the caller's, then WaveCD's shipped ones) overrides a built-in rule; a kind with neither has
no health (None). A rule that cannot read the object gives Unknown with the reason, never an exception.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared.health.errors import FieldTypeError, InvalidObjectError
from shared.health.lua import LuaHealthRules, default_lua_rules
from shared.health.registry import BUILTIN_RULES
from shared.health.status import HealthStatus, HealthStatusCode

PENDING_DELETION = HealthStatus(HealthStatusCode.PROGRESSING, "Pending deletion")


def group_kind(obj: Mapping[str, Any]) -> tuple[str, str]:
    """(group, kind) of an object; raises InvalidObjectError when it is not a Kubernetes object."""
    if not isinstance(obj, Mapping):
        raise InvalidObjectError(
            f"cannot assess health of a {type(obj).__name__}: expected a Kubernetes object"
        )
    kind = obj.get("kind")
    api_version = obj.get("apiVersion")
    if not isinstance(kind, str) or not kind:
        raise InvalidObjectError("cannot assess health of an object without a kind")
    if not isinstance(api_version, str) or not api_version:
        raise InvalidObjectError(f"cannot assess health of a {kind} without an apiVersion")
    group, sep, _ = api_version.partition("/")
    return (group if sep else ""), kind


def assess(obj: Mapping[str, Any], lua: LuaHealthRules | None = None) -> HealthStatus | None:
    """The health of one live object, or None when no rule covers its kind.

    `lua` (the app's or the installation's customizations) is tried first, then WaveCD's shipped Lua
    rules, then the built-in rules. Raises InvalidObjectError only for input that is not an object.
    """
    group, kind = group_kind(obj)
    meta = obj.get("metadata")
    if isinstance(meta, Mapping) and meta.get("deletionTimestamp"):
        return PENDING_DELETION
    if lua is not None:
        verdict = lua.evaluate(obj, group, kind)
        if verdict is not None:
            return verdict
    shipped = default_lua_rules()
    if shipped.covers(group, kind):
        return shipped.evaluate(obj, group, kind)
    rule = BUILTIN_RULES.get((group, kind))
    if rule is None:
        return None
    try:
        return rule(obj)
    except FieldTypeError as exc:
        return HealthStatus(HealthStatusCode.UNKNOWN, f"failed to assess {kind} health: {exc}")
