"""The local provisioner against the real API server, with real loop-mounted images.

The binder is not run here: claims carry the binder's handshake annotations themselves, and
the tests check the provisioner's half (PV pvc-<uid> pre-bound, events, data, reclaim).
"""

from __future__ import annotations

import asyncio
import errno
import os

import pytest

from k1s.api import registry
from k1s.client.rest import APIClient
from k1s.controllers.context import ControllerContext
from k1s.controllers.local_provisioner import planner as p
from k1s.controllers.local_provisioner.controller import LocalProvisioner
from k1s.node.volumes import images, paths
from ctrl_util import eventually, get_or_none

PVC = registry.core("persistentvolumeclaims")
PV = registry.core("persistentvolumes")
EVENTS = registry.core("events")
NS = registry.core("namespaces")
SC = registry.get("storageclasses.storage.k8s.io")
NODE = "node-a"
LOOP_OK, WHY = images.loop_supported()
needs_loop = pytest.mark.skipif(not LOOP_OK, reason=f"no loop-device volumes here: {WHY}")


def unmount_all(data: str) -> None:
    root = os.path.join(data, "volumes")
    for name in os.listdir(root) if os.path.isdir(root) else ():
        if name.startswith("pvc-"):          # not the image templates
            images.unmount(data, name)


async def start(api_server, tmp_path, **kw):
    c = APIClient(api_server.url)
    ctx = ControllerContext.create(c, "k1s-test")
    prov = LocalProvisioner(ctx, data_dir=str(tmp_path / "data"), node=NODE, **kw)
    task = asyncio.create_task(prov.run())
    return c, ctx, prov, task


async def stop(c, ctx, task, data):
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await ctx.close()
    await c.close()
    unmount_all(data)


@pytest.fixture
async def env(api_server, tmp_path):
    c, ctx, prov, task = await start(api_server, tmp_path)
    try:
        yield c, prov
    finally:
        await stop(c, ctx, task, str(tmp_path / "data"))




async def make_class(c, name="fast", **kw):
    body = {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": name},
            "provisioner": p.PROVISIONER, "reclaimPolicy": "Delete",
            "volumeBindingMode": "Immediate", "allowVolumeExpansion": True}
    body.update(kw)
    return await c.create(SC, body)


async def make_claim(c, name, size="8Mi", cls="fast", ns="default", selected=None):
    ann = {p.ANN_STORAGE_PROVISIONER: p.PROVISIONER, p.ANN_BETA_STORAGE_PROVISIONER: p.PROVISIONER}
    if selected:
        ann[p.ANN_SELECTED_NODE] = selected
    return await c.create(PVC, {
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": name, "namespace": ns, "annotations": ann},
        "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": cls,
                 "resources": {"requests": {"storage": size}}}}, ns)




async def reasons(c, name, ns="default") -> dict[str, str]:
    evs = (await c.list(EVENTS, ns))["items"]
    return {e["reason"]: e["message"] for e in evs if e["involvedObject"]["name"] == name}


@needs_loop
async def test_provisions_a_loop_image_with_real_capacity_then_deletes_it(env, tmp_path):
    c, prov = env
    await make_class(c, mountOptions=["noatime"])
    claim = await make_claim(c, "data")
    pv_name = f"pvc-{claim['metadata']['uid']}"
    pv = await eventually(lambda: get_or_none(c, PV, pv_name))
    s = pv["spec"]
    assert pv["metadata"]["annotations"][p.ANN_PROVISIONED_BY] == "k1s.io/local"
    assert s["claimRef"]["uid"] == claim["metadata"]["uid"] and s["claimRef"]["name"] == "data"
    assert s["capacity"]["storage"] == "8Mi" and s["mountOptions"] == ["noatime"]
    assert s["persistentVolumeReclaimPolicy"] == "Delete" and s["storageClassName"] == "fast"
    assert s["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"] == [
        {"key": "kubernetes.io/hostname", "operator": "In", "values": [NODE]}]
    mnt = s["local"]["path"]
    assert mnt == paths.mount_path(str(tmp_path / "data"), pv_name) and os.path.ismount(mnt)
    with pytest.raises(OSError) as e:                      # capacity is real
        with open(os.path.join(mnt, "big"), "wb") as f:
            f.write(b"x" * (9 << 20))
            f.flush()
            os.fsync(f.fileno())
    assert e.value.errno == errno.ENOSPC
    ev = await eventually(lambda: reasons(c, "data"))
    assert ev["Provisioning"] == 'External provisioner is provisioning volume for claim "default/data"'
    assert ev["ProvisioningSucceeded"] == f"Successfully provisioned volume {pv_name}"
    assert "CapacityNotEnforced" not in ev

    # usage is reported on the PV and as kubelet-style metrics
    assert await prov.refresh_usage() == 1
    pv = await c.get(PV, pv_name)
    assert int(pv["metadata"]["annotations"][p.ANN_USAGE]) > 0
    assert int(pv["metadata"]["annotations"][p.ANN_AVAILABLE]) < 9 << 20
    assert 'kubelet_volume_stats_used_bytes{namespace="default",persistentvolumeclaim="data"}' \
        in prov.metrics_text()
    assert await prov.refresh_usage() == 0                 # unchanged: no write

    # Released + Delete: the data goes, then the PV object
    pv["status"] = {"phase": "Released"}
    await c.update_status(PV, pv)

    async def gone():
        cur = await get_or_none(c, PV, pv_name)
        return (cur is None or cur["metadata"].get("deletionTimestamp")) \
            and not os.path.exists(os.path.dirname(mnt))
    await eventually(gone)
    assert images.loop_devices(str(tmp_path / "data"), pv_name) == []


