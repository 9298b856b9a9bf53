"""Reaching pods from the agent's event loop: TCP connections for port-forward and probes
(httpGet, tcpSocket), and listening sockets inside the node namespace (cluster DNS).

Only the socket's creation happens in a helper thread that entered the pod's or the node's
namespace (netns.socket_in); connecting, binding and all I/O then run on the caller's event
loop, and the socket keeps its namespace whichever thread uses it. Nothing here routes from
the root namespace to a pod address: the root namespace may connect only to loopback.

Where to connect from: port-forward and probes of a pod use the pod's own namespace and
127.0.0.1 (kubectl port-forward's target is the pod's localhost), or the pod's IP for a probe
with no host; a component serving every pod (the DNS server) binds in the node namespace, on
the bridge address the pods reach.
"""

from __future__ import annotations

import asyncio
import socket

from . import netns

DEFAULT_CONNECT_TIMEOUT = 10.0      # seconds; a probe passes its own timeoutSeconds
LISTEN_BACKLOG = 128


async def connect(netns_path: str | None, host: str, port: int, *,
                  timeout: float = DEFAULT_CONNECT_TIMEOUT,
                  sock: socket.socket | None = None) -> socket.socket:
    """A connected non-blocking TCP socket to host:port, made inside the namespace at
    `netns_path` (None: the agent's own namespace; or `sock`, an unconnected TCP socket made
    there already, e.g. from a pool). Raises OSError (refused, unreachable) or TimeoutError;
    the socket is closed then."""
    if sock is None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM) if netns_path is None else \
            await netns.socket_in_async(netns_path, family, socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        async with asyncio.timeout(timeout):      # (no extra task, unlike wait_for)
            await asyncio.get_running_loop().sock_connect(sock, (host, port))
    except BaseException:
        sock.close()
        raise
    return sock


async def open_connection(netns_path: str, host: str, port: int, *,
                          timeout: float = DEFAULT_CONNECT_TIMEOUT, **kwargs):
    """(reader, writer) streams to host:port inside the namespace, for the running loop."""
    sock = await connect(netns_path, host, port, timeout=timeout)
    try:
        return await asyncio.open_connection(sock=sock, **kwargs)
    except BaseException:
        sock.close()
        raise


async def tcp_check(netns_path: str, host: str, port: int, *, timeout: float) -> bool:
    """A tcpSocket probe: whether a connection opens within `timeout` seconds."""
    try:
        sock = await connect(netns_path, host, port, timeout=timeout)
    except (OSError, asyncio.TimeoutError):
        return False
    sock.close()
    return True


def _socket(netns_path: str | None, type_: int) -> socket.socket:
    if netns_path is None:                       # the agent's own namespace
        return socket.socket(socket.AF_INET, type_)
    return netns.socket_in(netns_path, socket.AF_INET, type_)


def tcp_listener(netns_path: str | None, host: str, port: int = 0, *,
                 backlog: int = LISTEN_BACKLOG) -> socket.socket:
    """A bound, listening, non-blocking TCP socket in the namespace (None: the agent's own);
    pass it to `asyncio.start_server(..., sock=s)`. Port 0 picks a free port."""
    sock = _socket(netns_path, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(backlog)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def udp_socket(netns_path: str | None, host: str, port: int = 0) -> socket.socket:
    """A bound non-blocking UDP socket in the namespace (None: the agent's own); pass it to
    `loop.create_datagram_endpoint(factory, sock=s)` (the cluster DNS server)."""
    sock = _socket(netns_path, socket.SOCK_DGRAM)
    try:
        sock.bind((host, port))
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock
