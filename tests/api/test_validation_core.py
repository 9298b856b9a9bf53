"""Namespace, Service, Endpoints, Event, Node, ConfigMap, Secret, ServiceAccount rules."""

import base64
import copy

import pytest

from k1s.api import registry as R
from k1s.api.defaults import apply_defaults
from k1s.api.validation import validate_create, validate_status_update, validate_update

NS, SVC, EP, EV, NODE, CM, SECRET, SA = (R.get(x) for x in (
    "namespaces", "services", "endpoints", "events", "nodes", "configmaps", "secrets",
    "serviceaccounts"))


def strs(errs):
    return [str(e) for e in errs]


def stored(obj):
    obj = copy.deepcopy(obj)
    obj["metadata"].update({"resourceVersion": "1", "uid": "u"})
    return obj


def test_namespace_create_and_status():
    ns = {"metadata": {"name": "team-a"}}
    apply_defaults(NS, ns)
    assert strs(validate_create(NS, ns)) == []
    old = stored(ns)
    new = copy.deepcopy(old)
    new["status"]["phase"] = "Terminating"
    assert strs(validate_status_update(NS, new, old)) == [
        'status.Phase: Invalid value: "Terminating": may only be \'Active\' if '
        '`deletionTimestamp` is empty']
    bad = {"metadata": {"name": "x"}, "spec": {"finalizers": ["nope"]}}
    assert strs(validate_create(NS, bad)) == [
        'spec.finalizers: Invalid value: "nope": name is neither a standard finalizer name nor '
        'is it fully qualified']


def svc(**spec):
    obj = {"metadata": {"name": "nginx", "namespace": "default"},
           "spec": {"ports": [{"port": 80, "name": "web"}], "selector": {"app": "nginx"}}}
    obj["spec"].update(spec)
    obj["spec"] = {k: v for k, v in obj["spec"].items() if v is not None}
    apply_defaults(SVC, obj)
    return obj


@pytest.mark.parametrize("obj,expected", [
    (svc(), []),
    (svc(clusterIP="None"), []),
    (svc(clusterIP="None", ports=None), []),  # headless services may have no ports
    (svc(ports=None), ["spec.ports: Required value"]),
    (svc(ports=[{"port": 80}, {"port": 81}]),
     ["spec.ports[0].name: Required value", "spec.ports[1].name: Required value"]),
    (svc(ports=[{"port": 0, "name": "a"}]),
     ["spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive"]),
    (svc(type="Fancy"), ['spec.type: Unsupported value: "Fancy": supported values: "ClusterIP", '
                         '"ExternalName", "LoadBalancer", "NodePort"']),
    (svc(type="NodePort", clusterIP="None"),
     ["spec.clusterIPs[0]: Invalid value: \"None\": may not be set to 'None' for NodePort "
      "services"]),
    (svc(clusterIP="10.0.0.300"),
     ['spec.clusterIPs[0]: Invalid value: "10.0.0.300": must be a valid IP address, (e.g. '
      '10.9.8.7 or 2001:db8::ffff)']),
    (svc(sessionAffinity="Sticky"),
     ['spec.sessionAffinity: Unsupported value: "Sticky": supported values: "ClientIP", "None"']),
    (svc(ports=[{"port": 80, "name": "a", "nodePort": 30000}]),
     ["spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'"]),
    (svc(selector={"app": "a b"}), [
        'spec.selector: Invalid value: "a b": a valid label must be an empty string or consist of '
        "alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric "
        "character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is "
        "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"]),
])
def test_service_create(obj, expected):
    assert strs(validate_create(SVC, obj)) == expected


def test_service_defaults_and_cluster_ip_immutable():
    obj = svc()
    port = obj["spec"]["ports"][0]
    assert (port["protocol"], port["targetPort"]) == ("TCP", 80)
    assert obj["spec"]["type"] == "ClusterIP" and obj["spec"]["sessionAffinity"] == "None"
    old = stored(svc(clusterIP="None", clusterIPs=["None"]))
    new = copy.deepcopy(old)
    new["spec"]["clusterIP"] = "10.0.0.5"
    new["spec"]["clusterIPs"] = ["10.0.0.5"]
    assert strs(validate_update(SVC, new, old)) == [
        'spec.clusterIPs[0]: Invalid value: ["10.0.0.5"]: may not change once set']


def test_endpoints():
    ep = {"metadata": {"name": "nginx", "namespace": "default"},
          "subsets": [{"addresses": [{"ip": "10.244.0.5", "hostname": "web-0"}],
                       "ports": [{"port": 80, "name": "web"}]}]}
    apply_defaults(EP, ep)
    assert ep["subsets"][0]["ports"][0]["protocol"] == "TCP"
    assert strs(validate_create(EP, ep)) == []
    ep["subsets"][0]["addresses"][0]["ip"] = "127.0.0.1"
    assert strs(validate_create(EP, ep)) == [
        'subsets[0].addresses[0].ip: Invalid value: "127.0.0.1": may not be in the loopback '
        'range (127.0.0.0/8, ::1/128)']
    ep["subsets"] = [{}]
    assert strs(validate_create(EP, ep)) == [
        "subsets[0]: Required value: must specify `addresses` or `notReadyAddresses`"]


