"""Kubernetes resource quantities compared by value, so `1000m` and `1`, or `1Gi` and `1073741824`, agree.

The API server stores a quantity in its canonical form, which is often not the form written in git
(`cpu: 1000m` comes back as `"1"`, `memory: 1024Mi` as `"1Gi"`). Comparing the strings would report
drift that is not there. Parsing is the kubernetes client's `parse_quantity`; a strict check of the
grammar first rejects what Kubernetes rejects and Python's `Decimal` would accept (`NaN`, `1_000`,
spaces, `1K`).
"""

from __future__ import annotations

import re
from decimal import Decimal

from kubernetes.utils import parse_quantity as _client_parse_quantity

# Kubernetes' grammar: <signedNumber><suffix>, suffix binarySI | decimalSI | decimalExponent.
_QUANTITY = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[KMGTPE]i|[numkMGTPE]|[eE][+-]?\d+)?")


class InvalidQuantity(ValueError):
    """The text is not a Kubernetes quantity; the message quotes it."""


def parse_quantity(value: str | int | float) -> Decimal:
    """The exact value of a quantity (`"500Mi"` -> 524288000); raises `InvalidQuantity` otherwise."""
    if isinstance(value, bool):
        raise InvalidQuantity(f"{value!r} is a boolean, not a quantity")
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        text = repr(value)  # the shortest exact decimal for the float, e.g. 0.1 -> "0.1"
    elif isinstance(value, str):
        text = value
    else:
        raise InvalidQuantity(f"{value!r} is a {type(value).__name__}, not a quantity")
    if not _QUANTITY.fullmatch(text):
        raise InvalidQuantity(f"{text!r} is not a quantity (expected e.g. 500m, 1.5, 2Gi, 1e3)")
    try:
        return _client_parse_quantity(text)
    except ValueError as exc:
        raise InvalidQuantity(f"{text!r} is not a quantity: {exc}") from None


def is_quantity(value: object) -> bool:
    """True when `value` parses as a quantity (numbers do; booleans do not)."""
    try:
        parse_quantity(value)  # type: ignore[arg-type]
    except InvalidQuantity:
        return False
    return True


def quantity_equal(a: str | int | float, b: str | int | float) -> bool:
    """Equal as quantities: same text, or both parse and have the same value. Never raises."""
    if type(a) is type(b) and a == b:
        return True
    try:
        return parse_quantity(a) == parse_quantity(b)
    except InvalidQuantity:
        return False
