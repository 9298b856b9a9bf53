"""gRPC probes: one call of the standard health service (grpc.health.v1.Health/Check) over
HTTP/2 cleartext, as kubelet's gRPC prober makes it, on a socket the caller connected (inside
the pod's network namespace).

The wire is small enough to speak directly: the `h2` state machine frames HTTP/2, the request
is a gRPC message (a 5-byte prefix: compressed flag and big-endian length) holding the
protobuf HealthCheckRequest {string service = 1}, the answer a HealthCheckResponse
{ServingStatus status = 1} followed by trailers carrying grpc-status. Results and their words
are kubelet's (pkg/probe/grpc): SERVING is success; any other status, a non-zero grpc-status
(UNIMPLEMENTED: the server lacks the health service), a broken connection or the deadline is a
failure with upstream's message.
"""

from __future__ import annotations

import asyncio
import socket
import urllib.parse

import h2.config
import h2.connection
import h2.events
import h2.exceptions

from k1s.api import protowire

PATH = "/grpc.health.v1.Health/Check"
STATUSES = {0: "UNKNOWN", 1: "SERVING", 2: "NOT_SERVING", 3: "SERVICE_UNKNOWN"}
CODES = {0: "OK", 1: "Canceled", 2: "Unknown", 3: "InvalidArgument", 4: "DeadlineExceeded",
         5: "NotFound", 6: "AlreadyExists", 7: "PermissionDenied", 8: "ResourceExhausted",
         9: "FailedPrecondition", 10: "Aborted", 11: "OutOfRange", 12: "Unimplemented",
         13: "Internal", 14: "Unavailable", 15: "DataLoss", 16: "Unauthenticated"}
UNIMPLEMENTED = 12
USER_AGENT = "kube-probe/1.32"
MAX_RESPONSE = 1 << 20


class RPCError(Exception):
    """The call completed with a non-OK grpc-status."""

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code, self.message = code, message

    def __str__(self) -> str:
        return f"rpc error: code = {CODES.get(self.code, self.code)} desc = {self.message}"


# -- protobuf, the two tiny messages -----------------------------------------------------------
def encode_request(service: str) -> bytes:
    """HealthCheckRequest as a length-prefixed gRPC message."""
    body = b""
    if service:
        raw = service.encode()
        body = b"\x0a" + protowire.encode_varint(len(raw)) + raw
    return b"\x00" + len(body).to_bytes(4, "big") + body


def decode_status(message: bytes) -> int:
    """The `status` field of a HealthCheckResponse (0, UNKNOWN, when absent); fields it does
    not know are skipped, as protobuf readers do."""
    status = 0
    for num, wire, value in protowire.fields(message, 0, len(message)):
        if num == 1 and wire == protowire.VARINT:
            status = value
    return status


def unframe(data: bytes) -> bytes:
    """The first gRPC message of a response body."""
    if len(data) < 5:
        raise ValueError("short gRPC message")
    if data[0] != 0:
        raise ValueError("compressed gRPC message")
    size = int.from_bytes(data[1:5], "big")
    if len(data) < 5 + size:
        raise ValueError("truncated gRPC message")
    return data[5:5 + size]


# -- the call ----------------------------------------------------------------------------------
async def check(sock: socket.socket, authority: str, service: str) -> int:
    """Health/Check on a connected non-blocking socket (closed here). Returns the serving
    status; raises RPCError for a non-OK grpc-status, OSError/ValueError for a broken call.
    The caller bounds it with the probe's timeout."""
    reader, writer = await asyncio.open_connection(sock=sock)
    try:
        conn = h2.connection.H2Connection(h2.config.H2Configuration(
            client_side=True, header_encoding="utf-8"))
        conn.initiate_connection()
        sid = conn.get_next_available_stream_id()
        conn.send_headers(sid, [(":method", "POST"), (":scheme", "http"), (":path", PATH),
                                (":authority", authority), ("content-type", "application/grpc"),
                                ("te", "trailers"), ("user-agent", USER_AGENT)])
        conn.send_data(sid, encode_request(service), end_stream=True)
        writer.write(conn.data_to_send())
        await writer.drain()
        body, headers, trailers = bytearray(), {}, {}
        done = False
        while not done:
            chunk = await reader.read(65536)
            if not chunk:
                raise ConnectionResetError("connection closed before the response ended")
            for ev in conn.receive_data(chunk):
                if isinstance(ev, h2.events.ResponseReceived) and ev.stream_id == sid:
                    headers = dict(ev.headers)
                elif isinstance(ev, h2.events.DataReceived) and ev.stream_id == sid:
                    body += ev.data
                    conn.acknowledge_received_data(ev.flow_controlled_length, sid)
                    if len(body) > MAX_RESPONSE:
                        raise ValueError("response too large")
                elif isinstance(ev, h2.events.TrailersReceived) and ev.stream_id == sid:
                    trailers = dict(ev.headers)
                elif isinstance(ev, h2.events.StreamEnded) and ev.stream_id == sid:
                    done = True
                elif isinstance(ev, h2.events.StreamReset) and ev.stream_id == sid:
                    raise ConnectionResetError(f"stream reset by the server (code {ev.error_code})")
                elif isinstance(ev, h2.events.ConnectionTerminated):
                    raise ConnectionResetError("the server ended the connection")
            pending = conn.data_to_send()
            if pending:
                writer.write(pending)
                await writer.drain()
        # a trailers-only response carries grpc-status in its headers
        meta = trailers or headers
        code = int(meta.get("grpc-status", "2") or 2)
        if code != 0:
            raise RPCError(code, urllib.parse.unquote(meta.get("grpc-message", "")))
        return decode_status(unframe(bytes(body)))
    finally:
        writer.close()


# what a broken call raises (besides RPCError): the socket, a malformed answer, HTTP/2 itself
BROKEN = (OSError, ValueError, h2.exceptions.H2Error)


def outcome(status: int) -> tuple[bool, str]:
    if status == 1:
        return True, "service is serving"
    return False, f'service unhealthy (responded with "{STATUSES.get(status, str(status))}")'
