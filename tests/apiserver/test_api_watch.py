"""Watch semantics against the real server: replay, initial state, selectors, bookmarks, expiry.

Upstream's rules checked here:
- from resourceVersion N: every later change exactly once, in revision order (from the cache's
  ring when N is recent, from the store's history when it is older than the ring);
- from "0" or unset: synthetic ADDED events for the current objects, then changes;
- an object relabelled out of a watcher's selector is DELETED for it, relabelled in is ADDED;
- DELETED carries the object's last state with the deletion's resourceVersion;
- timeoutSeconds ends the stream; allowWatchBookmarks sends BOOKMARKs when idle;
  sendInitialEvents=true ends the initial state with a BOOKMARK annotated
  k8s.io/initial-events-end; a compacted resourceVersion is an ERROR event (410 Expired).
"""

from __future__ import annotations

import asyncio
import random

import aiohttp
import pytest

from test_api_helpers import (TABLE_ACCEPT, Api, api, configmap, namespace,  # noqa: F401
                              ns_path, rv)

CM = ns_path("default", "configmaps")


def summary(events: list[dict]) -> list[tuple[str, str, str]]:
    return [(e["type"], e["object"]["metadata"]["name"], e["object"]["metadata"][
        "resourceVersion"]) for e in events]


# ------------------------------------------------------------------------------- replay
async def test_watch_from_a_revision_replays_later_events_in_order(api):
    a = await api.ok("POST", CM, configmap("a"))
    start = rv(a)
    b = await api.ok("POST", CM, configmap("b"))
    a2 = await api.ok("PATCH", CM + "/a", {"data": {"k": "1"}})
    d = await api.ok("DELETE", CM + "/b")
    w = await api.watch(CM, {"resourceVersion": str(start)})
    try:
        evs = await w.take(3)
        assert [(t, n) for t, n, _ in summary(evs)] == [("ADDED", "b"), ("MODIFIED", "a"),
                                                         ("DELETED", "b")]
        assert evs[0]["object"]["metadata"]["resourceVersion"] == b["metadata"]["resourceVersion"]
        assert evs[1]["object"] == a2
        assert int(evs[2]["object"]["metadata"]["resourceVersion"]) > rv(a2)
        # live changes follow, once each
        c = await api.ok("POST", CM, configmap("c"))
        ev = await w.next()
        assert summary([ev]) == [("ADDED", "c", c["metadata"]["resourceVersion"])]
        await w.nothing_for(0.3)
    finally:
        w.close()
    assert d["status"] == "Success"


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
async def test_watch_replay_matches_history_for_any_start(api, seed):
    """Property: for a random history and a random start N, a watch from N yields exactly the
    changes with revision > N, in order, then every live change once."""
    rnd = random.Random(seed)
    history: list[tuple[str, str, int]] = []
    live: set[str] = set()
    for i in range(40):
        name = f"o{rnd.randrange(5)}"
        if name not in live:
            o = await api.ok("POST", CM, configmap(name, {"i": str(i)}))
            history.append(("ADDED", name, rv(o)))
            live.add(name)
        elif rnd.random() < 0.3:
            r = await api.request("DELETE", CM + "/" + name)
            assert r.status == 200
            history.append(("DELETED", name, None))
            live.discard(name)
        else:
            o = await api.ok("PATCH", CM + "/" + name, {"data": {"i": str(i)}})
            history.append(("MODIFIED", name, rv(o)))
    revs = [h[2] for h in history if h[2] is not None]
    start = rnd.choice(revs[:-1])
    idx = next(i for i, h in enumerate(history) if h[2] == start)
    want = history[idx + 1:]
    w = await api.watch(CM, {"resourceVersion": str(start)})
    try:
        evs = await w.take(len(want))
        got = [(t, n, int(r)) for t, n, r in summary(evs)]
        assert [(t, n) for t, n, _ in got] == [(t, n) for t, n, _ in want]
        assert [r for (_, _, r), (_, _, wr) in zip(got, want) if wr is not None] == \
            [wr for _, _, wr in want if wr is not None]
        assert all(x[2] < y[2] for x, y in zip(got, got[1:])), "revisions must increase"
        assert all(r > start for _, _, r in got)
        await w.nothing_for(0.2)
    finally:
        w.close()


