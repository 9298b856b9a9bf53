"""Objects a controller wrote, remembered until its informer has caught up with them.

Right after a write the informer may still show the old object (or none, after a create, or
the object, after a delete). A sync in that window would build on stale state: update with an
old resourceVersion, or create a second EndpointSlice for the same endpoints. `overlay` returns
what the sync should believe: our newer copy while the informer lags, and a deleted object
hidden until the informer has seen the delete. Entries drop as soon as the informer's list
resourceVersion passes theirs.
"""

from __future__ import annotations

import time

DELETE_MEMORY = 10.0    # seconds a deleted object stays hidden from a lagging informer, at most


def _rv(obj: dict | None) -> int:
    try:
        return int(((obj or {}).get("metadata") or {}).get("resourceVersion") or 0)
    except (TypeError, ValueError):
        return 0


class RecentWrites:
    def __init__(self, informer):
        self.informer = informer
        # owner key -> object name -> (resourceVersion, object or None if deleted, when)
        self._by_owner: dict[str, dict[str, tuple[int, dict | None, float]]] = {}

    def _informer_rv(self) -> int:
        try:
            return int(self.informer.last_sync_resource_version or 0)
        except (TypeError, ValueError):
            return 0

    def wrote(self, owner: str, obj: dict) -> None:
        name = obj["metadata"]["name"]
        self._by_owner.setdefault(owner, {})[name] = (_rv(obj), obj, time.monotonic())

    def deleted(self, owner: str, obj: dict) -> None:
        """We deleted `obj` (as the informer showed it): hide that version until it is gone."""
        self._by_owner.setdefault(owner, {})[obj["metadata"]["name"]] = (
            _rv(obj), None, time.monotonic())

    def is_ours(self, owner: str, obj: dict) -> bool:
        """Whether `obj` is exactly the version we wrote (an echo of our own write)."""
        entry = (self._by_owner.get(owner) or {}).get(((obj.get("metadata") or {}).get("name")))
        return entry is not None and entry[1] is not None and entry[0] == _rv(obj)

    def forget(self, owner: str) -> None:
        self._by_owner.pop(owner, None)

    def overlay(self, owner: str, observed: dict[str, dict]) -> dict[str, dict]:
        entries = self._by_owner.get(owner)
        if not entries:
            return observed
        now_rv, now = self._informer_rv(), time.monotonic()
        out = dict(observed)
        for name, (rv, obj, at) in list(entries.items()):
            seen = observed.get(name)
            if obj is None:
                # hidden while the informer still shows the very version we deleted
                if seen is None or _rv(seen) != rv or now - at > DELETE_MEMORY:
                    del entries[name]
                else:
                    del out[name]
            elif now_rv >= rv or (seen is not None and _rv(seen) >= rv):
                del entries[name]           # the informer has caught up
            else:
                out[name] = obj
        if not entries:
            self._by_owner.pop(owner, None)
        return out
