"""EndpointSlice, Lease and events.k8s.io/v1 Event rules."""

import copy

import pytest

from k1s.api import registry as R
from k1s.api.defaults import apply_defaults
from k1s.api.validation import validate_create, validate_update

EPS = R.get("endpointslices.discovery.k8s.io")
LEASE = R.get("leases.coordination.k8s.io")
EV1 = R.lookup("events.k8s.io", "v1", "events")


def strs(errs):
    return [str(e) for e in errs]


def slice_(**fields):
    obj = {"metadata": {"name": "nginx-abc", "namespace": "default"}, "addressType": "IPv4",
           "endpoints": [{"addresses": ["10.244.0.5"], "hostname": "web-0",
                          "conditions": {"ready": True}}],
           "ports": [{"name": "web", "port": 80}]}
    obj.update(fields)
    apply_defaults(EPS, obj)
    return obj


@pytest.mark.parametrize("obj,expected", [
    (slice_(), []),
    (slice_(addressType="IPv5"), ['addressType: Unsupported value: "IPv5": supported values: '
                                  '"FQDN", "IPv4", "IPv6"']),
    (slice_(endpoints=[{"addresses": []}]),
     ["endpoints[0].addresses: Required value: must contain at least 1 address"]),
    (slice_(endpoints=[{"addresses": [f"10.0.0.{i}" for i in range(1, 102)]}]),
     ["endpoints[0].addresses: Too many: 101: must have at most 100 items"]),
    (slice_(endpoints=[{"addresses": ["fe80::1"]}]),
     ['endpoints[0].addresses[0]: Invalid value: "fe80::1": must be a valid IPv4 address']),
    (slice_(ports=[{"name": "a", "port": 1}, {"name": "a", "port": 2}]),
     ['ports[1].name: Duplicate value: "a"']),
])
def test_endpoint_slice(obj, expected):
    assert strs(validate_create(EPS, obj)) == expected


def test_endpoint_slice_address_type_immutable():
    old = slice_()
    old["metadata"].update({"resourceVersion": "1", "uid": "u"})
    new = copy.deepcopy(old)
    new["addressType"] = "IPv6"
    new["endpoints"] = [{"addresses": ["fd00::5"]}]
    assert strs(validate_update(EPS, new, old)) == [
        'addressType: Invalid value: "IPv6": field is immutable']


def test_lease():
    lease = {"metadata": {"name": "node-1", "namespace": "kube-node-lease"},
             "spec": {"holderIdentity": "node-1", "leaseDurationSeconds": 40}}
    assert strs(validate_create(LEASE, lease)) == []
    lease["spec"]["leaseDurationSeconds"] = 0
    lease["spec"]["leaseTransitions"] = -1
    assert strs(validate_create(LEASE, lease)) == [
        "spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0",
        "spec.leaseTransitions: Invalid value: -1: must be greater than or equal to 0"]


def test_events_v1_event():
    ev = {"metadata": {"name": "web-0.1", "namespace": "default"},
          "eventTime": "2024-01-01T00:00:00.000000Z", "type": "Normal", "reason": "Created",
          "action": "Create", "reportingController": "k1s.io/statefulset",
          "reportingInstance": "k1s-1", "note": "created pod",
          "regarding": {"kind": "Pod", "name": "web-0", "namespace": "default"}}
    assert strs(validate_create(EV1, ev)) == []
    bad = dict(ev, type="Info", deprecatedCount=3)
    del bad["eventTime"]
    assert strs(validate_create(EV1, bad)) == [
        "eventTime: Required value", 'type: Invalid value: "": has invalid value: Info',
        'count: Invalid value: "": needs to be unset']


# Validation must answer with field errors, never raise, whatever shape a decoded body has.
from hypothesis import given, settings, strategies as st  # noqa: E402

from k1s.api.validation import validate_status_update  # noqa: E402

_keys = st.sampled_from(["metadata", "spec", "status", "name", "namespace", "labels",
                         "containers", "ports", "volumes", "accessModes", "capacity",
                         "resources", "requests", "storage", "selector", "template", "image",
                         "hostPath", "rbd", "subsets", "addresses", "data", "endpoints",
                         "finalizers", "ownerReferences", "clusterIP", "type", "updateStrategy"])
_values = st.recursive(
    st.none() | st.booleans() | st.integers(-70000, 70000) | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_keys, inner, max_size=4),
    max_leaves=15)


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(R.RESOURCES), st.dictionaries(_keys, _values, max_size=4),
       st.dictionaries(_keys, _values, max_size=4))
def test_validation_never_raises(resource, new, old):
    for errs in (validate_create(resource, new), validate_update(resource, new, old),
                 validate_status_update(resource, new, old)):
        assert all(str(e) for e in errs)
