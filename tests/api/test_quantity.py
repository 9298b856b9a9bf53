"""Quantities parse and print as upstream's resource.Quantity: values, canonical strings, errors."""

from decimal import Decimal

import pytest
from hypothesis import given, strategies as st

from k1s.api.quantity import (
    BINARY_SI, DECIMAL_EXPONENT, DECIMAL_SI, ERR_FORMAT_WRONG, ERR_SUFFIX, Quantity, canonical,
    format_quantity, parse_quantity, quantity_to_int, quantity_to_milli,
)

# (input, canonical string upstream stores and returns, exact value)
CANONICAL = [
    ("0", "0", 0),
    ("1024Mi", "1Gi", 1 << 30),
    ("1000m", "1", 1),
    ("0.5Gi", "512Mi", 1 << 29),
    ("1.5", "1500m", Decimal("1.5")),
    ("1Gi", "1Gi", 1 << 30),
    ("2048Ki", "2Mi", 2 << 20),
    ("1500Mi", "1500Mi", 1500 << 20),
    ("3.5Gi", "3584Mi", 3584 << 20),
    ("0.5Ki", "512", 512),          # BinarySI below 1024 prints as DecimalSI
    ("1.1Ki", "1126400m", Decimal("1126.4")),  # not whole: DecimalSI, no rounding
    ("100M", "100M", 10 ** 8),
    ("1.5k", "1500", 1500),
    ("1000k", "1M", 10 ** 6),
    ("10", "10", 10),
    ("100", "100", 100),
    ("1000", "1k", 1000),
    ("500m", "500m", Decimal("0.5")),
    ("0.1", "100m", Decimal("0.1")),
    ("1n", "1n", Decimal("1e-9")),
    ("0.1n", "1n", Decimal("1e-9")),                # rounded away from zero to nanos
    ("0.0000000001", "1n", Decimal("1e-9")),
    ("-0.0000000001", "-1n", Decimal("-1e-9")),
    ("1e3", "1e3", 1000),
    ("1E3", "1E3", 1000),                             # kept verbatim, as upstream does
    ("1e4", "10e3", 10 ** 4),
    ("10e3", "10e3", 10 ** 4),
    ("1000e3", "1e6", 10 ** 6),
    ("1e-3", "1e-3", Decimal("0.001")),
    ("129e-2", "1290e-3", Decimal("1.29")),
    ("+1500m", "+1500m", Decimal("1.5")),             # kept verbatim
    ("05Ki", "05Ki", 5120),                           # kept verbatim
    ("-1", "-1", -1),
    ("-1Gi", "-1Gi", -(1 << 30)),
    ("-0", "0", 0),
    ("00", "0", 0),
    ("-", "0", 0),                                    # upstream's scanner reads these as zero
    (".", "0", 0),
    ("Ki", "0", 0),
    ("9Ei", "9223372036854775807", (1 << 63) - 1),   # BinarySI capped at int64
    ("1000E", "1e21", 10 ** 21),                      # no DecimalSI suffix past E
    ("12345678901234567890", "12345678901234567890", 12345678901234567890),
]


@pytest.mark.parametrize("text,want,value", CANONICAL)
def test_canonical_and_value(text, want, value):
    assert canonical(text) == want
    assert parse_quantity(text) == Decimal(value)


@pytest.mark.parametrize("value,want", [(1, "1"), (0.5, "500m"), (2.0, "2"), (1e16, "10e15"),
                                        (0, "0")])
def test_json_numbers(value, want):
    assert canonical(value) == want


@pytest.mark.parametrize("text,err", [
    ("", ERR_FORMAT_WRONG), ("abc", ERR_FORMAT_WRONG), ("1 ", ERR_FORMAT_WRONG),
    (" 1", ERR_FORMAT_WRONG), ("1.2.3", ERR_FORMAT_WRONG), ("1Kb", ERR_FORMAT_WRONG),
    ("1e", ERR_SUFFIX), ("1ee3", ERR_SUFFIX), ("1Mi1", ERR_SUFFIX), ("1KiB", ERR_FORMAT_WRONG),
    ("1k2", ERR_SUFFIX),
])
def test_errors(text, err):
    with pytest.raises(ValueError) as e:
        parse_quantity(text)
    assert str(e.value) == err


def test_error_text_is_upstreams():
    assert ERR_FORMAT_WRONG == ("quantities must match the regular expression "
                                "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")


@pytest.mark.parametrize("bad", [None, True, float("nan"), float("inf"), [1]])
def test_non_quantities_rejected(bad):
    with pytest.raises(ValueError):
        parse_quantity(bad)


@pytest.mark.parametrize("value,fmt,want", [
    (Decimal(1 << 30), BINARY_SI, "1Gi"),
    (Decimal(1 << 30), DECIMAL_SI, "1073741824"),
    (Decimal(10 ** 9), DECIMAL_SI, "1G"),
    (Decimal(10 ** 9), DECIMAL_EXPONENT, "1e9"),
    (Decimal(10 ** 9), BINARY_SI, "1000000000"),  # not a multiple of 1024: plain
    (Decimal("0.5"), BINARY_SI, "500m"),
    (Decimal(1536), BINARY_SI, "1536"),
    (Decimal(1536 * 1024), BINARY_SI, "1536Ki"),
    (Decimal(-2048), BINARY_SI, "-2Ki"),
    (Decimal(0), BINARY_SI, "0"),
    (Decimal("0.001"), DECIMAL_EXPONENT, "1e-3"),
    (Decimal(12000), DECIMAL_EXPONENT, "12e3"),
])
def test_format_quantity(value, fmt, want):
    assert format_quantity(value, fmt) == want


def test_quantity_object():
    q = Quantity.parse("1024Mi")
    assert q.format == BINARY_SI and str(q) == "1Gi"
    assert Quantity.parse("1Gi") == q
    assert Quantity.parse("1G") < q


def test_int_and_milli_round_up():
    assert quantity_to_int("1500m") == 2
    assert quantity_to_int("1Gi") == 1 << 30
    assert quantity_to_milli("1.5") == 1500
    assert quantity_to_milli("1n") == 1


suffixes = st.sampled_from(["", "m", "k", "M", "G", "Ki", "Mi", "Gi", "e3", "e-3"])


@given(st.integers(min_value=-10 ** 12, max_value=10 ** 12), st.integers(0, 3), suffixes)
def test_canonical_is_a_fixed_point(mantissa, decimals, suffix):
    text = str(mantissa)
    if decimals:
        text = f"{mantissa // 10 ** decimals}.{abs(mantissa) % 10 ** decimals:0{decimals}d}"
    q = Quantity.parse(text + suffix)
    c = str(q)
    # The canonical text parses to the same value and prints itself again.
    assert parse_quantity(c) == q.value
    assert canonical(c) == c
