"""Field selectors: upstream's syntax and escaping, per-kind fields and rejection texts."""

import pytest
from hypothesis import given, strategies as st

from k1s.api import registry
from k1s.api.fields import (
    FieldSelector, SelectorError, check_supported, escape_value, field_set,
    parse_field_selector, supported_fields, unescape_value,
)

PODS = registry.core("pods")
EVENTS = registry.core("events")
EVENTS_V1 = registry.lookup("events.k8s.io", "v1", "events")
NODES = registry.core("nodes")
STS = registry.get("statefulsets.apps")
CM = registry.core("configmaps")
PVS = registry.core("persistentvolumes")
PVCS = registry.core("persistentvolumeclaims")


@pytest.mark.parametrize("text,canonical", [
    ("", ""),
    ("metadata.name=web", "metadata.name=web"),
    ("metadata.name==web", "metadata.name=web"),          # == reads as =
    ("status.phase!=Failed,spec.nodeName=n1", "spec.nodeName=n1,status.phase!=Failed"),  # sorted
    ("involvedObject.namespace=", "involvedObject.namespace="),
    (r"a=x\,y", r"a=x\,y"),
    (r"a=x\=y\\z", r"a=x\=y\\z"),
    ("a=b,,c=d", "a=b,c=d"),                                # empty terms skipped
])
def test_parse_and_print(text, canonical):
    assert str(parse_field_selector(text)) == canonical


def test_values_are_unescaped():
    sel = parse_field_selector(r"a=x\,y\=z\\")
    assert sel.requirements[0].value == "x,y=z\\"


@pytest.mark.parametrize("text,err", [
    ("abc", "invalid selector: 'abc'; can't understand 'abc'"),
    ("a=b,c", "invalid selector: 'a=b,c'; can't understand 'c'"),
    (r"a=b\x", r"invalid field selector: invalid escape sequence: \x"),
    ("a=b\\", "invalid field selector: invalid escape sequence: \\"),
    ("a==b=c", "invalid field selector: unescaped character in value: 61"),
])
def test_parse_errors(text, err):
    with pytest.raises(SelectorError) as e:
        parse_field_selector(text)
    assert str(e.value) == err


def test_matching_and_missing_fields_read_empty():
    fs = {"status.phase": "Running", "spec.nodeName": "n1"}
    assert parse_field_selector("spec.nodeName=n1,status.phase!=Failed").matches(fs)
    assert not parse_field_selector("spec.nodeName=n2").matches(fs)
    assert parse_field_selector("other=").matches(fs)
    assert not parse_field_selector("other!=").matches(fs)
    assert FieldSelector().matches(fs) and FieldSelector().empty


def test_exact_name():
    assert parse_field_selector("metadata.name=db-0").exact_name() == "db-0"
    assert parse_field_selector("metadata.name!=db-0").exact_name() is None
    assert parse_field_selector("status.phase=Running").exact_name() is None


POD = {"metadata": {"name": "web", "namespace": "default"},
       "spec": {"nodeName": "n1", "restartPolicy": "Always", "schedulerName": "default-scheduler",
                "serviceAccountName": "default"},
       "status": {"phase": "Running", "podIP": "10.0.0.9",
                  "podIPs": [{"ip": "10.0.0.6"}, {"ip": "fd00::6"}]}}


def test_pod_fields():
    assert field_set(PODS, POD) == {
        "metadata.name": "web", "metadata.namespace": "default", "spec.nodeName": "n1",
        "spec.restartPolicy": "Always", "spec.schedulerName": "default-scheduler",
        "spec.serviceAccountName": "default", "spec.hostNetwork": "false",
        "status.phase": "Running", "status.podIP": "10.0.0.6", "status.nominatedNodeName": ""}


def test_describe_node_pod_query():
    sel = check_supported(PODS, parse_field_selector(
        "spec.nodeName=n1,status.phase!=Succeeded,status.phase!=Failed"))
    assert sel.matches(field_set(PODS, POD))


