"""Growing a bound claim grows the real loop-mounted image, the PV and the claim's capacity.

The binder is not run here: the test binds the provisioned PV and claim itself, as the binder
would (PV claimRef is set by the provisioner; claim spec.volumeName and both phases here).
"""

from __future__ import annotations

import asyncio
import errno
import os

import pytest

from k1s.client.rest import APIClient
from k1s.controllers.context import ControllerContext
from k1s.controllers.local_provisioner.controller import LocalProvisioner
from k1s.controllers.volume_expansion.controller import VolumeExpansionController
from k1s.node.volumes import images

from test_local_provisioner_integration import (  # shared helpers
    NODE, PV, PVC, eventually, get_or_none, make_claim, make_class, reasons, unmount_all)

LOOP_OK, WHY = images.loop_supported()
pytestmark = pytest.mark.skipif(not LOOP_OK, reason=f"no loop-device volumes here: {WHY}")
MiB = 1 << 20


def fill(path: str, nbytes: int) -> None:
    with open(path, "wb") as f:
        for _ in range(nbytes // MiB):
            f.write(b"\x5a" * MiB)
        f.flush()
        os.fsync(f.fileno())


@pytest.fixture
async def env(api_server, tmp_path):
    data = str(tmp_path / "data")
    c = APIClient(api_server.url)
    ctx = ControllerContext.create(c, "k1s-test")
    tasks = [asyncio.create_task(LocalProvisioner(ctx, data_dir=data, node=NODE).run()),
             asyncio.create_task(VolumeExpansionController(ctx, data_dir=data, node=NODE).run())]
    try:
        yield c
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await ctx.close()
        await c.close()
        unmount_all(data)


async def bind(c, claim: dict) -> tuple[dict, dict]:
    pv_name = f"pvc-{claim['metadata']['uid']}"
    pv = await eventually(lambda: get_or_none(c, PV, pv_name))
    pv["status"] = {"phase": "Bound"}
    pv = await c.update_status(PV, pv)
    claim = await c.get(PVC, claim["metadata"]["name"], "default")
    claim["spec"]["volumeName"] = pv_name
    claim = await c.update(PVC, claim)
    claim["status"] = {"phase": "Bound", "accessModes": ["ReadWriteOnce"],
                       "capacity": dict(pv["spec"]["capacity"])}
    return pv, await c.update_status(PVC, claim)


async def test_expansion_lets_a_bigger_write_succeed(env):
    c = env
    await make_class(c)
    claim = await make_claim(c, "grow", size="8Mi")
    pv, claim = await bind(c, claim)
    mnt = pv["spec"]["local"]["path"]
    with pytest.raises(OSError) as e:
        fill(os.path.join(mnt, "big"), 12 * MiB)
    assert e.value.errno == errno.ENOSPC
    os.unlink(os.path.join(mnt, "big"))

    claim["spec"]["resources"]["requests"]["storage"] = "24Mi"
    await c.update(PVC, claim)

    async def grown():
        cur = await c.get(PVC, "grow", "default")
        return cur if (cur["status"].get("capacity") or {}).get("storage") == "24Mi" else None
    cur = await eventually(grown)
    st = cur["status"]
    assert st["allocatedResources"] == {"storage": "24Mi"}
    assert "storage" not in (st.get("allocatedResourceStatuses") or {})
    assert not [x for x in st.get("conditions") or ()
                if x["type"] in ("Resizing", "FileSystemResizePending")]
    assert (await c.get(PV, pv["metadata"]["name"]))["spec"]["capacity"]["storage"] == "24Mi"
    assert os.path.ismount(mnt)
    fill(os.path.join(mnt, "big"), 12 * MiB)                   # now it fits
    assert os.path.getsize(os.path.join(mnt, "big")) == 12 * MiB

    async def all_events():
        ev = await reasons(c, "grow")
        return ev if "FileSystemResizeSuccessful" in ev else None
    ev = await eventually(all_events)
    assert ev["ExternalExpanding"] == "waiting for an external controller to expand this PVC"
    assert ev["Resizing"] == f"External resizer is resizing volume {pv['metadata']['name']}"
    assert ev["VolumeResizeSuccessful"] == "Resize volume succeeded"
    assert ev["FileSystemResizeSuccessful"] == (
        f'MountVolume.NodeExpandVolume succeeded for volume "{pv["metadata"]["name"]}" {NODE}')
