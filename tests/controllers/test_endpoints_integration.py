"""The endpoint and endpointslice controllers against the real API server: the seed's headless
Service `nginx` with pods web-0/web-1 set up as a scheduler and kubelet would (binding, then
podIP and Ready through the status subresource), readiness flips, a second Service without
hostnames, terminating pods, user-managed Endpoints, deletion with the Service (garbage
collector for slices), and real kubectl printing both kinds."""

from __future__ import annotations

import asyncio
import contextlib
import os

import pytest
import yaml

from k1s.api import registry
from k1s.client.errors import ApiError
from k1s.controllers.endpoints.controller import EndpointsController
from k1s.controllers.endpointslice.controller import EndpointSliceController
from k1s.controllers.garbage_collector.controller import GarbageCollector
from k1s.controllers.statefulset.controller import StatefulSetController
from ctrl_util import eventually, get_or_none, running_controllers
from k1s_harness import pinned_kubectl

SEED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "shared",
                    "scenarios", "seed", "statefulset.yaml")
NS = "default"
SVC = registry.core("services")
POD = registry.core("pods")
NODE = registry.core("nodes")
EP = registry.core("endpoints")
SLICE = registry.get("endpointslices.discovery.k8s.io")
SLICE_SELECTOR = "kubernetes.io/service-name=nginx"


def seed_service() -> dict:
    with open(SEED) as f:
        return next(d for d in yaml.safe_load_all(f) if d["kind"] == "Service")


@pytest.fixture
async def client(api_server):
    async with running_controllers(api_server.url, EndpointsController, EndpointSliceController,
                                   GarbageCollector) as c:
        await c.create(NODE, {"apiVersion": "v1", "kind": "Node", "metadata": {
            "name": "node-1", "labels": {"topology.kubernetes.io/zone": "zone-a"}}})
        yield c


async def make_pod(c, name, ip, ready=True, labels=None, subdomain="nginx", finalizers=None):
    """Create a pod, bind it, and report its IP and readiness as the kubelet would."""
    md = {"name": name, "labels": labels or {"app": "nginx"}}
    if finalizers:
        md["finalizers"] = finalizers
    await c.create(POD, {"apiVersion": "v1", "kind": "Pod", "metadata": md, "spec": {
        "hostname": name, "subdomain": subdomain,
        "containers": [{"name": "nginx", "image": "nginx:1.9.1",
                        "ports": [{"containerPort": 80, "name": "web"}]}]}}, NS)
    await c.create(POD, {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": name},
                         "target": {"apiVersion": "v1", "kind": "Node", "name": "node-1"}},
                   NS, subresource="binding", name=name)
    await set_ready(c, name, ready, ip)


async def set_ready(c, name, ready, ip=None):
    status = {"phase": "Running", "conditions": [
        {"type": "Ready", "status": "True" if ready else "False",
         "lastTransitionTime": "2026-01-01T00:00:00Z" if ready else "2026-01-01T00:01:00Z"}]}
    if ip:
        status.update(podIP=ip, podIPs=[{"ip": ip}])
    await c.patch(POD, name, {"status": status}, NS, subresource="status")


def addresses(ep, field="addresses"):
    return sorted((a["ip"], a.get("hostname"), a.get("nodeName"), a["targetRef"]["name"])
                  for s in ep.get("subsets") or () for a in s.get(field) or ())


async def endpoints_where(c, pred, name="nginx"):
    async def check():
        ep = await get_or_none(c, EP, name, NS)
        return ep if ep is not None and pred(ep) else None
    return await eventually(check, timeout=20)


async def slices_where(c, pred, selector=SLICE_SELECTOR):
    async def check():
        items = (await c.list(SLICE, NS, label_selector=selector))["items"]
        return (items,) if pred(items) else None
    return (await eventually(check, timeout=20))[0]


def slice_conditions(items):
    return sorted((e["targetRef"]["name"], e["conditions"]["ready"], e["conditions"]["serving"],
                   e["conditions"]["terminating"]) for s in items for e in s.get("endpoints") or ())


async def test_seed_service_endpoints_and_slice(client):
    await client.create(SVC, seed_service(), NS)
    await make_pod(client, "web-0", "10.244.0.10")
    await make_pod(client, "web-1", "10.244.0.11")
    ep = await endpoints_where(client, lambda e: len(addresses(e)) == 2)
    assert addresses(ep) == [("10.244.0.10", "web-0", "node-1", "web-0"),
                             ("10.244.0.11", "web-1", "node-1", "web-1")]
    assert ep["subsets"][0]["ports"] == [{"name": "web", "port": 80, "protocol": "TCP"}]
    assert ep["metadata"]["labels"] == {"app": "nginx", "service.kubernetes.io/headless": ""}
    assert "endpoints.kubernetes.io/last-change-trigger-time" in ep["metadata"]["annotations"]

    items = await slices_where(client, lambda it: len(slice_conditions(it)) == 2)
    assert len(items) == 1
    s = items[0]
    svc = await client.get(SVC, "nginx", NS)
    assert s["metadata"]["name"].startswith("nginx-")
    assert s["metadata"]["ownerReferences"] == [{
        "apiVersion": "v1", "kind": "Service", "name": "nginx", "uid": svc["metadata"]["uid"],
        "controller": True, "blockOwnerDeletion": True}]
    assert s["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"] == \
        "endpointslice-controller.k8s.io"
    assert s["metadata"]["labels"]["service.kubernetes.io/headless"] == ""
    assert s["addressType"] == "IPv4"
    assert s["ports"] == [{"name": "web", "port": 80, "protocol": "TCP"}]
    by_name = {e["targetRef"]["name"]: e for e in s["endpoints"]}
    assert by_name["web-0"]["hostname"] == "web-0" and by_name["web-0"]["zone"] == "zone-a"
    assert by_name["web-1"]["addresses"] == ["10.244.0.11"]
    assert by_name["web-1"]["nodeName"] == "node-1"


async def test_readiness_flips_move_addresses(client):
    await client.create(SVC, seed_service(), NS)
    await make_pod(client, "web-0", "10.244.0.10")
    await make_pod(client, "web-1", "10.244.0.11", ready=False)
    ep = await endpoints_where(client, lambda e: addresses(e, "notReadyAddresses"))
    assert [a[3] for a in addresses(ep)] == ["web-0"]
    assert [a[3] for a in addresses(ep, "notReadyAddresses")] == ["web-1"]
    await slices_where(client, lambda it: slice_conditions(it) == [
        ("web-0", True, True, False), ("web-1", False, False, False)])

    await set_ready(client, "web-1", True)
    await set_ready(client, "web-0", False)
    ep = await endpoints_where(client, lambda e: [a[3] for a in addresses(e)] == ["web-1"])
    assert [a[3] for a in addresses(ep, "notReadyAddresses")] == ["web-0"]
    await slices_where(client, lambda it: slice_conditions(it) == [
        ("web-0", False, False, False), ("web-1", True, True, False)])


async def test_second_service_gets_no_hostnames_and_label_changes_move_pods(client):
    await client.create(SVC, seed_service(), NS)
    other = seed_service()
    other["metadata"]["name"] = "nginx-all"
    await client.create(SVC, other, NS)
    await make_pod(client, "web-0", "10.244.0.10")
    ep = await endpoints_where(client, lambda e: addresses(e), name="nginx-all")
    assert addresses(ep) == [("10.244.0.10", None, "node-1", "web-0")]
    items = await slices_where(client, lambda it: slice_conditions(it),
                               selector="kubernetes.io/service-name=nginx-all")
    assert "hostname" not in items[0]["endpoints"][0]
    # relabel the pod out of both Services: both lose it
    await client.patch(POD, "web-0", {"metadata": {"labels": {"app": "other"}}}, NS)
    await endpoints_where(client, lambda e: not addresses(e), name="nginx-all")
    await endpoints_where(client, lambda e: not addresses(e))
    await slices_where(client, lambda it: len(it) == 1 and not it[0]["endpoints"])