async def test_watch_from_the_current_revision_sees_only_new_changes(api):
    await api.ok("POST", CM, configmap("a"))
    lst = await api.ok("GET", CM)
    w = await api.watch(CM, {"resourceVersion": lst["metadata"]["resourceVersion"]})
    try:
        await w.nothing_for(0.2)
        b = await api.ok("POST", CM, configmap("b"))
        assert summary([await w.next()]) == [("ADDED", "b", b["metadata"]["resourceVersion"])]
    finally:
        w.close()


@pytest.mark.parametrize("params", [{}, {"resourceVersion": "0"}])
async def test_watch_without_a_revision_starts_with_the_current_state(api, params):
    await api.ok("POST", CM, configmap("a"))
    b = await api.ok("POST", CM, configmap("b"))
    await api.ok("PATCH", CM + "/b", {"data": {"k": "v"}})
    await api.ok("POST", CM, configmap("gone"))
    await api.ok("DELETE", CM + "/gone")
    w = await api.watch(CM, params)
    try:
        evs = await w.take(2)
        assert [(e["type"], e["object"]["metadata"]["name"]) for e in evs] == [
            ("ADDED", "a"), ("ADDED", "b")]
        assert evs[1]["object"]["data"] == {"k": "v"}
        assert rv(evs[1]["object"]) > rv(b)
        await w.nothing_for(0.2)
        await api.ok("DELETE", CM + "/a")
        ev = await w.next()
        assert (ev["type"], ev["object"]["metadata"]["name"]) == ("DELETED", "a")
    finally:
        w.close()


async def test_deleted_event_carries_the_final_object(api):
    await api.ok("POST", CM, configmap("a", {"k": "1"}, labels={"x": "y"}))
    last = await api.ok("PATCH", CM + "/a", {"data": {"k": "final"}})
    w = await api.watch(CM, {"resourceVersion": last["metadata"]["resourceVersion"]})
    try:
        await api.ok("DELETE", CM + "/a")
        ev = await w.next()
        assert ev["type"] == "DELETED"
        obj = ev["object"]
        assert obj["data"] == {"k": "final"}
        assert obj["metadata"]["labels"] == {"x": "y"}
        assert obj["metadata"]["uid"] == last["metadata"]["uid"]
        assert obj["kind"] == "ConfigMap" and obj["apiVersion"] == "v1"
        assert rv(obj) > rv(last)
    finally:
        w.close()


# ------------------------------------------------------------------------------ selectors
async def test_selector_transitions(api):
    await api.ok("POST", CM, configmap("a", labels={"app": "web"}))
    await api.ok("POST", CM, configmap("b", labels={"app": "db"}))
    w = await api.watch(CM, {"labelSelector": "app=web"})
    try:
        ev = await w.next()
        assert (ev["type"], ev["object"]["metadata"]["name"]) == ("ADDED", "a")
        await w.nothing_for(0.2)
        # out of the selector: DELETED, carrying the new labels
        out = await api.ok("PATCH", CM + "/a", {"metadata": {"labels": {"app": "other"}}})
        ev = await w.next()
        assert ev["type"] == "DELETED"
        assert ev["object"]["metadata"]["labels"] == {"app": "other"}
        assert ev["object"]["metadata"]["resourceVersion"] == out["metadata"]["resourceVersion"]
        # a change outside the selector: nothing
        await api.ok("PATCH", CM + "/a", {"data": {"k": "v"}})
        await api.ok("PATCH", CM + "/b", {"data": {"k": "v"}})
        await w.nothing_for(0.2)
        # into the selector: ADDED
        await api.ok("PATCH", CM + "/b", {"metadata": {"labels": {"app": "web"}}})
        ev = await w.next()
        assert (ev["type"], ev["object"]["metadata"]["name"]) == ("ADDED", "b")
        # a change inside: MODIFIED
        await api.ok("PATCH", CM + "/b", {"data": {"k": "w"}})
        ev = await w.next()
        assert (ev["type"], ev["object"]["metadata"]["name"]) == ("MODIFIED", "b")
        # deleting an object that is outside the selector: nothing
        await api.ok("DELETE", CM + "/a")
        await w.nothing_for(0.2)
    finally:
        w.close()


