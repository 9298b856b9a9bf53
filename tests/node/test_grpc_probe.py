"""gRPC probes (k1s.node.grpcprobe through probes.run_check) against a real gRPC server: grpcio
with the standard health service on loopback. Serving, not serving, an unknown service, a server
without the health service, nothing listening, and a server that never answers, each with
kubelet's words."""

from __future__ import annotations

import socket
import threading
from concurrent import futures

import pytest

grpc = pytest.importorskip("grpc", reason="grpcio is a test dependency (pyproject [test])")
from grpc_health.v1 import health, health_pb2, health_pb2_grpc  # noqa: E402

from k1s.node import grpcprobe  # noqa: E402
from k1s.node.probes import Target, run_check  # noqa: E402


@pytest.fixture
def health_server():
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    servicer.set("db", health_pb2.HealthCheckResponse.NOT_SERVING)
    yield port
    server.stop(0)


@pytest.fixture
def bare_server():
    """A gRPC server with no services at all: Health/Check is UNIMPLEMENTED."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield port
    server.stop(0)


def target():
    return Target(pid=0, netns=None, pod_ip="127.0.0.1", run=0)


async def probe(port, service=None, timeout=2.0):
    action = {"port": port}
    if service is not None:
        action["service"] = service
    return await run_check({"grpc": action}, target(), {"name": "c"}, timeout)


async def test_serving_is_success(health_server):
    out = await probe(health_server)
    assert out.ok and not out.errored


async def test_not_serving_and_unknown_service_fail_with_the_status(health_server):
    out = await probe(health_server, "db")
    assert not out.ok and out.detail == 'service unhealthy (responded with "NOT_SERVING")'
    out = await probe(health_server, "nope")
    assert not out.ok
    # grpcio's servicer sets no message: grpc-go prints the empty desc as it is
    assert out.detail == "error: health rpc probe failed: rpc error: code = NotFound desc = "


async def test_a_server_without_the_health_service(bare_server):
    out = await probe(bare_server)
    assert not out.ok and out.detail.startswith(
        "error: this server does not implement the grpc health protocol "
        "(grpc.health.v1.Health)"), out.detail


async def test_nothing_listening_is_a_connect_failure():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = await probe(port)
    assert not out.ok
    assert out.detail == (f'error: failed to connect service at "127.0.0.1:{port}": '
                          f"dial tcp 127.0.0.1:{port}: connect: connection refused")


async def test_a_server_that_never_answers_times_out():
    lst = socket.socket()
    lst.bind(("127.0.0.1", 0))
    lst.listen(1)
    held = []
    t = threading.Thread(target=lambda: held.append(lst.accept()), daemon=True)
    t.start()
    try:
        out = await probe(lst.getsockname()[1], timeout=0.5)
    finally:
        lst.close()
        for conn, _ in held:
            conn.close()
    assert not out.ok and out.detail == "timeout: health rpc did not complete within 0.5s"


def test_the_messages_on_the_wire():
    assert grpcprobe.encode_request("") == b"\x00\x00\x00\x00\x00"
    assert grpcprobe.encode_request("db") == b"\x00\x00\x00\x00\x04\x0a\x02db"
    assert grpcprobe.decode_status(b"\x08\x01") == 1
    assert grpcprobe.decode_status(b"") == 0                 # absent: UNKNOWN
    assert grpcprobe.decode_status(b"\x12\x01x\x08\x02") == 2  # an unknown field is skipped
    with pytest.raises(ValueError):
        grpcprobe.unframe(b"\x00\x00\x00\x00\x09\x08")