async def test_terminating_pod_leaves_endpoints_stays_in_slices(client):
    await client.create(SVC, seed_service(), NS)
    await make_pod(client, "web-0", "10.244.0.10", finalizers=["example.com/hold"])
    await make_pod(client, "web-1", "10.244.0.11")
    await endpoints_where(client, lambda e: len(addresses(e)) == 2)
    await client.delete(POD, "web-0", NS)
    ep = await endpoints_where(client, lambda e: len(addresses(e)) == 1)
    assert addresses(ep)[0][3] == "web-1" and not addresses(ep, "notReadyAddresses")
    await slices_where(client, lambda it: slice_conditions(it) == [
        ("web-0", False, True, True), ("web-1", True, True, False)])
    await client.patch(POD, "web-0", {"metadata": {"finalizers": None}}, NS)


async def test_publish_not_ready_addresses(client):
    svc = seed_service()
    svc["spec"]["publishNotReadyAddresses"] = True
    await client.create(SVC, svc, NS)
    await make_pod(client, "web-0", "10.244.0.10", ready=False)
    ep = await endpoints_where(client, lambda e: addresses(e))
    assert [a[3] for a in addresses(ep)] == ["web-0"]
    await slices_where(client, lambda it: slice_conditions(it) == [("web-0", True, False, False)])


async def test_service_without_selector_keeps_user_endpoints(client):
    await client.create(SVC, {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "ext"},
                              "spec": {"ports": [{"port": 5432}]}}, NS)
    await client.create(EP, {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "ext"},
                             "subsets": [{"addresses": [{"ip": "192.0.2.7"}],
                                          "ports": [{"port": 5432}]}]}, NS)
    # a selector Service created after it proves the controllers have caught up
    await client.create(SVC, seed_service(), NS)
    await make_pod(client, "web-0", "10.244.0.10")
    await endpoints_where(client, lambda e: addresses(e))
    await slices_where(client, lambda it: slice_conditions(it))
    ep = await client.get(EP, "ext", NS)
    assert ep["subsets"][0]["addresses"] == [{"ip": "192.0.2.7"}]
    assert (await client.list(SLICE, NS, label_selector="kubernetes.io/service-name=ext"))[
        "items"] == []


async def test_deleting_the_service_removes_endpoints_and_slices(client):
    await client.create(SVC, seed_service(), NS)
    await make_pod(client, "web-0", "10.244.0.10")
    await endpoints_where(client, lambda e: addresses(e))
    await slices_where(client, lambda it: slice_conditions(it))
    await client.delete(SVC, "nginx", NS)

    async def endpoints_gone():
        return await get_or_none(client, EP, "nginx", NS) is None
    await eventually(endpoints_gone, timeout=20)
    await slices_where(client, lambda it: it == [])


async def test_deleted_endpoints_and_slices_come_back(client):
    await client.create(SVC, seed_service(), NS)
    await make_pod(client, "web-0", "10.244.0.10")
    ep = await endpoints_where(client, lambda e: addresses(e))
    items = await slices_where(client, lambda it: slice_conditions(it))
    await client.delete(EP, "nginx", NS)
    await client.delete(SLICE, items[0]["metadata"]["name"], NS)
    again = await endpoints_where(client, lambda e: addresses(e))
    assert again["metadata"]["uid"] != ep["metadata"]["uid"]
    await slices_where(client, lambda it: slice_conditions(it) and
                       it[0]["metadata"]["name"] != items[0]["metadata"]["name"])


async def test_endpoints_left_over_from_a_deleted_service_are_removed_at_start(api_server):
    from k1s.client.rest import APIClient
    async with APIClient(api_server.url) as c:
        await c.create(EP, {"apiVersion": "v1", "kind": "Endpoints",
                            "metadata": {"name": "gone"}, "subsets": []}, NS)
    async with running_controllers(api_server.url, EndpointsController) as c:
        async def removed():
            return await get_or_none(c, EP, "gone", NS) is None
        await eventually(removed, timeout=20)


