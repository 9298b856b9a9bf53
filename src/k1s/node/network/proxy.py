"""The service proxy: ClusterIP Services answering pods (kube-proxy's old userspace mode, in the
node network namespace instead of iptables).

A pod's packets to any address off the pod CIDR reach the node namespace through its default
route (the bridge). So for every Service with a cluster IP the proxy puts that address on the
node namespace's loopback (`NodeNetwork.add_local_address`, as the agent does for kube-dns) and
listens on clusterIP:port there, per Service port; each TCP connection or UDP flow is relayed
to one backend pod over a socket made in the node namespace too (in batches: see _SocketPool).
Nothing listens or routes in the root namespace, and no packet is rewritten: a backend sees
connections coming from the node's bridge address, not from the client pod (upstream's
userspace mode had the same limit).

Two halves:
- the pure planner: `plan_service(svc, slices)` -> `ServicePlan`, the cluster IPs to hold and,
  per (clusterIP, port, protocol), the backends (`ServicePort`), read as upstream kube-proxy
  does: IPv4 slices labelled `kubernetes.io/service-name`, the slice port of the same name and
  protocol giving the target port, ready endpoints, or serving-and-terminating ones when none
  is ready (ProxyTerminatingEndpoints); `Balancer` picks a backend (round robin, ClientIP
  affinity with its timeout).
- the acting part: `ServiceProxy` follows the Service and EndpointSlice informers, re-plans the
  Services an event touches and opens, updates or closes listeners and loopback addresses.

Behaviour, beside upstream's:
- a Service port with no usable endpoint has no listener while its address stays: the kernel
  refuses TCP connections at once (RST, "connection refused") and answers UDP with ICMP port
  unreachable, as upstream's REJECT rule does;
- changed endpoints affect new connections and flows only; established TCP connections to a
  removed backend stay (upstream leaves their conntrack entries), UDP flows to it are closed
  (upstream clears UDP conntrack entries of removed endpoints); a deleted Service's
  connections and flows are closed with its listeners;
- a backend that refuses or does not answer is retried with another one, with growing connect
  timeouts (upstream userspace's dial retries), then the client's connection is reset;
- SCTP ports are not proxied (no SCTP sockets here); the Service's other ports are;
- cluster IPs the node's DNS server owns (kube-dns's 10.96.0.10) are never proxied;
- UDP flows end after UDP_IDLE_TIMEOUT idle seconds (conntrack's UDP timeout);
- node ports (NodePort and LoadBalancer Services) are served on the node's address, 127.0.0.1
  of the machine's own namespace, as kube-proxy serves them on the node's addresses; external
  IPs and load-balancer addresses are not served;
- traffic policies are not applied: `internalTrafficPolicy: Local` still reaches endpoints on
  every node (on one node, the same thing), and topology hints are ignored.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
import struct
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Iterable

from k1s.api import registry
from k1s.client.informer import start_and_sync

from . import forward, netns

log = logging.getLogger(__name__)

SERVICES = registry.core("services")
ENDPOINT_SLICES = registry.get("endpointslices.discovery.k8s.io")
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
SLICE_INDEX = "serviceproxy/service"
NODE_PORT_TYPES = ("NodePort", "LoadBalancer")

DEFAULT_AFFINITY_TIMEOUT = 10800     # seconds: upstream's sessionAffinityConfig default (3 h)
AFFINITY_PRUNE_AT = 4096             # affinity entries before expired ones are swept
CONNECT_TIMEOUTS = (0.5, 1.0, 2.0, 4.0)   # one per try (upstream userspace: 0.25 s .. 2 s)
UDP_IDLE_TIMEOUT = 30.0              # seconds (netfilter's nf_conntrack_udp_timeout)
UDP_SWEEP_INTERVAL = 5.0
UDP_MAX_FLOWS = 4096                 # per Service port; datagrams of further clients are dropped
UDP_PENDING_MAX = 64                 # datagrams held while a flow's socket is being made
UDP_MAX_DATAGRAM = 65535
RETRY_DELAY = 5.0                    # seconds before a Service that failed to apply is retried
SOCKET_BATCH = 32                    # sockets made ahead per helper thread (see _SocketPool)

Backend = tuple[str, int]
Key = tuple[str, int, str]           # (cluster IP, port, protocol)


# -- the planner (pure) ---------------------------------------------------------------------------

@dataclass(frozen=True)
class ServicePort:
    """One port of a Service on one cluster IP, with the backends new connections go to."""
    service: str                          # namespace/name
    name: str                             # the Service port's name ("" when unnamed)
    cluster_ip: str
    port: int
    protocol: str                         # TCP or UDP
    backends: tuple[Backend, ...] = ()    # sorted (ip, port)
    affinity_timeout: int | None = None   # seconds, when sessionAffinity is ClientIP
    node_port: bool = False               # a node port: `cluster_ip` is the node's address,
    #                                       listened on in the agent's own namespace

    @property
    def key(self) -> Key:
        return (self.cluster_ip, self.port, self.protocol)


@dataclass
class ServicePlan:
    service: str
    cluster_ips: tuple[str, ...] = ()     # addresses to hold, even for ports with no backend
    ports: dict[Key, ServicePort] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)   # why parts are not proxied


def service_key(obj: dict) -> str:
    m = obj.get("metadata") or {}
    return f"{m.get('namespace') or ''}/{m.get('name') or ''}"


def slice_service(sl: dict) -> list[str]:
    """The key of the Service an EndpointSlice belongs to (its service-name label)."""
    m = sl.get("metadata") or {}
    name = (m.get("labels") or {}).get(SERVICE_NAME_LABEL)
    return [f"{m.get('namespace') or ''}/{name}"] if name else []


def _ipv4(value) -> str | None:
    try:
        return str(ipaddress.IPv4Address(value))
    except (ipaddress.AddressValueError, ValueError, TypeError):
        return None


def cluster_ips(svc: dict) -> tuple[str, ...]:
    """The Service's IPv4 cluster IPs; () for headless and ExternalName Services."""
    spec = svc.get("spec") or {}
    if spec.get("type") == "ExternalName":
        return ()
    ips = spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP") else [])
    out = []
    for ip in ips:
        v4 = _ipv4(ip)                  # "None" (headless), "" and IPv6 fall out here
        if v4 and v4 not in out:
            out.append(v4)
    return tuple(out)