def test_core_event_namespace_must_match():
    ev = {"metadata": {"name": "web.1", "namespace": "default"},
          "involvedObject": {"kind": "Pod", "name": "web-0", "namespace": "default"},
          "reason": "Created", "message": "Created container"}
    assert strs(validate_create(EV, ev)) == []
    ev["involvedObject"]["namespace"] = "other"
    assert strs(validate_create(EV, ev)) == [
        'involvedObject.namespace: Invalid value: "other": does not match event.namespace']
    new_style = {"metadata": {"name": "e", "namespace": "default"}, "eventTime": "2024-01-01T00:00:00.000000Z",
                 "involvedObject": {"namespace": "default"}}
    assert strs(validate_create(EV, new_style)) == [
        "reportingComponent: Required value",
        "reportingComponent: Invalid value: \"\": name part must be non-empty",
        "reportingComponent: Invalid value: \"\": name part must consist of alphanumeric "
        "characters, '-', '_' or '.', and must start and end with an alphanumeric character "
        "(e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
        "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
        "reportingInstance: Required value", "action: Required value", "reason: Required value"]


def test_node():
    node = {"metadata": {"name": "node-1"}, "status": {"capacity": {"cpu": "4"}}}
    apply_defaults(NODE, node)
    assert node["status"]["allocatable"] == {"cpu": "4"}
    assert strs(validate_create(NODE, node)) == []
    node["spec"] = {"taints": [{"key": "k", "effect": "Sometimes"}]}
    assert strs(validate_create(NODE, node)) == [
        'metadata.taints[0].effect: Unsupported value: "Sometimes": supported values: '
        '"NoSchedule", "PreferNoSchedule", "NoExecute"']
    old = stored({"metadata": {"name": "n"}, "spec": {"podCIDRs": ["10.244.0.0/24"]}})
    new = copy.deepcopy(old)
    new["spec"]["podCIDRs"] = ["10.244.1.0/24"]
    assert strs(validate_update(NODE, new, old)) == [
        'spec.podCIDRs: Forbidden: node updates may not change podCIDR except from "" to valid']


def test_config_map():
    cm = {"metadata": {"name": "c", "namespace": "default"}, "data": {"a.conf": "x"}}
    assert strs(validate_create(CM, cm)) == []
    cm["data"] = {"bad key": "x", "..x": "y"}
    assert strs(validate_create(CM, cm)) == [
        "data[bad key]: Invalid value: \"bad key\": a valid config key must consist of "
        "alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or "
        "'key-name', regex used for validation is '[-._a-zA-Z0-9]+')",
        "data[..x]: Invalid value: \"..x\": must not start with '..'"]
    cm["data"] = {"big": "x" * (1024 * 1024 + 1)}
    assert strs(validate_create(CM, cm)) == ["Too long: may not be more than 1048576 bytes"]
    old = stored({"metadata": {"name": "c", "namespace": "default"}, "data": {"a": "1"},
                  "immutable": True})
    new = copy.deepcopy(old)
    new["data"]["a"] = "2"
    assert strs(validate_update(CM, new, old)) == [
        "data: Forbidden: field is immutable when `immutable` is set"]


def test_secret():
    s = {"metadata": {"name": "s", "namespace": "default"}, "stringData": {"password": "hunter2"}}
    apply_defaults(SECRET, s)
    assert s["type"] == "Opaque" and "stringData" not in s
    assert base64.b64decode(s["data"]["password"]) == b"hunter2"
    assert strs(validate_create(SECRET, s)) == []
    tls = {"metadata": {"name": "t", "namespace": "default"}, "type": "kubernetes.io/tls",
           "data": {}}
    assert strs(validate_create(SECRET, tls)) == ["data[tls.crt]: Required value",
                                                  "data[tls.key]: Required value"]
    old = stored(s)
    new = copy.deepcopy(old)
    new["type"] = "kubernetes.io/basic-auth"
    assert 'type: Invalid value: "kubernetes.io/basic-auth": field is immutable' in \
        strs(validate_update(SECRET, new, old))


def test_service_account():
    assert strs(validate_create(SA, {"metadata": {"name": "default", "namespace": "ns"}})) == []
    assert strs(validate_create(SA, {"metadata": {"name": "Bad_", "namespace": "ns"}}))[0] \
        .startswith('metadata.name: Invalid value: "Bad_": a lowercase RFC 1123 subdomain')
