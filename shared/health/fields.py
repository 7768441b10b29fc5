"""Typed reads of unstructured objects for the built-in rules.

Argo CD converts an unstructured object to its typed Go struct and reports a conversion error as Unknown
health; reading the few fields a rule needs, with their types checked, gives the same outcome without
converting whole objects (assess must stay a few microseconds per object).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared.health.errors import FieldTypeError

_EMPTY: Mapping[str, Any] = {}


def mapping(obj: Mapping[str, Any], key: str, path: str) -> Mapping[str, Any]:
    """`obj[key]` as a mapping; absent or null reads as empty."""
    value = obj.get(key)
    if value is None:
        return _EMPTY
    if not isinstance(value, Mapping):
        raise FieldTypeError(f"{path} must be an object, got {type(value).__name__}")
    return value


def sequence(obj: Mapping[str, Any], key: str, path: str) -> list[Any]:
    """`obj[key]` as a list; absent or null reads as empty."""
    value = obj.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise FieldTypeError(f"{path} must be a list, got {type(value).__name__}")
    return value


def integer(obj: Mapping[str, Any], key: str, path: str, default: int | None = 0) -> int | None:
    """`obj[key]` as an int; absent or null reads as `default` (None for optional pointers)."""
    value = obj.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise FieldTypeError(f"{path} must be an integer, got {type(value).__name__}")
    return value


def string(obj: Mapping[str, Any], key: str, path: str) -> str:
    """`obj[key]` as a str; absent or null reads as ""."""
    value = obj.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise FieldTypeError(f"{path} must be a string, got {type(value).__name__}")
    return value


def boolean(obj: Mapping[str, Any], key: str, path: str) -> bool:
    """`obj[key]` as a bool; absent or null reads as False."""
    value = obj.get(key)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise FieldTypeError(f"{path} must be a boolean, got {type(value).__name__}")
    return value


def conditions(status: Mapping[str, Any], path: str = "status.conditions") -> list[Mapping[str, Any]]:
    """`status.conditions` as a list of mappings (entries that are not mappings are a type error)."""
    items = sequence(status, "conditions", path)
    for index, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise FieldTypeError(f"{path}[{index}] must be an object, got {type(item).__name__}")
    return items


def find_condition(status: Mapping[str, Any], kind: str) -> Mapping[str, Any] | None:
    """The first condition of type `kind`, as Argo CD's get*Condition helpers return it."""
    for condition in conditions(status):
        if condition.get("type") == kind:
            return condition
    return None


def metadata(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return mapping(obj, "metadata", "metadata")


def spec(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return mapping(obj, "spec", "spec")


def status(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return mapping(obj, "status", "status")


def observed_behind(meta: Mapping[str, Any], status: Mapping[str, Any]) -> bool:
    """Whether the controller has not yet seen the latest spec (metadata.generation > status.observedGeneration)."""
    generation = integer(meta, "generation", "metadata.generation")
    observed = integer(status, "observedGeneration", "status.observedGeneration")
    return bool(generation is not None and observed is not None and generation > observed)
