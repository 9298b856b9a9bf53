"""Leader election and the EventRecorder against the real API server."""

import asyncio

import pytest

from k1s.client.events import EVENTS as EVENTS_R, EventRecorder
from k1s.client.leader import LEASES, LeaderElector
from k1s.controllers.context import ControllerContext

FAST = dict(lease_duration=1, renew_deadline=0.8, retry_period=0.1)


class Candidate:
    """Runs an elector; records when it leads and when it stops."""

    def __init__(self, client, namespace, name, identity, **kw):
        self.elector = LeaderElector(client, namespace, name, identity, **{**FAST, **kw})
        self.identity = identity
        self.leading = asyncio.Event()
        self.stopped = asyncio.Event()
        self.cancelled_while_leading = False
        self.task = asyncio.create_task(self.elector.run(self._lead, self.stopped.set))

    async def _lead(self):
        self.leading.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled_while_leading = True
            raise

    async def stop(self):
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


async def first_leader(a, b, timeout=10):
    done, _ = await asyncio.wait([asyncio.create_task(a.leading.wait()),
                                  asyncio.create_task(b.leading.wait())],
                                 timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    assert done, "nobody acquired the lease"
    return (a, b) if a.leading.is_set() else (b, a)


@pytest.mark.parametrize("release", [True, False])
async def test_one_leader_then_takeover_when_it_stops(client, namespace, release):
    a = Candidate(client, namespace, "lock", "a", release_on_cancel=release)
    b = Candidate(client, namespace, "lock", "b", release_on_cancel=release)
    try:
        winner, loser = await first_leader(a, b)
        await asyncio.sleep(0.4)       # a few renew periods: the other must stay a follower
        assert winner.elector.is_leader and not loser.elector.is_leader
        assert not loser.leading.is_set()
        lease = await client.get(LEASES, "lock", namespace)
        assert lease["spec"]["holderIdentity"] == winner.identity
        assert lease["spec"]["leaseDurationSeconds"] == 1
        assert lease["spec"]["leaseTransitions"] == 0
        assert lease["spec"]["renewTime"].endswith("Z") and "." in lease["spec"]["renewTime"]

        loop = asyncio.get_running_loop()
        t0 = loop.time()
        await winner.stop()
        assert winner.cancelled_while_leading and winner.stopped.is_set()
        assert not winner.elector.is_leader
        await asyncio.wait_for(loser.leading.wait(), 10)
        took = loop.time() - t0
        if release:
            assert took < 0.7          # a released lease is taken at once
        else:
            assert took >= 0.8         # an abandoned one only after its duration
        lease = await client.get(LEASES, "lock", namespace)
        assert lease["spec"]["holderIdentity"] == loser.identity
        assert lease["spec"]["leaseTransitions"] == 1
    finally:
        await a.stop()
        await b.stop()


async def test_leader_renews_its_lease(client, namespace):
    a = Candidate(client, namespace, "renew", "solo")
    try:
        await asyncio.wait_for(a.leading.wait(), 10)
        first = (await client.get(LEASES, "renew", namespace))["spec"]
        await asyncio.sleep(0.3)
        later = (await client.get(LEASES, "renew", namespace))["spec"]
        assert later["renewTime"] > first["renewTime"]
        assert later["acquireTime"] == first["acquireTime"]
    finally:
        await a.stop()
    released = (await client.get(LEASES, "renew", namespace))["spec"]
    assert not released.get("holderIdentity")


async def test_leader_election_validates_timings(client):
    with pytest.raises(ValueError):
        LeaderElector(client, "default", "x", "me", lease_duration=5, renew_deadline=10)


def pod(name, ns, uid="uid-1"):
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": ns, "uid": uid, "resourceVersion": "5"}}


async def events_for(client, ns, name):
    items = (await client.list("events", ns))["items"]
    return [e for e in items if e["involvedObject"]["name"] == name]


async def test_repeated_event_is_one_event_with_count(client, namespace):
    rec = EventRecorder(client, "test-controller")
    obj = pod("web-0", namespace)
    for _ in range(100):
        rec.event(obj, "Warning", "FailedMount", "volume not ready")
    await rec.flush(10)
    events = await events_for(client, namespace, "web-0")
    assert len(events) == 1
    ev = events[0]
    assert ev["count"] == 100
    assert ev["metadata"]["name"].startswith("web-0.")
    int(ev["metadata"]["name"].split(".", 1)[1], 16)     # hex suffix
    assert ev["involvedObject"] == {"kind": "Pod", "apiVersion": "v1", "name": "web-0",
                                    "namespace": namespace, "uid": "uid-1",
                                    "resourceVersion": "5"}
    assert (ev["type"], ev["reason"], ev["message"]) == ("Warning", "FailedMount",
                                                         "volume not ready")
    assert ev["source"]["component"] == "test-controller"
    assert ev["reportingComponent"] == "test-controller"
    assert ev["firstTimestamp"] and ev["lastTimestamp"] >= ev["firstTimestamp"]

    # Later repeats (after the first write) patch the same Event.
    rec.event(obj, "Warning", "FailedMount", "volume not ready")
    rec.event(obj, "Normal", "Scheduled", "assigned")
    await rec.flush(10)
    events = await events_for(client, namespace, "web-0")
    counts = sorted((e["reason"], e["count"]) for e in events)
    assert counts == [("FailedMount", 101), ("Scheduled", 1)]
    await rec.close()


async def test_burst_of_distinct_events_all_written_and_repeats_stay_exact(client, namespace):
    # A controller creating hundreds of pods emits hundreds of distinct events at once; the
    # recorder writes several at a time, never two for one key, so each count stays exact.
    rec = EventRecorder(client, "test-controller")
    for i in range(300):
        rec.event(pod(f"p-{i}", namespace), "Normal", "SuccessfulCreate", f"create p-{i}")
        if i % 3 == 0:
            rec.event(pod("hot", namespace), "Warning", "BackOff", "again")
    await rec.flush(30)
    for _ in range(5):   # repeats arriving while the hot key's write is in flight
        rec.event(pod("hot", namespace), "Warning", "BackOff", "again")
    await rec.flush(30)
    evs = (await client.list(EVENTS_R, namespace))["items"]
    created = {e["involvedObject"]["name"] for e in evs if e["reason"] == "SuccessfulCreate"}
    assert created == {f"p-{i}" for i in range(300)}
    hot = [e for e in evs if e["involvedObject"]["name"] == "hot"]
    assert len(hot) == 1 and hot[0]["count"] == 105
    await rec.close()


async def test_event_on_cluster_scoped_object_goes_to_default(client, uniq):
    rec = EventRecorder(client, "node-controller")
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": f"node-{uniq}",
                                                             "uid": "n1"}}
    rec.event(node, "Normal", "RegisteredNode", "registered")
    await rec.flush(10)
    events = await events_for(client, "default", f"node-{uniq}")
    assert len(events) == 1 and events[0]["metadata"]["namespace"] == "default"
    assert "namespace" not in events[0]["involvedObject"]
    await rec.close()


async def test_event_recorder_never_raises_to_the_caller(client):
    rec = EventRecorder(client, "x")
    # No such namespace: the write fails in the background; the caller is not disturbed.
    rec.event(pod("p", "no-such-namespace-here"), "Normal", "R", "m")
    await rec.flush(10)
    await rec.close()


async def test_controller_context_recorders(client):
    ctx = ControllerContext.create(client, "k1s-controller-manager")
    assert ctx.recorder_for("k1s-controller-manager") is ctx.recorder
    sts = ctx.recorder_for("statefulset-controller")
    assert sts is ctx.recorder_for("statefulset-controller")
    assert sts.component == "statefulset-controller" and sts.client is client
    await ctx.close()
