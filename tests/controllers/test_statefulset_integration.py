"""The StatefulSet controller against the real API server, with the test playing kubelet
(pod status through the `status` subresource) and the garbage collector running beside it:
the seed's `web`, recreation under the same names and claims, OrderedReady scaling order,
Parallel, rolling update with partition, OnDelete, rollback, retention, start ordinal, events,
status, random write failures, and kubectl's rollout/scale commands."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random

import pytest
import yaml

from k1s.api import registry
from k1s.client.errors import ApiError
from k1s.client.rest import APIClient
from k1s.controllers.garbage_collector.controller import GarbageCollector
from k1s.controllers.pvc_protection.controller import PVCProtectionController
from k1s.controllers.statefulset.controller import StatefulSetController
from k1s_harness import pinned_kubectl
from ctrl_util import eventually, get_or_none, running_controllers

STS = registry.get("statefulsets.apps")
CR = registry.get("controllerrevisions.apps")
POD = registry.core("pods")
PVC = registry.core("persistentvolumeclaims")
EVENTS = registry.core("events")
NS = "default"
# the project's shared/ folder sits beside the checkout (CI lays a copy there too)
SEED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "shared",
                    "scenarios", "seed", "statefulset.yaml")
TIMEOUT = 30.0


def seed_set() -> dict:
    with open(SEED) as f:
        return [d for d in yaml.safe_load_all(f) if d["kind"] == "StatefulSet"][0]


def web(replicas=2, **spec) -> dict:
    s = seed_set()
    s["spec"]["replicas"] = replicas
    s["spec"].update(spec)
    return s


@pytest.fixture
async def client(api_server):
    # the garbage collector deletes what retention hands it; pvc-protection lets claims go
    async with running_controllers(api_server.url, StatefulSetController,
                                   GarbageCollector, PVCProtectionController) as c:
        yield c


async def pods(c) -> dict[str, dict]:
    return {p["metadata"]["name"]: p for p in (await c.list(POD, NS))["items"]}


async def claims(c) -> dict[str, dict]:
    return {p["metadata"]["name"]: p for p in (await c.list(PVC, NS))["items"]}


async def make_ready(c, name: str) -> None:
    await c.patch(POD, name, {"status": {"phase": "Running", "conditions": [
        {"type": "Ready", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}},
        NS, subresource="status")


@contextlib.asynccontextmanager
async def kubelet(c):
    """Make every pending pod Running and Ready, as a kubelet would, until the block ends."""
    async def loop():
        while True:
            for name, p in (await pods(c)).items():
                if (p.get("status") or {}).get("phase") == "Pending" and \
                        not p["metadata"].get("deletionTimestamp"):
                    with contextlib.suppress(ApiError):
                        await make_ready(c, name)
            await asyncio.sleep(0.05)
    task = asyncio.create_task(loop())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def wait_pod(c, name):
    async def check():
        return (await pods(c)).get(name)
    return await eventually(check, TIMEOUT)


async def wait_status(c, pred, name="web"):
    async def check():
        s = await c.get(STS, name, NS)
        return s if pred(s.get("status") or {}, s) else None
    return await eventually(check, TIMEOUT)


async def events(c) -> list[tuple[str, str]]:
    return [(e["reason"], e["message"]) for e in
            sorted((await c.list(EVENTS, NS))["items"],
                   key=lambda e: (e.get("firstTimestamp") or "", e["metadata"]["name"]))
            if (e.get("source") or {}).get("component") == "statefulset-controller"]


async def kubectl(api_server, *args) -> str:
    proc = await asyncio.create_subprocess_exec(
        pinned_kubectl(), "--kubeconfig", api_server.kubeconfig, *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    return out.decode()


def rolled_out(n):
    """Observed the latest generation, every pod updated and ready, rollout complete."""
    return lambda s, obj: (all_ready(n)(s, obj) and s.get("updatedReplicas") == n
                           and s.get("currentRevision") == s.get("updateRevision"))


def all_ready(n):
    return lambda s, obj: (s.get("readyReplicas", 0) == n and s.get("replicas") == n
                           and s.get("observedGeneration") == obj["metadata"]["generation"])


# -- the seed --------------------------------------------------------------------------------------

async def test_seed_statefulset_claims_pods_status_and_events(client):
    c = client
    sts = await c.create(STS, seed_set(), NS)
    await wait_pod(c, "web-0")
    assert "web-1" not in await pods(c)          # OrderedReady: web-0 must be ready first
    await make_ready(c, "web-0")
    await wait_pod(c, "web-1")
    await make_ready(c, "web-1")
    got = await wait_status(c, all_ready(2))
    s = got["status"]
    crs = (await c.list(CR, NS))["items"]
    assert len(crs) == 1 and crs[0]["revision"] == 1
    rev = crs[0]["metadata"]["name"]
    assert s == {"replicas": 2, "readyReplicas": 2, "availableReplicas": 2,
                 "currentReplicas": 2, "updatedReplicas": 2, "currentRevision": rev,
                 "updateRevision": rev, "collisionCount": 0, "observedGeneration": 1}
    assert crs[0]["metadata"]["ownerReferences"][0]["uid"] == sts["metadata"]["uid"]
    assert crs[0]["data"]["spec"]["template"]["$patch"] == "replace"
    cl = await claims(c)
    assert sorted(cl) == ["www-web-0", "www-web-1"]
    for name, claim in cl.items():
        assert claim["metadata"]["labels"] == {"app": "nginx"}
        assert claim["spec"]["resources"]["requests"]["storage"] == "1Gi"
        assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
        assert not claim["metadata"].get("ownerReferences")
    p = (await pods(c))["web-1"]
    assert p["metadata"]["labels"] == {
        "app": "nginx", "statefulset.kubernetes.io/pod-name": "web-1",
        "apps.kubernetes.io/pod-index": "1", "controller-revision-hash": rev}
    assert p["spec"]["hostname"] == "web-1" and p["spec"]["subdomain"] == "nginx"
    ref = p["metadata"]["ownerReferences"][0]
    assert ref["controller"] and ref["blockOwnerDeletion"] and ref["kind"] == "StatefulSet"

    async def all_events():
        ev = await events(c)
        return ev if len(ev) >= 4 else None
    ev = await eventually(all_events, TIMEOUT)
    assert ("SuccessfulCreate", "create Claim www-web-0 Pod web-0 in StatefulSet web success") in ev
    assert ("SuccessfulCreate", "create Pod web-0 in StatefulSet web successful") in ev
    assert ev.index(("SuccessfulCreate", "create Pod web-0 in StatefulSet web successful")) < \
        ev.index(("SuccessfulCreate", "create Pod web-1 in StatefulSet web successful"))


async def test_deleted_pods_come_back_with_same_names_and_claims(client):
    c = client
    async with kubelet(c):
        await c.create(STS, web(2), NS)
        await wait_status(c, all_ready(2))
        before = await pods(c)
        claims_before = {n: cl["metadata"]["uid"] for n, cl in (await claims(c)).items()}
        await c.delete(POD, "web-0", NS)
        await c.delete(POD, "web-1", NS)

        async def back():
            now = await pods(c)
            return now if all(n in now and now[n]["metadata"]["uid"] !=
                              before[n]["metadata"]["uid"] for n in before) else None
        now = await eventually(back, TIMEOUT)
        await wait_status(c, all_ready(2))
    for n in ("web-0", "web-1"):
        assert now[n]["spec"]["volumes"][-1]["persistentVolumeClaim"]["claimName"] == f"www-{n}"
    assert {n: cl["metadata"]["uid"] for n, cl in (await claims(c)).items()} == claims_before


async def test_failed_pod_is_deleted_and_recreated(client):
    c = client
    async with kubelet(c):
        await c.create(STS, web(1), NS)
        await wait_status(c, all_ready(1))
        old = (await pods(c))["web-0"]["metadata"]["uid"]
        await c.patch(POD, "web-0", {"status": {"phase": "Failed"}}, NS, subresource="status")

        async def replaced():
            p = (await pods(c)).get("web-0")
            return p is not None and p["metadata"]["uid"] != old
        await eventually(replaced, TIMEOUT)
        await wait_status(c, all_ready(1))
    assert ("SuccessfulDelete", "delete Pod web-0 in StatefulSet web successful") in \
        await events(c)


async def test_ordered_scale_up_and_down(client, api_server):
    c = client
    async with kubelet(c):
        await c.create(STS, web(1), NS)
        await wait_status(c, all_ready(1))
    out = await kubectl(api_server, "scale", "statefulset", "web", "--replicas=3")
    assert out.strip() == "statefulset.apps/web scaled"
    await wait_pod(c, "web-1")
    await asyncio.sleep(0.3)
    assert "web-2" not in await pods(c)          # waits for web-1 to be ready
    await make_ready(c, "web-1")
    await wait_pod(c, "web-2")
    await make_ready(c, "web-2")
    await wait_status(c, all_ready(3))
    await kubectl(api_server, "scale", "statefulset", "web", "--replicas=0")
    await wait_status(c, lambda s, o: s.get("replicas") == 0)
    dels = [m for r, m in await events(c) if r == "SuccessfulDelete"]
    assert dels == [f"delete Pod web-{i} in StatefulSet web successful" for i in (2, 1, 0)]
    assert sorted(await claims(c)) == ["www-web-0", "www-web-1", "www-web-2"]  # Retain


async def test_parallel_creates_all_at_once(client):
    c = client
    await c.create(STS, web(5, podManagementPolicy="Parallel"), NS)

    async def all_there():
        return len(await pods(c)) == 5
    await eventually(all_there, TIMEOUT)     # nobody is ready, yet all exist
    assert len(await claims(c)) == 5
    async with kubelet(c):
        await wait_status(c, all_ready(5))
    await c.patch(STS, "web", {"spec": {"replicas": 1}}, NS)

    async def shrunk():
        return sorted(await pods(c)) == ["web-0"]
    await eventually(shrunk, TIMEOUT)


async def test_rolling_update_with_partition_then_complete(client, api_server):
    c = client
    async with kubelet(c):
        await c.create(STS, web(3), NS)
        s = await wait_status(c, all_ready(3))
        r1 = s["status"]["updateRevision"]
        await c.patch(STS, "web", {"spec": {"updateStrategy": {"rollingUpdate": {
            "partition": 1}}, "template": {"spec": {"containers": [
                {"name": "nginx", "image": "nginx:1.25"}]}}}}, NS, patch_type="strategic")
        s = await wait_status(c, lambda st, o: st.get("updatedReplicas") == 2
                              and st.get("readyReplicas") == 3)
        r2 = s["status"]["updateRevision"]
        assert r2 != r1 and s["status"]["currentRevision"] == r1
        revs = {n: p["metadata"]["labels"]["controller-revision-hash"]
                for n, p in (await pods(c)).items()}
        assert revs == {"web-0": r1, "web-1": r2, "web-2": r2}
        out = await kubectl(api_server, "rollout", "status", "statefulset/web", "--watch=false")
        assert "partitioned roll out complete: 2 new pods have been updated..." in out
        await c.patch(STS, "web", {"spec": {"updateStrategy": {"rollingUpdate": {
            "partition": 0}}}}, NS, patch_type="strategic")
        s = await wait_status(c, lambda st, o: st.get("currentRevision") == r2
                              and st.get("updatedReplicas") == 3
                              and st.get("readyReplicas") == 3)
    assert s["status"]["currentReplicas"] == 3
    dels = [m for r, m in await events(c) if r == "SuccessfulDelete"]
    assert dels == [f"delete Pod web-{i} in StatefulSet web successful" for i in (2, 1, 0)]


async def test_on_delete_waits_for_user_deletion(client):
    c = client
    async with kubelet(c):
        await c.create(STS, web(2, updateStrategy={"type": "OnDelete"}), NS)
        s = await wait_status(c, all_ready(2))
        r1 = s["status"]["updateRevision"]
        await c.patch(STS, "web", {"spec": {"template": {"metadata": {"annotations": {
            "x": "y"}}}}}, NS)
        s = await wait_status(c, lambda st, o: st.get("updateRevision") != r1
                              and st.get("observedGeneration") == 2)
        await asyncio.sleep(0.5)
        revs = {p["metadata"]["labels"]["controller-revision-hash"]
                for p in (await pods(c)).values()}
        assert revs == {r1}
        await c.delete(POD, "web-1", NS)
        await wait_status(c, lambda st, o: st.get("updatedReplicas") == 1
                          and st.get("readyReplicas") == 2)
    assert s["status"]["currentRevision"] == r1


async def test_rollback_reuses_revision_and_kubectl_history_undo(client, api_server):
    c = client
    async with kubelet(c):
        await c.create(STS, web(1), NS)
        s = await wait_status(c, all_ready(1))
        r1 = s["status"]["updateRevision"]
        await kubectl(api_server, "set", "image", "statefulset/web", "nginx=nginx:1.25")
        s = await wait_status(c, lambda st, o: st.get("currentRevision") != r1
                              and st.get("updatedReplicas") == 1 and st.get("readyReplicas") == 1)
        out = await kubectl(api_server, "rollout", "history", "statefulset/web")
        lines = [ln.split() for ln in out.strip().splitlines()]
        assert lines[0][:2] == ["REVISION", "CHANGE-CAUSE"] or "REVISION" in out
        assert [ln[0] for ln in lines if ln and ln[0].isdigit()] == ["1", "2"]
        out = await kubectl(api_server, "rollout", "undo", "statefulset/web")
        assert out.strip() == "statefulset.apps/web rolled back"
        s = await wait_status(c, lambda st, o: st.get("currentRevision") == r1
                              and st.get("updatedReplicas") == 1 and st.get("readyReplicas") == 1)
    crs = {r["metadata"]["name"]: r["revision"] for r in (await c.list(CR, NS))["items"]}
    assert len(crs) == 2 and crs[r1] == 3
    p = (await pods(c))["web-0"]
    assert p["spec"]["containers"][0]["image"] == "nginx:1.9.1"
    out = await kubectl(api_server, "rollout", "status", "statefulset/web", "--watch=false")
    assert out.strip() == "partitioned roll out complete: 1 new pods have been updated..."
    # the revision data has the bytes kubectl computes from the live template
    out = await kubectl(api_server, "rollout", "undo", "statefulset/web", "--to-revision=3")
    assert out.strip() == ("statefulset.apps/web skipped rollback (current template already "
                           "matches revision 3)")


async def test_rollout_restart_creates_a_revision(client, api_server):
    c = client
    async with kubelet(c):
        await c.create(STS, web(2, podManagementPolicy="Parallel"), NS)
        s = await wait_status(c, all_ready(2))
        out = await kubectl(api_server, "rollout", "restart", "statefulset/web")
        assert out.strip() == "statefulset.apps/web restarted"
        await wait_status(c, lambda st, o: st.get("currentRevision") != s["status"][
            "currentRevision"] and st.get("updatedReplicas") == 2 and st.get("readyReplicas") == 2)
    for p in (await pods(c)).values():
        assert "kubectl.kubernetes.io/restartedAt" in p["metadata"].get("annotations", {})


async def test_retention_delete_on_scale_down_and_on_set_deletion(client):
    c = client
    policy = {"whenScaled": "Delete", "whenDeleted": "Delete"}
    async with kubelet(c):
        sts = await c.create(STS, web(3, podManagementPolicy="Parallel",
                                      persistentVolumeClaimRetentionPolicy=policy), NS)
        await wait_status(c, all_ready(3))
        for cl in (await claims(c)).values():
            refs = cl["metadata"]["ownerReferences"]
            assert [(r["kind"], r["uid"]) for r in refs] == [("StatefulSet",
                                                              sts["metadata"]["uid"])]
        await c.patch(STS, "web", {"spec": {"replicas": 1}}, NS)

        async def scaled_claims_gone():
            return sorted(await claims(c)) == ["www-web-0"]
        await eventually(scaled_claims_gone, TIMEOUT)
        await c.delete(STS, "web", NS)

        async def all_gone():
            return not await claims(c) and not await pods(c)
        await eventually(all_gone, TIMEOUT)


async def test_retention_retain_keeps_claims_after_set_deletion(client):
    c = client
    async with kubelet(c):
        await c.create(STS, web(2, podManagementPolicy="Parallel"), NS)
        await wait_status(c, all_ready(2))
        await c.delete(STS, "web", NS)

        async def pods_gone():
            return not await pods(c)
        await eventually(pods_gone, TIMEOUT)
    assert sorted(await claims(c)) == ["www-web-0", "www-web-1"]


async def test_start_ordinal(client):
    c = client
    async with kubelet(c):
        await c.create(STS, web(2, ordinals={"start": 3}), NS)
        await wait_status(c, all_ready(2))
        assert sorted(await pods(c)) == ["web-3", "web-4"]
        assert sorted(await claims(c)) == ["www-web-3", "www-web-4"]
        await c.patch(STS, "web", {"spec": {"ordinals": {"start": 4}}}, NS)

        async def moved():
            return sorted(await pods(c)) == ["web-4", "web-5"]
        await eventually(moved, TIMEOUT)
        await wait_status(c, all_ready(2))


async def test_orphans_are_adopted_and_released(client):
    c = client
    orphan = {"apiVersion": "v1", "kind": "Pod",
              "metadata": {"name": "web-0", "labels": {"app": "nginx"}},
              "spec": {"containers": [{"name": "nginx", "image": "nginx"}]}}
    await c.create(POD, orphan, NS)
    sts = await c.create(STS, web(1), NS)

    async def adopted():
        p = (await pods(c))["web-0"]
        refs = p["metadata"].get("ownerReferences") or []
        return p if refs and refs[0]["uid"] == sts["metadata"]["uid"] else None
    p = await eventually(adopted, TIMEOUT)
    await c.patch(POD, "web-0", {"metadata": {"labels": {"app": "other"}}}, NS)

    async def released_and_replaced():
        p = await get_or_none(c, POD, "web-0", NS)
        return p is not None and not p["metadata"].get("ownerReferences")
    await eventually(released_and_replaced, TIMEOUT)


async def test_terminating_claim_blocks_pod_with_upstream_event(client):
    c = client
    claim = {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
             "metadata": {"name": "www-web-0", "finalizers": ["example.com/hold"]},
             "spec": {"accessModes": ["ReadWriteOnce"],
                      "resources": {"requests": {"storage": "1Gi"}}}}
    await c.create(PVC, claim, NS)
    await c.delete(PVC, "www-web-0", NS)
    await c.create(STS, web(1), NS)
    want = ("FailedCreate",
            "create Pod web-0 in StatefulSet web failed error: pvc www-web-0 is being deleted")

    async def failed():
        return want in await events(c)
    await eventually(failed, TIMEOUT)
    assert "web-0" not in await pods(c)
    await c.patch(PVC, "www-web-0", {"metadata": {"finalizers": None}}, NS)
    await wait_pod(c, "web-0")


class FlakyClient(APIClient):
    """The real client, failing one write in three with a server error before sending it."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.rng = random.Random(7)

    async def request(self, method, path, **kw):
        if method != "GET" and "/events" not in path and self.rng.random() < 0.33:
            raise ApiError({"kind": "Status", "code": 500, "reason": "InternalError",
                            "message": "injected failure"})
        return await super().request(method, path, **kw)