@needs_loop
async def test_retain_keeps_released_volume(env, tmp_path):
    c, _ = env
    await make_class(c, reclaimPolicy="Retain")
    claim = await make_claim(c, "keep")
    pv_name = f"pvc-{claim['metadata']['uid']}"
    pv = await eventually(lambda: get_or_none(c, PV, pv_name))
    pv["status"] = {"phase": "Released"}
    await c.update_status(PV, pv)
    await asyncio.sleep(0.3)
    assert (await c.get(PV, pv_name))["metadata"].get("deletionTimestamp") is None
    assert os.path.ismount(pv["spec"]["local"]["path"])


async def test_wffc_waits_for_this_node(env):
    c, _ = env
    await make_class(c, volumeBindingMode="WaitForFirstConsumer")
    other = await make_claim(c, "other", selected="node-b")
    mine = await make_claim(c, "mine", selected=NODE)
    waiting = await make_claim(c, "waiting")
    await eventually(lambda: get_or_none(c, PV, f"pvc-{mine['metadata']['uid']}"))
    await asyncio.sleep(0.2)
    for cl in (other, waiting):
        assert await get_or_none(c, PV, f"pvc-{cl['metadata']['uid']}") is None


async def test_unknown_parameter_fails_with_event(env):
    c, _ = env
    await make_class(c, parameters={"zone": "eu"})
    claim = await make_claim(c, "bad")
    ev = await eventually(lambda: reasons(c, "bad"))
    assert ev["ProvisioningFailed"] == ('failed to provision volume with StorageClass "fast": '
                                       'invalid parameter "zone" for provisioner k1s.io/local')
    assert await get_or_none(c, PV, f"pvc-{claim['metadata']['uid']}") is None


async def test_directory_mode_warns_capacity_not_enforced(api_server, tmp_path):
    c, ctx, prov, task = await start(api_server, tmp_path, loop_ok=False)
    try:
        await make_class(c)
        claim = await make_claim(c, "plain")
        pv = await eventually(lambda: get_or_none(c, PV, f"pvc-{claim['metadata']['uid']}"))
        path = pv["spec"]["local"]["path"]
        assert os.path.isdir(path) and not os.path.ismount(path)
        assert "fsType" not in pv["spec"]["local"]
        warning = await eventually(lambda: _has(c, "plain", "CapacityNotEnforced"))
        assert warning.startswith(f"volume {pv['metadata']['name']} is a plain directory: "
                                  "its size is not enforced")
    finally:
        await stop(c, ctx, task, str(tmp_path / "data"))


async def _has(c, name, reason):
    return (await reasons(c, name)).get(reason)


@needs_loop
async def test_restart_readopts_mounts(api_server, tmp_path):
    data = str(tmp_path / "data")
    c, ctx, prov, task = await start(api_server, tmp_path)
    await make_class(c)
    claim = await make_claim(c, "again")
    pv_name = f"pvc-{claim['metadata']['uid']}"
    pv = await eventually(lambda: get_or_none(c, PV, pv_name))
    mnt = pv["spec"]["local"]["path"]
    with open(os.path.join(mnt, "kept"), "w") as f:
        f.write("hello")
    task.cancel()                                      # a clean stop unmounts by itself
    await asyncio.gather(task, return_exceptions=True)
    await ctx.close()
    await c.close()
    assert not os.path.ismount(mnt)
    assert images.loop_devices(data, pv_name) == []
    c, ctx, prov, task = await start(api_server, tmp_path)
    try:
        async def mounted():
            return os.path.ismount(mnt)
        await eventually(mounted)
        with open(os.path.join(mnt, "kept")) as f:
            assert f.read() == "hello"
    finally:
        await stop(c, ctx, task, data)
