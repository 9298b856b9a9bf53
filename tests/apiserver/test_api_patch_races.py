"""Patches that race other writes: only a resourceVersion the patch names is a precondition.

A patch without one is re-applied to the newer object when another write got there first (as
upstream's GuaranteedUpdate does), so concurrent patches of one object all succeed and none of
their changes is lost; every patch kind, and the scale subresource, behave alike.
"""

from __future__ import annotations

import asyncio

from test_api_helpers import api, configmap, ns_path, statefulset  # noqa: F401

CM = ns_path("default", "configmaps")
STS = ns_path("default", "statefulsets", group="apps")
JSON_PATCH = "application/json-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
N = 40


async def test_concurrent_merge_patches_all_land(api):
    await api.ok("POST", CM, configmap("a"))
    replies = await asyncio.gather(*(api.patch(CM + "/a", {"data": {f"k{i}": str(i)}})
                                     for i in range(N)))
    assert [r.status for r in replies] == [200] * N
    data = (await api.ok("GET", CM + "/a"))["data"]
    assert all(data[f"k{i}"] == str(i) for i in range(N))


async def test_concurrent_patches_of_every_kind_all_land(api):
    await api.ok("POST", CM, configmap("a", {"seed": "x"}))

    def one(i: int):
        kind = i % 3
        if kind == 0:
            return api.patch(CM + "/a", [{"op": "add", "path": f"/data/j{i}", "value": "v"}],
                             content_type=JSON_PATCH)
        if kind == 1:
            return api.patch(CM + "/a", {"data": {f"s{i}": "v"}}, content_type=STRATEGIC)
        return api.patch(CM + "/a", {"metadata": {"labels": {f"l{i}": "v"}}})
    replies = await asyncio.gather(*(one(i) for i in range(N)))
    assert [r.status for r in replies] == [200] * N
    got = await api.ok("GET", CM + "/a")
    for i in range(N):
        where = got["metadata"]["labels"] if i % 3 == 2 else got["data"]
        assert where[("j", "s", "l")[i % 3] + str(i)] == "v"


async def test_patches_race_status_writes(api):
    await api.ok("POST", STS, statefulset("web", replicas=1))
    n = N // 3      # 3n writers of one object at once, as test one

    async def status(i: int):
        cur = await api.ok("GET", STS + "/web")
        cur["status"] = {"replicas": i, "observedGeneration": 1}
        cur["metadata"].pop("resourceVersion")
        return await api.put(STS + "/web/status", cur)
    replies = await asyncio.gather(
        *(api.patch(STS + "/web", {"metadata": {"annotations": {f"a{i}": "v"}}})
          for i in range(n)),
        *(api.patch(STS + "/web/scale", {"spec": {"replicas": i + 1}}) for i in range(n)),
        *(status(i) for i in range(n)))
    assert all(r.status == 200 for r in replies), [r for r in replies if r.status != 200][:3]
    ann = (await api.ok("GET", STS + "/web"))["metadata"]["annotations"]
    assert all(ann[f"a{i}"] == "v" for i in range(n))