async def test_selector_transitions_replayed_from_a_revision(api):
    a = await api.ok("POST", CM, configmap("a", labels={"app": "web"}))
    await api.ok("PATCH", CM + "/a", {"metadata": {"labels": {"app": "db"}}})
    await api.ok("PATCH", CM + "/a", {"metadata": {"labels": {"app": "web"}}})
    w = await api.watch(CM, {"labelSelector": "app=web", "resourceVersion": str(rv(a))})
    try:
        evs = await w.take(2)
        assert [e["type"] for e in evs] == ["DELETED", "ADDED"]
    finally:
        w.close()


async def test_field_selector_watch(api):
    w = await api.watch(CM, {"fieldSelector": "metadata.name=b"})
    try:
        await api.ok("POST", CM, configmap("a"))
        await api.ok("POST", CM, configmap("b"))
        ev = await w.next()
        assert ev["object"]["metadata"]["name"] == "b"
        await w.nothing_for(0.2)
    finally:
        w.close()


async def test_one_watcher_per_namespace_sees_only_its_namespace(api):
    for ns in ("n1", "n2"):
        await api.ok("POST", "/api/v1/namespaces", namespace(ns))
    w1 = await api.watch(ns_path("n1", "configmaps"))
    w2 = await api.watch(ns_path("n2", "configmaps"))
    wall = await api.watch("/api/v1/configmaps", {"resourceVersion": str(
        (await api.ok("GET", "/api/v1/configmaps"))["metadata"]["resourceVersion"])})
    try:
        for i in range(3):
            await api.ok("POST", ns_path("n1", "configmaps"), configmap(f"x{i}"))
            await api.ok("POST", ns_path("n2", "configmaps"), configmap(f"y{i}"))
        e1 = await w1.take(3)
        e2 = await w2.take(3)
        assert [e["object"]["metadata"]["name"] for e in e1] == ["x0", "x1", "x2"]
        assert {e["object"]["metadata"]["namespace"] for e in e1} == {"n1"}
        assert [e["object"]["metadata"]["name"] for e in e2] == ["y0", "y1", "y2"]
        eall = await wall.take(6)
        assert [e["object"]["metadata"]["name"] for e in eall] == \
            ["x0", "y0", "x1", "y1", "x2", "y2"]
        await w1.nothing_for(0.2)
        await w2.nothing_for(0.05)
    finally:
        w1.close()
        w2.close()
        wall.close()


# ------------------------------------------------------------------- timeouts and bookmarks
async def test_timeout_seconds_closes_the_stream(api):
    w = await api.watch(CM, {"timeoutSeconds": "1"})
    try:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        assert await w.next(timeout=5) is None
        assert loop.time() - t0 < 4
    finally:
        w.close()


async def test_bookmarks_when_allowed(api, monkeypatch):
    import k1s.apiserver.watch as watchmod
    monkeypatch.setattr(watchmod, "BOOKMARK_SECONDS", 0.1)
    monkeypatch.setattr(watchmod, "IDLE_CHECK_SECONDS", 0.1)
    a = await api.ok("POST", CM, configmap("a"))
    w = await api.watch(CM, {"allowWatchBookmarks": "true",
                             "resourceVersion": a["metadata"]["resourceVersion"]})
    try:
        ev = await w.next(timeout=3)
        assert ev["type"] == "BOOKMARK"
        assert ev["object"]["kind"] == "ConfigMap" and ev["object"]["apiVersion"] == "v1"
        assert int(ev["object"]["metadata"]["resourceVersion"]) >= rv(a)
        b = await api.ok("POST", CM, configmap("b"))
        while True:
            ev = await w.next(timeout=3)
            if ev["type"] != "BOOKMARK":
                break
        assert (ev["type"], ev["object"]["metadata"]["name"]) == ("ADDED", "b")
        ev = await w.next(timeout=3)
        assert ev["type"] == "BOOKMARK" and rv(ev["object"]) >= rv(b)
    finally:
        w.close()


