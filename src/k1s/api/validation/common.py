"""Shared helpers for validation: field paths, tolerant getters, quantities, common checks.

Objects arrive as decoded JSON (the decoder has already rejected wrong JSON types), but
validation must never raise on odd shapes, so getters fall back to empty values instead of
failing. Paths are built the way upstream's `field.Path` prints them: `spec.ports[0].name`,
`metadata.labels[app]`.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Callable, Iterable, Sequence

from k1s.api import errors as E
from k1s.api.errors import FieldError
from k1s.api.validation import formats as F

Errs = list[FieldError]

IS_NEGATIVE_MSG = "must be greater than or equal to 0"
NOT_POSITIVE_MSG = "must be greater than zero"
FIELD_IMMUTABLE_MSG = "field is immutable"


# paths -----------------------------------------------------------------------------------
def child(path: str, *names: str) -> str:
    for n in names:
        path = f"{path}.{n}" if path else n
    return path


def index(path: str, i: int) -> str:
    return f"{path}[{i}]"


def key(path: str, k: str) -> str:
    return f"{path}[{k}]"


# tolerant getters ------------------------------------------------------------------------
def d(v: Any) -> dict:
    return v if isinstance(v, dict) else {}


def lst(v: Any) -> list:
    return v if isinstance(v, list) else []


def s(v: Any) -> str:
    return v if isinstance(v, str) else ""


def num(v: Any, default: int = 0) -> int:
    if isinstance(v, bool):
        return default
    if isinstance(v, int):
        return v
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return default


def strmap(v: Any) -> dict[str, str]:
    return {k: x for k, x in d(v).items() if isinstance(k, str)}


# quantities ------------------------------------------------------------------------------
def parse_quantity(value: Any) -> Decimal:
    """Parse a resource quantity with the shared parser (k1s.api.quantity)."""
    from k1s.api.quantity import parse_quantity as _parse  # owned by another module
    if isinstance(value, bool):
        raise ValueError("quantities must be strings or numbers")
    return _parse(value)


def quantity_or_error(value: Any, path: str, errs: Errs) -> Decimal | None:
    try:
        return parse_quantity(value)
    except (ValueError, TypeError, ArithmeticError) as exc:
        errs.append(E.invalid(path, value, str(exc)))
        return None


def qty_str(value: Any) -> str:
    """A quantity as upstream prints it in messages: its canonical string (`1024Mi` -> `1Gi`)."""
    try:
        from k1s.api.quantity import canonical
        return canonical(value)
    except (ImportError, ValueError, TypeError, ArithmeticError):
        return value if isinstance(value, str) else str(value)


def validate_nonnegative_quantity(q: Decimal, raw: Any, path: str) -> Errs:
    return [E.invalid(path, qty_str(raw), IS_NEGATIVE_MSG)] if q < 0 else []


def validate_positive_quantity(q: Decimal, raw: Any, path: str) -> Errs:
    return [E.invalid(path, qty_str(raw), NOT_POSITIVE_MSG)] if q <= 0 else []


# common checks ---------------------------------------------------------------------------
def nonnegative(value: Any, path: str) -> Errs:
    v = num(value)
    return [E.invalid(path, v, IS_NEGATIVE_MSG)] if v < 0 else []


def name_errors(fn: Callable[[str], list[str]], value: str, path: str) -> Errs:
    return [E.invalid(path, value, m) for m in fn(value)]


def dns1123_label(value: str, path: str) -> Errs:
    return name_errors(F.is_dns1123_label, value, path)


def dns1123_subdomain(value: str, path: str) -> Errs:
    return name_errors(F.is_dns1123_subdomain, value, path)


def qualified_name(value: str, path: str) -> Errs:
    return name_errors(F.is_qualified_name, value, path)


def optional_one_of(value: Any, allowed: Sequence[str], path: str) -> Errs:
    """An optional enum field: unset is fine, a set value must be one of `allowed`."""
    if value is not None and value not in allowed:
        return [E.unsupported(path, value, allowed)]
    return []


def port_number(port: int, path: str) -> Errs:
    return [E.invalid(path, port, m) for m in F.is_valid_port_num(port)]


def app_protocol(port: dict, path: str) -> Errs:
    """A port's optional appProtocol (at `path`.appProtocol): a qualified name when set."""
    value = port.get("appProtocol")
    return [] if value is None else qualified_name(s(value), child(path, "appProtocol"))