async def test_converges_despite_random_write_failures(api_server):
    from k1s.controllers.context import ControllerContext
    flaky = FlakyClient(api_server.url)
    ctx = ControllerContext.create(flaky, "k1s-test")
    task = asyncio.create_task(StatefulSetController(ctx).run())
    try:
        async with running_controllers(api_server.url) as c:
            async with kubelet(c):
                await c.create(STS, web(4, podManagementPolicy="Parallel"), NS)
                await wait_status(c, all_ready(4))
                await c.patch(STS, "web", {"spec": {"template": {"metadata": {
                    "annotations": {"v": "2"}}}}}, NS)
                s = await wait_status(c, rolled_out(4))
                await c.patch(STS, "web", {"spec": {"replicas": 2}}, NS)
                await wait_status(c, rolled_out(2))

                async def two_left():
                    return sorted(await pods(c)) == ["web-0", "web-1"]
                await eventually(two_left, TIMEOUT)
            assert sorted(await claims(c)) == [f"www-web-{i}" for i in range(4)]
            assert s["status"]["collisionCount"] == 0
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await ctx.close()
        await flaky.close()


async def test_controller_stopped_mid_burst_converges_after_restart(api_server):
    """A controller cancelled in the middle of creating claims and pods (any await may be
    the last) leaves a state the next controller finishes: every ordinal once, each with its
    claim."""
    from k1s.controllers.context import ControllerContext

    async def start():
        cl = APIClient(api_server.url)
        ctx = ControllerContext.create(cl, "k1s-test")
        return cl, ctx, asyncio.create_task(StatefulSetController(ctx).run())

    async def stop(cl, ctx, task):
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await ctx.close()
        await cl.close()

    async with running_controllers(api_server.url) as c:
        first = await start()
        await c.create(STS, web(60, podManagementPolicy="Parallel"), NS)

        async def some_pods():
            return len(await pods(c)) >= 3
        await eventually(some_pods, TIMEOUT)
        await stop(*first)
        assert len(await pods(c)) < 60
        second = await start()
        try:
            async with kubelet(c):
                await wait_status(c, all_ready(60))
        finally:
            await stop(*second)
        got = await pods(c)
        assert sorted(got) == sorted(f"web-{i}" for i in range(60))
        assert sorted(await claims(c)) == sorted(f"www-web-{i}" for i in range(60))
        for name, p in got.items():
            assert p["spec"]["volumes"][-1]["persistentVolumeClaim"]["claimName"] == f"www-{name}"