def test_spec_host_alias():
    sel = check_supported(PODS, parse_field_selector("spec.host=n1"))
    assert str(sel) == "spec.nodeName=n1"
    assert sel.matches(field_set(PODS, POD))


CORE_EVENT = {"metadata": {"name": "e1", "namespace": "default"},
              "involvedObject": {"kind": "Pod", "namespace": "default", "name": "web", "uid": "u1",
                                 "apiVersion": "v1", "fieldPath": "spec.containers{c}"},
              "reason": "Pulled", "type": "Normal", "source": {"component": "kubelet"},
              "reportingComponent": "kubelet"}


def test_core_event_fields_and_describe_query():
    fs = field_set(EVENTS, CORE_EVENT)
    assert fs["involvedObject.fieldPath"] == "spec.containers{c}"
    assert fs["source"] == "kubelet" and fs["reportingComponent"] == "kubelet"
    sel = check_supported(EVENTS, parse_field_selector(
        "involvedObject.name=web,involvedObject.namespace=default,involvedObject.uid=u1"))
    assert sel.matches(fs)


def test_events_v1_view_uses_regarding_labels():
    fs = field_set(EVENTS_V1, CORE_EVENT)
    assert fs["regarding.name"] == "web" and fs["reportingController"] == "kubelet"
    new_style = {"metadata": {"name": "e2", "namespace": "ns"}, "regarding": {"kind": "Node",
                                                                              "name": "n1"},
                 "reportingController": "k1s", "reason": "R", "type": "Warning", "note": "x"}
    assert field_set(EVENTS_V1, new_style)["regarding.kind"] == "Node"
    assert field_set(EVENTS, new_style)["involvedObject.name"] == "n1"
    # the storage resource's field set answers a selector checked against the view
    sel = check_supported(EVENTS_V1, parse_field_selector("regarding.name=web"))
    assert sel.matches(field_set(EVENTS, CORE_EVENT))
    with pytest.raises(SelectorError) as e:
        check_supported(EVENTS_V1, parse_field_selector("involvedObject.name=x"))
    assert str(e.value) == "field label not supported: involvedObject.name"


@pytest.mark.parametrize("resource,label,err", [
    (PODS, "spec.foo", "field label not supported: spec.foo"),
    (NODES, "metadata.namespace", "field label not supported: metadata.namespace"),
    (STS, "spec.replicas", "field label not supported for appsv1.StatefulSet: spec.replicas"),
    (CM, "data.x", '"data.x" is not a known field selector: only "metadata.name", '
                   '"metadata.namespace"'),
    (PVS, "spec.capacity", '"spec.capacity" is not a known field selector: only '
                           '"metadata.name", "metadata.namespace"'),
])
def test_unsupported_labels(resource, label, err):
    with pytest.raises(SelectorError) as e:
        check_supported(resource, parse_field_selector(f"{label}=x"))
    assert str(e.value) == err


def test_every_kind_supports_metadata_name():
    for r in registry.RESOURCES:
        assert "metadata.name" in supported_fields(r)
        check_supported(r, parse_field_selector("metadata.name=x"))


def test_cluster_scoped_namespace_is_empty_and_extensions():
    pv = {"metadata": {"name": "pv1"}, "spec": {"claimRef": {"name": "c", "namespace": "ns"}},
          "status": {"phase": "Bound"}}
    fs = field_set(PVS, pv)
    assert fs["metadata.namespace"] == "" and fs["spec.claimRef.name"] == "c"
    assert field_set(PVCS, {"metadata": {"name": "c", "namespace": "ns"},
                            "spec": {"volumeName": "pv1"}})["spec.volumeName"] == "pv1"
    node = {"metadata": {"name": "n1"}, "spec": {"unschedulable": True}}
    assert field_set(NODES, node)["spec.unschedulable"] == "true"


@given(st.text())
def test_escape_round_trip(value):
    assert unescape_value(escape_value(value)) == value
    sel = parse_field_selector("a=" + escape_value(value))
    assert sel.requirements[0].value == value
    assert parse_field_selector(str(sel)) == sel
