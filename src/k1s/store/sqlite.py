"""SQLite backend of the MVCC store: one writer thread that group-commits, reads on the loop.

Layout on disk (one SQLite file in WAL mode, synchronous=NORMAL):

    kv(key PK, value, create_revision, mod_revision, version)   the current value of each key;
                                                                current reads never touch history
    log(revision PK, key, type, value, create_revision, version,
        prev_revision, prev_value)                              one row per write: the history
                                                                that watches replay
    meta(name PK, value)                                        'revision' (last revision ever
                                                                handed out, so deleted keys'
                                                                revisions are never reused) and
                                                                'compacted'

A log row is self-contained: it carries the previous value of the key (`prev_value`, as kine's
`old_value`), so an event's `prev` survives the compaction of the row that wrote it. The same
fact lets a read at an old revision R work from the current table plus the log rows above R:
a key untouched since R is read from `kv` (mod_revision <= R); a key written after R had, at R,
exactly the `prev` of its first log row above R (none if that row created it). So compaction
may drop every log row at or below its revision and history reads stay correct.

Writes: coroutines put a request on a queue and await a future. The writer thread takes
everything waiting (up to MAX_BATCH), applies it in queue order inside one transaction, checking
each compare-and-swap against the state left by the writes before it (so conflicting writes in
one batch behave exactly as if sequential), commits, then hands the outcomes to the loop with a
single call_soon_threadsafe. On the loop the events are fanned out to watchers first and only
then are the futures resolved: when a write returns, every watcher already holds its event.
A CAS failure fails only its own write; an unexpected SQLite error rolls the batch back and
re-runs its writes one transaction each, so only the faulty write fails.

Watches: a watcher registers itself (remembering the acknowledged revision at that moment)
before it reads any history; every later event reaches its live buffer. It replays the log
for (after_revision, registered revision] in chunks, then drains the live buffer, skipping any
revision it already delivered. A watcher whose buffer exceeds WATCH_BUFFER_LIMIT is closed with
WatchOverflow instead of slowing the writers.

Compaction: compact(R) records R in meta in the writer's transaction, then deletes log rows at
or below R in chunks of COMPACT_CHUNK, one chunk between write batches, so writers never wait
long. A background task compacts every `compact_interval` seconds (keeping the newest
`history_keep` revisions, and nothing older than `history_keep_seconds`, as kube-apiserver's
5-minute compactor does) and truncates the WAL with wal_checkpoint(TRUNCATE).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import queue
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from typing import AsyncIterator, Any

from .interface import (
    KV, Compacted, Event, FutureRevision, KeyExists, KeyNotFound, RangeResult,
    RevisionConflict, Store, StoreError, Watch, WatchOverflow,
)

log = logging.getLogger(__name__)

# Buffer sizes and cadences (the vocabulary of this backend).
WATCH_BUFFER_LIMIT = 10_000         # live events a watcher may hold before it is closed
MAX_BATCH = 1_000                   # writes committed in one transaction at most
COMPACT_CHUNK = 1_000               # log rows deleted per compaction step (one short transaction)
HISTORY_CHUNK = 500                 # log rows a replaying watcher reads per query
DEFAULT_COMPACT_INTERVAL = 300.0    # seconds between automatic compactions (kube-apiserver: 5m)
DEFAULT_HISTORY_KEEP = 10_000       # automatic compaction keeps at most this many revisions...
DEFAULT_HISTORY_KEEP_SECONDS = 300.0  # ...and none older than this
BUSY_TIMEOUT_MS = 5_000
CACHE_SIZE_KIB = 32_768             # page cache per connection

# Log row types.
_PUT = 0
_DELETE = 1

# Write kinds.
_CREATE = 0
_UPDATE = 1
_REMOVE = 2

_SCHEMA = """
CREATE TABLE IF NOT EXISTS kv (
    key TEXT PRIMARY KEY,
    value BLOB NOT NULL,
    create_revision INTEGER NOT NULL,
    mod_revision INTEGER NOT NULL,
    version INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS log (
    revision INTEGER PRIMARY KEY,
    key TEXT NOT NULL,
    type INTEGER NOT NULL,
    value BLOB NOT NULL,
    create_revision INTEGER NOT NULL,
    version INTEGER NOT NULL,
    prev_revision INTEGER NOT NULL,     -- 0 when this row created the key
    prev_value BLOB                     -- the value before an update (NULL for create/delete)
);
CREATE INDEX IF NOT EXISTS log_key_revision ON log (key, revision);
CREATE TABLE IF NOT EXISTS meta (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
INSERT OR IGNORE INTO meta (name, value) VALUES ('revision', 0), ('compacted', 0),
                                                ('schema_version', 1);
"""

_LOG_COLUMNS = "revision, key, type, value, create_revision, version, prev_revision, prev_value"
_SQL_GET_CURRENT = "SELECT value, create_revision, mod_revision, version FROM kv WHERE key = ?"
_SQL_META = "SELECT name, value FROM meta WHERE name IN ('revision', 'compacted')"
_SQL_INSERT_KV = ("INSERT INTO kv (key, value, create_revision, mod_revision, version) "
                  "VALUES (?, ?, ?, ?, ?)")
_SQL_UPDATE_KV = "UPDATE kv SET value = ?, mod_revision = ?, version = ? WHERE key = ?"
_SQL_DELETE_KV = "DELETE FROM kv WHERE key = ?"
_SQL_INSERT_LOG = f"INSERT INTO log ({_LOG_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
_SQL_SET_META = "UPDATE meta SET value = ? WHERE name = ?"
_SQL_COMPACT_CHUNK = ("DELETE FROM log WHERE revision IN "
                      "(SELECT revision FROM log WHERE revision <= ? ORDER BY revision LIMIT ?)")


def prefix_end(prefix: str) -> str | None:
    """The smallest string greater than every string that starts with `prefix` (None: no
    bound). SQLite compares TEXT as UTF-8 bytes, which orders like code points, as Python
    does; surrogates cannot be stored, so the successor of U+D7FF is U+E000."""
    chars = list(prefix)
    while chars:
        last = ord(chars.pop())
        if last < 0x10FFFF:
            nxt = 0xE000 if 0xD7FF <= last < 0xE000 else last + 1
            return "".join(chars) + chr(nxt)
    return None


def _key_conditions(prefix: str, start_after: str | None) -> tuple[str, list[Any]]:
    """SQL conditions (on a `key` column) selecting keys under prefix and after start_after."""
    conds, args = ["key >= ?"], [prefix]
    end = prefix_end(prefix)
    if end is not None:
        conds.append("key < ?")
        args.append(end)
    if start_after is not None:
        conds.append("key > ?")
        args.append(start_after)
    return " AND ".join(conds), args


def event_from_log_row(revision: int, key: str, type_: int, value: bytes, create_revision: int,
                       version: int, prev_revision: int, prev_value: bytes | None) -> Event:
    """The event a log row records. The writer builds live events with this function too, so
    replayed and live events are identical."""
    kv = KV(key, value, create_revision, revision, version)
    if type_ == _DELETE:
        return Event("DELETE", kv, KV(key, value, create_revision, prev_revision, version),
                     revision)
    prev = None if prev_revision == 0 else KV(key, prev_value, create_revision, prev_revision,
                                              version - 1)
    return Event("PUT", kv, prev, revision)


# ---------------------------------------------------------------------------------------------
# Requests queued for the writer thread.

@dataclass(slots=True)
class _Write:
    kind: int
    key: str
    value: bytes | None
    expected: int
    future: asyncio.Future


@dataclass(slots=True)
class _Compact:
    revision: int
    future: asyncio.Future


@dataclass(slots=True)
class _Checkpoint:
    future: asyncio.Future


_STOP = object()
_DEFERRED = object()   # outcome of a compaction whose future resolves when its chunks are done


@dataclass(slots=True)
class _WriterState:
    """What only the writer thread reads and writes."""
    revision: int
    compacted: int
    compaction_dirty: bool = False           # log rows at or below `compacted` may remain
    compact_waiters: list = field(default_factory=list)


# ---------------------------------------------------------------------------------------------

class SqliteStore(Store):
    """The MVCC store on one SQLite file. Use from one event loop; see the module docstring."""

    def __init__(self, path: str, *, compact_interval: float | None = DEFAULT_COMPACT_INTERVAL,
                 history_keep: int = DEFAULT_HISTORY_KEEP,
                 history_keep_seconds: float = DEFAULT_HISTORY_KEEP_SECONDS,
                 watch_buffer_limit: int = WATCH_BUFFER_LIMIT):
        self.path = path
        self.compact_interval = compact_interval       # None or 0: no automatic compaction
        self.history_keep = history_keep
        self.history_keep_seconds = history_keep_seconds
        self.watch_buffer_limit = watch_buffer_limit
        self._loop: asyncio.AbstractEventLoop | None = None
        self._reader: sqlite3.Connection | None = None
        self._writer_conn: sqlite3.Connection | None = None
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._writer_done: asyncio.Future | None = None
        self._wstate: _WriterState | None = None
        self._revision = 0          # last acknowledged revision (loop side)
        self._compacted = 0         # loop side
        self._watchers: set[SqliteWatch] = set()
        self._compactor: asyncio.Task | None = None
        self._revision_samples: collections.deque[tuple[float, int]] = collections.deque()
        self._accepting = False
        self._closed = False
        self._broken: BaseException | None = None

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        if self._loop is not None:
            raise StoreError("store already started")
        self._loop = asyncio.get_running_loop()
        wconn = _connect(self.path, check_same_thread=False)
        wconn.executescript(_SCHEMA)
        meta = dict(wconn.execute(_SQL_META).fetchall())
        # Defensive (both are written in the same transaction, so they agree after a crash).
        top = max(meta["revision"],
                  wconn.execute("SELECT coalesce(max(revision), 0) FROM log").fetchone()[0])
        compacted = meta["compacted"]
        dirty = wconn.execute("SELECT 1 FROM log WHERE revision <= ? LIMIT 1",
                              (compacted,)).fetchone() is not None
        self._wstate = _WriterState(revision=top, compacted=compacted, compaction_dirty=dirty)
        self._writer_conn = wconn
        self._reader = _connect(self.path)
        self._reader.execute("PRAGMA query_only=1")
        self._revision, self._compacted = top, compacted
        self._writer_done = self._loop.create_future()
        self._thread = threading.Thread(target=self._writer_main, name="k1s-store-writer",
                                        daemon=True)
        self._thread.start()
        self._accepting = True
        if self.compact_interval:
            self._compactor = asyncio.create_task(self._auto_compact_loop(),
                                                  name="k1s-store-compactor")

    async def close(self) -> None:
        if self._loop is None or self._closed:
            return
        self._closed = True
        self._accepting = False
        if self._compactor is not None:
            self._compactor.cancel()
            try:
                await self._compactor
            except asyncio.CancelledError:
                pass
            self._compactor = None
        self._queue.put(_STOP)              # everything queued before it is committed first
        await self._writer_done
        self._thread.join()
        for w in list(self._watchers):
            w.close()
        self._reader.close()
        self._writer_conn.close()

    async def __aenter__(self) -> "SqliteStore":
        await self.start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    # -- revisions --------------------------------------------------------------------------------

    def current_revision(self) -> int:
        return self._revision

    def compacted_revision(self) -> int:
        return self._compacted

    # -- reads (inline on the loop, on the read connection) ------------------------------------

    async def get(self, key: str, revision: int = 0) -> KV | None:
        self._check_open()
        if revision == 0:
            row = self._reader.execute(_SQL_GET_CURRENT, (key,)).fetchone()
            return None if row is None else KV(key, *row)
        with _ReadTxn(self._reader) as db:
            self._check_history_revision(db, revision)
            return _get_at(db, key, revision)

    async def range(self, prefix: str, *, revision: int = 0, limit: int = 0,
                    start_after: str | None = None, count: bool = False) -> RangeResult:
        """Keys under `prefix` in key order. `count` counts the keys the range would return
        without `limit` (those after `start_after`, as etcd counts a range from its start key),
        so `count - len(kvs)` is the number of keys left."""
        self._check_open()
        if limit < 0 or revision < 0:
            raise ValueError("limit and revision must not be negative")
        conds, args = _key_conditions(prefix, start_after)
        with _ReadTxn(self._reader) as db:
            if revision == 0:
                at = db.meta()[0]
                sql = ("SELECT key, value, create_revision, mod_revision, version FROM kv "
                       f"WHERE {conds} ORDER BY key")
                count_sql = f"SELECT count(*) FROM kv WHERE {conds}"
                sql_args = count_args = args
            else:
                self._check_history_revision(db, revision)
                at = revision
                body, body_args = _state_at_sql(conds, args, revision)
                sql = f"{body} ORDER BY key"
                count_sql = f"SELECT count(*) FROM ({body})"
                sql_args = count_args = body_args
            if limit:
                sql += " LIMIT ?"
                sql_args = [*sql_args, limit + 1]
            rows = db.conn.execute(sql, sql_args).fetchall()
            more = bool(limit) and len(rows) > limit
            if more:
                del rows[limit:]
            n = 0
            if count:
                n = (db.conn.execute(count_sql, count_args).fetchone()[0] if more
                     else len(rows))
        return RangeResult([KV(*r) for r in rows], at, more, n)

    def _check_history_revision(self, db: "_ReadTxn", revision: int) -> None:
        current, compacted = db.meta()
        if revision > current:
            raise FutureRevision(revision, current)
        if revision <= compacted:
            raise Compacted(revision, compacted)

    # -- writes --------------------------------------------------------------------------------

    async def create(self, key: str, value: bytes) -> KV:
        return await self._submit_write(_CREATE, key, value, 0)

    async def update(self, key: str, value: bytes, expected_mod_revision: int) -> KV:
        return await self._submit_write(_UPDATE, key, value, expected_mod_revision)

    async def delete(self, key: str, expected_mod_revision: int = 0) -> KV:
        return await self._submit_write(_REMOVE, key, None, expected_mod_revision)

    def _submit_write(self, kind: int, key: str, value: bytes | None,
                      expected: int) -> asyncio.Future:
        self._check_open()
        if not isinstance(key, str) or not key:
            raise TypeError("key must be a non-empty str")
        if kind != _REMOVE and not isinstance(value, (bytes, bytearray, memoryview)):
            raise TypeError("value must be bytes")
        if not isinstance(expected, int) or expected < 0:
            raise ValueError("expected_mod_revision must be an int >= 0")
        fut = self._loop.create_future()
        self._queue.put(_Write(kind, key, None if value is None else bytes(value), expected, fut))
        return fut

    async def compact(self, revision: int) -> None:
        """Forget history at and below `revision`. A revision at or below the current
        compaction point is a no-op; one above the current revision raises FutureRevision.
        Returns when the log rows are gone (they are deleted in short chunks)."""
        self._check_open()
        fut = self._loop.create_future()
        self._queue.put(_Compact(revision, fut))
        await fut

    async def checkpoint(self) -> None:
        """Copy the WAL into the database and truncate it (also done after compactions)."""
        self._check_open()
        fut = self._loop.create_future()
        self._queue.put(_Checkpoint(fut))
        await fut

    def _check_open(self) -> None:
        if self._broken is not None:
            raise StoreError(f"store writer failed: {self._broken!r}")
        if not self._accepting:
            raise StoreError("store is not open")

    # -- watch ---------------------------------------------------------------------------------

    def watch(self, prefix: str, after_revision: int) -> "SqliteWatch":
        self._check_open()
        return SqliteWatch(self, prefix, after_revision)

    # -- the writer thread -------------------------------------------------------------------------

    def _writer_main(self) -> None:
        q, st = self._queue, self._wstate
        batch: list = []
        try:
            stop = False
            while not stop:
                try:
                    item = q.get_nowait() if st.compaction_dirty else q.get()
                except queue.Empty:
                    item = None
                batch = []
                if item is not None:
                    batch.append(item)
                    while len(batch) < MAX_BATCH:
                        try:
                            batch.append(q.get_nowait())
                        except queue.Empty:
                            break
                if batch and batch[-1] is _STOP:
                    stop = True
                    batch.pop()
                ops = [op for op in batch if not isinstance(op, _Checkpoint)]
                if ops:
                    self._commit_batch(ops)
                if st.compaction_dirty and not stop:
                    self._compact_step()
                for op in batch:
                    if isinstance(op, _Checkpoint):
                        self._checkpoint()
                        self._resolve_later(op.future, None)
            if st.compact_waiters:       # logically compacted; leftovers are removed at start
                for fut in st.compact_waiters:
                    self._resolve_later(fut, None)
        except BaseException as exc:   # a bug or a dead disk: fail everyone, do not hang them
            log.exception("store writer thread failed")
            self._fail_all(exc, [op.future for op in batch if op is not _STOP])
        finally:
            self._call_loop(self._writer_finished)

    def _commit_batch(self, ops: list) -> None:
        conn, st = self._writer_conn, self._wstate
        saved = (st.revision, st.compacted)
        try:
            conn.execute("BEGIN IMMEDIATE")
            outcomes = [self._apply(op) for op in ops]
            if st.revision != saved[0]:
                conn.execute(_SQL_SET_META, (st.revision, "revision"))
            conn.execute("COMMIT")
        except Exception as exc:
            _rollback(conn)
            st.revision, st.compacted = saved
            if len(ops) == 1:
                outcomes = [_unexpected(exc)]
            else:   # find the faulty write: the others must not fail with it
                outcomes = [self._commit_alone(op) for op in ops]
        if st.compacted != saved[1]:
            st.compaction_dirty = True
        for op, out in zip(ops, outcomes):
            if out is _DEFERRED:
                st.compact_waiters.append(op.future)
        self._call_loop(self._on_committed, ops, outcomes)

    def _commit_alone(self, op) -> object:
        conn, st = self._writer_conn, self._wstate
        saved = (st.revision, st.compacted)
        try:
            conn.execute("BEGIN IMMEDIATE")
            out = self._apply(op)
            if st.revision != saved[0]:
                conn.execute(_SQL_SET_META, (st.revision, "revision"))
            conn.execute("COMMIT")
            return out
        except Exception as exc:
            _rollback(conn)
            st.revision, st.compacted = saved
            return _unexpected(exc)

    def _apply(self, op) -> object:
        """Apply one request inside the open transaction. Returns the Event of a write, a
        StoreError for a refused one, or _DEFERRED / None for a compaction; raises on anything
        unexpected (the batch is then retried write by write)."""
        conn, st = self._writer_conn, self._wstate
        if isinstance(op, _Compact):
            if op.revision > st.revision:
                return FutureRevision(op.revision, st.revision)
            if op.revision <= st.compacted:
                return None
            conn.execute(_SQL_SET_META, (op.revision, "compacted"))
            st.compacted = op.revision
            return _DEFERRED
        key = op.key
        row = conn.execute(_SQL_GET_CURRENT, (key,)).fetchone()
        rev = st.revision + 1
        if op.kind == _CREATE:
            if row is not None:
                return KeyExists(key)
            log_row = (rev, key, _PUT, op.value, rev, 1, 0, None)
            conn.execute(_SQL_INSERT_KV, (key, op.value, rev, rev, 1))
        else:
            if row is None:
                return KeyNotFound(key)
            value, create_rev, mod_rev, version = row
            if op.expected and op.expected != mod_rev:
                return RevisionConflict(key, KV(key, value, create_rev, mod_rev, version))
            if op.kind == _UPDATE:
                log_row = (rev, key, _PUT, op.value, create_rev, version + 1, mod_rev, value)
                conn.execute(_SQL_UPDATE_KV, (op.value, rev, version + 1, key))
            else:
                log_row = (rev, key, _DELETE, value, create_rev, version, mod_rev, None)
                conn.execute(_SQL_DELETE_KV, (key,))
        conn.execute(_SQL_INSERT_LOG, log_row)
        st.revision = rev
        return event_from_log_row(*log_row)

    def _compact_step(self) -> None:
        conn, st = self._writer_conn, self._wstate
        try:
            conn.execute("BEGIN IMMEDIATE")
            deleted = conn.execute(_SQL_COMPACT_CHUNK, (st.compacted, COMPACT_CHUNK)).rowcount
            conn.execute("COMMIT")
        except Exception:
            _rollback(conn)
            log.exception("compaction step failed; retrying at the next compaction")
            deleted = 0
        if deleted < COMPACT_CHUNK:
            st.compaction_dirty = False
            self._checkpoint()
            for fut in st.compact_waiters:
                self._resolve_later(fut, None)
            st.compact_waiters.clear()

    def _checkpoint(self) -> None:
        try:
            self._writer_conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        except sqlite3.Error:
            log.exception("WAL checkpoint failed")

    def _call_loop(self, fn, *args) -> None:
        try:
            self._loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:    # the loop is closed: nobody is waiting any more
            pass

    def _resolve_later(self, fut: asyncio.Future, result: object) -> None:
        self._call_loop(_resolve, fut, result)

    def _fail_all(self, exc: BaseException, inflight: list | None = None) -> None:
        """Fail every write still waiting (safe to repeat: resolved futures are skipped)."""
        self._broken = exc
        err = StoreError(f"store writer failed: {exc!r}")
        pending = [*(inflight or ()), *self._wstate.compact_waiters]
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not _STOP:
                pending.append(item.future)
        for fut in pending:
            self._call_loop(_resolve, fut, err)

    # -- back on the loop ------------------------------------------------------------------------

    def _on_committed(self, ops: list, outcomes: list) -> None:
        """Publish a committed batch: revision, then watchers, then the writers' futures."""
        events = [out for out in outcomes if isinstance(out, Event)]
        if events:
            self._revision = events[-1].revision
            for w in list(self._watchers):
                w._deliver(events)
        for op, out in zip(ops, outcomes):
            if out is _DEFERRED:
                self._compacted = max(self._compacted, op.revision)
                continue
            _resolve(op.future, out.kv if isinstance(out, Event) else out)

    def _writer_finished(self) -> None:
        if not self._writer_done.done():
            self._writer_done.set_result(None)
        if self._broken is not None:
            self._accepting = False
            self._fail_all(self._broken)    # anything queued after the thread's last look
            for w in list(self._watchers):
                w._fail(StoreError(f"store writer failed: {self._broken!r}"))

    # -- automatic compaction -----------------------------------------------------------------

    def compaction_target(self, now: float) -> int:
        """The revision the automatic compactor would compact to at monotonic time `now`: keep
        the newest `history_keep` revisions and nothing older than `history_keep_seconds`
        (whichever keeps less), judged by the revisions sampled at earlier ticks."""
        by_count = self._revision - self.history_keep
        by_age = 0
        for t, rev in self._revision_samples:
            if now - t >= self.history_keep_seconds:
                by_age = rev
        return max(by_count, by_age, 0)

    async def _auto_compact_loop(self) -> None:
        while True:
            await asyncio.sleep(self.compact_interval)
            await self.auto_compact_once()

    async def auto_compact_once(self, now: float | None = None) -> None:
        """One tick of the automatic compactor (also callable directly, e.g. from tests)."""
        now = time.monotonic() if now is None else now
        self._revision_samples.append((now, self._revision))
        while (len(self._revision_samples) > 1
               and now - self._revision_samples[1][0] >= self.history_keep_seconds):
            self._revision_samples.popleft()    # an older sample can never be the target again
        target = self.compaction_target(now)
        try:
            if target > self._compacted:
                await self.compact(target)      # checkpoints when done
            else:
                await self.checkpoint()
        except StoreError:
            log.exception("automatic compaction failed")


# ---------------------------------------------------------------------------------------------

class SqliteWatch(Watch):
    """One watcher. Registered at creation, so no event committed after watch() returns can be
    missed; history is read when iteration starts. Also an async context manager."""

    def __init__(self, store: SqliteStore, prefix: str, after_revision: int):
        self._store = store
        self.prefix = prefix
        self.after_revision = after_revision
        self._last = after_revision                  # revision of the last delivered event
        self._replay_upto = store._revision          # every later event reaches _live
        self._live: collections.deque[Event] = collections.deque()
        self._waiter: asyncio.Future | None = None
        self._closed = False
        self._error: BaseException | None = None
        self._iterator: AsyncIterator[Event] | None = None
        store._watchers.add(self)

    def __aiter__(self) -> AsyncIterator[Event]:
        if self._iterator is None:
            self._iterator = self._iterate()
        return self._iterator

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._store._watchers.discard(self)
            self._live.clear()
            self._wake()

    async def __aenter__(self) -> "SqliteWatch":
        return self

    async def __aexit__(self, *exc) -> None:
        self.close()

    # called on the loop by the store
    def _deliver(self, events: list[Event]) -> None:
        prefix, live = self.prefix, self._live
        for ev in events:
            if ev.kv.key.startswith(prefix):
                if len(live) >= self._store.watch_buffer_limit:
                    self._fail(WatchOverflow(self._store.watch_buffer_limit))
                    return
                live.append(ev)
        self._wake()

    def _fail(self, exc: BaseException) -> None:
        if self._error is None and not self._closed:
            self._error = exc
            self._store._watchers.discard(self)
            self._live.clear()
            self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def _iterate(self) -> AsyncIterator[Event]:
        try:
            async for ev in self._replay():
                yield ev
            while True:
                if self._closed:
                    return
                if self._error is not None:
                    raise self._error
                if self._live:
                    ev = self._live.popleft()
                    if ev.revision > self._last:
                        self._last = ev.revision
                        yield ev
                    continue
                self._waiter = self._store._loop.create_future()
                await self._waiter
                self._waiter = None
        finally:
            self.close()

    async def _replay(self) -> AsyncIterator[Event]:
        """History for (after_revision, revision at registration], chunk by chunk. Each chunk
        is read in its own snapshot together with the compaction point, so a compaction that
        overtakes a slow replay is reported instead of leaving a gap."""
        store = self._store
        conds, args = _key_conditions(self.prefix, None)
        sql = (f"SELECT {_LOG_COLUMNS} FROM log WHERE revision > ? AND revision <= ? "
               f"AND {conds} ORDER BY revision LIMIT ?")
        first = True
        while not self._closed and self._error is None:
            with _ReadTxn(store._reader) as db:
                current, compacted = db.meta()
                if first and self.after_revision > current:
                    raise FutureRevision(self.after_revision, current)
                first = False
                if self._last >= self._replay_upto:
                    return
                if self._last < compacted:
                    raise Compacted(self._last, compacted)
                rows = db.conn.execute(sql, [self._last, self._replay_upto, *args,
                                             HISTORY_CHUNK]).fetchall()
            for row in rows:
                if self._closed or self._error is not None:
                    return
                ev = event_from_log_row(*row)
                self._last = ev.revision
                yield ev
            if len(rows) < HISTORY_CHUNK:
                self._last = max(self._last, self._replay_upto)
                return


# ---------------------------------------------------------------------------------------------
# Helpers.

def _connect(path: str, check_same_thread: bool = True) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=check_same_thread)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")   # durable against a process crash, not power loss
    conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    conn.execute(f"PRAGMA cache_size=-{CACHE_SIZE_KIB}")
    return conn


def _rollback(conn: sqlite3.Connection) -> None:
    try:
        conn.execute("ROLLBACK")
    except sqlite3.Error:
        pass    # no transaction was open


def _unexpected(exc: Exception) -> StoreError:
    """An SQLite failure, as the StoreError a caller can handle (the cause stays attached)."""
    err = StoreError(f"store write failed: {exc}")
    err.__cause__ = exc
    return err


def _resolve(fut: asyncio.Future, outcome: object) -> None:
    if fut.done():          # the caller gave up (cancelled); the write stands regardless
        return
    if isinstance(outcome, BaseException):
        fut.set_exception(outcome)
    else:
        fut.set_result(outcome)


class _ReadTxn:
    """A read transaction on the reader connection: one consistent snapshot."""

    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn
        self._meta: tuple[int, int] | None = None

    def __enter__(self) -> "_ReadTxn":
        self.conn.execute("BEGIN")
        return self

    def __exit__(self, *exc) -> None:
        self.conn.execute("COMMIT")

    def meta(self) -> tuple[int, int]:
        """(revision, compacted) as of this snapshot."""
        if self._meta is None:
            m = dict(self.conn.execute(_SQL_META).fetchall())
            self._meta = (m["revision"], m["compacted"])
        return self._meta


def _state_at_sql(conds: str, args: list, revision: int) -> tuple[str, list]:
    """A query for the keys matching `conds` as they were at `revision` (see the module
    docstring): untouched current rows, plus the prev of each key's first write after it."""
    sql = (
        "SELECT key, value, create_revision, mod_revision, version FROM kv "
        f"WHERE {conds} AND mod_revision <= ? "
        "UNION ALL "
        "SELECT key, CASE WHEN type = 1 THEN value ELSE prev_value END, create_revision, "
        "prev_revision, CASE WHEN type = 1 THEN version ELSE version - 1 END FROM log AS l "
        f"WHERE {conds} AND revision > ? AND prev_revision != 0 AND revision = "
        "(SELECT min(m.revision) FROM log AS m WHERE m.key = l.key AND m.revision > ?)")
    return sql, [*args, revision, *args, revision, revision]


def _get_at(db: _ReadTxn, key: str, revision: int) -> KV | None:
    row = db.conn.execute(
        f"SELECT {_LOG_COLUMNS} FROM log WHERE key = ? AND revision > ? "
        "ORDER BY revision LIMIT 1", (key, revision)).fetchone()
    if row is not None:
        return event_from_log_row(*row).prev
    row = db.conn.execute(_SQL_GET_CURRENT, (key,)).fetchone()
    return None if row is None else KV(key, *row)
