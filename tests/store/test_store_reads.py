"""Reads: get and range, current and historical, with limit/start_after/count, and the
Compacted / FutureRevision boundaries."""

import pytest

from k1s.store import Compacted, FutureRevision, KV
from k1s.store.sqlite import prefix_end


@pytest.mark.parametrize("prefix,end", [
    ("", None),
    ("/a/", "/a0"),
    ("a", "b"),
    ("x\U0010ffff", "y"),
    ("\U0010ffff", None),
    ("\ud7ff", "\ue000"),
    ("é", "ê"),
])
def test_prefix_end(prefix, end):
    assert prefix_end(prefix) == end


async def fill(store, n=10, prefix="/p/"):
    return [await store.create(f"{prefix}{i:02d}", b"%d" % i) for i in range(n)]


async def test_range_prefix_is_exact(store):
    for key in ["/p", "/p/a", "/p/b", "/p0", "/q/a", "/p/\U0010ffff"]:
        await store.create(key, b"v")
    keys = [kv.key for kv in (await store.range("/p/")).kvs]
    assert keys == ["/p/a", "/p/b", "/p/\U0010ffff"]
    assert len((await store.range("")).kvs) == 6


@pytest.mark.parametrize("limit,start_after,want,more,count", [
    (0, None, range(10), False, 10),
    (3, None, range(3), True, 10),
    (10, None, range(10), False, 10),
    (11, None, range(10), False, 10),
    (3, "/p/02", range(3, 6), True, 7),
    (0, "/p/07", range(8, 10), False, 2),
    (5, "/p/09", [], False, 0),
    (2, "/p/", range(2), True, 10),
    (2, "/a", range(2), True, 10),      # before the prefix: the prefix still bounds it
])
async def test_range_paging(store, limit, start_after, want, more, count):
    await fill(store)
    await store.create("/q/00", b"other")
    res = await store.range("/p/", limit=limit, start_after=start_after, count=True)
    assert [kv.key for kv in res.kvs] == [f"/p/{i:02d}" for i in want]
    assert res.more is more and res.count == count
    assert res.revision == store.current_revision() == 11


async def test_paging_with_continue_walks_every_key_once(store):
    await fill(store, 25)
    seen, after = [], None
    while True:
        res = await store.range("/p/", limit=4, start_after=after)
        seen += [kv.key for kv in res.kvs]
        if not res.more:
            break
        after = res.kvs[-1].key
    assert seen == [f"/p/{i:02d}" for i in range(25)]


async def test_historical_range_and_get(store):
    a = await store.create("/p/a", b"a1")                 # 1
    await store.create("/p/b", b"b1")                     # 2
    await store.update("/p/a", b"a2", a.mod_revision)     # 3
    await store.delete("/p/b")                            # 4
    await store.create("/p/b", b"b2")                     # 5
    await store.create("/p/c", b"c1")                     # 6
    await store.delete("/p/a")                            # 7
    expect = {
        1: [KV("/p/a", b"a1", 1, 1, 1)],
        2: [KV("/p/a", b"a1", 1, 1, 1), KV("/p/b", b"b1", 2, 2, 1)],
        3: [KV("/p/a", b"a2", 1, 3, 2), KV("/p/b", b"b1", 2, 2, 1)],
        4: [KV("/p/a", b"a2", 1, 3, 2)],
        5: [KV("/p/a", b"a2", 1, 3, 2), KV("/p/b", b"b2", 5, 5, 1)],
        6: [KV("/p/a", b"a2", 1, 3, 2), KV("/p/b", b"b2", 5, 5, 1), KV("/p/c", b"c1", 6, 6, 1)],
        7: [KV("/p/b", b"b2", 5, 5, 1), KV("/p/c", b"c1", 6, 6, 1)],
    }
    for rev, kvs in expect.items():
        res = await store.range("/p/", revision=rev, count=True)
        assert (res.kvs, res.revision, res.count, res.more) == (kvs, rev, len(kvs), False)
        page = await store.range("/p/", revision=rev, limit=1, start_after="/p/a")
        assert page.kvs == [kv for kv in kvs if kv.key > "/p/a"][:1]
        for key in ["/p/a", "/p/b", "/p/c"]:
            assert await store.get(key, revision=rev) == next(
                (kv for kv in kvs if kv.key == key), None)
    # after compaction, revisions above the compaction point still read correctly
    await store.compact(5)
    assert (await store.range("/p/", revision=6)).kvs == expect[6]
    assert await store.get("/p/a", revision=6) == expect[6][0]


@pytest.mark.parametrize("revision,error", [(3, Compacted), (4, Compacted), (5, None),
                                            (8, None), (9, FutureRevision)])
async def test_historical_read_bounds(store, revision, error):
    await fill(store, 8)
    await store.compact(4)
    assert store.compacted_revision() == 4
    for read in (store.range("/p/", revision=revision), store.get("/p/00", revision=revision)):
        if error is None:
            await read
        else:
            with pytest.raises(error):
                await read


async def test_compaction_keeps_current_values(store):
    kvs = await fill(store, 5)
    for kv in kvs:
        await store.update(kv.key, b"new", kv.mod_revision)
    await store.compact(store.current_revision())
    res = await store.range("/p/")
    assert [kv.value for kv in res.kvs] == [b"new"] * 5
