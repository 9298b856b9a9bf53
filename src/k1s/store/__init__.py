"""The MVCC store: the interface every backend implements, and `open_store` to pick one.

    store = open_store("sqlite:///var/lib/k1s/state.db")   # or a plain path
    await store.start()
    ...
    await store.close()
"""

from __future__ import annotations

from .interface import (
    KV, Compacted, Event, FutureRevision, KeyExists, KeyNotFound, RangeResult,
    RevisionConflict, Store, StoreError, Watch, WatchOverflow,
)
from .sqlite import WATCH_BUFFER_LIMIT, SqliteStore, SqliteWatch

__all__ = [
    "KV", "Compacted", "Event", "FutureRevision", "KeyExists", "KeyNotFound", "RangeResult",
    "RevisionConflict", "Store", "StoreError", "Watch", "WatchOverflow",
    "SqliteStore", "SqliteWatch", "WATCH_BUFFER_LIMIT", "open_store",
]

_SQLITE_SCHEMES = ("sqlite://", "sqlite3://")


def open_store(url_or_path: str, **options) -> Store:
    """A store for `url_or_path`, not yet started (call `await store.start()`).

    - `sqlite:///abs/path.db`, `sqlite://relative/path.db` or a plain file path: SqliteStore
      (keyword options go to its constructor);
    - `etcd://...`: not available yet.
    """
    for scheme in _SQLITE_SCHEMES:
        if url_or_path.startswith(scheme):
            path = url_or_path[len(scheme):]
            if not path:
                raise ValueError(f"no database path in {url_or_path!r}")
            return SqliteStore(path, **options)
    if url_or_path.startswith(("etcd://", "http://", "https://")):
        raise NotImplementedError(f"store backend for {url_or_path!r} is not available yet")
    if "://" in url_or_path:
        raise ValueError(f"unknown store URL {url_or_path!r}")
    if url_or_path in ("", ":memory:"):
        # Two connections (writer, reader) cannot share one in-memory database.
        raise ValueError("the SQLite store needs a file path")
    return SqliteStore(url_or_path, **options)