async def test_orphaned_pods_and_revisions_are_adopted_by_a_new_set(client, api_server):
    """`kubectl delete sts --cascade=orphan` keeps pods and revisions; a new set with the
    same name and selector adopts them and reuses the claims by name."""
    c = client
    async with kubelet(c):
        await c.create(STS, web(2, podManagementPolicy="Parallel"), NS)
        await wait_status(c, all_ready(2))
        before = {n: p["metadata"]["uid"] for n, p in (await pods(c)).items()}
        cr_before = [r["metadata"]["name"] for r in (await c.list(CR, NS))["items"]]
        out = await kubectl(api_server, "delete", "statefulset", "web", "--cascade=orphan")
        assert out.startswith('statefulset.apps "web" deleted')

        async def orphaned():
            ps = await pods(c)
            return ps and all(not p["metadata"].get("ownerReferences") for p in ps.values())
        await eventually(orphaned, TIMEOUT)
        sts = await c.create(STS, web(2, podManagementPolicy="Parallel"), NS)

        async def adopted():
            ps = await pods(c)
            crs = (await c.list(CR, NS))["items"]
            owned = lambda o: [r["uid"] for r in o["metadata"].get("ownerReferences") or []] \
                == [sts["metadata"]["uid"]]
            return (len(ps) == 2 and all(owned(p) for p in ps.values())
                    and crs and all(owned(r) for r in crs))
        await eventually(adopted, TIMEOUT)
        await wait_status(c, all_ready(2))
    assert {n: p["metadata"]["uid"] for n, p in (await pods(c)).items()} == before
    assert [r["metadata"]["name"] for r in (await c.list(CR, NS))["items"]] == cr_before


