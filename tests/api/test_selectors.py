"""Label selectors: parsing, canonical strings, matching and upstream's error texts."""

import pytest
from hypothesis import given, strategies as st

from k1s.api.selectors import (
    LabelSelector, Requirement, SelectorError, format_label_selector, format_labels,
    is_qualified_name, is_valid_label_value, parse_label_selector, selector_from_label_selector,
    selector_from_set,
)

# (selector, canonical string)
CANONICAL = [
    ("", ""),
    ("app=web", "app=web"),
    ("app==web", "app==web"),
    ("app!=web", "app!=web"),
    ("tier!=db,app=web", "app=web,tier!=db"),            # sorted by key
    ("env in (prod, dev)", "env in (dev,prod)"),         # whitespace tolerant, values sorted
    ("env notin (a)", "env notin (a)"),
    ("x in (foo,,baz),y,z notin ()", "x in (,baz,foo),y,z notin ()"),
    ("  a ,  b  ", "a,b"),
    ("!legacy", "!legacy"),
    ("a=", "a="),
    ("a>5,b<3", "a>5,b<3"),
    ("in in (in)", "in in (in)"),                      # keywords are values in value position
    ("example.com/role=db", "example.com/role=db"),
]


@pytest.mark.parametrize("text,want", CANONICAL)
def test_canonical(text, want):
    sel = parse_label_selector(text)
    assert str(sel) == want
    assert str(parse_label_selector(str(sel))) == want


LABELS = {"app": "web", "tier": "db", "n": "7", "empty": ""}

MATCHES = [
    ("", True), ("app=web", True), ("app=db", False), ("app!=db", True),
    ("missing!=x", True),                  # != selects objects without the key
    ("missing notin (x)", True), ("missing in (x)", False), ("missing=x", False),
    ("app in (web,api)", True), ("app notin (web)", False),
    ("app", True), ("missing", False), ("!missing", True), ("!app", False),
    ("empty=", True), ("empty", True), ("app,tier=db", True), ("app,tier=web", False),
    ("n>5", True), ("n<5", False), ("app>1", False), ("missing>1", False),
]


@pytest.mark.parametrize("text,want", MATCHES)
def test_matches(text, want):
    assert parse_label_selector(text).matches(LABELS) is want


def test_none_labels_are_empty():
    assert parse_label_selector("a!=b").matches(None)
    assert not parse_label_selector("a").matches(None)


INVALID_KEY = ("name part must consist of alphanumeric characters, '-', '_' or '.', and must start "
               "and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or "
               "'123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')")

ERRORS = [
    ("a b", "unable to parse requirement: found 'b', expected: '=', '!=', '==', 'in', notin'"),
    ("a=b c", "found 'c', expected: ',' or 'end of string'"),
    ("a,", "found '', expected: identifier after ','"),
    (",a", "found ',', expected: !, identifier, or 'end of string'"),
    ("a in b", "unable to parse requirement: found 'b' expected: '('"),
    ("a in (b", "unable to parse requirement: found '', expected: ',' or ')'"),
    ("a=(", "unable to parse requirement: found '(', expected: identifier"),
    ("!a=b", "found '=', expected: ',' or 'end of string'"),
    ("-a=b", 'unable to parse requirement: <nil>: Invalid value: "-a": ' + INVALID_KEY),
    ("a=b-", 'unable to parse requirement: values[0][a]: Invalid value: "b-": a valid label '
             "must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
             "and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
             "'my_value',  or '12345', regex used for validation is "
             "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"),
    ("a>x", "unable to parse requirement: values[0]: Invalid value: \"x\": for 'Gt', 'Lt' "
            "operators, the value must be an integer"),
]


@pytest.mark.parametrize("text,err", ERRORS)
def test_errors(text, err):
    with pytest.raises(SelectorError) as e:
        parse_label_selector(text)
    assert str(e.value) == err
    assert isinstance(e.value, ValueError)


@pytest.mark.parametrize("key,ok", [
    ("app", True), ("a.b_c-d", True), ("example.com/app", True), ("x" * 63, True),
    ("x" * 64, False), ("/app", False), ("Example.com/app", False), ("a/b/c", False),
    ("-a", False), ("", False),
])
def test_qualified_names(key, ok):
    assert (is_qualified_name(key) == []) is ok


def test_prefix_error_text():
    assert is_qualified_name("/a") == ["prefix part must be non-empty"]
    assert is_qualified_name("x" * 64) == ["name part must be no more than 63 characters"]


