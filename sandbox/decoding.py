"""Type errors in request bodies, reported as kube-apiserver's JSON decoder reports them.

A built-in object is decoded into Go structs before anything else happens: a string where a list of
finalizers belongs, a number in a ConfigMap's data, a dict where containers belong, all end the request
with 400 BadRequest and Go's message, `json: cannot unmarshal string into Go struct field
ObjectMeta.metadata.finalizers of type []string`. The field and type names come from the Kubernetes
OpenAPI definitions bundled with `kubernetes-validate` (the same ones `sandbox.schema` reads), so the
emulator neither crashes on such bodies nor stores what a cluster would refuse.
"""

from __future__ import annotations

import re
from typing import Any

from sandbox.schema import builtin_definition, builtin_definition_name

_QUANTITY = re.compile(r"^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$")
QUANTITY_MESSAGE = "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
_META = "io.k8s.apimachinery.pkg.apis.meta.v1."
# Types with their own JSON decoding: checked by their own rule, or not at all.
_STRING_TYPES = {f"{_META}Time", f"{_META}MicroTime"}
_FREE_TYPES = {"io.k8s.apimachinery.pkg.runtime.RawExtension", f"{_META}FieldsV1",
               "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSON",
               "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaProps"}
_QUANTITY_TYPE = "io.k8s.apimachinery.pkg.api.resource.Quantity"
_INT_OR_STRING = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"


class DecodeError(Exception):
    """A body that does not decode into the kind's Go types; the message is Go's."""


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    return "number"


def _go_name(ref: str) -> str:
    parts = ref.split(".")
    return f"{parts[-2]}.{parts[-1]}"


def _go_type(schema: dict[str, Any]) -> str:
    ref = _ref(schema)
    if ref:
        if ref == _INT_OR_STRING:
            return "int32"
        if ref in _STRING_TYPES:
            return "string"
        return _go_name(ref)
    kind = _type(schema)
    if kind == "array":
        return "[]" + _go_type(schema.get("items") or {})
    if kind == "object":
        extra = schema.get("additionalProperties")
        return "map[string]" + (_go_type(extra) if isinstance(extra, dict) else "interface {}")
    if kind == "integer":
        return str(schema.get("format") or "int64")
    if kind == "number":
        return "float64"
    if kind == "boolean":
        return "bool"
    return "string"


def _type(schema: dict[str, Any]) -> str | None:
    """The schema's type; these definitions spell nullable ones as ["string", "null"]."""
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), None)
    return kind


def _ref(schema: dict[str, Any]) -> str | None:
    ref = schema.get("$ref")
    if ref is None and isinstance(schema.get("allOf"), list) and schema["allOf"]:
        ref = schema["allOf"][0].get("$ref")
    return str(ref).rsplit("/", 1)[-1] if ref else None


def _fail(value: Any, owner: str, path: str, schema: dict[str, Any], show_number: bool = False) -> DecodeError:
    kind = _json_kind(value)
    if show_number and kind == "number":
        kind = f"number {value}"
    return DecodeError(f"json: cannot unmarshal {kind} into Go struct field {owner}.{path} of type {_go_type(schema)}")


def _check(value: Any, schema: dict[str, Any], owner: str, path: str) -> None:
    if value is None:
        return
    ref = _ref(schema)
    if ref in _FREE_TYPES:
        return
    if ref == _QUANTITY_TYPE:
        if not isinstance(value, (int, float, str)) or isinstance(value, bool) or not _QUANTITY.match(str(value)):
            raise DecodeError(QUANTITY_MESSAGE)
        return
    if ref == _INT_OR_STRING:
        if isinstance(value, str):
            return
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _fail(value, owner, path, schema)
        if isinstance(value, float) and not value.is_integer():
            raise _fail(value, owner, path, schema, show_number=True)
        return
    if ref in _STRING_TYPES:
        if not isinstance(value, str):
            raise _fail(value, owner, path, schema)
        return
    if ref:
        definition = builtin_definition(ref)
        if definition is None:
            return
        if not isinstance(value, dict):
            raise _fail(value, owner, path, schema)
        struct = ref.rsplit(".", 1)[-1]
        props = definition.get("properties") or {}
        for key, item in value.items():
            if key in props:
                _check(item, props[key], struct, f"{path}.{key}" if path else key)
        return
    kind = _type(schema)
    if kind == "array":
        if not isinstance(value, list):
            raise _fail(value, owner, path, schema)
        for item in value:
            _check(item, schema.get("items") or {}, owner, path)
    elif kind == "object":
        extra = schema.get("additionalProperties")
        if not isinstance(value, dict):
            raise _fail(value, owner, path, schema)
        if isinstance(extra, dict):
            for item in value.values():
                _check(item, extra, owner, path)
    elif kind == "string":
        if not isinstance(value, str):
            raise _fail(value, owner, path, schema)
    elif kind == "boolean":
        if not isinstance(value, bool):
            raise _fail(value, owner, path, schema)
    elif kind in ("integer", "number"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _fail(value, owner, path, schema)
        if kind == "integer" and isinstance(value, float) and not value.is_integer():
            raise _fail(value, owner, path, schema, show_number=True)


def check_types(obj: dict[str, Any], group: str, version: str, kind: str) -> None:
    """Raise DecodeError with Go's message at the first value of the wrong JSON type (document order)."""
    name = builtin_definition_name(group, version, kind)
    if name is None:
        return
    props = (builtin_definition(name) or {}).get("properties") or {}
    for key, value in obj.items():
        if key in props and key not in ("apiVersion", "kind"):
            _check(value, props[key], kind, key)
