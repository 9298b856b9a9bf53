"""NodeRegistrar against the real API server: the Node appears Ready with capacity and
addresses, the Lease is renewed, and K1S_NODE_NAME names it."""

from __future__ import annotations

import asyncio

from k1s.api import registry
from k1s.client.rest import APIClient
from k1s.controllers.context import ControllerContext
from k1s.node import identity
from k1s.node.registration import LEASE_NAMESPACE, LEASES, NodeRegistrar

NODES = registry.core("nodes")


def test_node_name_from_env_and_hostname(monkeypatch):
    monkeypatch.setenv("K1S_NODE_NAME", "Edge-1")
    assert identity.node_name() == "edge-1"
    monkeypatch.delenv("K1S_NODE_NAME")
    name = identity.node_name()
    assert name and name == name.lower() and "." not in name


async def test_registers_ready_node_and_renews_lease(api_server, tmp_path):
    c = APIClient(api_server.url)
    ctx = ControllerContext.create(c, "k1s-test")
    reg = NodeRegistrar(ctx, name="node-a", data_dir=str(tmp_path), renew_interval=0.05)
    task = asyncio.create_task(reg.run())
    try:
        for _ in range(200):
            await asyncio.sleep(0.02)
            try:
                lease1 = await c.get(LEASES, "node-a", LEASE_NAMESPACE)
                break
            except Exception:
                continue
        node = await c.get(NODES, "node-a")
        assert node["metadata"]["labels"]["kubernetes.io/hostname"] == "node-a"
        st = node["status"]
        ready = [x for x in st["conditions"] if x["type"] == "Ready"]
        assert ready and ready[0]["status"] == "True" and ready[0]["reason"] == "KubeletReady"
        assert set(st["capacity"]) == {"cpu", "memory", "pods", "ephemeral-storage"}
        assert st["allocatable"]["pods"] == "110"
        assert {"type": "InternalIP", "address": "127.0.0.1"} in st["addresses"]
        assert {"type": "Hostname", "address": "node-a"} in st["addresses"]
        assert lease1["spec"]["holderIdentity"] == "node-a"
        await asyncio.sleep(0.2)
        lease2 = await c.get(LEASES, "node-a", LEASE_NAMESPACE)
        assert lease2["spec"]["renewTime"] > lease1["spec"]["renewTime"]
        # a restart keeps Ready's lastTransitionTime
        again = await reg.register()
        r2 = [x for x in again["status"]["conditions"] if x["type"] == "Ready"][0]
        assert r2["lastTransitionTime"] == ready[0]["lastTransitionTime"]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await ctx.close()
        await c.close()
