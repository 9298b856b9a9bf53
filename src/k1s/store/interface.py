"""The MVCC key-value interface every store backend implements.

The store knows keys, bytes and revisions, not Kubernetes. Its model is etcd v3's:

- one global revision counter; every successful write (create, update, delete) gets the next
  revision, and that revision becomes the key's `mod_revision`;
- a key's `create_revision` is the revision that created it (reset when it is deleted and
  created again); `version` counts writes since creation;
- writes are guarded by compare-and-swap on the key's `mod_revision`;
- a watch from revision R delivers every event with revision > R, exactly once, in revision
  order, and fails with `Compacted` when R is older than the compaction point;
- compaction forgets history at and below a revision; current values are never lost.

Keys are strings (`/registry/pods/default/web-0`); values are bytes (JSON documents).
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import AsyncIterator, Literal


class StoreError(Exception):
    pass


class KeyExists(StoreError):
    """create() on a key that exists."""


class KeyNotFound(StoreError):
    """update() or delete() on a key that does not exist."""


class RevisionConflict(StoreError):
    """The key's mod_revision is not the expected one (the CAS failed)."""

    def __init__(self, key: str, current: "KV | None"):
        super().__init__(key)
        self.key = key
        self.current = current


class Compacted(StoreError):
    """The requested revision has been compacted away ("too old resource version")."""

    def __init__(self, requested: int, compacted: int):
        super().__init__(f"required revision {requested} has been compacted "
                         f"(compacted up to {compacted})")
        self.requested = requested
        self.compacted = compacted


class WatchOverflow(StoreError):
    """A watcher fell so far behind the writers that its buffer filled up; the watch is closed
    (the consumer re-lists and watches again) so that a slow reader never blocks writes."""

    def __init__(self, limit: int):
        super().__init__(f"watcher fell more than {limit} events behind and was closed")
        self.limit = limit


class FutureRevision(StoreError):
    """A read or watch asked for a revision the store has not reached yet."""

    def __init__(self, requested: int, current: int):
        super().__init__(f"revision {requested} is in the future (current {current})")
        self.requested = requested
        self.current = current


@dataclass(frozen=True, slots=True)
class KV:
    key: str
    value: bytes
    create_revision: int
    mod_revision: int
    version: int = 1


@dataclass(frozen=True, slots=True)
class Event:
    type: Literal["PUT", "DELETE"]
    kv: KV                  # for DELETE: key, the last value, mod_revision = the delete's revision
    prev: KV | None         # the value before this event (None for a create)
    revision: int           # the revision of this event

    @property
    def is_create(self) -> bool:
        return self.type == "PUT" and self.prev is None


@dataclass(frozen=True, slots=True)
class RangeResult:
    kvs: list[KV]
    revision: int           # the store revision the range was read at
    more: bool              # True when `limit` cut the result short
    count: int = 0          # number of keys under the prefix at `revision` (0 if not counted)


class Watch(abc.ABC):
    """An open watch: iterate for events; close() stops it. Iteration raises Compacted when the
    watcher fell behind the history the store keeps."""

    @abc.abstractmethod
    def __aiter__(self) -> AsyncIterator[Event]: ...

    @abc.abstractmethod
    def close(self) -> None: ...


class Store(abc.ABC):
    """Async MVCC store. All methods are safe to call concurrently from one event loop."""

    @abc.abstractmethod
    async def start(self) -> None:
        """Open the backend (create schema, start the writer, recover after a crash)."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Flush every acknowledged write and release resources."""

    @abc.abstractmethod
    def current_revision(self) -> int:
        """The revision of the last acknowledged write."""

    @abc.abstractmethod
    def compacted_revision(self) -> int:
        """History at or below this revision is gone."""

    @abc.abstractmethod
    async def get(self, key: str, revision: int = 0) -> KV | None:
        """The key's value at `revision` (0 = current), or None."""

    @abc.abstractmethod
    async def range(self, prefix: str, *, revision: int = 0, limit: int = 0,
                    start_after: str | None = None, count: bool = False) -> RangeResult:
        """Keys under `prefix` in key order, as of `revision` (0 = current), starting after
        `start_after` (a continue token's last key), at most `limit` (0 = all). Raises
        Compacted for a revision that is gone and FutureRevision for one not reached."""

    @abc.abstractmethod
    async def create(self, key: str, value: bytes) -> KV:
        """Create the key; raises KeyExists. Returns the new KV (its mod_revision is the write's
        revision)."""

    @abc.abstractmethod
    async def update(self, key: str, value: bytes, expected_mod_revision: int) -> KV:
        """Replace the value if the key's mod_revision equals expected_mod_revision (0 = any).
        Raises KeyNotFound or RevisionConflict (carrying the current KV)."""

    @abc.abstractmethod
    async def delete(self, key: str, expected_mod_revision: int = 0) -> KV:
        """Delete the key if its mod_revision equals expected_mod_revision (0 = any). Returns
        the deleted KV (value = the last value, mod_revision = the delete's revision). Raises
        KeyNotFound or RevisionConflict."""

    @abc.abstractmethod
    def watch(self, prefix: str, after_revision: int) -> Watch:
        """Every event under `prefix` with revision > after_revision, in order, exactly once.
        Events that are already history are replayed first; then live ones follow. Raises
        (on iteration) Compacted if after_revision < compacted_revision()."""

    @abc.abstractmethod
    async def compact(self, revision: int) -> None:
        """Forget history at and below `revision` (never the current value of a live key)."""
