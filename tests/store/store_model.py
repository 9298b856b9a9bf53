"""A plain-dict reference model of the MVCC store, for the property tests to compare against."""

from __future__ import annotations

from dataclasses import dataclass, field

from k1s.store import KV, Event, KeyExists, KeyNotFound, RevisionConflict


@dataclass
class Model:
    revision: int = 0
    current: dict[str, KV] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    snapshots: dict[int, dict[str, KV]] = field(default_factory=lambda: {0: {}})

    def _commit(self, event: Event) -> KV:
        self.revision = event.revision
        if event.type == "DELETE":
            del self.current[event.kv.key]
        else:
            self.current[event.kv.key] = event.kv
        self.events.append(event)
        self.snapshots[self.revision] = dict(self.current)
        return event.kv

    def create(self, key: str, value: bytes) -> KV | Exception:
        if key in self.current:
            return KeyExists(key)
        rev = self.revision + 1
        return self._commit(Event("PUT", KV(key, value, rev, rev, 1), None, rev))

    def update(self, key: str, value: bytes, expected: int) -> KV | Exception:
        old = self.current.get(key)
        if old is None:
            return KeyNotFound(key)
        if expected and expected != old.mod_revision:
            return RevisionConflict(key, old)
        rev = self.revision + 1
        kv = KV(key, value, old.create_revision, rev, old.version + 1)
        return self._commit(Event("PUT", kv, old, rev))

    def delete(self, key: str, expected: int) -> KV | Exception:
        old = self.current.get(key)
        if old is None:
            return KeyNotFound(key)
        if expected and expected != old.mod_revision:
            return RevisionConflict(key, old)
        rev = self.revision + 1
        kv = KV(key, old.value, old.create_revision, rev, old.version)
        return self._commit(Event("DELETE", kv, old, rev))

    def state_at(self, revision: int, prefix: str = "") -> list[KV]:
        snap = self.snapshots[max(r for r in self.snapshots if r <= revision)]
        return [snap[k] for k in sorted(snap) if k.startswith(prefix)]
