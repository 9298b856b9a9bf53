"""`NodeAgent`: this machine as a node that runs pods for real (kubelet's job), in `k1s up` or
alone (`k1s node`).

It assembles the node-side pieces and owns their lifecycle:
- the node network (`network.NodeNetwork`: a namespace with the pod bridge), with the cluster
  DNS Service address (kube-dns, 10.96.0.10) on its loopback and a DNS server (`dns.server`)
  answering on sockets made inside that namespace, so pods resolve through their default route
  and nothing listens in the root namespace;
- the service proxy (`network.proxy.ServiceProxy`): every other Service's cluster IP on that
  loopback too, with listeners relaying connections to the Service's endpoints (kube-proxy's
  role);
- the stream server (exec/attach/logs/port-forward) on loopback, its port advertised in the
  Node's `status.daemonEndpoints.kubeletEndpoint.Port`;
- registration and heartbeats (`lease.Heartbeat`) with this machine's capacity and pod CIDR;
- the pods: `pods.PodWorkers` over a `podruntime.PodRuntime` (volumes, network, sandbox,
  containers, probes), plus a watcher of container exits;
- the local provisioner for this node's WaitForFirstConsumer claims (loop-mounted images).

Without root the node registers NotReady with the reason (namespaces and mounts need root),
so nothing is scheduled to a node that cannot run it.

Stopping the agent cleanly takes the node down: containers stopped, volumes unmounted,
namespaces removed; pod directories (logs, exit states) stay, and the next start restarts the
pods by their restartPolicy. An agent that is killed leaves its containers running; the next
start adopts them (`PodRuntime.adopt`) without starting anything twice.
"""

from __future__ import annotations

import asyncio
import logging
import os

from k1s.api import registry
from k1s.client.informer import start_and_sync

from . import identity, registration
from .lease import RENEW_INTERVAL, Heartbeat, run_heartbeats
from .network import forward
from .network.bridge import NodeNetwork
from .network.pod import PodNetwork
from .pods import CLAIM_INDEX, AddressPool, NodeInfo, PodWorkers

log = logging.getLogger(__name__)

DEFAULT_POD_CIDR = "10.244.0.0/24"
DNS_PORT = 53
HOST_IP = "127.0.0.1"             # the node's InternalIP (see registration.node_status)
KINDS = {"ConfigMap": "configmaps", "Secret": "secrets",
         "PersistentVolumeClaim": "persistentvolumeclaims",
         "PersistentVolume": "persistentvolumes", "Service": "services"}


class Fetcher:
    """Objects pods' volumes and environments read, from the shared informers:
    `await fetch(kind, ns, name)` for the volume manager, `cached(kind, ns, name)` for the
    synchronous environment resolver."""

    def __init__(self, ctx):
        self.informers = {kind: ctx.informers.informer(registry.core(plural))
                          for kind, plural in KINDS.items()}

    async def start(self) -> None:
        await start_and_sync(self.informers.values())

    def cached(self, kind: str, ns: str, name: str) -> dict | None:
        inf = self.informers.get(kind)
        if inf is None:
            return None
        return inf.get(name, None if kind == "PersistentVolume" else ns)

    async def __call__(self, kind: str, ns: str, name: str) -> dict | None:
        return self.cached(kind, ns, name)

    def services(self, ns: str) -> list[dict]:
        """The Services a pod of `ns` may get variables for (its namespace's and default's)."""
        inf = self.informers["Service"]
        return inf.list(ns) + (inf.list("default") if ns != "default" else [])


def not_ready_conditions(previous: dict | None, now: str, message: str) -> list[dict]:
    from .lease import healthy_conditions
    out = []
    for c in healthy_conditions(previous, now):
        if c.get("type") == "Ready":
            old = next((p for p in (previous or {}).get("conditions") or ()
                        if p.get("type") == "Ready"), {})
            since = old.get("lastTransitionTime") if old.get("status") == "False" else None
            c = dict(c, status="False", reason="KubeletNotReady", message=message,
                     lastTransitionTime=since or now)
        out.append(c)
    return out