async def test_no_bookmarks_unless_allowed(api, monkeypatch):
    import k1s.apiserver.watch as watchmod
    monkeypatch.setattr(watchmod, "BOOKMARK_SECONDS", 0.05)
    monkeypatch.setattr(watchmod, "IDLE_CHECK_SECONDS", 0.05)
    lst = await api.ok("GET", CM)
    w = await api.watch(CM, {"resourceVersion": lst["metadata"]["resourceVersion"]})
    try:
        await w.nothing_for(0.4)
    finally:
        w.close()


async def test_send_initial_events_ends_with_an_annotated_bookmark(api):
    await api.ok("POST", CM, configmap("a"))
    b = await api.ok("POST", CM, configmap("b"))
    w = await api.watch(CM, {"sendInitialEvents": "true", "resourceVersionMatch": "NotOlderThan",
                             "allowWatchBookmarks": "true", "resourceVersion": "0"})
    try:
        evs = await w.take(3)
        assert [(e["type"], e["object"]["metadata"].get("name")) for e in evs] == [
            ("ADDED", "a"), ("ADDED", "b"), ("BOOKMARK", None)]
        bm = evs[2]["object"]
        assert bm["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}
        assert bm["kind"] == "ConfigMap"
        assert rv(bm) >= rv(b)
        c = await api.ok("POST", CM, configmap("c"))
        ev = await w.next()
        assert (ev["type"], ev["object"]["metadata"]["name"]) == ("ADDED", "c")
        assert rv(ev["object"]) == rv(c)
    finally:
        w.close()


async def test_send_initial_events_as_client_go_sends_it(api):
    await api.ok("POST", CM, configmap("a"))
    w = await api.watch(CM, {"sendInitialEvents": "true", "resourceVersionMatch": "NotOlderThan",
                             "allowWatchBookmarks": "true"})
    try:
        evs = await w.take(2)
        assert [e["type"] for e in evs] == ["ADDED", "BOOKMARK"]
    finally:
        w.close()


async def test_table_watch(api):
    await api.ok("POST", CM, configmap("a"))
    w = await api.watch(CM, headers={"Accept": TABLE_ACCEPT})
    try:
        ev = await w.next()
        assert ev["type"] == "ADDED" and ev["object"]["kind"] == "Table"
        assert [c["name"] for c in ev["object"]["columnDefinitions"]] == ["Name", "Data", "Age"]
        assert ev["object"]["rows"][0]["cells"][0] == "a"
        await api.ok("POST", CM, configmap("b"))
        ev = await w.next()
        assert ev["object"]["columnDefinitions"] is None
        assert ev["object"]["rows"][0]["cells"][0] == "b"
    finally:
        w.close()


# ------------------------------------------------------------------------------ compaction
@pytest.fixture
async def small_ring(tmp_path, monkeypatch):
    """A server whose watch cache keeps only 8 events per resource, and a raw client for it."""
    import k1s.apiserver.watchcache as watchcache
    from k1s.apiserver.server import APIServer
    monkeypatch.setattr(watchcache, "EVENT_RING", 8)
    srv = APIServer(str(tmp_path / "data"), port=0)
    await srv.start()
    try:
        async with aiohttp.ClientSession() as s:
            yield srv, Api(s, srv.url)
    finally:
        await srv.stop()


def ring_floor(srv) -> int:
    from k1s.api import registry
    return srv.cache.for_resource(registry.core("configmaps")).floor


async def test_watch_from_a_compacted_revision_is_expired(small_ring):
    srv, api = small_ring
    a = await api.ok("POST", CM, configmap("a"))
    for i in range(20):
        await api.ok("PATCH", CM + "/a", {"data": {"i": str(i)}})
    assert ring_floor(srv) > rv(a)
    await srv.store.compact(srv.store.current_revision())
    w = await api.watch(CM, {"resourceVersion": str(rv(a))})
    try:
        ev = await w.next()
        assert ev["type"] == "ERROR"
        st = ev["object"]
        assert (st["kind"], st["apiVersion"], st["status"]) == ("Status", "v1", "Failure")
        assert (st["code"], st["reason"]) == (410, "Expired")
        assert st["message"].startswith(f"too old resource version: {rv(a)} (")
        assert await w.next() is None
    finally:
        w.close()


async def test_invalid_resource_version(api):
    w = await api.watch(CM, {"resourceVersion": "abc"})
    try:
        ev = await w.next()
        assert ev["type"] == "ERROR" and ev["object"]["code"] in (400, 410)
    finally:
        w.close()


# --------------------------------------------------------------------- older than the ring
async def test_watch_older_than_the_ring_replays_from_the_store(small_ring):
    srv, api = small_ring
    first = await api.ok("POST", CM, configmap("a"))
    want = []
    for i in range(30):
        o = await api.ok("PATCH", CM + "/a", {"data": {"i": str(i)}})
        want.append(("MODIFIED", "a", o["metadata"]["resourceVersion"]))
    b = await api.ok("POST", CM, configmap("b"))
    want.append(("ADDED", "b", b["metadata"]["resourceVersion"]))
    await api.ok("DELETE", CM + "/b")
    assert ring_floor(srv) > rv(first)      # the ring no longer reaches back to `first`
    w = await api.watch(CM, {"resourceVersion": str(rv(first))})
    try:
        evs = await w.take(len(want) + 1)
        assert summary(evs[:-1]) == want
        assert evs[-1]["type"] == "DELETED"
        assert evs[-1]["object"]["metadata"]["name"] == "b"
        assert evs[-1]["object"].get("data") is None   # omitempty: an empty map is dropped
        # live changes keep coming after the history, once each
        c = await api.ok("POST", CM, configmap("c"))
        ev = await w.next()
        assert summary([ev]) == [("ADDED", "c", c["metadata"]["resourceVersion"])]
        await w.nothing_for(0.2)
    finally:
        w.close()


async def test_watch_older_than_the_ring_with_a_selector(small_ring):
    srv, api = small_ring
    first = await api.ok("POST", CM, configmap("a", labels={"app": "web"}))
    for i in range(12):
        await api.ok("PATCH", CM + "/a", {"data": {"i": str(i)}})
    await api.ok("PATCH", CM + "/a", {"metadata": {"labels": {"app": "db"}}})
    await api.ok("POST", CM, configmap("other", labels={"app": "db"}))
    assert ring_floor(srv) > rv(first)
    w = await api.watch(CM, {"resourceVersion": str(rv(first)), "labelSelector": "app=web"})
    try:
        evs = await w.take(13)
        assert [e["type"] for e in evs] == ["MODIFIED"] * 12 + ["DELETED"]
        await w.nothing_for(0.2)
    finally:
        w.close()


# ----------------------------------------------------------------------- independent client
async def test_lightkube_watch(api_server, api):
    from lightkube import AsyncClient, KubeConfig
    from lightkube.resources.core_v1 import ConfigMap
    a = await api.ok("POST", CM, configmap("a"))
    client = AsyncClient(config=KubeConfig.from_file(api_server.kubeconfig))
    try:
        seen = []

        async def consume():
            async for typ, obj in client.watch(ConfigMap, namespace="default",
                                               resource_version=a["metadata"]["resourceVersion"]):
                seen.append((typ, obj.metadata.name))
                if len(seen) == 2:
                    return

        task = asyncio.create_task(consume())
        await asyncio.sleep(0.1)
        await api.ok("PATCH", CM + "/a", {"data": {"k": "v"}})
        await api.ok("POST", CM, configmap("b"))
        await asyncio.wait_for(task, 5)
        assert seen == [("MODIFIED", "a"), ("ADDED", "b")]
    finally:
        await client.close()
