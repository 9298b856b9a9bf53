"""DefaultTolerationSeconds admission, against the real server: new pods tolerate a silent
node's NoExecute taints for 300 s unless they already say how long."""

from __future__ import annotations

import aiohttp
import pytest

PODS = "/api/v1/namespaces/default/pods"
NOT_READY = {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute",
             "tolerationSeconds": 300}
UNREACHABLE = {"key": "node.kubernetes.io/unreachable", "operator": "Exists",
               "effect": "NoExecute", "tolerationSeconds": 300}


@pytest.fixture
async def http(api_server):
    async with aiohttp.ClientSession(api_server.url) as s:
        async def call(method, path, body=None):
            async with s.request(method, path, json=body) as r:
                return r.status, await r.json()
        yield call


def pod(name, tolerations=None):
    spec = {"containers": [{"name": "c", "image": "busybox"}]}
    if tolerations is not None:
        spec["tolerations"] = tolerations
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}


async def test_new_pod_gets_both_default_tolerations(http):
    code, body = await http("POST", PODS, pod("tol-plain"))
    assert code == 201, body
    assert body["spec"]["tolerations"] == [NOT_READY, UNREACHABLE]


@pytest.mark.parametrize("own, expect_added", [
    # its own not-ready toleration (any duration) is kept; only unreachable is added
    ([{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute",
       "tolerationSeconds": 5}], [UNREACHABLE]),
    # an empty effect tolerates every effect of that key
    ([{"key": "node.kubernetes.io/unreachable", "operator": "Exists"}], [NOT_READY]),
    # an empty key with Exists tolerates every taint: nothing to add
    ([{"operator": "Exists"}], []),
    # a NoSchedule toleration says nothing about NoExecute
    ([{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoSchedule"}],
     [NOT_READY, UNREACHABLE]),
])
async def test_pod_own_tolerations_decide_what_is_added(http, own, expect_added):
    name = f"tol-{len(own)}-{abs(hash(str(own))) % 10**6}"
    code, body = await http("POST", PODS, pod(name, own))
    assert code == 201, body
    assert body["spec"]["tolerations"] == own + expect_added


async def test_update_adds_nothing(http):
    code, body = await http("POST", PODS, pod("tol-upd", [{"operator": "Exists"}]))
    assert code == 201, body
    body["metadata"]["labels"] = {"x": "y"}
    code, body = await http("PUT", f"{PODS}/tol-upd", body)
    assert code == 200, body
    assert body["spec"]["tolerations"] == [{"operator": "Exists"}]
