"""Writes: compare-and-swap rules, revisions, versions, and group commit under concurrency."""

import asyncio
import sqlite3

import pytest

from k1s.store import KV, KeyExists, KeyNotFound, RevisionConflict, SqliteStore, StoreError


# (setup writes, the write under test, expected outcome). "rev" in an expected revision is
# resolved against the key's mod_revision after setup; "stale" is the one before it.
CAS_CASES = [
    ("create new", [], ("create", "/k", b"v"), "ok"),
    ("create existing", [("create", b"a")], ("create", "/k", b"v"), KeyExists),
    ("update missing", [], ("update", "/k", b"v", 0), KeyNotFound),
    ("update unconditional", [("create", b"a")], ("update", "/k", b"v", 0), "ok"),
    ("update current", [("create", b"a")], ("update", "/k", b"v", "rev"), "ok"),
    ("update stale", [("create", b"a"), ("update", b"b")], ("update", "/k", b"v", "stale"),
     RevisionConflict),
    ("update wrong", [("create", b"a")], ("update", "/k", b"v", 999), RevisionConflict),
    ("delete missing", [], ("delete", "/k", 0), KeyNotFound),
    ("delete unconditional", [("create", b"a")], ("delete", "/k", 0), "ok"),
    ("delete current", [("create", b"a"), ("update", b"b")], ("delete", "/k", "rev"), "ok"),
    ("delete stale", [("create", b"a"), ("update", b"b")], ("delete", "/k", "stale"),
     RevisionConflict),
    ("update deleted", [("create", b"a"), ("delete",)], ("update", "/k", b"v", 0), KeyNotFound),
    ("create after delete", [("create", b"a"), ("delete",)], ("create", "/k", b"v"), "ok"),
]


@pytest.mark.parametrize("name,setup,write,expected", CAS_CASES, ids=[c[0] for c in CAS_CASES])
async def test_cas_rules(store, name, setup, write, expected):
    revs = []
    for step in setup:
        if step[0] == "create":
            revs.append((await store.create("/k", step[1])).mod_revision)
        elif step[0] == "update":
            revs.append((await store.update("/k", step[1], 0)).mod_revision)
        else:
            await store.delete("/k")
    before = await store.get("/k")
    resolve = {"rev": revs[-1] if revs else 0, "stale": revs[0] if revs else 0}
    op, key, *args = write
    args = [resolve.get(a, a) if isinstance(a, str) else a for a in args]
    call = getattr(store, op)(key, *args)
    rev_before = store.current_revision()
    if expected == "ok":
        kv = await call
        assert kv.mod_revision == rev_before + 1 == store.current_revision()
    else:
        with pytest.raises(expected) as info:
            await call
        assert store.current_revision() == rev_before        # a refused write uses no revision
        assert await store.get("/k") == before               # and changes nothing
        if expected is RevisionConflict:
            assert info.value.current == before


async def test_versions_and_create_revision(store):
    a = await store.create("/k", b"1")
    assert a == KV("/k", b"1", a.mod_revision, a.mod_revision, 1)
    b = await store.update("/k", b"2", a.mod_revision)
    assert (b.create_revision, b.version, b.value) == (a.create_revision, 2, b"2")
    d = await store.delete("/k", b.mod_revision)
    # the deleted KV: last value and version, mod_revision = the delete's revision
    assert d == KV("/k", b"2", a.create_revision, b.mod_revision + 1, 2)
    assert await store.get("/k") is None
    c = await store.create("/k", b"3")
    assert c.create_revision == c.mod_revision == d.mod_revision + 1 and c.version == 1


async def test_revisions_strictly_increase(store):
    seen = []
    for i in range(20):
        seen.append((await store.create(f"/k{i}", b"x")).mod_revision)
        seen.append((await store.update(f"/k{i}", b"y", 0)).mod_revision)
        if i % 2:
            seen.append((await store.delete(f"/k{i}")).mod_revision)
    assert seen == list(range(1, len(seen) + 1))
    assert store.current_revision() == seen[-1]


