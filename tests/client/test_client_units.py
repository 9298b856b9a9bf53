"""Pure parts of the client: paths, error decoding, line splitting, lease and event shapes."""

import orjson
import pytest
from hypothesis import given, strategies as st

from k1s.api import registry
from k1s.client.errors import ApiError, error_from_response
from k1s.client.events import event_key, involved_object
from k1s.client.informer import _Cache, object_key
from k1s.client.leader import lease_duration_seconds, micro_time, next_spec
from k1s.client.rest import kubeconfig_settings, resource_path, split_lines


@pytest.mark.parametrize("resource,ns,name,sub,expected", [
    ("pods", "default", "web-0", None, "/api/v1/namespaces/default/pods/web-0"),
    ("pods", "default", None, None, "/api/v1/namespaces/default/pods"),
    ("pods", None, None, None, "/api/v1/pods"),
    ("pods", "default", "web-0", "status", "/api/v1/namespaces/default/pods/web-0/status"),
    ("nodes", "ignored", "n1", None, "/api/v1/nodes/n1"),
    ("statefulsets.apps", "db", "pg", "scale", "/apis/apps/v1/namespaces/db/statefulsets/pg/scale"),
    ("storageclasses.storage.k8s.io", None, "fast", None, "/apis/storage.k8s.io/v1/storageclasses/fast"),
    ("leases.coordination.k8s.io", "kube-system", "a b", None,
     "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/a%20b"),
])
def test_resource_path(resource, ns, name, sub, expected):
    assert resource_path(registry.get(resource), ns, name, sub) == expected


def test_resource_path_rejects_empty_name():
    with pytest.raises(ValueError):
        resource_path(registry.get("pods"), "default", "")


def test_error_from_status_body():
    body = orjson.dumps({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                         "message": 'pods "x" not found', "reason": "NotFound",
                         "details": {"name": "x", "kind": "pods"}, "code": 404})
    e = error_from_response(404, body)
    assert (e.code, e.reason, e.message) == (404, "NotFound", 'pods "x" not found')
    assert e.is_not_found() and not e.is_conflict()
    assert e.status["details"]["name"] == "x"


@pytest.mark.parametrize("code,body,reason,pred", [
    (409, b"", "Conflict", "is_conflict"),
    (410, b"<html>gone</html>", "Expired", "is_gone"),
    (404, b"404 page not found\n", "NotFound", "is_not_found"),
    (502, b"bad gateway", "Unknown", None),
])
def test_error_from_non_status_body(code, body, reason, pred):
    e = error_from_response(code, body)
    assert e.code == code and e.reason == reason and e.message
    if body.strip():
        assert body.decode().strip() in e.message
    if pred:
        assert getattr(e, pred)()


def test_already_exists_is_not_conflict():
    e = ApiError({"kind": "Status", "code": 409, "reason": "AlreadyExists", "message": "x"})
    assert e.is_already_exists() and not e.is_conflict()


@given(st.lists(st.binary(max_size=50).map(lambda b: b.replace(b"\n", b"")), max_size=20),
       st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=10))
def test_split_lines_recovers_every_line_whatever_the_chunking(lines, cuts):
    stream = b"".join(line + b"\n" for line in lines)
    buf, scan, got, pos, i = bytearray(), 0, [], 0, 0
    while pos < len(stream):
        size = cuts[i % len(cuts)]
        i += 1
        out, scan = split_lines(buf, stream[pos:pos + size], scan)
        got.extend(out)
        pos += size
    assert got == lines and not buf


def test_split_lines_handles_a_line_larger_than_aiohttp_limit():
    big = b"x" * (3 << 20)
    buf, scan, got = bytearray(), 0, []
    for i in range(0, len(big), 65536):
        out, scan = split_lines(buf, big[i:i + 65536], scan)
        got += out
    out, scan = split_lines(buf, b"\n{}\n", scan)
    got += out
    assert [len(x) for x in got] == [len(big), 2]


def test_lease_spec_on_create_renew_and_takeover():
    t0, t1 = micro_time(0), micro_time(10)
    created = next_spec(None, "a", 15, t0, False)
    assert created == {"holderIdentity": "a", "leaseDurationSeconds": 15, "acquireTime": t0,
                       "renewTime": t0, "leaseTransitions": 0}
    renewed = next_spec(created, "a", 15, t1, True)
    assert renewed["acquireTime"] == t0 and renewed["renewTime"] == t1
    assert renewed["leaseTransitions"] == 0
    taken = next_spec(renewed, "b", 15, t1, False)
    assert taken["holderIdentity"] == "b" and taken["acquireTime"] == t1
    assert taken["leaseTransitions"] == 1
    released = {"leaseDurationSeconds": 1, "leaseTransitions": 1}
    assert next_spec(released, "a", 15, t1, False)["leaseTransitions"] == 2


