"""Resource quantities (`500m`, `1Gi`, `1e3`) parsed and printed the way upstream's resource.Quantity does.

A quantity is a decimal number with an optional suffix. The suffix picks one of three formats:

    DecimalSI        n u m "" k M G T P E        (powers of 1000)
    BinarySI         Ki Mi Gi Ti Pi Ei           (powers of 1024)
    DecimalExponent  e<N> / E<N>                 (powers of ten)

The API server answers with the *canonical* string of every quantity it stored, so `1024Mi`
comes back as `1Gi` and `1.5` as `1500m`. Upstream keeps the caller's exact text when it was
already canonical-looking (`+1500m` and `1E3` survive a round trip); `canonical()` reproduces
that too, because clients diff what they sent against what they read back.

Rounding rules copied in behaviour (not code) from upstream:
- values are rounded away from zero to a multiple of 10^-9 (`0.1n` becomes `1n`);
- BinarySI values above 2^63-1 are capped there;
- a BinarySI value that is not a whole number, or lies strictly between -1024 and 1024, prints
  as DecimalSI (`0.5Gi` -> `512Mi`, but `0.5Ki` -> `512`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import ROUND_UP, Context, Decimal, InvalidOperation, localcontext

DECIMAL_SI = "DecimalSI"
BINARY_SI = "BinarySI"
DECIMAL_EXPONENT = "DecimalExponent"
FORMATS = (DECIMAL_SI, BINARY_SI, DECIMAL_EXPONENT)

# Upstream's error texts, verbatim: kubectl and clients print them as they come.
_SPLIT_RE = r"^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$"
ERR_FORMAT_WRONG = f"quantities must match the regular expression '{_SPLIT_RE}'"
ERR_NUMERIC = "unable to parse numeric part of quantity"
ERR_SUFFIX = "unable to parse quantity's suffix"

_DEC_SUFFIXES = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15,
                 "E": 18}
_DEC_BY_EXP = {v: k for k, v in _DEC_SUFFIXES.items()}
_BIN_SUFFIXES = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_BIN_BY_EXP = {v: k for k, v in _BIN_SUFFIXES.items()}
_BIN_BY_EXP[0] = ""

_SUFFIX_CHARS = frozenset("eEinumkKMGTP")
_DIGITS = frozenset("0123456789")
_MAX_INT64 = (1 << 63) - 1
_MAX_ALLOWED = Decimal(_MAX_INT64)
_NANO = Decimal("1e-9")
# Upstream's fast path keeps at most 18 significant digits in an int64.
_MAX_INT64_FACTORS = 18


def _ctx() -> Context:
    # Exact arithmetic: quantities may carry many digits and very large decimal exponents.
    return Context(prec=4000, Emax=999999999999, Emin=-999999999999, rounding=ROUND_UP)


@dataclass(frozen=True)
class Quantity:
    """A parsed quantity: its exact value, its format, and the input text if upstream keeps it."""
    value: Decimal
    format: str = DECIMAL_SI
    original: str | None = None

    @classmethod
    def parse(cls, value: str | int | float) -> "Quantity":
        return _parse(_as_text(value))

    def __str__(self) -> str:
        if self.original is not None:
            return self.original
        return format_quantity(self.value, self.format)

    def canonical(self) -> str:
        return str(self)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Quantity):
            return self.value == other.value
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.value)

    def __lt__(self, other: "Quantity") -> bool:
        return self.value < other.value


def parse_quantity(value: str | int | float) -> Decimal:
    """The exact numeric value of a quantity; ValueError (upstream's message) on bad input."""
    return Quantity.parse(value).value


def canonical(value: str | int | float) -> str:
    """The string the API server stores and returns for this quantity."""
    return str(Quantity.parse(value))


def is_valid(value: object) -> bool:
    try:
        Quantity.parse(value)  # type: ignore[arg-type]
    except ValueError:
        return False
    return True


def _as_text(value: object) -> str:
    # JSON numbers reach the server as their literal text; Python already turned them into
    # int/float, whose repr is the closest stand-in.
    if isinstance(value, bool) or value is None:
        raise ValueError(ERR_FORMAT_WRONG)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(ERR_FORMAT_WRONG)
        return repr(value)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, str):
        return value
    raise ValueError(ERR_FORMAT_WRONG)


def _split(s: str) -> tuple[bool, str, str, str, str]:
    """Split into (positive, value, numerator, denominator, suffix) as upstream's scanner does.

    The scanner is more lenient than the regular expression in its error message: `-`, `.`
    and a bare suffix such as `Ki` all read as zero.
    """
    positive = True
    pos = 0
    end = len(s)
    if pos < end and s[0] in "+-":
        positive = s[0] != "-"
        pos += 1
    while pos < end and s[pos] == "0":
        pos += 1
    if pos >= end:
        return positive, "0", "0", "", ""
    start = pos
    while pos < end and s[pos] in _DIGITS:
        pos += 1
    if pos >= end:
        return positive, s, s[start:], "", ""
    num = s[start:pos] or "0"
    denom = ""
    if s[pos] == ".":
        pos += 1
        dstart = pos
        while pos < end and s[pos] in _DIGITS:
            pos += 1
        denom = s[dstart:pos]
        if pos >= end:
            return positive, s, num, denom, ""
    value = s[:pos]
    sfx_start = pos
    while pos < end and s[pos] in _SUFFIX_CHARS:
        pos += 1
    if pos < end and s[pos] in "+-":
        pos += 1
    while pos < end and s[pos] in _DIGITS:
        pos += 1
    if pos < end:
        raise ValueError(ERR_FORMAT_WRONG)
    return positive, value, num, denom, s[sfx_start:]