async def test_min_ready_seconds_available_later_without_pod_events(client):
    """A pod ready for less than minReadySeconds is ready but not available; the controller
    requeues the set itself and reports it available once the time has passed."""
    from datetime import datetime, timezone
    c = client
    await c.create(STS, web(1, minReadySeconds=5), NS)
    await wait_pod(c, "web-0")
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    await c.patch(POD, "web-0", {"status": {"phase": "Running", "conditions": [
        {"type": "Ready", "status": "True", "lastTransitionTime": now}]}},
        NS, subresource="status")
    s = await wait_status(c, lambda st, o: st.get("readyReplicas") == 1)
    assert s["status"]["availableReplicas"] == 0
    await wait_status(c, lambda st, o: st.get("availableReplicas") == 1)


async def test_invalid_claim_template_reports_failed_create(client):
    """The API does not validate claim templates deeply; the claim's own validation error
    surfaces as FailedCreate events on the set, and no pod is created without its claim."""
    c = client
    s = web(1)
    s["spec"]["volumeClaimTemplates"][0]["spec"]["resources"] = {}
    await c.create(STS, s, NS)

    async def failed():
        ev = [m for r, m in await events(c) if r == "FailedCreate"]
        return ev if len(ev) >= 2 else None
    ev = await eventually(failed, TIMEOUT)
    assert any(m.startswith("create Claim www-web-0 for Pod web-0 in StatefulSet web failed "
                            "error: ") for m in ev)
    assert any(m.startswith("create Pod web-0 in StatefulSet web failed error: failed to "
                            "create PVC www-web-0: ") for m in ev)
    assert not await pods(c) and not await claims(c)


async def test_revision_name_collision_bumps_collision_count(api_server):
    """A foreign ControllerRevision already holding the name the template hashes to: the
    controller counts a collision, rehashes, and persists status.collisionCount."""
    from k1s.controllers.statefulset import revisions as RV
    async with running_controllers(api_server.url) as c:
        sts = await c.create(STS, web(1), NS)
        taken = RV.new_revision(sts, 1, 0)["metadata"]["name"]
        await c.create(CR, {"apiVersion": "apps/v1", "kind": "ControllerRevision",
                            "metadata": {"name": taken, "labels": {"other": "x"}},
                            "data": {"something": "else"}, "revision": 1}, NS)
    async with running_controllers(api_server.url, StatefulSetController) as c:
        s = await wait_status(c, lambda st, o: st.get("updateRevision"))
        assert s["status"]["collisionCount"] == 1
        assert s["status"]["updateRevision"] == RV.new_revision(sts, 1, 1)["metadata"]["name"]
        assert s["status"]["updateRevision"] != taken
        p = await wait_pod(c, "web-0")
        assert p["metadata"]["labels"]["controller-revision-hash"] == s["status"]["updateRevision"]