def affinity_timeout(svc: dict) -> int | None:
    spec = svc.get("spec") or {}
    if spec.get("sessionAffinity") != "ClientIP":
        return None
    cfg = ((spec.get("sessionAffinityConfig") or {}).get("clientIP") or {})
    t = cfg.get("timeoutSeconds")
    return t if isinstance(t, int) and t > 0 else DEFAULT_AFFINITY_TIMEOUT


def conditions(ep: dict) -> tuple[bool, bool, bool]:
    """(ready, serving, terminating) as kube-proxy reads them (endpointslicecache.go): ready
    and serving unset (or null) mean true, terminating unset means false."""
    c = ep.get("conditions") or {}
    return c.get("ready") is not False, c.get("serving") is not False, \
        c.get("terminating") is True


def backends(slices: Iterable[dict], port_name: str, protocol: str) -> tuple[Backend, ...]:
    """The endpoints new connections to the Service port named `port_name` may go to: the
    ready ones, or, when none is ready, the serving and terminating ones. Each slice's port of
    that name and protocol gives the target port of its endpoints."""
    ready: set[Backend] = set()
    terminating: set[Backend] = set()
    for sl in slices:
        if (sl.get("addressType") or "IPv4") != "IPv4":
            continue
        num = next((p.get("port") for p in sl.get("ports") or ()
                    if (p.get("name") or "") == port_name
                    and (p.get("protocol") or "TCP") == protocol), None)
        if not isinstance(num, int) or not 0 < num < 65536:
            continue
        for ep in sl.get("endpoints") or ():
            ip = _ipv4((ep.get("addresses") or [None])[0])
            if ip is None:
                continue
            is_ready, serving, term = conditions(ep)
            if is_ready:
                ready.add((ip, num))
            elif serving and term:
                terminating.add((ip, num))
    return tuple(sorted(ready or terminating))


