"""The cluster DNS server: asyncio UDP and TCP sockets around wire.respond.

`DNSServer(ctx, sockets=None, host="127.0.0.1", port=0, zone="cluster.local")` serves the
zone from informer caches (zone.ZoneWatcher); no query ever calls the API. It is authoritative
for `<zone>` and the reverse zones and has no upstream: other names are REFUSED, so nothing a
pod asks ever leaves the machine.

Sockets: by default it binds UDP and TCP on (host, port), the same port for both (port 0 picks
one free for both). It also accepts already-created sockets, bound and (for TCP) listening or
not: the node agent creates them inside a node's network namespace, and a socket keeps the
namespace it was created in, so the server can run in the agent's process.

Bounded resources: a UDP datagram is answered synchronously in the receive callback (no
per-query task); when the kernel buffer is full and asyncio starts queueing, further responses
are dropped rather than queued (a client retries). TCP connections are capped (MAX_TCP_CONNS,
excess ones closed), each is closed when a whole message takes longer than TCP_IDLE_TIMEOUT to
arrive (idle or dripping), and every message is length-bounded by its 16-bit prefix.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import socket

from .records import ZoneData
from .service import KUBE_DNS_IP
from .wire import Responder
from .zone import ZoneWatcher

log = logging.getLogger(__name__)

DEFAULT_DNS_IP = KUBE_DNS_IP        # answered for ns.dns.<zone>
MAX_TCP_CONNS = 128
TCP_IDLE_TIMEOUT = 10.0             # seconds, like CoreDNS's default read timeout
UDP_MAX_QUEUED = 256 * 1024         # bytes asyncio may hold for a slow UDP socket
UDP_RECV_BUFFER = 1 << 20


class _UDPProtocol(asyncio.DatagramProtocol):
    def __init__(self, server: "DNSServer"):
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        try:
            out = self.server.respond(data, udp=True)
        except Exception:           # never let one packet stop the server
            log.exception("dns: unexpected error on a UDP query from %s", addr)
            return
        if out is None or self.transport is None:
            return
        if self.transport.get_write_buffer_size() > UDP_MAX_QUEUED:
            return
        self.transport.sendto(out, addr)

    def error_received(self, exc) -> None:      # ICMP errors from earlier sends: ignore
        log.debug("dns: udp error %s", exc)


class DNSServer:
    def __init__(self, ctx, *, sockets: list[socket.socket] | None = None,
                 host: str = "127.0.0.1", port: int = 0, zone: str = "cluster.local",
                 dns_ip: str | None = DEFAULT_DNS_IP):
        self.ctx = ctx
        self.host = host
        self._want_port = port
        self._sockets = list(sockets or [])
        self.watcher = ZoneWatcher(ctx, zone=zone, dns_ip=dns_ip)
        self.data: ZoneData = self.watcher.data
        self.respond = Responder(self.data)
        self.port: int | None = None
        self._udp: list[asyncio.DatagramTransport] = []
        self._tcp: list[asyncio.base_events.Server] = []
        self._conns: set[asyncio.Task] = set()
        self.ready = asyncio.Event()

    # -- lifecycle ------------------------------------------------------------------------------

    async def run(self) -> None:
        """Serve until cancelled."""
        await self.start()
        try:
            await asyncio.Event().wait()
        finally:
            await self.stop()

    async def start(self) -> None:
        """Sync the index, then bind and start serving; `.port` is set when this returns."""
        await self.watcher.start()
        socks = self._sockets or self._bind(self.host, self._want_port)
        loop = asyncio.get_running_loop()
        for s in socks:
            s.setblocking(False)
            if s.type == socket.SOCK_DGRAM:
                with contextlib.suppress(OSError):
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, UDP_RECV_BUFFER)
                transport, _ = await loop.create_datagram_endpoint(
                    lambda: _UDPProtocol(self), sock=s)
                self._udp.append(transport)
            else:
                self._tcp.append(await asyncio.start_server(
                    self._tcp_client, sock=s, backlog=MAX_TCP_CONNS, limit=2 ** 16 + 2))
            if self.port is None:
                self.port = s.getsockname()[1]
        log.info("cluster DNS for %s serving on %s (UDP and TCP)", self.data.zone,
                 ", ".join(f"{h}:{p}" for h, p, *_ in (s.getsockname() for s in socks)))
        self.ready.set()

    async def stop(self) -> None:
        for t in self._udp:
            t.close()
        for srv in self._tcp:
            srv.close()
        for task in list(self._conns):
            task.cancel()
        await asyncio.gather(*self._conns, return_exceptions=True)
        self._udp, self._tcp = [], []

    @staticmethod
    def _bind(host: str, port: int) -> list[socket.socket]:
        """A UDP and a TCP socket on the same port (a free one when port is 0)."""
        for _ in range(50):
            udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            udp.bind((host, port))
            chosen = udp.getsockname()[1]
            tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                tcp.bind((host, chosen))
            except OSError as e:
                udp.close()
                tcp.close()
                if port == 0 and e.errno == errno.EADDRINUSE:
                    continue            # that UDP port's TCP twin is taken: pick another
                raise
            return [udp, tcp]
        raise OSError(errno.EADDRINUSE, "no port free for both UDP and TCP")

    # -- TCP ------------------------------------------------------------------------------------

    async def _tcp_client(self, reader: asyncio.StreamReader,
                          writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if len(self._conns) >= MAX_TCP_CONNS:
            writer.close()
            return
        self._conns.add(task)
        try:
            while True:
                try:
                    # one deadline for the whole message: a client dripping bytes cannot hold
                    # a connection slot longer than a silent one
                    data = await asyncio.wait_for(_read_message(reader), TCP_IDLE_TIMEOUT)
                except (asyncio.IncompleteReadError, asyncio.TimeoutError, ConnectionError):
                    return
                try:
                    out = self.respond(data, udp=False)
                except Exception:
                    log.exception("dns: unexpected error on a TCP query")
                    return
                if out is None:
                    continue
                writer.write(len(out).to_bytes(2, "big") + out)
                try:
                    await asyncio.wait_for(writer.drain(), TCP_IDLE_TIMEOUT)
                except (asyncio.TimeoutError, ConnectionError):
                    return
        finally:
            self._conns.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


async def _read_message(reader: asyncio.StreamReader) -> bytes:
    size = int.from_bytes(await reader.readexactly(2), "big")
    return await reader.readexactly(size)


def controller(ctx) -> DNSServer:
    """The DNS server as `k1s up` runs it, where to listen read from the environment:
    K1S_DNS_HOST (default 127.0.0.1), K1S_DNS_PORT (default 0: a free port, logged),
    K1S_CLUSTER_DOMAIN (default cluster.local)."""
    return DNSServer(ctx, host=os.environ.get("K1S_DNS_HOST", "127.0.0.1"),
                     port=int(os.environ.get("K1S_DNS_PORT", "0")),
                     zone=os.environ.get("K1S_CLUSTER_DOMAIN", "cluster.local"))
