"""Label selectors: the `-l app=web,tier in (db,cache),!legacy` language, and metav1.LabelSelector.

Parsing follows upstream's labels.Parse token by token, so both what is accepted and the error
texts match (`unable to parse requirement: ...`, `found ',', expected: ...`): kubectl shows the
API server's message verbatim.

Semantics worth knowing:
- the empty string selects everything;
- `!=` and `notin` also select objects that lack the key;
- a *null* metav1.LabelSelector selects nothing, an empty one (`{}`) selects everything;
- requirements are kept sorted by key, so `str()` gives upstream's canonical form.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, Mapping

from k1s.api.validation import formats as _formats

__all__ = [
    "SelectorError", "Requirement", "LabelSelector", "parse_label_selector",
    "selector_from_label_selector", "selector_from_set", "format_label_selector",
    "format_labels", "is_qualified_name", "is_valid_label_value", "go_quote",
]


class SelectorError(ValueError):
    """A selector the API server refuses (answered as 400 BadRequest)."""


# --- upstream's name validation (k8s.io/apimachinery/pkg/util/validation) -----------------------
# One implementation lives in validation.formats; labels.Parse words it with character counts.

def is_qualified_name(value: str) -> list[str]:
    """Problems with a label key / qualified name (`prefix/name`); empty when valid."""
    return _formats.is_qualified_name(value, _formats.LABELS)


def is_valid_label_value(value: str) -> list[str]:
    """Problems with a label value; empty when valid."""
    return _formats.is_label_value(value, _formats.LABELS)


def go_quote(s: str) -> str:
    """Go's %q for a string (how field errors print the bad value)."""
    out = ['"']
    for ch in s:
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _invalid(path: str, value: str, detail: str) -> str:
    return f"{path}: Invalid value: {go_quote(value)}: {detail}"


def _aggregate(msgs: list[str]) -> str:
    # utilerrors.Aggregate: one message alone, several in brackets (duplicates dropped).
    uniq = list(dict.fromkeys(msgs))
    return uniq[0] if len(uniq) == 1 else "[" + ", ".join(uniq) + "]"


# --- requirements ------------------------------------------------------------------------------

IN, NOT_IN, EQUALS, DOUBLE_EQUALS, NOT_EQUALS = "in", "notin", "=", "==", "!="
EXISTS, DOES_NOT_EXIST, GREATER_THAN, LESS_THAN = "exists", "!", "gt", "lt"


def _parse_int64(s: str) -> int | None:
    if not re.fullmatch(r"[+-]?[0-9]+", s):
        return None
    v = int(s)
    return v if -(1 << 63) <= v < (1 << 63) else None


@dataclass(frozen=True)
class Requirement:
    key: str
    operator: str
    values: tuple[str, ...] = ()

    @classmethod
    def new(cls, key: str, operator: str, values: Iterable[str] = (), path: str = "") -> "Requirement":
        """Validated constructor (upstream's labels.NewRequirement), raising SelectorError."""
        vals = tuple(values)
        errs: list[str] = []
        kerrs = is_qualified_name(key)
        if kerrs:
            errs.append(_invalid(_child(path, "key"), key, "; ".join(kerrs)))
        vpath = _child(path, "values")
        if operator in (IN, NOT_IN):
            if not vals:
                errs.append(f"{vpath}: Invalid value: {_go_list(vals)}: for 'in', 'notin' operators, values "
                            "set can't be empty")
        elif operator in (EQUALS, DOUBLE_EQUALS, NOT_EQUALS):
            if len(vals) != 1:
                errs.append(f"{vpath}: Invalid value: {_go_list(vals)}: exact-match "
                            "compatibility requires one single value")
        elif operator in (EXISTS, DOES_NOT_EXIST):
            if vals:
                errs.append(f"{vpath}: Invalid value: {_go_list(vals)}: values set must be "
                            "empty for exists and does not exist")
        elif operator in (GREATER_THAN, LESS_THAN):
            if len(vals) != 1:
                errs.append(f"{vpath}: Invalid value: {_go_list(vals)}: for 'Gt', 'Lt' "
                            "operators, exactly one value is required")
            for i, v in enumerate(vals):
                if _parse_int64(v) is None:
                    errs.append(_invalid(f"{vpath}[{i}]", v, "for 'Gt', 'Lt' operators, the "
                                         "value must be an integer"))
        else:
            errs.append(f"{_child(path, 'operator')}: Unsupported value: {go_quote(operator)}: "
                        'supported values: "in", "notin", "=", "==", "!=", "gt", "lt", '
                        '"exists", "!"')
        for i, v in enumerate(vals):
            verrs = is_valid_label_value(v)
            if verrs:
                errs.append(_invalid(f"{vpath}[{i}][{key}]", v, "; ".join(verrs)))
        if errs:
            raise SelectorError(_aggregate(errs))
        return cls(key, operator, vals)

    def matches(self, labels: Mapping[str, str]) -> bool:
        op = self.operator
        has = self.key in labels
        if op in (IN, EQUALS, DOUBLE_EQUALS):
            return has and labels[self.key] in self.values
        if op in (NOT_IN, NOT_EQUALS):
            return not has or labels[self.key] not in self.values
        if op == EXISTS:
            return has
        if op == DOES_NOT_EXIST:
            return not has
        if op in (GREATER_THAN, LESS_THAN):
            if not has or len(self.values) != 1:
                return False
            have, want = _parse_int64(labels[self.key]), _parse_int64(self.values[0])
            if have is None or want is None:
                return False
            return have > want if op == GREATER_THAN else have < want
        return False

    def __str__(self) -> str:
        op = self.operator
        if op == EXISTS:
            return self.key
        if op == DOES_NOT_EXIST:
            return "!" + self.key
        sym = {EQUALS: "=", DOUBLE_EQUALS: "==", NOT_EQUALS: "!=", IN: " in ", NOT_IN: " notin ",
               GREATER_THAN: ">", LESS_THAN: "<"}[op]
        vals = self.values[0] if len(self.values) == 1 else ",".join(sorted(self.values))
        if op in (IN, NOT_IN):
            vals = f"({vals})"
        return f"{self.key}{sym}{vals}"