@pytest.mark.parametrize("call", [
    lambda s: s.create("", b"x"),
    lambda s: s.create(b"/k", b"x"),
    lambda s: s.create("/k", "not bytes"),
    lambda s: s.update("/k", b"x", -1),
])
async def test_bad_arguments_rejected_before_queueing(store, call):
    with pytest.raises((TypeError, ValueError)):
        await call(store)
    assert store.current_revision() == 0


async def test_500_concurrent_creates_get_distinct_revisions(store):
    kvs = await asyncio.gather(*(store.create(f"/c/{i:04d}", b"v%d" % i) for i in range(500)))
    assert sorted(kv.mod_revision for kv in kvs) == list(range(1, 501))
    res = await store.range("/c/", count=True)
    assert res.count == 500 and [kv.value for kv in res.kvs] == [b"v%d" % i for i in range(500)]


async def test_conflicting_writes_in_one_batch_behave_sequentially(store):
    base = await store.create("/k", b"0")
    # All submitted before the writer can run: they share batches, in this order.
    results = await asyncio.gather(
        store.update("/k", b"1", base.mod_revision),
        store.update("/k", b"2", base.mod_revision),      # stale by then
        store.create("/k", b"x"),                          # exists
        store.create("/other", b"o"),                      # unaffected by the failures
        store.delete("/k", base.mod_revision + 1),         # matches the first update
        store.update("/k", b"3", 0),                       # key gone
        return_exceptions=True)
    assert results[0].value == b"1" and results[0].mod_revision == base.mod_revision + 1
    assert isinstance(results[1], RevisionConflict) and results[1].current == results[0]
    assert isinstance(results[2], KeyExists)
    assert results[3].mod_revision == base.mod_revision + 2
    assert results[4].mod_revision == base.mod_revision + 3
    assert isinstance(results[5], KeyNotFound)
    assert store.current_revision() == base.mod_revision + 3


async def test_sqlite_failure_fails_only_its_own_write(store, db_path):
    # A real SQLite error in the middle of a batch: a trigger refusing one key.
    conn = sqlite3.connect(db_path)
    conn.execute("CREATE TRIGGER refuse BEFORE INSERT ON kv WHEN NEW.key = '/boom' "
                 "BEGIN SELECT RAISE(ABORT, 'refused'); END")
    conn.commit()
    conn.close()
    keys = [f"/ok/{i}" for i in range(10)]
    results = await asyncio.gather(*(store.create(k, b"v") for k in keys[:5]),
                                   store.create("/boom", b"v"),
                                   *(store.create(k, b"v") for k in keys[5:]),
                                   return_exceptions=True)
    failed = results.pop(5)
    assert isinstance(failed, StoreError) and "refused" in str(failed)
    assert sorted(r.mod_revision for r in results) == list(range(1, 11))  # no hole left
    assert [kv.key for kv in (await store.range("/")).kvs] == sorted(keys)
    assert (await store.create("/next", b"v")).mod_revision == 11


async def test_cancelled_caller_does_not_break_the_batch(store):
    task = asyncio.ensure_future(store.create("/a", b"v"))
    other = asyncio.ensure_future(store.create("/b", b"v"))
    await asyncio.sleep(0)          # both queued
    task.cancel()
    assert (await other).key == "/b"
    await store.create("/c", b"v")  # the writer is alive
    # the cancelled write may or may not have committed, but the store stays consistent
    assert store.current_revision() == len((await store.range("/")).kvs)


async def test_closed_store_refuses_work(db_path):
    s = SqliteStore(db_path, compact_interval=None)
    await s.start()
    pending = [s.create(f"/k{i}", b"v") for i in range(50)]
    tasks = [asyncio.ensure_future(p) for p in pending]
    await asyncio.sleep(0)
    await s.close()                 # drains what was queued
    assert all(t.done() and not t.exception() for t in tasks)
    with pytest.raises(StoreError):
        await s.create("/late", b"v")
