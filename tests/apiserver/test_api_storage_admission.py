"""DefaultStorageClass and StorageObjectInUseProtection admission, against the real server."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

SC = "/apis/storage.k8s.io/v1/storageclasses"
PVC = "/api/v1/namespaces/default/persistentvolumeclaims"
PV = "/api/v1/persistentvolumes"


@pytest.fixture
async def http(api_server):
    async with aiohttp.ClientSession(api_server.url) as s:
        async def call(method, path, body=None):
            async with s.request(method, path, json=body) as r:
                return r.status, await r.json()
        yield call


def storage_class(name, default=None, beta=False):
    md = {"name": name}
    if default is not None:
        key = ("storageclass.beta.kubernetes.io/is-default-class" if beta
               else "storageclass.kubernetes.io/is-default-class")
        md["annotations"] = {key: default}
    return {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": md,
            "provisioner": "example.com/p"}


def claim(name, **spec):
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name},
            "spec": {"accessModes": ["ReadWriteOnce"],
                     "resources": {"requests": {"storage": "1Gi"}}, **spec}}


async def test_claim_without_class_gets_none_when_no_default(http):
    code, c = await http("POST", PVC, claim("a"))
    assert code == 201
    assert "storageClassName" not in c["spec"]


async def test_claim_without_class_gets_the_default(http):
    await http("POST", SC, storage_class("plain"))
    await http("POST", SC, storage_class("fast", "true"))
    code, c = await http("POST", PVC, claim("a"))
    assert code == 201 and c["spec"]["storageClassName"] == "fast"


async def test_explicit_empty_class_is_left_alone(http):
    await http("POST", SC, storage_class("fast", "true"))
    _, c = await http("POST", PVC, claim("a", storageClassName=""))
    assert c["spec"]["storageClassName"] == ""
    _, c = await http("POST", PVC, claim("b", storageClassName="plain"))
    assert c["spec"]["storageClassName"] == "plain"


async def test_newest_default_wins_and_beta_key_counts(http):
    await http("POST", SC, storage_class("old", "true"))
    await asyncio.sleep(1.1)   # creationTimestamp has one-second resolution
    await http("POST", SC, storage_class("new", "true", beta=True))
    await http("POST", SC, storage_class("not-default", "false"))
    _, c = await http("POST", PVC, claim("a"))
    assert c["spec"]["storageClassName"] == "new"


async def test_protection_finalizers_on_create(http):
    _, c = await http("POST", PVC, claim("a", storageClassName=""))
    assert c["metadata"]["finalizers"] == ["kubernetes.io/pvc-protection"]
    _, v = await http("POST", PV, {
        "apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "v"},
        "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                 "hostPath": {"path": "/tmp/v"}}})
    assert v["metadata"]["finalizers"] == ["kubernetes.io/pv-protection"]


async def test_finalizer_not_duplicated(http):
    body = claim("a", storageClassName="")
    body["metadata"]["finalizers"] = ["kubernetes.io/pvc-protection", "example.com/x"]
    _, c = await http("POST", PVC, body)
    assert c["metadata"]["finalizers"] == ["kubernetes.io/pvc-protection", "example.com/x"]