def _child(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _go_list(vals: tuple[str, ...]) -> str:
    if not vals:
        return "[]string(nil)"  # upstream passes a nil slice when a selector lists no values
    return "[]string{" + ", ".join(go_quote(v) for v in vals) + "}"


@dataclass(frozen=True)
class LabelSelector:
    """A parsed selector: requirements ANDed together. `nothing` is upstream's labels.Nothing()."""
    requirements: tuple[Requirement, ...] = ()
    nothing: bool = False

    @property
    def empty(self) -> bool:
        return not self.requirements and not self.nothing

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        if self.nothing:
            return False
        ls = labels or {}
        return all(r.matches(ls) for r in self.requirements)

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)

    def exact_value(self, key: str) -> str | None:
        """The value `key` must equal, when a requirement pins it (for index look-ups)."""
        for r in self.requirements:
            if r.key == key and r.operator in (EQUALS, DOUBLE_EQUALS, IN) and len(r.values) == 1:
                return r.values[0]
        return None


EVERYTHING = LabelSelector()
NOTHING = LabelSelector(nothing=True)


def _sorted(reqs: Iterable[Requirement]) -> tuple[Requirement, ...]:
    return tuple(sorted(reqs, key=lambda r: r.key))


# --- the parser --------------------------------------------------------------------------------

_SPECIAL = frozenset("=!(),><")
_WHITESPACE = frozenset(" \t\r\n")
_TOKENS = {")": "CLOSE", ",": "COMMA", "!": "NOT", "==": "DEQ", "=": "EQ", ">": "GT", "in": "IN",
           "<": "LT", "!=": "NEQ", "notin": "NOTIN", "(": "OPEN"}