def plan_service(svc: dict, slices: Iterable[dict], skip_ips: Iterable[str] = (),
                 node_ip: str | None = None) -> ServicePlan:
    """What the proxy serves for one Service (see the module docstring); with `node_ip`,
    the node ports of NodePort and LoadBalancer Services on that address too."""
    key = service_key(svc)
    ips = cluster_ips(svc)
    out = ServicePlan(key)
    if not ips:
        return out
    owned = sorted(set(ips) & set(skip_ips))
    if owned:
        out.skipped.append(f"cluster IP {', '.join(owned)} is served by the node's DNS server")
        return out
    slices = list(slices)
    timeout = affinity_timeout(svc)
    out.cluster_ips = ips
    for p in (svc.get("spec") or {}).get("ports") or ():
        proto = p.get("protocol") or "TCP"
        port = p.get("port")
        name = p.get("name") or ""
        if proto not in ("TCP", "UDP"):
            out.skipped.append(f"port {name or port}/{proto}: only TCP and UDP are proxied")
            continue
        if not isinstance(port, int) or not 0 < port < 65536:
            out.skipped.append(f"port {name or port}: not a valid port number")
            continue
        found = backends(slices, name, proto)
        for ip in ips:
            sp = ServicePort(key, name, ip, port, proto, found, timeout)
            out.ports.setdefault(sp.key, sp)
        node_port = p.get("nodePort")
        if node_ip and (svc.get("spec") or {}).get("type") in NODE_PORT_TYPES and \
                isinstance(node_port, int) and 0 < node_port < 65536:
            sp = ServicePort(key, name, node_ip, node_port, proto, found, timeout,
                             node_port=True)
            out.ports.setdefault(sp.key, sp)
    return out


