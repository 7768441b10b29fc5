"""Validation of custom resources against their CRD's openAPIV3Schema, with kube-apiserver's causes.

A cluster refuses a custom resource whose fields have the wrong type, miss a required field, or break
an enum, bound, length or pattern of the schema, with 422 Invalid and one cause per problem, worded as
apiextensions-apiserver words them (`spec.size in body must be of type integer: "string"`). WaveCD's
own CRDs (Application, AppProject) rely on it. Keywords beyond these are not checked here.
"""

from __future__ import annotations

import json
import re
from typing import Any

Cause = tuple[str, str, str]  # (field, reason, message)


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "null"


def _shown(value: Any) -> str:
    """A value as the API server prints it: strings quoted, integral numbers without a fraction."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return json.dumps(value) if isinstance(value, str) else str(value)


def _type_error(path: str, expected: str, actual: str) -> Cause:
    return (path, "FieldValueTypeInvalid", f'Invalid value: "{actual}": {path} in body must be of type {expected}: '
                                            f'"{actual}"')


def _check(value: Any, schema: dict[str, Any], path: str, causes: list[Cause]) -> None:
    if schema.get("x-kubernetes-int-or-string"):
        if not isinstance(value, (int, str)) or isinstance(value, bool):
            causes.append(_type_error(path, "integer,string", _json_type(value)))
        return
    expected = schema.get("type")
    actual = _json_type(value)
    if expected and not (actual == expected or (expected == "number" and actual == "integer")):
        causes.append(_type_error(path, expected, actual))
        if expected == "integer" and actual == "number":
            causes.append(("<nil>", "FieldValueInvalid",
                           f'Invalid value: "": Checked value must be of type integer (default format) in {path}'))
        return
    if "enum" in schema and value not in schema["enum"]:
        causes.append((path, "FieldValueNotSupported", f"Unsupported value: {_shown(value)}: supported values: "
                       + ", ".join(_shown(v) for v in schema["enum"])))
    if isinstance(value, str):
        _string(value, schema, path, causes)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        _number(value, schema, path, causes)
    elif isinstance(value, list):
        item_schema = schema.get("items")
        if isinstance(item_schema, dict):
            for index, item in enumerate(value):
                if item is not None or not item_schema.get("nullable"):
                    _check(item, item_schema, f"{path}[{index}]", causes)
        if isinstance(schema.get("maxItems"), int) and len(value) > schema["maxItems"]:
            causes.append((path, "FieldValueTooMany", f"Too many: {len(value)}: must have at most "
                                                      f"{schema['maxItems']} items"))
    elif isinstance(value, dict):
        _object(value, schema, path, causes)


def _string(value: str, schema: dict[str, Any], path: str, causes: list[Cause]) -> None:
    if isinstance(schema.get("maxLength"), int) and len(value.encode()) > schema["maxLength"]:
        causes.append((path, "FieldValueTooLong", f"Too long: may not be more than {schema['maxLength']} bytes"))
        return
    if isinstance(schema.get("minLength"), int) and len(value) < schema["minLength"]:
        causes.append((path, "FieldValueInvalid", f"Invalid value: {_shown(value)}: {path} in body should be at "
                                                  f"least {schema['minLength']} chars long"))
    pattern = schema.get("pattern")
    if isinstance(pattern, str):
        try:
            matched = re.search(pattern, value) is not None
        except re.error:
            matched = True
        if not matched:
            causes.append((path, "FieldValueInvalid", f"Invalid value: {_shown(value)}: {path} in body should "
                                                      f"match '{pattern}'"))


def _number(value: float, schema: dict[str, Any], path: str, causes: list[Cause]) -> None:
    low, high = schema.get("minimum"), schema.get("maximum")
    if isinstance(low, (int, float)):
        if schema.get("exclusiveMinimum") and value <= low:
            causes.append((path, "FieldValueInvalid", f"Invalid value: {_shown(value)}: {path} in body should be "
                                                      f"greater than {_shown(low)}"))
        elif value < low:
            causes.append((path, "FieldValueInvalid", f"Invalid value: {_shown(value)}: {path} in body should be "
                                                      f"greater than or equal to {_shown(low)}"))
    if isinstance(high, (int, float)):
        if schema.get("exclusiveMaximum") and value >= high:
            causes.append((path, "FieldValueInvalid", f"Invalid value: {_shown(value)}: {path} in body should be "
                                                      f"less than {_shown(high)}"))
        elif value > high:
            causes.append((path, "FieldValueInvalid", f"Invalid value: {_shown(value)}: {path} in body should be "
                                                      f"less than or equal to {_shown(high)}"))


def _object(value: dict[str, Any], schema: dict[str, Any], path: str, causes: list[Cause],
            skip: tuple[str, ...] = ()) -> None:
    props = schema.get("properties") or {}
    extra = schema.get("additionalProperties")
    for key in list(value):
        if key in skip:
            continue
        child = props.get(key, extra if isinstance(extra, dict) else None)
        where = f"{path}.{key}" if path else key
        if value[key] is None:
            if not (isinstance(child, dict) and child.get("nullable")):
                del value[key]  # a null where the schema allows none is dropped, not refused
            continue
        if isinstance(child, dict):
            _check(value[key], child, where, causes)
    for key in schema.get("required") or []:
        if key not in value and key not in skip:
            causes.append((f"{path}.{key}" if path else key, "FieldValueRequired", "Required value"))


def custom_resource_causes(obj: dict[str, Any], schema: dict[str, Any] | None) -> list[Cause]:
    """The 422 causes of a custom resource against its version's openAPIV3Schema (drops disallowed nulls)."""
    if not isinstance(schema, dict):
        return []
    causes: list[Cause] = []
    _object(obj, schema, "", causes, skip=("apiVersion", "kind", "metadata"))
    return causes
