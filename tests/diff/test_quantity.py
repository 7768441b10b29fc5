"""Kubernetes quantities: parsed by value, strict about the grammar."""

from __future__ import annotations

from decimal import Decimal

import pytest

from shared.diff.quantity import InvalidQuantity, is_quantity, parse_quantity, quantity_equal


@pytest.mark.parametrize(("a", "b"), [
    ("1000m", "1"), ("1Gi", "1073741824"), ("500Mi", "524288000"), ("1024Mi", "1Gi"), ("250m", "0.25"),
    (2, "2"), ("1e3", "1k"), ("1E3", "1000"), (0.5, "500m"), ("1Ki", 1024), ("100M", "0.1G"),
    ("1.5Gi", "1536Mi"), ("+1", "1"), (".5", "500m"),
])
def test_equal_values(a, b) -> None:
    assert quantity_equal(a, b)
    assert quantity_equal(b, a)


@pytest.mark.parametrize(("a", "b"), [
    ("500m", "1"), ("1Gi", "1G"), ("1Mi", "1M"), ("1", "1001m"), ("1k", "1Ki"),
    ("abc", "1"), ("NaN", "1"), ("1K", "1000"), (True, 1), ("", "0"),
])
def test_different_values(a, b) -> None:
    assert not quantity_equal(a, b)


@pytest.mark.parametrize(("text", "value"), [
    ("500Mi", Decimal(524288000)), ("100m", Decimal("0.1")), ("2", Decimal(2)), ("1e-3", Decimal("0.001")),
    (3, Decimal(3)), (0.1, Decimal("0.1")),
])
def test_parse(text, value) -> None:
    assert parse_quantity(text) == value


@pytest.mark.parametrize("text", ["", " 1", "1 ", "1_000", "NaN", "Infinity", "1K", "1ki", "1.2.3", "m", "--1",
                                  None, [1], True])
def test_invalid_is_a_typed_error_naming_the_value(text) -> None:
    with pytest.raises(InvalidQuantity) as info:
        parse_quantity(text)
    assert repr(text) in str(info.value) or str(text) in str(info.value)
    assert not is_quantity(text)
