"""Compaction: chunked deletion of history, the automatic compactor's target, WAL truncation."""

import asyncio
import os
import sqlite3

import pytest

from k1s.store import Compacted, FutureRevision, SqliteStore
from k1s.store import sqlite as backend


def log_bounds(path):
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT count(*), min(revision) FROM log").fetchone()
    finally:
        conn.close()


async def test_compact_removes_history_in_chunks_while_writes_go_on(store, db_path):
    n = backend.COMPACT_CHUNK * 3 + 17
    await asyncio.gather(*(store.create(f"/k/{i}", b"v") for i in range(n)))
    compaction = asyncio.create_task(store.compact(n - 10))
    writes = await asyncio.gather(*(store.create(f"/during/{i}", b"v") for i in range(50)))
    await compaction
    assert [w.mod_revision for w in sorted(writes, key=lambda w: w.mod_revision)] == \
        list(range(n + 1, n + 51))
    assert store.compacted_revision() == n - 10
    assert log_bounds(db_path) == (60, n - 9)
    assert (await store.range("/k/", count=True)).count == n      # current values all kept


@pytest.mark.parametrize("target,error", [(0, None), (3, None), (5, None), (6, FutureRevision)])
async def test_compact_bounds(store, target, error):
    for i in range(5):
        await store.create(f"/k{i}", b"v")
    await store.compact(3)
    if error:
        with pytest.raises(error):
            await store.compact(target)
    else:
        await store.compact(target)                  # at or below the point: a no-op
    assert store.compacted_revision() == max(3, target if not error else 3)


async def test_checkpoint_truncates_the_wal(store, db_path):
    await asyncio.gather(*(store.create(f"/k/{i}", b"x" * 2000) for i in range(300)))
    assert os.path.getsize(db_path + "-wal") > 0
    await store.compact(store.current_revision())
    assert os.path.getsize(db_path + "-wal") == 0
    assert log_bounds(db_path) == (0, None)


# (samples taken at earlier ticks as (seconds ago, revision), current revision,
#  history_keep, history_keep_seconds, expected target)
TARGET_CASES = [
    ("nothing old enough, few revisions", [(10, 5)], 50, 100, 300, 0),
    ("count bound", [], 1_000, 100, 300, 900),
    ("age bound", [(400, 40), (200, 45)], 50, 100, 300, 40),
    ("newest old-enough sample wins", [(900, 10), (600, 20), (301, 30), (10, 35)], 50, 100,
     300, 30),
    ("whichever keeps less", [(400, 800)], 1_000, 100, 300, 900),
]


@pytest.mark.parametrize("name,samples,current,keep,keep_s,want", TARGET_CASES,
                         ids=[c[0] for c in TARGET_CASES])
def test_auto_compaction_target(name, samples, current, keep, keep_s, want):
    s = SqliteStore("unused.db", history_keep=keep, history_keep_seconds=keep_s)
    now = 10_000.0
    s._revision = current
    s._revision_samples.extend((now - ago, rev) for ago, rev in samples)
    assert s.compaction_target(now) == want


async def test_auto_compaction_ticks(db_path):
    s = SqliteStore(db_path, compact_interval=None, history_keep=1_000,
                    history_keep_seconds=300)
    await s.start()
    try:
        for i in range(10):
            await s.create(f"/k{i}", b"v")
        await s.auto_compact_once(now=1_000.0)          # records revision 10; too young
        assert s.compacted_revision() == 0
        for i in range(10, 15):
            await s.create(f"/k{i}", b"v")
        await s.auto_compact_once(now=1_300.0)          # revision 10 is now 300 s old
        assert s.compacted_revision() == 10
        with pytest.raises(Compacted):
            await s.range("", revision=10)
        assert len((await s.range("", revision=11)).kvs) == 11
    finally:
        await s.close()


async def test_background_compactor_runs(db_path):
    s = SqliteStore(db_path, compact_interval=0.01, history_keep=5, history_keep_seconds=1e9)
    await s.start()
    try:
        for i in range(20):
            await s.create(f"/k{i}", b"v")
        for _ in range(200):
            if s.compacted_revision() == 15:
                break
            await asyncio.sleep(0.01)
        assert s.compacted_revision() == 15
    finally:
        await s.close()


async def test_interrupted_compaction_finishes_after_restart(db_path):
    s = SqliteStore(db_path, compact_interval=None)
    await s.start()
    await asyncio.gather(*(s.create(f"/k/{i}", b"v") for i in range(100)))
    await s.close()
    # What a crash between the compaction's first step and its last leaves behind.
    conn = sqlite3.connect(db_path)
    conn.execute("UPDATE meta SET value = 60 WHERE name = 'compacted'")
    conn.commit()
    conn.close()
    s = SqliteStore(db_path, compact_interval=None)
    await s.start()
    try:
        assert s.compacted_revision() == 60
        await s.checkpoint()               # runs after the writer's leftover compaction step
        assert log_bounds(db_path) == (40, 61)
    finally:
        await s.close()