def validate_labels(labels: Any, path: str) -> Errs:
    errs: Errs = []
    for k, v in d(labels).items():
        errs += qualified_name(k, path)
        if isinstance(v, str):
            errs += [E.invalid(path, v, m) for m in F.is_label_value(v)]
    return errs


def validate_label_selector(sel: Any, path: str) -> Errs:
    """metav1.LabelSelector: matchLabels as labels, each matchExpression's operator and key."""
    errs: Errs = []
    if sel is None:
        return errs
    sel = d(sel)
    errs += validate_labels(sel.get("matchLabels"), child(path, "matchLabels"))
    for i, expr in enumerate(lst(sel.get("matchExpressions"))):
        errs += selector_requirement(d(expr), index(child(path, "matchExpressions"), i))
    return errs


def selector_requirement(req: dict, path: str, gt_lt: bool = False) -> Errs:
    """One label-selector requirement: operator against values, the key, each value.

    Node selector requirements (`gt_lt`) also accept Gt/Lt with exactly one value."""
    errs: Errs = []
    op, values = s(req.get("operator")), lst(req.get("values"))
    if op in ("In", "NotIn"):
        if not values:
            errs.append(E.required(child(path, "values"),
                                   "must be specified when `operator` is 'In' or 'NotIn'"))
    elif op in ("Exists", "DoesNotExist"):
        if values:
            errs.append(E.forbidden(child(path, "values"), "may not be specified when "
                                    "`operator` is 'Exists' or 'DoesNotExist'"))
    elif gt_lt and op in ("Gt", "Lt"):
        if len(values) != 1:
            errs.append(E.required(child(path, "values"), "must be specified single value when "
                                   "`operator` is 'Lt' or 'Gt'"))
    else:
        errs.append(E.invalid(child(path, "operator"), op, "not a valid selector operator"))
    errs += qualified_name(s(req.get("key")), child(path, "key"))
    for i, v in enumerate(values):
        if isinstance(v, str):
            errs += [E.invalid(index(child(path, "values"), i), v, m) for m in F.is_label_value(v)]
    return errs


def selector_matches(sel: Any, labels: dict[str, str]) -> bool:
    """Does a LabelSelector select this label set? (an empty selector selects everything)."""
    sel = d(sel)
    for k, v in d(sel.get("matchLabels")).items():
        if labels.get(k) != v:
            return False
    for expr in lst(sel.get("matchExpressions")):
        expr = d(expr)
        k, op, values = s(expr.get("key")), s(expr.get("operator")), lst(expr.get("values"))
        if op == "In" and labels.get(k) not in values:
            return False
        if op == "NotIn" and k in labels and labels[k] in values:
            return False
        if op == "Exists" and k not in labels:
            return False
        if op == "DoesNotExist" and k in labels:
            return False
    return True


def immutable(new: Any, old: Any, path: str) -> Errs:
    return [] if new == old else [E.invalid(path, new, FIELD_IMMUTABLE_MSG)]


def not_supported(path: str, value: Any, supported: Iterable[str]) -> FieldError:
    return E.unsupported(path, value, list(supported))


def spec_diff(old: Any, new: Any, prefix: str = "") -> list[str]:
    """A short, readable diff of two JSON values (upstream appends cmp.Diff output)."""
    out: list[str] = []
    if isinstance(old, dict) and isinstance(new, dict):
        for k in sorted(set(old) | set(new), key=str):
            out += spec_diff(old.get(k), new.get(k), f"{prefix}.{k}" if prefix else str(k))
        return out
    if old != new:
        out.append(f"  - {prefix or '.'}: {E.format_value(old)}")
        out.append(f"  + {prefix or '.'}: {E.format_value(new)}")
    return out
