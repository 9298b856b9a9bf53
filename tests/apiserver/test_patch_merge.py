"""JSON merge patch (RFC 7386), as `kubectl label/annotate/scale` and `--type=merge` send it."""

import pytest
from hypothesis import given, strategies as st

from k1s.api.errors import StatusError
from k1s.apiserver.patch import merge_patch
from k1s.apiserver.patch.merge import go_format, json_equal

POD = {"apiVersion": "v1", "kind": "Pod",
       "metadata": {"name": "web", "labels": {"app": "web", "tier": "be"}},
       "spec": {"containers": [{"name": "c", "image": "nginx"}]}}


@pytest.mark.parametrize("patch, path, expected", [
    # kubectl label pod web tier=fe
    ({"metadata": {"labels": {"tier": "fe"}}}, ("metadata", "labels"),
     {"app": "web", "tier": "fe"}),
    # kubectl label pod web tier-
    ({"metadata": {"labels": {"tier": None}}}, ("metadata", "labels"), {"app": "web"}),
    # kubectl annotate pod web note=hello (no annotations yet)
    ({"metadata": {"annotations": {"note": "hello"}}}, ("metadata", "annotations"),
     {"note": "hello"}),
    # lists are replaced whole
    ({"spec": {"containers": [{"name": "d", "image": "redis"}]}}, ("spec", "containers"),
     [{"name": "d", "image": "redis"}]),
    # an object replacing a scalar: nulls inside it are dropped
    ({"spec": {"x": {"a": 1, "b": None}}}, ("spec", "x"), {"a": 1}),
])
def test_merge_patch_rules(patch, path, expected):
    out = merge_patch(POD, patch)
    for p in path:
        out = out[p]
    assert out == expected


def test_merge_patch_does_not_modify_inputs():
    patch = {"metadata": {"labels": {"tier": None}}}
    merge_patch(POD, patch)
    assert POD["metadata"]["labels"]["tier"] == "be"
    assert patch == {"metadata": {"labels": {"tier": None}}}


def test_scale_body_on_a_scale_object():
    scale = {"kind": "Scale", "apiVersion": "autoscaling/v1", "spec": {"replicas": 1}}
    assert merge_patch(scale, {"spec": {"replicas": 3}})["spec"] == {"replicas": 3}


@pytest.mark.parametrize("patch", [None, [1], "x", 3])
def test_non_object_patch_is_400(patch):
    with pytest.raises(StatusError) as e:
        merge_patch(POD, patch)
    assert e.value.code == 400 and e.value.reason == "BadRequest"
    assert e.value.message == "Invalid JSON Patch"


def test_helpers():
    assert not json_equal(True, 1)
    assert json_equal({"a": [1, {"b": None}]}, {"a": [1, {"b": None}]})
    assert go_format({"b": [1, "x"], "a": None}) == "map[a:<nil> b:[1 x]]"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.text("ab", max_size=2),
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.sampled_from("abc"), children, max_size=3),
    max_leaves=10)
objects = st.dictionaries(st.sampled_from("abcd"), json_values, max_size=4)


def _without_nulls(v):
    if isinstance(v, dict):
        return {k: _without_nulls(x) for k, x in v.items() if x is not None}
    return v


@given(objects, objects)
def test_merge_patch_properties(doc, patch):
    out = merge_patch(doc, patch)
    for k, v in patch.items():
        if v is None:
            assert k not in out
        elif not isinstance(v, dict):
            assert json_equal(out[k], v)
    for k, v in doc.items():
        if k not in patch:
            assert json_equal(out[k], v)
    # applying the same patch again changes nothing (merge patches are idempotent)
    assert json_equal(merge_patch(out, patch), out)
    # a patch made of the document itself (without nulls) is a fixed point
    clean = _without_nulls(doc)
    assert json_equal(merge_patch(clean, clean), clean)
