"""ObjectMeta, names, labels, annotations, owner references and finalizers: upstream's messages."""

import pytest
from hypothesis import given, strategies as st

from k1s.api import registry as R
from k1s.api.validation import formats as F
from k1s.api.validation import validate_create, validate_update

CM = R.get("configmaps")
NS = R.get("namespaces")
SVC = R.get("services")

SUBDOMAIN_MSG = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
                 "characters, '-' or '.', and must start and end with an alphanumeric character "
                 "(e.g. 'example.com', regex used for validation is "
                 "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")
LABEL_MSG = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or "
             "'-', and must start and end with an alphanumeric character (e.g. 'my-name',  or "
             "'123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')")
# Go's RegexError really prints two spaces before each "or" ("'a',  or 'b', ").
DNS1035_MSG = ("a DNS-1035 label must consist of lower case alphanumeric characters or '-', "
               "start with an alphabetic character, and end with an alphanumeric character "
               "(e.g. 'my-name',  or 'abc-123', regex used for validation is "
               "'[a-z]([-a-z0-9]*[a-z0-9])?')")
LABEL_VALUE_MSG = ("a valid label must be an empty string or consist of alphanumeric characters, "
                   "'-', '_' or '.', and must start and end with an alphanumeric character (e.g. "
                   "'MyValue',  or 'my_value',  or '12345', regex used for validation is "
                   "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')")
NAME_PART_MSG = ("name part must consist of alphanumeric characters, '-', '_' or '.', and must "
                 "start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or "
                 "'123-abc', regex used for validation is "
                 "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')")


def cm(**meta):
    m = {"name": "x", "namespace": "default"}
    m.update(meta)
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": m}


def errs(resource, obj):
    return [str(e) for e in validate_create(resource, obj)]


@pytest.mark.parametrize("meta,expected", [
    ({}, []),
    ({"name": ""}, ["metadata.name: Required value: name or generateName is required"]),
    ({"name": "Web"}, [f'metadata.name: Invalid value: "Web": {SUBDOMAIN_MSG}']),
    ({"name": "a" * 254}, ['metadata.name: Invalid value: "' + "a" * 254
                           + '": must be no more than 253 bytes']),
    ({"name": "x", "generateName": "web-"}, []),
    ({"name": "x", "generateName": "Web-"},
     [f'metadata.generateName: Invalid value: "Web-": {SUBDOMAIN_MSG}']),
    ({"namespace": ""}, ["metadata.namespace: Required value"]),
    ({"labels": {"app": "a b"}}, [f'metadata.labels: Invalid value: "a b": {LABEL_VALUE_MSG}']),
    ({"labels": {"-x": "ok"}}, [f'metadata.labels: Invalid value: "-x": {NAME_PART_MSG}']),
    ({"labels": {"a/b/c": "v"}}, [
        "metadata.labels: Invalid value: \"a/b/c\": a valid label key must consist of "
        "alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric "
        "character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
        "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and "
        "'/' (e.g. 'example.com/MyName')"]),
    ({"labels": {"/x": "v"}}, ['metadata.labels: Invalid value: "/x": prefix part must be '
                               'non-empty']),
    ({"annotations": {"Example.COM/Key": "v"}}, []),
    ({"annotations": {"k": "v" * (256 * 1024)}},
     ["metadata.annotations: Too long: may not be more than 262144 bytes"]),
    ({"finalizers": ["kubernetes", "example.com/x"]}, []),
    ({"finalizers": ["custom"]}, ['metadata.finalizers[0]: Invalid value: "custom": name is '
                                  'neither a standard finalizer name nor is it fully qualified']),
    ({"finalizers": ["orphan", "foregroundDeletion"]},
     ['metadata.finalizers: Invalid value: ["orphan","foregroundDeletion"]: finalizer orphan '
      'and foregroundDeletion cannot be both set']),
    ({"ownerReferences": [{"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web",
                           "uid": "u1", "controller": True}]}, []),
    ({"ownerReferences": [{"apiVersion": "", "kind": "", "name": "", "uid": ""}]}, [
        'metadata.ownerReferences.apiVersion: Invalid value: "": version must not be empty',
        'metadata.ownerReferences.kind: Invalid value: "": must not be empty',
        'metadata.ownerReferences.name: Invalid value: "": must not be empty',
        'metadata.ownerReferences.uid: Invalid value: "": must not be empty']),
    ({"generation": -1}, ["metadata.generation: Invalid value: -1: must be greater than or "
                          "equal to 0"]),
])
def test_object_meta_create(meta, expected):
    assert errs(CM, cm(**meta)) == expected


