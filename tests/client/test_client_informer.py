"""Informers against the real API server: sync, live updates, indexes, order, recovery."""

import asyncio

import pytest

from k1s.client import informer as informer_mod
from k1s.client.informer import Informer, SharedInformerFactory

CM = "configmaps"


def configmap(name, ns, data=None, labels=None):
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": ns, "labels": labels or {}},
            "data": data or {}}


def by_app(obj):
    app = (obj["metadata"].get("labels") or {}).get("app")
    return [app] if app else []


class Recorder:
    """Handlers that log (event, name, data) in the order the informer calls them."""

    def __init__(self, inf: Informer):
        self.log: list[tuple] = []
        self.changed = asyncio.Event()
        inf.add_handler(self.add, self.update, self.delete)

    def _rec(self, *entry):
        self.log.append(entry)
        self.changed.set()

    def add(self, obj):
        self._rec("add", obj["metadata"]["name"], obj.get("data"))

    def update(self, old, new):
        self._rec("update", new["metadata"]["name"], new.get("data"))

    def delete(self, obj):
        self._rec("delete", obj["metadata"]["name"], obj.get("data"))

    async def wait_for(self, pred, timeout=10):
        async def loop():
            while not pred(self.log):
                self.changed.clear()
                await self.changed.wait()
        await asyncio.wait_for(loop(), timeout)


async def test_informer_syncs_then_follows_live_changes(client, namespace):
    for i in range(3):
        await client.create(CM, configmap(f"pre{i}", namespace, {"i": str(i)},
                                          {"app": "a" if i < 2 else "b"}))
    inf = Informer(client, CM, namespace, indexers={"app": by_app})
    rec = Recorder(inf)
    await inf.start()
    try:
        assert await inf.wait_synced(10)
        assert inf.has_synced
        assert sorted(e[1] for e in rec.log) == ["pre0", "pre1", "pre2"]
        assert all(e[0] == "add" for e in rec.log)
        assert inf.get("pre1", namespace)["data"] == {"i": "1"}
        assert inf.get("pre1")["kind"] == "ConfigMap"   # filled in for list items
        assert sorted(o["metadata"]["name"] for o in inf.by_index("app", "a")) == ["pre0", "pre1"]
        assert len(inf.list(namespace)) == 3 and inf.list("elsewhere") == []

        rec.log.clear()
        await client.create(CM, configmap("live", namespace, {"v": "1"}, {"app": "b"}))
        await client.patch(CM, "live", {"data": {"v": "2"},
                                        "metadata": {"labels": {"app": "a"}}}, namespace)
        await client.delete(CM, "pre0", namespace)
        await rec.wait_for(lambda log: len(log) >= 3)
        assert rec.log == [("add", "live", {"v": "1"}), ("update", "live", {"v": "2"}),
                           ("delete", "pre0", {"i": "0"})]
        # the cache and its indexes were updated before the handlers ran
        assert inf.get("pre0") is None and inf.get("live")["data"] == {"v": "2"}
        assert sorted(o["metadata"]["name"] for o in inf.by_index("app", "a")) == ["live", "pre1"]
        assert [o["metadata"]["name"] for o in inf.by_index("app", "b")] == ["pre2"]
    finally:
        await inf.stop()


async def test_cache_is_current_when_handler_runs(client, namespace):
    inf = Informer(client, CM, namespace)
    seen = []
    inf.add_handler(on_update=lambda old, new: seen.append(
        int(inf.get(new["metadata"]["name"])["metadata"]["resourceVersion"])
        >= int(new["metadata"]["resourceVersion"])))
    await inf.start()
    try:
        await inf.wait_synced(10)
        await client.create(CM, configmap("x", namespace))
        await client.patch(CM, "x", {"data": {"a": "1"}}, namespace)
        for _ in range(200):
            if seen:
                break
            await asyncio.sleep(0.01)
        assert seen == [True]
    finally:
        await inf.stop()


async def test_handler_errors_do_not_stop_the_informer(client, namespace):
    inf = Informer(client, CM, namespace)

    def boom(obj):
        raise RuntimeError("handler bug")

    inf.add_handler(on_add=boom)
    rec = Recorder(inf)
    await inf.start()
    try:
        await inf.wait_synced(10)
        await client.create(CM, configmap("one", namespace))
        await client.create(CM, configmap("two", namespace))
        await rec.wait_for(lambda log: len(log) >= 2)
        assert [e[1] for e in rec.log] == ["one", "two"]
    finally:
        await inf.stop()


