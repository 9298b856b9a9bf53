"""RFC 6902 JSON patch (`kubectl patch --type=json`), with evanphx/json-patch v4's errors."""

import pytest
from hypothesis import given, strategies as st

from k1s.api.errors import StatusError
from k1s.apiserver.patch import json_patch

DOC = {"metadata": {"name": "web", "labels": {"app": "web", "a/b": "x", "m~n": "y"}},
       "spec": {"replicas": 1, "containers": [{"name": "a"}, {"name": "b"}],
                "args": ["x", "y"]}}


@pytest.mark.parametrize("ops, path, expected", [
    ([{"op": "add", "path": "/metadata/labels/tier", "value": "fe"}],
     ("metadata", "labels", "tier"), "fe"),
    ([{"op": "replace", "path": "/spec/replicas", "value": 3}], ("spec", "replicas"), 3),
    ([{"op": "remove", "path": "/metadata/labels/app"}], ("metadata", "labels"),
     {"a/b": "x", "m~n": "y"}),
    # ~1 is "/", ~0 is "~"
    ([{"op": "replace", "path": "/metadata/labels/a~1b", "value": "z"}],
     ("metadata", "labels", "a/b"), "z"),
    ([{"op": "remove", "path": "/metadata/labels/m~0n"}], ("metadata", "labels"),
     {"app": "web", "a/b": "x"}),
    # "-" appends, an index inserts before
    ([{"op": "add", "path": "/spec/args/-", "value": "z"}], ("spec", "args"), ["x", "y", "z"]),
    ([{"op": "add", "path": "/spec/args/0", "value": "z"}], ("spec", "args"), ["z", "x", "y"]),
    ([{"op": "add", "path": "/spec/args/2", "value": "z"}], ("spec", "args"), ["x", "y", "z"]),
    # negative indices count from the end (SupportNegativeIndices)
    ([{"op": "remove", "path": "/spec/args/-1"}], ("spec", "args"), ["x"]),
    ([{"op": "remove", "path": "/spec/containers/0"}], ("spec", "containers"),
     [{"name": "b"}]),
    ([{"op": "replace", "path": "/spec/containers/1/name", "value": "c"}],
     ("spec", "containers"), [{"name": "a"}, {"name": "c"}]),
    ([{"op": "move", "from": "/spec/args", "path": "/spec/command"}], ("spec",),
     {"replicas": 1, "containers": [{"name": "a"}, {"name": "b"}], "command": ["x", "y"]}),
    ([{"op": "copy", "from": "/spec/args/0", "path": "/spec/args/-"}], ("spec", "args"),
     ["x", "y", "x"]),
    ([{"op": "test", "path": "/spec/replicas", "value": 1},
      {"op": "replace", "path": "/spec/replicas", "value": 2}], ("spec", "replicas"), 2),
    # v4 quirk kept: replace of a missing object key sets it
    ([{"op": "replace", "path": "/metadata/labels/new", "value": "v"}],
     ("metadata", "labels", "new"), "v"),
    # test of a missing key against null succeeds in v4
    ([{"op": "test", "path": "/metadata/labels/none", "value": None}], ("spec", "replicas"), 1),
])
def test_operations(ops, path, expected):
    out = json_patch(DOC, ops)
    for p in path:
        out = out[p]
    assert out == expected


@pytest.mark.parametrize("ops, message", [
    ([{"op": "test", "path": "/spec/replicas", "value": 2}],
     "testing value /spec/replicas failed: test failed"),
    ([{"op": "test", "path": "/spec/replicas", "value": True}],
     "testing value /spec/replicas failed: test failed"),
    ([{"op": "remove", "path": "/spec/nope/x"}],
     'remove operation does not apply: doc is missing path: "/spec/nope/x": missing value'),
    ([{"op": "remove", "path": "/metadata/labels/nope"}],
     "error in remove for path: '/metadata/labels/nope': Unable to remove nonexistent key: "
     "nope: missing value"),
    ([{"op": "add", "path": "/a/b", "value": 1}],
     'add operation does not apply: doc is missing path: "/a/b": missing value'),
    ([{"op": "add", "path": "/spec/args/5", "value": 1}],
     "error in add for path: '/spec/args/5': Unable to access invalid index: 5: "
     "invalid index referenced"),
    ([{"op": "replace", "path": "/spec/args/9", "value": 1}],
     "replace operation does not apply: doc is missing key: /spec/args/9: missing value"),
    ([{"op": "remove", "path": "/spec/args/2"}],
     "error in remove for path: '/spec/args/2': Unable to access invalid index: 2: "
     "invalid index referenced"),
    ([{"op": "jump", "path": "/x"}], "Unexpected kind: jump"),
    ([{"op": "move", "from": "/nope/x", "path": "/y"}],
     "move operation does not apply: doc is missing from path: /nope/x: missing value"),
])
def test_failures_are_422_invalid(ops, message):
    with pytest.raises(StatusError) as e:
        json_patch(DOC, ops)
    err = e.value
    assert (err.code, err.reason) == (422, "Invalid")
    assert err.message == "the server rejected our request due to an error in our request"
    # upstream: NewGenericServerResponse(422, ..., isUnexpectedResponse=false) attaches no
    # causes, so the json-patch error text never reaches the client; it is kept as the cause
    assert err.details == {}
    assert str(err.__cause__) == message


def test_failure_leaves_the_document_alone():
    with pytest.raises(StatusError):
        json_patch(DOC, [{"op": "replace", "path": "/spec/replicas", "value": 9},
                         {"op": "test", "path": "/spec/replicas", "value": 1}])
    assert DOC["spec"]["replicas"] == 1


@pytest.mark.parametrize("ops, message", [
    ({"op": "add"}, "json: cannot unmarshal object into Go value of type jsonpatch.Patch"),
    ("x", "json: cannot unmarshal string into Go value of type jsonpatch.Patch"),
    (["x"], "json: cannot unmarshal string into Go value of type jsonpatch.Operation"),
])
def test_not_an_op_list_is_400(ops, message):
    with pytest.raises(StatusError) as e:
        json_patch(DOC, ops)
    assert (e.value.code, e.value.reason, e.value.message) == (400, "BadRequest", message)


def test_too_many_operations_is_413():
    ops = [{"op": "test", "path": "/spec/replicas", "value": 1}] * 10001
    with pytest.raises(StatusError) as e:
        json_patch(DOC, ops)
    assert e.value.code == 413
    assert e.value.message == ("The allowed maximum operations in a JSON patch is 10000, "
                               "got 10001")


keys = st.text("abc~/", min_size=1, max_size=4)
values = st.none() | st.integers() | st.text(max_size=3) | st.lists(st.integers(), max_size=2)


def _escape(k):
    return k.replace("~", "~0").replace("/", "~1")


@given(st.dictionaries(keys, values, max_size=4), keys, values)
def test_add_then_remove_round_trips(doc, key, value):
    path = "/" + _escape(key)
    added = json_patch(doc, [{"op": "add", "path": path, "value": value}])
    assert added[key] == value
    json_patch(added, [{"op": "test", "path": path, "value": value}])
    removed = json_patch(added, [{"op": "remove", "path": path}])
    expected = dict(doc)
    expected.pop(key, None)
    assert removed == expected