async def test_many_pods_pack_into_slices(client):
    await client.create(SVC, seed_service(), NS)
    names = [f"web-{i}" for i in range(120)]
    await asyncio.gather(*(make_pod(client, n, f"10.244.{i // 200}.{i % 200 + 1}", ready=False)
                           for i, n in enumerate(names)))
    await endpoints_where(client, lambda e: len(addresses(e, "notReadyAddresses")) == 120)
    items = await slices_where(client, lambda it: len(slice_conditions(it)) == 120)
    assert sorted(len(s["endpoints"]) for s in items) == [20, 100]
    await asyncio.gather(*(set_ready(client, n, True) for n in names))
    await endpoints_where(client, lambda e: len(addresses(e)) == 120)
    items = await slices_where(client, lambda it: all(c[1] for c in slice_conditions(it)))
    assert sorted(len(s["endpoints"]) for s in items) == [20, 100]


async def test_seed_statefulset_pods_get_per_pod_endpoints(api_server):
    """The whole seed file: the StatefulSet controller makes web-0/web-1 (hostname web-N,
    subdomain nginx); a kubelet stand-in binds them and reports IP and readiness."""
    with open(SEED) as f:
        sts = next(d for d in yaml.safe_load_all(f) if d["kind"] == "StatefulSet")
    async with running_controllers(api_server.url, StatefulSetController, EndpointsController,
                                   EndpointSliceController) as c:
        await c.create(SVC, seed_service(), NS)
        await c.create(registry.get("statefulsets.apps"), sts, NS)

        async def kubelet():
            while True:
                for p in (await c.list(POD, NS))["items"]:
                    name = p["metadata"]["name"]
                    if not p["spec"].get("nodeName"):
                        with contextlib.suppress(ApiError):
                            await c.create(POD, {"apiVersion": "v1", "kind": "Binding",
                                                 "metadata": {"name": name},
                                                 "target": {"kind": "Node", "name": "node-1"}},
                                           NS, subresource="binding", name=name)
                    if not (p.get("status") or {}).get("podIP"):
                        with contextlib.suppress(ApiError):
                            await set_ready(c, name, True, f"10.244.0.{10 + int(name[4:])}")
                await asyncio.sleep(0.05)
        task = asyncio.create_task(kubelet())
        try:
            ep = await endpoints_where(c, lambda e: len(addresses(e)) == 2)
            assert addresses(ep) == [("10.244.0.10", "web-0", "node-1", "web-0"),
                                     ("10.244.0.11", "web-1", "node-1", "web-1")]
            items = await slices_where(c, lambda it: len(slice_conditions(it)) == 2)
            assert sorted(e["hostname"] for e in items[0]["endpoints"]) == ["web-0", "web-1"]
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def kubectl(api_server, *args) -> str:
    proc = await asyncio.create_subprocess_exec(
        pinned_kubectl(), "--kubeconfig", api_server.kubeconfig, *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    return out.decode()


async def test_kubectl_prints_endpoints_and_slices(client, api_server):
    await client.create(SVC, seed_service(), NS)
    await make_pod(client, "web-0", "10.244.0.10")
    await make_pod(client, "web-1", "10.244.0.11")
    await endpoints_where(client, lambda e: len(addresses(e)) == 2)
    items = await slices_where(client, lambda it: len(slice_conditions(it)) == 2)
    out = (await kubectl(api_server, "get", "endpoints", "nginx")).splitlines()
    assert out[0].split() == ["NAME", "ENDPOINTS", "AGE"]
    assert out[1].split()[:2] == ["nginx", "10.244.0.10:80,10.244.0.11:80"]
    out = (await kubectl(api_server, "get", "endpointslices", "-l", SLICE_SELECTOR)).splitlines()
    assert out[0].split() == ["NAME", "ADDRESSTYPE", "PORTS", "ENDPOINTS", "AGE"]
    row = out[1].split()
    assert row[:4] == [items[0]["metadata"]["name"], "IPv4", "80", "10.244.0.10,10.244.0.11"] or \
        row[:4] == [items[0]["metadata"]["name"], "IPv4", "80", "10.244.0.11,10.244.0.10"]
