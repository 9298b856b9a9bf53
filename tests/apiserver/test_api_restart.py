"""Restart: a new APIServer on the same data directory serves what the old one stored.

Objects, their uids and resourceVersions survive; the revision counter continues, so every new
write gets a higher resourceVersion than anything before the restart; bootstrap objects are not
recreated; history from before the restart is still watchable.
"""

from __future__ import annotations

import aiohttp

from k1s.apiserver.server import APIServer
from test_api_helpers import Api, configmap, names, namespace, ns_path, rv, statefulset

CM = ns_path("default", "configmaps")
STS = ns_path("default", "statefulsets", group="apps")


async def test_objects_and_revisions_survive_a_restart(tmp_path):
    data = str(tmp_path / "data")
    srv = APIServer(data, port=0)
    await srv.start()
    try:
        async with aiohttp.ClientSession() as s:
            api = Api(s, srv.url)
            await api.ok("POST", "/api/v1/namespaces", namespace("team"))
            a = await api.ok("POST", CM, configmap("a", {"k": "1"}))
            a = await api.ok("PATCH", CM + "/a", {"data": {"k": "2"}})
            sts = await api.ok("POST", STS, statefulset("db"))
            sts = await api.ok("PATCH", STS + "/db", {"spec": {"replicas": 2}})
            await api.ok("POST", CM, configmap("gone"))
            await api.ok("DELETE", CM + "/gone")
            kube = await api.ok("GET", ns_path("default", "services", "kubernetes"))
            before = await api.ok("GET", CM)
            last = srv.store.current_revision()
    finally:
        await srv.stop()

    srv = APIServer(data, port=0)
    await srv.start()
    try:
        async with aiohttp.ClientSession() as s:
            api = Api(s, srv.url)
            assert await api.ok("GET", CM + "/a") == a
            got = await api.ok("GET", STS + "/db")
            assert got == sts and got["metadata"]["generation"] == 2
            assert (await api.get(CM + "/gone")).status == 404
            assert (await api.ok("GET", "/api/v1/namespaces/team"))["status"]["phase"] == "Active"
            # bootstrap did not rewrite what exists
            assert await api.ok("GET", ns_path("default", "services", "kubernetes")) == kube
            after = await api.ok("GET", CM)
            assert after["items"] == before["items"]
            assert int(after["metadata"]["resourceVersion"]) >= last
            # new writes continue the counter
            b = await api.ok("POST", CM, configmap("b"))
            assert rv(b) > last
            a2 = await api.ok("PATCH", CM + "/a", {"data": {"k": "3"}})
            assert rv(a2) > rv(b)
            # a stale resourceVersion from before the restart is still a conflict
            stale = dict(a, data={"k": "x"})
            r = await api.put(CM + "/a", stale)
            assert r.status == 409
            # history from before the restart replays
            w = await api.watch(CM, {"resourceVersion": a["metadata"]["resourceVersion"]})
            try:
                evs = await w.take(4)
                assert [(e["type"], e["object"]["metadata"]["name"]) for e in evs] == [
                    ("ADDED", "gone"), ("DELETED", "gone"), ("ADDED", "b"), ("MODIFIED", "a")]
            finally:
                w.close()
            assert names(await api.ok("GET", CM)) == ["a", "b"]
    finally:
        await srv.stop()


async def test_cluster_ips_are_not_reused_after_restart(tmp_path):
    data = str(tmp_path / "data")
    srv = APIServer(data, port=0)
    await srv.start()
    try:
        async with aiohttp.ClientSession() as s:
            api = Api(s, srv.url)
            first = await api.ok("POST", ns_path("default", "services"), {
                "metadata": {"name": "one"}, "spec": {"ports": [{"port": 80}]}})
    finally:
        await srv.stop()
    srv = APIServer(data, port=0)
    await srv.start()
    try:
        async with aiohttp.ClientSession() as s:
            api = Api(s, srv.url)
            second = await api.ok("POST", ns_path("default", "services"), {
                "metadata": {"name": "two"}, "spec": {"ports": [{"port": 80}]}})
            # the allocator knows the addresses handed out before the restart
            assert second["spec"]["clusterIP"] != first["spec"]["clusterIP"]
            assert second["spec"]["clusterIP"] != "10.96.0.1"
    finally:
        await srv.stop()