def test_lease_times_and_duration_format():
    assert micro_time(1.5) == "1970-01-01T00:00:01.500000Z"
    assert [lease_duration_seconds(d) for d in (0.2, 1, 1.5, 15)] == [1, 1, 2, 15]


def test_involved_object_and_event_key():
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": "web-0", "namespace": "default", "uid": "u1",
                        "resourceVersion": "7"}}
    ref = involved_object(pod)
    assert ref == {"kind": "Pod", "apiVersion": "v1", "name": "web-0", "namespace": "default",
                   "uid": "u1", "resourceVersion": "7"}
    newer = involved_object({**pod, "metadata": {**pod["metadata"], "resourceVersion": "8"}})
    # A new resourceVersion of the same object is still the same event.
    assert event_key("c", "", ref, "Normal", "R", "m") == event_key("c", "", newer, "Normal",
                                                                     "R", "m")
    assert event_key("c", "", ref, "Normal", "R", "m") != event_key("c", "", ref, "Normal",
                                                                     "R", "m2")


def test_cache_indexes_follow_updates_and_deletes():
    c = _Cache()
    c.add_indexer("node", lambda o: [o["spec"]["node"]] if o["spec"].get("node") else [])

    def pod(name, node, ns="a"):
        return {"metadata": {"name": name, "namespace": ns}, "spec": {"node": node}}

    c.put("a/p1", pod("p1", "n1"))
    c.put("a/p2", pod("p2", "n1"))
    c.put("b/p3", pod("p3", "n2", "b"))
    assert sorted(o["metadata"]["name"] for o in c.by_index("node", "n1")) == ["p1", "p2"]
    c.put("a/p2", pod("p2", "n2"))
    assert [o["metadata"]["name"] for o in c.by_index("node", "n1")] == ["p1"]
    assert sorted(o["metadata"]["name"] for o in c.by_index("node", "n2")) == ["p2", "p3"]
    c.remove("a/p1")
    assert c.by_index("node", "n1") == [] and "n1" not in c.indices["node"]
    assert sorted(o["metadata"]["name"] for o in c.by_index("namespace", "a")) == ["p2"]
    with pytest.raises(KeyError):
        c.by_index("nope", "x")


def test_object_key():
    assert object_key({"metadata": {"name": "n", "namespace": "ns"}}) == "ns/n"
    assert object_key({"metadata": {"name": "node1"}}) == "node1"


def test_kubeconfig_settings_pick_the_current_context(tmp_path):
    path = tmp_path / "config"
    path.write_text("""
apiVersion: v1
kind: Config
current-context: b
contexts:
- name: a
  context: {cluster: one, user: alice}
- name: b
  context: {cluster: two, user: bob}
clusters:
- name: one
  cluster: {server: "http://127.0.0.1:1"}
- name: two
  cluster: {server: "http://127.0.0.1:2"}
users:
- name: alice
  user: {token: ta}
- name: bob
  user: {token: tb}
""")
    assert kubeconfig_settings(str(path)) == {"base_url": "http://127.0.0.1:2", "token": "tb",
                                              "ssl": None}
    assert kubeconfig_settings(str(path), "a")["token"] == "ta"
    with pytest.raises(ValueError):
        kubeconfig_settings(str(path), "missing")


def _cm(name, rv):
    return {"metadata": {"name": name, "namespace": "ns", "resourceVersion": str(rv)}}


@given(st.dictionaries(st.sampled_from("abcdef"), st.integers(1, 3), max_size=6),
       st.dictionaries(st.sampled_from("abcdef"), st.integers(1, 3), max_size=6))
def test_relist_notifies_exactly_the_difference(before, after):
    """Replaying the notifications of a relist on the old state gives the new state, and
    objects whose resourceVersion did not change produce no notification."""
    import asyncio

    from k1s.client.informer import Informer
    from k1s.client.rest import APIClient

    inf = Informer(APIClient("http://127.0.0.1:9"), "configmaps", "ns")
    inf._pending = asyncio.Queue()
    inf._replace([_cm(n, rv) for n, rv in before.items()])
    while not inf._pending.empty():
        inf._pending.get_nowait()
    inf._replace([_cm(n, rv) for n, rv in after.items()])
    state = dict(before)
    touched = []
    while not inf._pending.empty():
        _, kind, old, new = inf._pending.get_nowait()
        obj = new if new is not None else old
        name, rv = obj["metadata"]["name"], int(obj["metadata"]["resourceVersion"])
        touched.append(name)
        if kind == "delete":
            assert name in state and name not in after
            del state[name]
        elif kind == "add":
            assert name not in state
            state[name] = rv
        else:
            assert kind == "update" and state[name] != rv
            state[name] = rv
    assert state == after
    assert len(touched) == len(set(touched))
    assert sorted(o["metadata"]["name"] for o in inf.list("ns")) == sorted(after)
    assert all(o["kind"] == "ConfigMap" for o in inf.list())
