"""`ProcessRuntime` behind the node's `PodWorkers` against a real API server: a pod bound to the
node runs as a real process and turns Running; deleting it stops the process within its grace
period, finishes the delete and leaves nothing behind."""

from __future__ import annotations

import os
import sys

from k1s.api import registry
from k1s.node.pods import AddressPool, NodeInfo, PodWorkers
from k1s.node.runtime import linux
from k1s.node.runtime.runtime import ProcessRuntime

from runtime_util import mounts_under, needs_root  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "controllers"))
from ctrl_util import eventually, get_or_none, running_controllers  # noqa: E402

pytestmark = needs_root
PODS = registry.core("pods")
NODE = "k1s-rt-node"


def agent(runtime: ProcessRuntime):
    def factory(ctx):
        workers = PodWorkers(ctx, workers=4)
        workers.serve(NodeInfo(NODE, "127.0.0.1", AddressPool("10.250.0.0/24"), runtime))
        return workers
    return factory


async def test_pod_runs_as_a_process_and_its_delete_stops_it(api_server, tmp_path):
    was_subreaper = linux.is_child_subreaper()
    rt = ProcessRuntime(str(tmp_path / "data"), dns_server="10.96.0.10")
    body = {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "sleeper", "namespace": "default"},
            "spec": {"nodeName": NODE, "terminationGracePeriodSeconds": 1,
                     "containers": [{"name": "c", "image": "busybox",
                                     "command": ["sh", "-c", "trap '' TERM; sleep 1000"]}]}}
    async with running_controllers(api_server.url, agent(rt)) as c:
        await c.create(PODS, body, "default")

        async def running():
            p = await get_or_none(c, PODS, "sleeper", "default")
            return p if p and (p.get("status") or {}).get("phase") == "Running" else None
        p = await eventually(running, timeout=30)
        uid = p["metadata"]["uid"]
        st = rt.container_states(uid)["c"]
        assert st.running
        assert open(f"/proc/{st.pid}/comm").read().strip() in ("sh", "sleep")

        await c.delete(PODS, "sleeper", "default")

        async def gone():
            return await get_or_none(c, PODS, "sleeper", "default") is None
        await eventually(gone, timeout=30)

        async def forgotten():
            return uid not in rt.pods
        await eventually(forgotten, timeout=30)
        assert linux.proc_start_time(st.pid) is None
        assert not os.path.exists(tmp_path / "data" / "pods" / uid)
    assert mounts_under(str(tmp_path)) == []
    if not was_subreaper:
        linux.prctl(linux.PR_SET_CHILD_SUBREAPER, 0)
