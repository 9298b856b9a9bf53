"""Watch: replay then live, in order, exactly once; Compacted, DELETE events, overflow, close."""

import asyncio

import pytest

from k1s.store import Compacted, FutureRevision, KV, SqliteStore, WatchOverflow


async def take(watch, n, timeout=5.0):
    """The next n events of a watch."""
    out = []

    async def run():
        async for ev in watch:
            out.append(ev)
            if len(out) == n:
                return
    await asyncio.wait_for(run(), timeout)
    return out


def next_now(iterator):
    """The next event if it is already buffered, without letting the loop run."""
    step = iterator.__anext__()
    try:
        step.send(None)
    except StopIteration as done:
        return done.value
    step.close()
    raise AssertionError("no event was ready")


async def test_replay_then_live_in_order(store):
    for i in range(5):
        await store.create(f"/w/{i}", b"v")
    await store.create("/other", b"v")
    w = store.watch("/w/", 2)
    for i in range(5, 8):
        await store.create(f"/w/{i}", b"v")
    events = await take(w, 6)
    assert [e.revision for e in events] == [3, 4, 5, 7, 8, 9]
    assert all(e.type == "PUT" and e.is_create for e in events)
    w.close()


async def test_event_is_buffered_before_the_write_returns(store):
    w = store.watch("/", 0)
    it = w.__aiter__()
    kv = await store.create("/a", b"1")
    ev = next_now(it)
    assert ev.kv == kv
    kv2 = await store.update("/a", b"2", kv.mod_revision)
    assert next_now(it).kv == kv2
    w.close()


async def test_delete_event_carries_the_last_value(store):
    w = store.watch("/", 0)
    a = await store.create("/a", b"1")
    b = await store.update("/a", b"2", a.mod_revision)
    d = await store.delete("/a", b.mod_revision)
    live = await take(w, 3)
    replayed = await take(store.watch("/", 0), 3)
    assert live == replayed
    put, upd, dele = live
    assert put.prev is None and put.kv == a
    assert upd.prev == a and upd.kv == b and not upd.is_create
    assert dele.type == "DELETE" and dele.kv == d == KV("/a", b"2", 1, 3, 2) and dele.prev == b


async def test_exactly_once_across_replay_and_live_under_concurrent_writes(store):
    total = 600

    async def writer(w):
        for i in range(total // 6):
            kv = await store.create(f"/x/{w}/{i}", b"v")
            if i % 3 == 0:
                await store.update(kv.key, b"w", kv.mod_revision)
            await asyncio.sleep(0)

    async def watcher(start_delay, after):
        await asyncio.sleep(start_delay)
        while store.current_revision() < after:
            await asyncio.sleep(0.001)
        opened_at = store.current_revision()
        w = store.watch("/x/", after)
        revs = []
        async for ev in w:
            revs.append(ev.revision)
            if ev.kv.key == "/x/end":
                break
            if len(revs) % 50 == 0:
                await asyncio.sleep(0.001)     # a slow consumer: replay overlaps live writes
        w.close()
        return after, opened_at, revs

    tasks = [asyncio.create_task(writer(w)) for w in range(6)]
    watchers = [asyncio.create_task(watcher(d, a))
                for d, a in [(0, 0), (0.005, 0), (0.01, 50), (0.02, 0), (0.03, 200)]]
    await asyncio.gather(*tasks)
    await store.create("/y", b"v")                  # not under /x/: watchers skip it
    final = (await store.create("/x/end", b"v")).mod_revision
    results = await asyncio.wait_for(asyncio.gather(*watchers), 10)
    for after, _, revs in results:
        assert revs == [r for r in range(after + 1, final + 1) if r != final - 1]
    # the boundary was really crossed: some watcher replayed history and then went live
    assert any(after < opened_at < final - 2 for after, opened_at, _ in results)


async def test_watch_from_compacted_revision_fails(store):
    for i in range(10):
        await store.create(f"/k{i}", b"v")
    await store.compact(6)
    with pytest.raises(Compacted) as info:
        await take(store.watch("/", 5), 1)
    assert info.value.compacted == 6
    events = await take(store.watch("/", 6), 4)         # == compaction point: fine
    assert [e.revision for e in events] == [7, 8, 9, 10]


async def test_compaction_overtaking_a_replay_is_reported(store):
    from k1s.store import sqlite as backend
    for i in range(backend.HISTORY_CHUNK * 2 + 10):
        await store.create(f"/k{i}", b"v")
    w = store.watch("/", 0)
    it = w.__aiter__()
    await it.__anext__()                    # the first chunk is read
    await store.compact(backend.HISTORY_CHUNK + 5)
    with pytest.raises(Compacted):
        async for _ in it:
            pass


async def test_watch_from_future_revision_fails(store):
    await store.create("/a", b"v")
    with pytest.raises(FutureRevision):
        await take(store.watch("/", 5), 1)


async def test_watch_from_current_revision_sees_only_new_events(store):
    await store.create("/a", b"v")
    w = store.watch("/", store.current_revision())
    kv = await store.create("/b", b"v")
    assert [e.kv for e in await take(w, 1)] == [kv]


async def test_slow_watcher_is_closed_not_blocking(db_path):
    s = SqliteStore(db_path, compact_interval=None, watch_buffer_limit=20)
    await s.start()
    try:
        slow = s.watch("/", 0)
        other = s.watch("/", 0)
        it = other.__aiter__()
        got = []
        for i in range(30):
            await s.create(f"/k{i}", b"v")
            got.append(await it.__anext__())     # keeps up
        assert len(got) == 30
        with pytest.raises(WatchOverflow):
            await take(slow, 30)
    finally:
        await s.close()


async def test_close_ends_iteration(store):
    w = store.watch("/", 0)
    consumer = asyncio.create_task(take(w, 10))
    await store.create("/a", b"v")
    await asyncio.sleep(0.01)
    w.close()
    assert len(await asyncio.wait_for(consumer, 1)) == 1
    await store.create("/b", b"v")             # a closed watcher is no longer fed


async def test_store_close_ends_watches(db_path):
    s = SqliteStore(db_path, compact_interval=None)
    await s.start()
    w = s.watch("/", 0)
    consumer = asyncio.create_task(take(w, 10))
    await s.create("/a", b"v")
    await s.close()
    assert len(await asyncio.wait_for(consumer, 1)) == 1