class NodeAgent:
    def __init__(self, ctx, *, name: str | None = None, data_dir: str | None = None,
                 pod_cidr: str | None = None, netns_prefix: str | None = None,
                 dns_ip: str | None = None, renew_interval: float = RENEW_INTERVAL):
        from k1s.dns.service import KUBE_DNS_IP
        self.ctx = ctx
        self.client = ctx.client
        self.name = name or identity.node_name()
        self.data_dir = os.path.realpath(data_dir or identity.data_dir())
        self.pod_cidr = pod_cidr or os.environ.get("K1S_POD_CIDR") or DEFAULT_POD_CIDR
        self.netns_prefix = netns_prefix or os.environ.get("K1S_NETNS_PREFIX") or "k1s"
        self.dns_ip = dns_ip or KUBE_DNS_IP
        self.renew_interval = renew_interval
        self.stream_port = 0
        self.why_not_ready = "" if os.geteuid() == 0 else (
            "k1s runs pods in namespaces with mounts, which needs root: run the node as root")
        self.heartbeat = Heartbeat(self.client, self.name,
                                   lambda: registration.node_object(self.name, self.pod_cidr),
                                   self._status)
        self.network: NodeNetwork | None = None
        self.pods = None
        self.workers: PodWorkers | None = None

    def _status(self, previous: dict | None, now: str) -> dict:
        conds = not_ready_conditions(previous, now, self.why_not_ready) \
            if self.why_not_ready else None
        return registration.node_status(self.name, self.data_dir, previous, now,
                                        stream_port=self.stream_port, conditions=conds)

    async def run(self) -> None:
        if self.why_not_ready:
            log.warning("node %s cannot run pods: %s", self.name, self.why_not_ready)
            await run_heartbeats([self.heartbeat], self.renew_interval)
            return
        tasks: list[asyncio.Task] = []
        streams = dns = proxy = recorder = None
        try:
            await self._register()
            self.network = NodeNetwork(self.name, self.pod_cidr, self.netns_prefix)
            await asyncio.to_thread(self._build_network)
            dns = await self._start_dns()
            proxy = await self._start_proxy()
            from .streams.server import StreamServer
            streams = StreamServer(self.data_dir)
            await streams.start()
            self.stream_port = streams.port
            await self.heartbeat.update_status(await self.client.get(
                registry.core("nodes"), self.name))
            from k1s.client.events import EventRecorder
            recorder = EventRecorder(self.client, "kubelet", host=self.name)
            tasks = await self._start_pods(recorder)
            tasks.append(asyncio.create_task(
                run_heartbeats([self.heartbeat], self.renew_interval), name="node:heartbeat"))
            log.info("node %s runs pods (pod CIDR %s, DNS %s, streams on 127.0.0.1:%d)",
                     self.name, self.pod_cidr, self.dns_ip, self.stream_port)
            await asyncio.gather(*tasks)
        finally:
            # pods first, then the provisioner: its images unmount once no pod uses them
            late = [t for t in tasks if t.get_name() == "node:provisioner"]
            for t in tasks:
                if t not in late:
                    t.cancel()
            await asyncio.gather(*(t for t in tasks if t not in late),
                                 return_exceptions=True)
            await asyncio.shield(self._shutdown(streams, dns, proxy))
            for t in late:
                t.cancel()
            await asyncio.gather(*late, return_exceptions=True)
            if recorder is not None:
                await recorder.close()

    async def _register(self) -> None:
        node = await self.heartbeat.register()
        cidr = (node.get("spec") or {}).get("podCIDR")
        if cidr:
            self.pod_cidr = cidr            # the Node keeps the range its pods already use
        else:
            node = dict(node, spec=dict(node.get("spec") or {}, podCIDR=self.pod_cidr,
                                        podCIDRs=[self.pod_cidr]))
            self.heartbeat.node = await self.client.update(registry.core("nodes"), node)

    def _build_network(self) -> None:
        self.network.ensure()
        self.network.add_local_address(self.dns_ip)

    async def _start_dns(self):
        from k1s.dns.server import DNSServer
        udp = forward.udp_socket(self.network.path, self.dns_ip, DNS_PORT)
        tcp = forward.tcp_listener(self.network.path, self.dns_ip, DNS_PORT)
        dns = DNSServer(self.ctx, sockets=[udp, tcp],
                        zone=os.environ.get("K1S_CLUSTER_DOMAIN", "cluster.local"))
        await dns.start()
        return dns

    async def _start_proxy(self):
        from .network.proxy import ServiceProxy
        # kube-dns's address is the DNS server's (its sockets are bound there): never proxied
        proxy = ServiceProxy(self.ctx.informers, self.network, skip_ips={self.dns_ip},
                             node_ip=HOST_IP)
        await proxy.start()
        return proxy

    async def _start_pods(self, recorder) -> list[asyncio.Task]:
        from k1s.controllers.local_provisioner.controller import LocalProvisioner
        from .podruntime import PodRuntime
        fetch = Fetcher(self.ctx)
        await fetch.start()
        pool = AddressPool(self.pod_cidr)
        workers = PodWorkers(self.ctx)

        async def claim_users(ns: str, claim: str) -> list[dict]:
            return workers.pods.by_index(CLAIM_INDEX, f"{ns}/{claim}")
        self.pods = PodRuntime(data_dir=self.data_dir, network=self.network, pool=pool,
                               dns_server=self.dns_ip, fetch=fetch, claim_users=claim_users,
                               services=fetch.services, recorder=recorder)
        self.pods.wake = workers.queue.add
        workers.serve(NodeInfo(self.name, HOST_IP, pool, self.pods, recorder))
        self.workers = workers
        provisioner = LocalProvisioner(self.ctx, node=self.name, data_dir=self.data_dir)
        return [asyncio.create_task(workers.run(), name="node:pods"),
                asyncio.create_task(self.pods.watch_exits(), name="node:exits"),
                asyncio.create_task(self.pods.watch_storage(), name="node:storage"),
                asyncio.create_task(self._collect_orphans(workers), name="node:orphans"),
                asyncio.create_task(provisioner.run(), name="node:provisioner")]

    async def _collect_orphans(self, workers: PodWorkers) -> None:
        """Once the pod informer has synced: take down what belongs to pods the API server no
        longer has (deleted while the agent was down): their containers, files and netns."""
        await workers.pods.wait_synced()
        known = {p["metadata"].get("uid") for p in workers.pods.list()}
        rt = self.pods.runtime
        for uid in rt.uids_on_disk():
            if uid not in known:
                log.info("removing pod %s: deleted while the node was down", uid)
                await self.pods.cleanup(uid)
        for uid in await asyncio.to_thread(self.network.pod_names):
            if uid not in known:
                await asyncio.to_thread(PodNetwork(self.network, uid).teardown)

    async def _shutdown(self, streams, dns, proxy=None) -> None:
        if proxy is not None:
            try:
                await proxy.stop()
            except Exception:
                log.exception("stopping the service proxy")
        if self.pods is not None:
            try:
                await self.pods.shutdown()
            except Exception:
                log.exception("stopping the node's pods")
        if streams is not None:
            await streams.stop()
        if dns is not None:
            await dns.stop()
        if self.network is not None:
            try:
                await asyncio.to_thread(self._remove_network)
            except Exception:
                log.exception("removing the node network")

    def _remove_network(self) -> None:
        for uid in self.network.pod_names():
            PodNetwork(self.network, uid).teardown()
        self.network.teardown()