def _lex(s: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos, n = 0, len(s)
    while True:
        while pos < n and s[pos] in _WHITESPACE:
            pos += 1
        # Upstream's reader treats a NUL byte as the end of input.
        if pos >= n or s[pos] == "\0":
            out.append(("END", ""))
            return out
        if s[pos] in _SPECIAL:
            buf, last = "", None
            while pos < n and s[pos] in _SPECIAL:
                buf += s[pos]
                if buf in _TOKENS:
                    last = (_TOKENS[buf], buf)
                    pos += 1
                elif last is not None:
                    break
                else:
                    pos += 1
            if last is None:
                out.append(("ERROR", f"error expected: keyword found '{buf}'"))
            else:
                out.append(last)
            continue
        start = pos
        while pos < n and s[pos] not in _SPECIAL and s[pos] not in _WHITESPACE and s[pos] != "\0":
            pos += 1
        word = s[start:pos]
        out.append((_TOKENS.get(word, "ID"), word))


class _Parser:
    def __init__(self, s: str):
        self.items = _lex(s)
        self.pos = 0

    def look(self, values: bool = True) -> tuple[str, str]:
        tok, lit = self.items[self.pos]
        if values and tok in ("IN", "NOTIN"):
            tok = "ID"
        return tok, lit

    def take(self, values: bool = True) -> tuple[str, str]:
        tok, lit = self.look(values)
        self.pos += 1
        return tok, lit

    def parse(self) -> list[Requirement]:
        reqs: list[Requirement] = []
        while True:
            tok, lit = self.look()
            if tok in ("ID", "NOT"):
                try:
                    reqs.append(self.requirement())
                except SelectorError as e:
                    raise SelectorError(f"unable to parse requirement: {e}") from None
                t, l = self.take()
                if t == "END":
                    return reqs
                if t == "COMMA":
                    t2, l2 = self.look()
                    if t2 not in ("ID", "NOT"):
                        raise SelectorError(f"found '{l2}', expected: identifier after ','")
                else:
                    raise SelectorError(f"found '{l}', expected: ',' or 'end of string'")
            elif tok == "END":
                return reqs
            else:
                raise SelectorError(
                    f"found '{lit}', expected: !, identifier, or 'end of string'")

    def requirement(self) -> Requirement:
        op = ""
        tok, lit = self.take()
        if tok == "NOT":
            op = DOES_NOT_EXIST
            tok, lit = self.take()
        if tok != "ID":
            raise SelectorError(f"found '{lit}', expected: identifier")
        key = lit
        errs = is_qualified_name(key)
        if errs:
            # Upstream validates against a nil field path, which prints as "<nil>".
            raise SelectorError(_invalid("<nil>", key, "; ".join(errs)))
        if self.look()[0] in ("END", "COMMA") and op != DOES_NOT_EXIST:
            op = EXISTS
        if op in (EXISTS, DOES_NOT_EXIST):
            return Requirement.new(key, op, ())
        tok, lit = self.take(values=False)
        ops = {"IN": IN, "EQ": EQUALS, "DEQ": DOUBLE_EQUALS, "GT": GREATER_THAN,
               "LT": LESS_THAN, "NOTIN": NOT_IN, "NEQ": NOT_EQUALS}
        if tok not in ops:
            raise SelectorError(f"found '{lit}', expected: '=', '!=', '==', 'in', notin'")
        op = ops[tok]
        vals = self.set_values() if op in (IN, NOT_IN) else self.exact_value()
        return Requirement.new(key, op, sorted(vals))

    def set_values(self) -> set[str]:
        tok, lit = self.take()
        if tok != "OPEN":
            raise SelectorError(f"found '{lit}' expected: '('")
        tok, lit = self.look()
        if tok in ("ID", "COMMA"):
            vals = self.identifiers()
            if self.take()[0] != "CLOSE":
                raise SelectorError(f"found '{lit}', expected: ')'")
            return vals
        if tok == "CLOSE":
            self.take()
            return {""}
        raise SelectorError(f"found '{lit}', expected: ',', ')' or identifier")

    def identifiers(self) -> set[str]:
        vals: set[str] = set()
        while True:
            tok, lit = self.take()
            if tok == "ID":
                vals.add(lit)
                t2, l2 = self.look()
                if t2 == "COMMA":
                    continue
                if t2 == "CLOSE":
                    return vals
                raise SelectorError(f"found '{l2}', expected: ',' or ')'")
            if tok == "COMMA":
                if not vals:
                    vals.add("")
                t2, _ = self.look()
                if t2 == "CLOSE":
                    vals.add("")
                    return vals
                if t2 == "COMMA":
                    self.take()
                    vals.add("")
                continue
            raise SelectorError(f"found '{lit}', expected: ',', or identifier")

    def exact_value(self) -> set[str]:
        tok, _ = self.look()
        if tok in ("END", "COMMA"):
            return {""}
        tok, lit = self.take()
        if tok == "ID":
            return {lit}
        raise SelectorError(f"found '{lit}', expected: identifier")


def parse_label_selector(s: str | None) -> LabelSelector:
    """Parse a `labelSelector` query parameter; SelectorError with upstream's text on bad input."""
    if not s:
        return EVERYTHING
    return LabelSelector(_sorted(_Parser(s).parse()))


def selector_from_set(labels: Mapping[str, str] | None) -> LabelSelector:
    """`key=value` for each pair (upstream's SelectorFromSet; no validation)."""
    if not labels:
        return EVERYTHING
    return LabelSelector(_sorted(Requirement(k, EQUALS, (v,)) for k, v in labels.items()))


_EXPR_OPS = {"In": IN, "NotIn": NOT_IN, "Exists": EXISTS, "DoesNotExist": DOES_NOT_EXIST}


def selector_from_label_selector(obj: Mapping | None) -> LabelSelector:
    """A metav1.LabelSelector object as a selector: null selects nothing, `{}` everything."""
    if obj is None:
        return NOTHING
    match_labels = obj.get("matchLabels") or {}
    exprs = obj.get("matchExpressions") or []
    if not match_labels and not exprs:
        return EVERYTHING
    reqs = [Requirement.new(k, EQUALS, (v,)) for k, v in match_labels.items()]
    for e in exprs:
        op = _EXPR_OPS.get(e.get("operator", ""))
        if op is None:
            raise SelectorError(f"{go_quote(str(e.get('operator', '')))} is not a valid label "
                                "selector operator")
        reqs.append(Requirement.new(e.get("key", ""), op, e.get("values") or ()))
    return LabelSelector(_sorted(reqs))


def format_label_selector(obj: Mapping | None) -> str:
    """What kubectl describe and wide tables print for a metav1.LabelSelector (`<none>` if empty)."""
    try:
        text = str(selector_from_label_selector(obj))
    except SelectorError:
        return "<error>"
    return text or "<none>"


def format_labels(labels: Mapping[str, str] | None) -> str:
    """`a=1,b=2` sorted by key, or `<none>` (upstream's labels.FormatLabels)."""
    if not labels:
        return "<none>"
    return ",".join(f"{k}={labels[k]}" for k in sorted(labels))