@pytest.mark.parametrize("value,ok", [("", True), ("a", True), ("a-b_c.d", True),
                                      ("v" * 64, False), ("-a", False), ("a b", False)])
def test_label_values(value, ok):
    assert (is_valid_label_value(value) == []) is ok


# metav1.LabelSelector ----------------------------------------------------------------------------

def test_null_selector_matches_nothing_and_empty_everything():
    assert not selector_from_label_selector(None).matches({"a": "b"})
    assert not selector_from_label_selector(None).empty
    assert selector_from_label_selector({}).matches({"a": "b"})
    assert selector_from_label_selector({"matchLabels": {}}).empty


def test_label_selector_object():
    obj = {"matchLabels": {"app": "db"},
           "matchExpressions": [{"key": "tier", "operator": "In", "values": ["b", "a"]},
                                {"key": "old", "operator": "DoesNotExist"},
                                {"key": "zone", "operator": "Exists"},
                                {"key": "env", "operator": "NotIn", "values": ["dev"]}]}
    sel = selector_from_label_selector(obj)
    assert str(sel) == "app=db,env notin (dev),!old,tier in (a,b),zone"
    assert sel.matches({"app": "db", "tier": "a", "zone": "z"})
    assert not sel.matches({"app": "db", "tier": "a", "zone": "z", "old": "1"})
    assert not sel.matches({"app": "db", "tier": "c", "zone": "z"})


@pytest.mark.parametrize("obj,want", [
    (None, "<none>"), ({}, "<none>"), ({"matchLabels": {"app": "db"}}, "app=db"),
    ({"matchExpressions": [{"key": "a", "operator": "Bogus"}]}, "<error>"),
])
def test_format_label_selector(obj, want):
    assert format_label_selector(obj) == want


def test_label_selector_errors():
    with pytest.raises(SelectorError) as e:
        selector_from_label_selector({"matchExpressions": [{"key": "a", "operator": "In"}]})
    assert str(e.value) == ("values: Invalid value: []string(nil): for 'in', 'notin' operators, "
                            "values set can't be empty")
    with pytest.raises(SelectorError) as e:
        selector_from_label_selector({"matchExpressions": [{"key": "a", "operator": "Bogus"}]})
    assert str(e.value) == '"Bogus" is not a valid label selector operator'


def test_format_labels_and_set():
    assert format_labels({"b": "2", "a": "1"}) == "a=1,b=2"
    assert format_labels({}) == "<none>"
    assert str(selector_from_set({"b": "2", "a": "1"})) == "a=1,b=2"
    assert selector_from_set(None).empty


def test_exact_value():
    assert parse_label_selector("a=1,b in (x)").exact_value("b") == "x"
    assert parse_label_selector("a!=1").exact_value("a") is None


# properties ------------------------------------------------------------------------------------

keys = st.sampled_from(["app", "tier", "example.com/role", "n"])
vals = st.sampled_from(["", "a", "b", "web", "1", "10"])
ops = st.sampled_from(["=", "==", "!=", "in", "notin", "exists", "!", "gt", "lt"])


@st.composite
def requirements(draw):
    key, op = draw(keys), draw(ops)
    if op in ("exists", "!"):
        return Requirement(key, op)
    if op in ("in", "notin"):
        return Requirement(key, op, tuple(sorted(set(draw(st.lists(vals, min_size=1,
                                                                    max_size=3))))))
    if op in ("gt", "lt"):
        return Requirement(key, op, (str(draw(st.integers(0, 20))),))
    return Requirement(key, op, (draw(vals),))


label_sets = st.dictionaries(keys, vals, max_size=4)


def direct(req: Requirement, labels: dict) -> bool:
    """An independent reading of the selector semantics."""
    present = req.key in labels
    v = labels.get(req.key)
    op = req.operator
    if op == "exists":
        return present
    if op == "!":
        return not present
    if op in ("=", "=="):
        return present and v == req.values[0]
    if op == "!=":
        return v != req.values[0]
    if op == "in":
        return present and v in req.values
    if op == "notin":
        return not present or v not in req.values
    if not present or not v.isdigit():
        return False
    return int(v) > int(req.values[0]) if op == "gt" else int(v) < int(req.values[0])


@given(st.lists(requirements(), max_size=4), label_sets)
def test_string_round_trip_and_direct_evaluation(reqs, labels):
    sel = LabelSelector(tuple(sorted(reqs, key=lambda r: r.key)))
    again = parse_label_selector(str(sel))
    assert again.matches(labels) == sel.matches(labels)
    assert sel.matches(labels) == all(direct(r, labels) for r in reqs)
    assert str(again) == str(sel)