class Balancer:
    """Picks a backend for each new connection or flow of one Service port: round robin, or
    the client's previous backend under ClientIP affinity while it is still a backend and was
    used less than the timeout ago (each pick renews it, as upstream's `recent` match does)."""

    def __init__(self, sp: ServicePort, *, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self._next = 0
        self._affinity: dict[str, tuple[Backend, float]] = {}
        self.update(sp)

    def update(self, sp: ServicePort) -> None:
        self.backends = sp.backends
        self._set = frozenset(sp.backends)
        self.timeout = sp.affinity_timeout
        if self.timeout is None:
            self._affinity.clear()
        else:
            self._affinity = {c: v for c, v in self._affinity.items() if v[0] in self._set}

    def pick(self, client_ip: str, avoid: frozenset | set = frozenset()) -> Backend | None:
        """A backend not in `avoid` (those that just failed), or None."""
        now = self.clock()
        if self.timeout is not None:
            hit = self._affinity.get(client_ip)
            if hit and hit[0] in self._set and hit[0] not in avoid \
                    and now - hit[1] < self.timeout:
                self._affinity[client_ip] = (hit[0], now)
                return hit[0]
        n = len(self.backends)
        for _ in range(n):
            b = self.backends[self._next % n]
            self._next = (self._next + 1) % n
            if b not in avoid:
                break
        else:
            return None
        if self.timeout is not None:
            if len(self._affinity) >= AFFINITY_PRUNE_AT:
                self._affinity = {c: v for c, v in self._affinity.items()
                                  if now - v[1] < self.timeout}
            self._affinity[client_ip] = (b, now)
        return b


# -- acting: sockets in the node namespace ------------------------------------------------------

def _make_sockets(type_: int, n: int) -> list[socket.socket]:
    return [socket.socket(socket.AF_INET, type_) for _ in range(n)]


class _SocketPool:
    """Unconnected sockets of one type made ahead in the node namespace. A socket made there
    needs a helper thread that enters the namespace (netns), which costs more than all the rest
    of a proxied connection: so sockets come in batches of SOCKET_BATCH from one thread, and
    the next batch is made while the last ones are used."""

    def __init__(self, netns_path: str, type_: int):
        self.path = netns_path
        self.type = type_
        self.free: deque[socket.socket] = deque()
        self._filling: asyncio.Task | None = None
        self._error: OSError | None = None       # the last batch's failure

    async def get(self) -> socket.socket:
        while not self.free:
            await asyncio.shield(self._fill())
            if not self.free and self._error is not None:
                raise self._error
        sock = self.free.popleft()
        if len(self.free) < SOCKET_BATCH // 2:
            self._fill()
        return sock

    def _fill(self) -> asyncio.Task:
        if self._filling is None:
            self._filling = asyncio.get_running_loop().create_task(self._make())
        return self._filling

    async def _make(self) -> None:
        try:
            self.free.extend(await netns.in_netns_async(self.path, _make_sockets, self.type,
                                                        SOCKET_BATCH))
            self._error = None
        except OSError as e:          # (the namespace is gone, out of descriptors...)
            log.warning("service proxy: making sockets in %s: %s", self.path, e)
            self._error = e
        finally:
            self._filling = None

    async def close(self) -> None:
        if self._filling is not None:         # let the helper thread finish: never cancel it
            await asyncio.gather(self._filling, return_exceptions=True)
        while self.free:
            self.free.popleft().close()


async def _connect(pool: _SocketPool, host: str, port: int, timeout: float) -> socket.socket:
    """A TCP connection to host:port from the node namespace, on a socket from the pool."""
    return await forward.connect(None, host, port, timeout=timeout, sock=await pool.get())


# -- acting: TCP ----------------------------------------------------------------------------------

class _Relay(asyncio.Protocol):
    """One side of a proxied TCP connection: what it reads is written to its peer, with the
    peer's flow control pausing this side, and an EOF passed on as a half-close. Until `link`
    gives it a peer (the backend is being connected) it holds what arrives and stops reading
    (uvloop may start reading after connection_made whatever it asked)."""

    def __init__(self, on_made: Callable[["_Relay"], None] | None = None,
                 on_lost: Callable[["_Relay"], None] | None = None):
        self.on_made, self.on_lost = on_made, on_lost
        self.transport: asyncio.Transport | None = None
        self.peer: _Relay | None = None
        self.held: list[bytes] = []
        self.got_eof = False
        self.eof_held = False
        self.lost = False

    def connection_made(self, transport) -> None:
        self.transport = transport
        if self.on_made:
            self.on_made(self)

    def link(self, peer: "_Relay") -> None:
        """Start relaying to `peer` (connected): what was held first, then reading again."""
        self.peer = peer
        for data in self.held:
            peer.transport.write(data)
        self.held.clear()
        if self.eof_held:
            self.eof_held = False
            if not self.eof_received():
                return
        if not self.transport.is_closing():
            self.transport.resume_reading()

    def data_received(self, data: bytes) -> None:
        if self.peer is None:
            self.held.append(data)
            if self.transport.is_reading():
                self.transport.pause_reading()
            return
        self.peer.transport.write(data)

    def eof_received(self) -> bool:
        if self.peer is None:
            self.eof_held = True
            return True
        self.got_eof = True
        peer = self.peer
        if peer.got_eof or peer.lost:
            # both ways finished (or the other side is gone): close, after what is buffered
            self.close()
            return False
        if peer.transport.can_write_eof():
            peer.transport.write_eof()
        return True                      # keep our side open for the peer's answer

    def pause_writing(self) -> None:
        if self.peer and not self.peer.lost and self.peer.transport.is_reading():
            self.peer.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.peer and not self.peer.lost and not self.peer.transport.is_closing():
            self.peer.transport.resume_reading()

    def connection_lost(self, exc) -> None:
        self.lost = True
        peer = self.peer
        if peer is not None and not peer.lost:
            if exc is None:
                peer.close()             # flushes what is buffered for it first
            else:
                peer.reset()
        if self.on_lost:
            self.on_lost(self)

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()
        if self.peer is not None and self.peer.transport is not None \
                and not self.peer.transport.is_closing():
            self.peer.transport.close()

    def reset(self) -> None:
        """Close at once with a TCP reset (SO_LINGER 0): the client sees the failure."""
        if self.transport is None:
            return
        sock = self.transport.get_extra_info("socket")
        with contextlib.suppress(OSError, AttributeError, ValueError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.transport.abort()


class _TCPPort:
    """A listener on clusterIP:port (TCP) relaying each accepted connection to a backend."""

    def __init__(self, sp: ServicePort, netns_path: str, sockets: _SocketPool):
        self.sp = sp
        self.path = netns_path
        self.sockets = sockets
        self.balancer = Balancer(sp)
        self.server: asyncio.AbstractServer | None = None
        self.clients: dict[_Relay, asyncio.Task | None] = {}

    async def open(self) -> None:
        sock = await asyncio.to_thread(forward.tcp_listener,
                                       None if self.sp.node_port else self.path,
                                       self.sp.cluster_ip, self.sp.port)
        try:
            self.server = await asyncio.get_running_loop().create_server(
                lambda: _Relay(self._accepted, self._client_gone), sock=sock)
        except BaseException:
            sock.close()
            raise

    def update(self, sp: ServicePort) -> None:
        self.sp = sp
        self.balancer.update(sp)

    def _accepted(self, client: _Relay) -> None:
        client.transport.pause_reading()          # until a backend is connected
        self.clients[client] = asyncio.get_running_loop().create_task(self._serve(client))

    def _client_gone(self, client: _Relay) -> None:
        # a connect in flight is not cancelled (its namespace helper thread would find its
        # future cancelled): it ends within its timeout and sees the client gone
        self.clients.pop(client, None)

    async def _serve(self, client: _Relay) -> None:
        try:
            await self._connect(client)
        except asyncio.CancelledError:
            raise
        except Exception:                 # one connection's bug never stops the listener
            log.exception("service %s: relaying a connection", self.sp.service)
            client.reset()

    async def _connect(self, client: _Relay) -> None:
        peer = client.transport.get_extra_info("peername") or ("", 0)
        failed: set[Backend] = set()
        loop = asyncio.get_running_loop()
        for timeout in CONNECT_TIMEOUTS:
            b = self.balancer.pick(peer[0], failed)
            if b is None:
                break
            try:
                sock = await _connect(self.sockets, b[0], b[1], timeout)
            except (OSError, asyncio.TimeoutError) as e:
                log.debug("service %s: backend %s:%d: %s", self.sp.service, *b, e)
                failed.add(b)
                continue
            if client.lost:
                sock.close()
                return
            backend = _Relay()
            backend.peer = client
            try:
                await loop.create_connection(lambda: backend, sock=sock)
            except OSError:
                sock.close()
                failed.add(b)
                continue
            if client.lost:               # the client went while we wired the backend
                backend.close()
                return
            if client in self.clients:
                self.clients[client] = None
            client.link(backend)
            return
        log.info("service %s port %s: no backend of %d accepted a connection from %s",
                 self.sp.service, self.sp.name or self.sp.port, len(self.sp.backends), peer[0])
        client.reset()

    def close(self, drop_connections: bool) -> None:
        if self.server is not None:
            self.server.close()
            self.server = None
        if drop_connections:
            for client, task in list(self.clients.items()):
                if task is not None:
                    task.cancel()
                client.close()
            self.clients.clear()


# -- acting: UDP ----------------------------------------------------------------------------------

class _Flow(asyncio.DatagramProtocol):
    """One client's datagrams to one backend, through a socket of its own connected to the
    backend; replies go back to the client from the Service's socket (clusterIP:port)."""

    def __init__(self, port: "_UDPPort", client: tuple, backend: Backend):
        self.port = port
        self.client = client
        self.backend = backend
        self.transport: asyncio.DatagramTransport | None = None
        self.pending: list[bytes] = []
        self.last = time.monotonic()
        self.closed = False
        self.task = asyncio.get_running_loop().create_task(self._open())

    async def _open(self) -> None:
        try:
            sock = await self.port.sockets.get()
            try:
                sock.setblocking(False)
                sock.connect(self.backend)          # a UDP connect only sets the peer
                await asyncio.get_running_loop().create_datagram_endpoint(lambda: self,
                                                                          sock=sock)
            except BaseException:
                sock.close()
                raise
        except (OSError, RuntimeError) as e:
            log.debug("service %s: UDP flow to %s:%d: %s", self.port.sp.service, *self.backend, e)
            self.close()

    def connection_made(self, transport) -> None:
        if self.closed:
            transport.close()
            return
        self.transport = transport
        for data in self.pending:
            transport.sendto(data)
        self.pending.clear()

    def send(self, data: bytes) -> None:
        self.last = time.monotonic()
        if self.transport is not None:
            self.transport.sendto(data)
        elif len(self.pending) < UDP_PENDING_MAX:
            self.pending.append(data)

    def datagram_received(self, data: bytes, addr) -> None:
        self.last = time.monotonic()
        self.port.reply(data, self.client)

    def error_received(self, exc) -> None:
        # ICMP from the backend (port unreachable): the client hears nothing, as upstream
        log.debug("service %s: UDP backend %s:%d: %s", self.port.sp.service, *self.backend, exc)

    def connection_lost(self, exc) -> None:
        self.close()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True          # a socket still being made is closed on arrival
        if self.transport is not None:
            self.transport.close()
        self.port.forget(self)


class _UDPPort(asyncio.DatagramProtocol):
    """A socket on clusterIP:port (UDP): each client address gets a flow to one backend."""

    def __init__(self, sp: ServicePort, netns_path: str, sockets: _SocketPool):
        self.sp = sp
        self.path = netns_path
        self.sockets = sockets
        self.balancer = Balancer(sp)
        self.transport: asyncio.DatagramTransport | None = None
        self.flows: dict[tuple, _Flow] = {}
        self._sweeper: asyncio.TimerHandle | None = None
        self._full_logged = False

    async def open(self) -> None:
        sock = await asyncio.to_thread(forward.udp_socket,
                                       None if self.sp.node_port else self.path,
                                       self.sp.cluster_ip, self.sp.port)
        try:
            await asyncio.get_running_loop().create_datagram_endpoint(lambda: self, sock=sock)
        except BaseException:
            sock.close()
            raise

    def connection_made(self, transport) -> None:
        self.transport = transport

    def update(self, sp: ServicePort) -> None:
        self.sp = sp
        self.balancer.update(sp)
        keep = set(sp.backends)
        for flow in list(self.flows.values()):
            if flow.backend not in keep:
                flow.close()

    def datagram_received(self, data: bytes, addr) -> None:
        flow = self.flows.get(addr)
        if flow is None:
            if len(self.flows) >= UDP_MAX_FLOWS:
                if not self._full_logged:
                    log.warning("service %s port %s: %d UDP flows open, dropping new clients",
                                self.sp.service, self.sp.name or self.sp.port, UDP_MAX_FLOWS)
                    self._full_logged = True
                return
            b = self.balancer.pick(addr[0])
            if b is None:
                return
            flow = self.flows[addr] = _Flow(self, addr, b)
            self._arm_sweeper()
        flow.send(data)

    def reply(self, data: bytes, client) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(data, client)

    def forget(self, flow: _Flow) -> None:
        if self.flows.get(flow.client) is flow:
            del self.flows[flow.client]
            self._full_logged = False

    def error_received(self, exc) -> None:
        log.debug("service %s: UDP: %s", self.sp.service, exc)

    def _arm_sweeper(self) -> None:
        if self._sweeper is None:
            self._sweeper = asyncio.get_running_loop().call_later(UDP_SWEEP_INTERVAL,
                                                                  self._sweep)

    def _sweep(self) -> None:
        self._sweeper = None
        idle = time.monotonic() - UDP_IDLE_TIMEOUT
        for flow in [f for f in self.flows.values() if f.last < idle]:
            flow.close()
        if self.flows:
            self._arm_sweeper()

    def close(self, drop_connections: bool) -> None:
        # the flows reply through this socket: they end with it whatever the reason
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for flow in list(self.flows.values()):
            flow.close()
        if self.transport is not None:
            self.transport.close()
            self.transport = None


# -- acting: the proxy ----------------------------------------------------------------------------

class ServiceProxy:
    """Keeps the node namespace's listeners and loopback addresses in line with the Services
    and EndpointSlices the shared informers see. `start()` syncs everything once (and removes
    addresses a previous agent left for Services that are gone); `stop()` closes every
    listener and connection and removes the addresses it added."""

    def __init__(self, informers, network, *, skip_ips: Iterable[str] = (),
                 node_ip: str | None = None):
        self.network = network
        self.path = network.path
        self.skip_ips = frozenset(skip_ips)
        self.node_ip = node_ip                    # where node ports listen (None: nowhere)
        self.services = informers.informer(SERVICES)
        self.slices = informers.informer(ENDPOINT_SLICES)
        self.slices.add_indexer(SLICE_INDEX, slice_service)
        self.ports: dict[Key, _TCPPort | _UDPPort] = {}
        self.sockets = {p: _SocketPool(self.path, t)
                        for p, t in (("TCP", socket.SOCK_STREAM), ("UDP", socket.SOCK_DGRAM))}
        self.owner: dict[Key, str] = {}           # listener -> the Service it belongs to
        self.ip_users: dict[str, set[str]] = {}   # address on lo -> Services holding it
        self._skipped: dict[str, list[str]] = {}
        self._dirty: set[str] = set()
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        mark = self._mark
        self.services.add_handler(lambda o: mark(service_key(o)),
                                  lambda _o, n: mark(service_key(n)),
                                  lambda o: mark(service_key(o)))
        self.slices.add_handler(lambda o: self._mark_slice(o),
                                lambda o, n: (self._mark_slice(o), self._mark_slice(n)),
                                lambda o: self._mark_slice(o))
        await start_and_sync((self.services, self.slices))
        # the handlers' replay of the caches may still be queued: mark from the cache itself,
        # so the first sync is complete before stale addresses are judged
        for svc in self.services.list():
            self._dirty.add(service_key(svc))
        await self._sync_dirty()
        await self._remove_stale_addresses()
        self._task = asyncio.get_running_loop().create_task(self._run(),
                                                            name="node:service-proxy")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        for key in list(self.ports):
            self._close(key, drop_connections=True)
        for ip in list(self.ip_users):
            await self._release(ip, None)
        for pool in self.sockets.values():
            await pool.close()

    # -- events ------------------------------------------------------------------------------

    def _mark(self, key: str) -> None:
        self._dirty.add(key)
        self._wake.set()

    def _mark_slice(self, sl: dict | None) -> None:
        for key in slice_service(sl or {}):
            self._mark(key)

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            await self._sync_dirty()

    async def _sync_dirty(self) -> None:
        self._wake.clear()
        while self._dirty:
            key = self._dirty.pop()
            try:
                ok = await self.sync(key)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("service proxy: syncing Service %s", key)
                ok = False
            if not ok:
                asyncio.get_running_loop().call_later(RETRY_DELAY, self._mark, key)

    # -- one Service -------------------------------------------------------------------------

    def plan(self, key: str) -> ServicePlan:
        ns, _, name = key.partition("/")
        svc = self.services.get(name, ns)
        if svc is None:
            return ServicePlan(key)
        return plan_service(svc, self.slices.by_index(SLICE_INDEX, key), self.skip_ips,
                            self.node_ip)

    async def sync(self, key: str) -> bool:
        """Make the listeners and addresses of Service `key` what its plan says; False when
        part of it failed (retried later)."""
        plan = self.plan(key)
        if plan.skipped != self._skipped.get(key, []):
            for why in plan.skipped:
                log.info("service proxy: Service %s: %s", key, why)
            self._skipped[key] = plan.skipped
        if not plan.skipped and not plan.ports:
            self._skipped.pop(key, None)
        ok = True
        # listeners that go: ports removed, or left without a backend (the kernel refuses)
        for lk in [lk for lk, owner in self.owner.items() if owner == key]:
            sp = plan.ports.get(lk)
            if sp is None or not sp.backends:
                self._close(lk, drop_connections=lk[0] not in plan.cluster_ips)
        for ip in plan.cluster_ips:
            ok = await self._hold(ip, key) and ok
        for lk, sp in plan.ports.items():
            if not sp.backends or (not sp.node_port and sp.cluster_ip not in self.ip_users):
                continue
            owner = self.owner.get(lk)
            if owner == key:
                self.ports[lk].update(sp)
            elif owner is not None:
                log.warning("service proxy: Service %s: %s:%d/%s is already served for "
                            "Service %s", key, *lk, owner)
            else:
                ok = await self._open(key, sp) and ok
        for ip in [ip for ip, users in self.ip_users.items()
                   if key in users and ip not in plan.cluster_ips]:
            await self._release(ip, key)
        return ok

    async def _open(self, key: str, sp: ServicePort) -> bool:
        kind = _TCPPort if sp.protocol == "TCP" else _UDPPort
        port = kind(sp, self.path, self.sockets[sp.protocol])
        try:
            await port.open()
        except OSError as e:
            log.warning("service proxy: Service %s: cannot listen on %s:%d/%s: %s",
                        key, *sp.key, e.strerror or e)
            return False
        self.ports[sp.key] = port
        self.owner[sp.key] = key
        log.debug("service proxy: %s:%d/%s -> %s", *sp.key, sp.backends)
        return True

    def _close(self, lk: Key, *, drop_connections: bool) -> None:
        port = self.ports.pop(lk, None)
        self.owner.pop(lk, None)
        if port is not None:
            port.close(drop_connections)

    async def _hold(self, ip: str, key: str) -> bool:
        users = self.ip_users.get(ip)
        if users is None:
            try:
                await asyncio.to_thread(self.network.add_local_address, ip)
            except OSError as e:
                log.warning("service proxy: Service %s: cannot add %s to the node namespace: "
                            "%s", key, ip, e)
                return False
            users = self.ip_users[ip] = set()
        users.add(key)
        return True

    async def _release(self, ip: str, key: str | None) -> None:
        users = self.ip_users.get(ip, set())
        users.discard(key)
        if users and key is not None:
            return
        self.ip_users.pop(ip, None)
        if ip in self.skip_ips:
            return
        try:
            await asyncio.to_thread(self.network.remove_local_address, ip)
        except OSError as e:
            log.warning("service proxy: removing %s from the node namespace: %s", ip, e)

    async def _remove_stale_addresses(self) -> None:
        """Addresses on the node's loopback no Service wants any more (left by an agent that
        was killed): only /32s, never the DNS server's."""
        try:
            have = await asyncio.to_thread(self.network.local_addresses)
        except OSError as e:
            log.warning("service proxy: reading the node namespace's addresses: %s", e)
            return
        for ip in have:
            if ip not in self.ip_users and ip not in self.skip_ips:
                log.info("service proxy: removing %s: no Service has it any more", ip)
                await self._release(ip, None)