async def test_late_handler_gets_adds_for_cached_objects(client, namespace):
    await client.create(CM, configmap("early", namespace))
    inf = Informer(client, CM, namespace)
    await inf.start()
    try:
        await inf.wait_synced(10)
        rec = Recorder(inf)
        await client.create(CM, configmap("later", namespace))
        await rec.wait_for(lambda log: len(log) >= 2)
        assert [e[:2] for e in rec.log] == [("add", "early"), ("add", "later")]
    finally:
        await inf.stop()


async def test_list_is_paginated(client, namespace, monkeypatch):
    monkeypatch.setattr(informer_mod, "PAGE_SIZE", 2)
    for i in range(5):
        await client.create(CM, configmap(f"c{i}", namespace))
    inf = Informer(client, CM, namespace)
    await inf.start()
    try:
        await inf.wait_synced(10)
        assert sorted(o["metadata"]["name"] for o in inf.list()) == [f"c{i}" for i in range(5)]
    finally:
        await inf.stop()


async def test_rewatch_after_server_timeout_misses_nothing(client, namespace):
    inf = Informer(client, CM, namespace)
    inf.watch_timeout_seconds = 1     # the server ends every watch after a second
    rec = Recorder(inf)
    await inf.start()
    try:
        await inf.wait_synced(10)
        for i in range(6):
            await client.create(CM, configmap(f"r{i}", namespace, {"i": str(i)}))
            await asyncio.sleep(0.45)  # spread writes across several watch sessions
        await client.delete(CM, "r0", namespace)
        await rec.wait_for(lambda log: len(log) >= 7, timeout=15)
        assert rec.log == [("add", f"r{i}", {"i": str(i)}) for i in range(6)] + \
                          [("delete", "r0", {"i": "0"})]
    finally:
        await inf.stop()


async def test_relist_delivers_what_changed_while_disconnected(client, namespace):
    for name in ("stay", "change", "vanish"):
        await client.create(CM, configmap(name, namespace, {"v": "1"}))
    inf = Informer(client, CM, namespace)
    rec = Recorder(inf)
    await inf.start()
    try:
        await inf.wait_synced(10)
        # Cut the reflector off (as if the connection dropped), change things meanwhile.
        reflector = inf._tasks[0]
        reflector.cancel()
        await asyncio.gather(reflector, return_exceptions=True)
        rec.log.clear()
        await client.delete(CM, "vanish", namespace)
        await client.patch(CM, "change", {"data": {"v": "2"}}, namespace)
        await client.create(CM, configmap("new", namespace, {"v": "1"}))
        # What the reflector does after a 410 Gone: relist and replace.
        await inf._list_and_replace()
        await rec.wait_for(lambda log: len(log) >= 3)
        assert sorted(rec.log) == [("add", "new", {"v": "1"}),
                                   ("delete", "vanish", {"v": "1"}),
                                   ("update", "change", {"v": "2"})]
        assert sorted(o["metadata"]["name"] for o in inf.list()) == ["change", "new", "stay"]
    finally:
        await inf.stop()


async def test_resync_redelivers_every_object(client, namespace):
    await client.create(CM, configmap("s", namespace))
    inf = Informer(client, CM, namespace, resync_period=0.2)
    rec = Recorder(inf)
    await inf.start()
    try:
        await inf.wait_synced(10)
        await rec.wait_for(lambda log: sum(1 for e in log if e[0] == "update") >= 2)
        assert rec.log[0][:2] == ("add", "s")
        assert {e[:2] for e in rec.log[1:]} == {("update", "s")}
    finally:
        await inf.stop()


async def test_factory_shares_informers(client, namespace):
    factory = SharedInformerFactory(client)
    a = factory.informer(CM, namespace)
    assert factory.informer(CM, namespace) is a
    assert factory.informer(CM) is not a
    await client.create(CM, configmap("f", namespace))
    await factory.start()
    try:
        late = factory.informer("serviceaccounts", namespace)   # started on creation
        await asyncio.wait_for(factory.wait_synced(), 10)
        assert a.get("f") is not None and late.has_synced
    finally:
        await factory.stop()


async def test_wait_synced_before_start_raises(client):
    with pytest.raises(RuntimeError):
        await Informer(client, CM).wait_synced(0.1)