def test_two_controllers_refused():
    refs = [{"apiVersion": "v1", "kind": "Pod", "name": n, "uid": n, "controller": True}
            for n in ("a", "b")]
    out = errs(CM, cm(ownerReferences=refs))
    assert len(out) == 1
    assert out[0].endswith('Only one reference can have Controller set to true. Found "true" '
                           'in references for Pod/a and Pod/b')


def test_namespace_names_are_dns_labels():
    ns = {"metadata": {"name": "a.b"}, "spec": {"finalizers": ["kubernetes"]}}
    assert errs(NS, ns) == ['metadata.name: Invalid value: "a.b": must not contain dots']
    ns["metadata"]["name"] = "A"
    assert errs(NS, ns) == [f'metadata.name: Invalid value: "A": {LABEL_MSG}']


def test_cluster_scoped_refuses_namespace():
    ns = {"metadata": {"name": "a", "namespace": "b"}}
    assert errs(NS, ns) == ["metadata.namespace: Forbidden: not allowed on this type"]


def test_service_names_are_dns1035_labels():
    svc = {"metadata": {"name": "1web", "namespace": "default"},
           "spec": {"clusterIP": "None", "type": "ClusterIP", "sessionAffinity": "None",
                    "internalTrafficPolicy": "Cluster"}}
    assert errs(SVC, svc) == [f'metadata.name: Invalid value: "1web": {DNS1035_MSG}']


def test_path_segment_names():
    ev = R.get("events")
    e = {"metadata": {"name": "a/b", "namespace": "default"},
         "involvedObject": {"namespace": "default"}}
    assert errs(ev, e) == ["metadata.name: Invalid value: \"a/b\": may not contain '/'"]


def _old():
    return cm(resourceVersion="5", uid="u1", creationTimestamp="2024-01-02T03:04:05Z",
              generation=2)


@pytest.mark.parametrize("change,expected", [
    ({}, []),
    ({"name": "y"}, ['metadata.name: Invalid value: "y": field is immutable']),
    ({"namespace": "other"}, ['metadata.namespace: Invalid value: "other": field is immutable']),
    ({"uid": "u2"}, ['metadata.uid: Invalid value: "u2": field is immutable']),
    ({"creationTimestamp": "2025-01-01T00:00:00Z"},
     ["metadata.creationTimestamp: Invalid value: 2025-01-01 00:00:00 +0000 UTC: field is "
      "immutable"]),
    ({"resourceVersion": ""}, ['metadata.resourceVersion: Invalid value: "": must be specified '
                               'for an update']),
    ({"generation": 1}, ["metadata.generation: Invalid value: 1: must not be decremented"]),
])
def test_object_meta_update(change, expected):
    old = _old()
    new = _old()
    new["metadata"].update(change)
    assert [str(e) for e in validate_update(CM, new, old)] == expected


def test_no_new_finalizers_while_deleting():
    old = _old()
    old["metadata"]["deletionTimestamp"] = "2024-01-02T03:04:05Z"
    new = _old()
    new["metadata"]["deletionTimestamp"] = "2024-01-02T03:04:05Z"
    new["metadata"]["finalizers"] = ["example.com/x"]
    assert [str(e) for e in validate_update(CM, new, old)] == [
        'metadata.finalizers: Forbidden: no new finalizers can be added if the object is being '
        'deleted, found new finalizers []string{"example.com/x"}']


@given(st.from_regex(r"[a-z0-9]([-a-z0-9]{0,30}[a-z0-9])?", fullmatch=True))
def test_every_dns_label_is_a_subdomain_and_valid_name(name):
    assert F.is_dns1123_label(name) == []
    assert F.is_dns1123_subdomain(name) == []
    assert errs(CM, cm(name=name)) == []


@given(st.text(min_size=1, max_size=20))
def test_name_checks_never_raise_and_agree(name):
    label_ok = not F.is_dns1123_label(name)
    sub_ok = not F.is_dns1123_subdomain(name)
    assert not label_ok or sub_ok  # a label is always a subdomain