def _int32(n: int) -> int:
    return ((n + (1 << 31)) % (1 << 32)) - (1 << 31)


def _interpret(suffix: str) -> tuple[int, int, str]:
    """(base, exponent, format) for a suffix."""
    if suffix in _DEC_SUFFIXES:
        return 10, _DEC_SUFFIXES[suffix], DECIMAL_SI
    if suffix in _BIN_SUFFIXES:
        return 2, _BIN_SUFFIXES[suffix], BINARY_SI
    if len(suffix) > 1 and suffix[0] in "eE":
        rest = suffix[1:]
        body = rest[1:] if rest[:1] in "+-" else rest
        if not body or not body.isdigit():
            raise ValueError(ERR_SUFFIX)
        exp = int(rest)
        if not -(1 << 63) <= exp <= _MAX_INT64:
            raise ValueError(ERR_SUFFIX)
        return 10, _int32(exp), DECIMAL_EXPONENT
    raise ValueError(ERR_SUFFIX)


def _parse(s: str) -> Quantity:
    if not s:
        raise ValueError(ERR_FORMAT_WRONG)
    if s == "0":
        return Quantity(Decimal(0), DECIMAL_SI, "0")
    positive, value, num, denom, suffix = _split(s)
    base, exponent, fmt = _interpret(suffix)

    # Upstream's int64 fast path: it decides whether the input text is kept verbatim.
    mantissa = 1
    if fmt == BINARY_SI:
        scale = 0
        if exponent >= 0 and not denom:
            mantissa = 1 << exponent
            precision = 15 - len(num) - (exponent * 3 // 10) - 1
        else:
            precision = -1
    else:
        scale = exponent
        precision = _MAX_INT64_FACTORS - (len(num) + len(denom))
    if precision >= 0:
        scale -= len(denom)
        if scale >= -9:
            shifted = num + denom
            v = int(shifted)
            result = v * mantissa
            if result <= _MAX_INT64:
                if not positive:
                    result = -result
                with localcontext(_ctx()):
                    amount = Decimal(result).scaleb(scale) if result else Decimal(0)
                keep = False
                if fmt == BINARY_SI:
                    keep = exponent % 10 == 0 and (v & 7) != 0
                else:
                    keep = scale % 3 == 0 and not shifted.endswith("000") and shifted[0] != "0"
                return Quantity(amount, fmt, s if keep else None)

    with localcontext(_ctx()):
        try:
            amount = Decimal(value)
        except InvalidOperation:
            raise ValueError(ERR_NUMERIC) from None
        if not amount.is_finite():
            raise ValueError(ERR_NUMERIC)
        if base == 10:
            amount = amount.scaleb(exponent)
        else:
            amount = amount * (1 << exponent)
        negative = amount < 0
        amount = abs(amount)
        # Round away from zero to nanos: asking for a little should never give nothing.
        if amount and amount.as_tuple().exponent < -9:  # type: ignore[operator]
            amount = amount.quantize(_NANO, rounding=ROUND_UP)
        if fmt == BINARY_SI and amount > _MAX_ALLOWED:
            amount = _MAX_ALLOWED
        if fmt == BINARY_SI and 0 < amount < 1:
            fmt = DECIMAL_SI
        if negative:
            amount = -amount
        if not amount:
            amount = Decimal(0)
    return Quantity(amount, fmt, None)


def _canonical_decimal(d: Decimal) -> tuple[int, int]:
    """(mantissa, exponent) with trailing zeros moved into an exponent that is a multiple of 3."""
    sign, digits, exp = d.as_tuple()
    m = int("".join(map(str, digits))) if digits else 0
    assert isinstance(exp, int)
    while m and m % 10 == 0:
        m //= 10
        exp += 1
    shift = exp % 3  # Python's % floors, so this lowers the exponent to a multiple of 3
    m *= 10 ** shift
    exp -= shift
    return (-m if sign else m), exp


def _decimal_suffix(exp: int, fmt: str) -> str:
    if fmt == DECIMAL_SI and exp in _DEC_BY_EXP:
        return _DEC_BY_EXP[exp]
    # DecimalExponent, or a DecimalSI exponent past `E`: upstream falls back to `e<N>`.
    return "" if exp == 0 else f"e{exp}"


def format_quantity(d: Decimal | int, fmt: str = DECIMAL_SI) -> str:
    """Canonical text of a value in a format, as upstream's Quantity.String() computes it."""
    d = Decimal(d)
    if fmt not in FORMATS:
        fmt = DECIMAL_EXPONENT
    if not d:
        return "0"
    with localcontext(_ctx()):
        if fmt == BINARY_SI:
            if -1024 < d < 1024 or d != d.to_integral_value():
                fmt = DECIMAL_SI
            else:
                n = int(d)
                neg = n < 0
                n = abs(n)
                times = 0
                while n >= 1024 and n % 1024 == 0:
                    n //= 1024
                    times += 1
                if times * 10 in _BIN_BY_EXP:
                    return f"{'-' if neg else ''}{n}{_BIN_BY_EXP[times * 10]}"
                # Past `Ei` no binary suffix exists (upstream can't reach this: it caps at 2^63-1).
                fmt = DECIMAL_SI
        m, exp = _canonical_decimal(d)
        return f"{m}{_decimal_suffix(exp, fmt)}"


def quantity_to_int(value: str | int | float) -> int:
    """The value rounded up to a whole number (upstream's Quantity.Value())."""
    d = parse_quantity(value)
    return int(d.to_integral_value(rounding=ROUND_UP))


def quantity_to_milli(value: str | int | float) -> int:
    """The value in thousandths, rounded up (upstream's Quantity.MilliValue())."""
    d = parse_quantity(value) * 1000
    return int(d.to_integral_value(rounding=ROUND_UP))
