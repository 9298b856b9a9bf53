"""The in-memory volume index: finds the best volume for a claim in O(log n + k), never by a
scan of all volumes.

Layout:
- `_free[(class, volumeMode)][accessModeSet]` is a list of (capacity bytes, name) kept sorted
  (bisect insort): the volumes that can be chosen by matching at all — phase Available, no
  claimRef, not being deleted.
- `_refs[(namespace, claim name)]` names every volume whose claimRef names that claim (pre-bound
  or bound): pre-bound volumes win at once, and a deleted claim finds its volumes here.
- `_reserved`: volumes a worker has picked and is binding right now, skipped by other workers
  until the PV write lands (or fails and `release` puts it back).

A look-up goes to the claim's (class, mode) bucket, takes the access-mode groups that are
supersets of the claim's modes in upstream's order (fewest modes first), bisects each to the
first volume large enough and walks forward only past volumes refused by the selector, node
affinity or a reservation. The answer equals planner.find_best_match_linear (tested).
"""

from __future__ import annotations

from bisect import bisect_left, insort
from dataclasses import dataclass

from .explain import MatchCounts
from .planner import (
    ACCESS_MODES, AFFINITY, OTHER_CLASS, SELECTOR, TOO_SMALL, VOLUME_MODE, Node, access_modes,
    bound_to, claim_request, effective_class, is_deleting, meta, mismatch,
    node_affinity_matches, selector_matches, spec, status, volume_capacity, volume_mode,
)


@dataclass(frozen=True)
class _Entry:
    bucket: tuple
    modes: frozenset
    item: tuple             # (capacity, name)


def _is_free(pv: dict) -> bool:
    return (status(pv).get("phase") == "Available" and not spec(pv).get("claimRef")
            and not is_deleting(pv))


def _ref_of(pv: dict) -> tuple | None:
    ref = spec(pv).get("claimRef")
    if not ref or not ref.get("name"):
        return None
    return (ref.get("namespace") or "default", ref.get("name"))


class VolumeIndex:
    def __init__(self):
        self._all: dict[str, dict] = {}
        self._free: dict[tuple, dict[frozenset, list]] = {}
        self._entries: dict[str, _Entry] = {}
        self._refs: dict[tuple, set[str]] = {}
        self._reserved: set[str] = set()

    # -- maintenance -----------------------------------------------------------------------------
    def observe(self, pv: dict) -> None:
        """Add or update a volume (informer add/update, or the binder's own write)."""
        name = meta(pv).get("name")
        old = self._all.get(name)
        if old is not None:
            self._unindex(name, old)
        self._all[name] = pv
        if _is_free(pv):
            e = _Entry((effective_class(pv), volume_mode(pv)), access_modes(pv),
                       (volume_capacity(pv), name))
            insort(self._free.setdefault(e.bucket, {}).setdefault(e.modes, []), e.item)
            self._entries[name] = e
        r = _ref_of(pv)
        if r is not None:
            self._refs.setdefault(r, set()).add(name)

    def forget(self, name: str) -> None:
        old = self._all.pop(name, None)
        if old is not None:
            self._unindex(name, old)
        self._reserved.discard(name)

    def _unindex(self, name: str, old: dict) -> None:
        e = self._entries.pop(name, None)
        if e is not None:
            lst = self._free[e.bucket][e.modes]
            i = bisect_left(lst, e.item)
            if i < len(lst) and lst[i] == e.item:
                del lst[i]
            if not lst:
                del self._free[e.bucket][e.modes]
                if not self._free[e.bucket]:
                    del self._free[e.bucket]
        r = _ref_of(old)
        if r is not None:
            s = self._refs.get(r)
            if s is not None:
                s.discard(name)
                if not s:
                    del self._refs[r]

    def reserve(self, name: str) -> None:
        self._reserved.add(name)

    def release(self, name: str) -> None:
        self._reserved.discard(name)

    # -- queries ---------------------------------------------------------------------------------
    def get(self, name: str) -> dict | None:
        return self._all.get(name)

    def __len__(self) -> int:
        return len(self._all)

    def volumes(self):
        return self._all.values()

    def referring(self, namespace: str, claim_name: str) -> list[dict]:
        """Volumes whose claimRef names this claim (any uid)."""
        return [self._all[n] for n in sorted(self._refs.get((namespace, claim_name), ()))]

    def _groups(self, bucket: tuple, modes: frozenset):
        groups = self._free.get(bucket) or {}
        fit = [g for g in groups if g >= modes]
        fit.sort(key=lambda g: (len(g), sorted(g)))
        return [(g, groups[g]) for g in fit]

    def find(self, claim: dict, node: Node | None = None, delay: bool = False) -> dict | None:
        """The volume to bind `claim` to, or None (upstream findBestMatchForClaim)."""
        md = meta(claim)
        for name in sorted(self._refs.get((md.get("namespace") or "default", md.get("name")), ())):
            pv = self._all[name]
            if name in self._reserved or not bound_to(pv, claim):
                continue
            why = mismatch(pv, claim, node, delay)
            if why is None:
                return pv
            if why == AFFINITY:
                return None
        if delay and node is None:
            return None         # the scheduler (or the stand-in) picks a node first
        request = claim_request(claim)
        modes = access_modes(claim)
        has_selector = bool(spec(claim).get("selector"))
        for _g, lst in self._groups((effective_class(claim), volume_mode(claim)), modes):
            for cap, name in lst[bisect_left(lst, (request, "")):]:
                if name in self._reserved:
                    continue
                pv = self._all[name]
                if has_selector and not selector_matches(claim, pv):
                    continue
                if node is not None and not node_affinity_matches(pv, node.name, node.labels):
                    continue
                return pv
        return None

    def counts(self, claim: dict, node: Node | None = None) -> MatchCounts:
        """Why no free volume fits `claim`, by category; costs the number of buckets and
        groups, plus a walk only over volumes that pass class, mode, access modes and size."""
        c = MatchCounts()
        cls, mode = effective_class(claim), volume_mode(claim)
        request, modes = claim_request(claim), access_modes(claim)
        for (bcls, bmode), groups in self._free.items():
            for g, lst in groups.items():
                n = len(lst)
                c.considered += n
                if bcls != cls:
                    c.add(OTHER_CLASS, n)
                elif bmode != mode:
                    c.add(VOLUME_MODE, n)
                elif not g >= modes:
                    c.add(ACCESS_MODES, n)
                else:
                    i = bisect_left(lst, (request, ""))
                    c.add(TOO_SMALL, i)
                    if not spec(claim).get("selector") and node is None:
                        continue    # the rest fit (or are reserved by a binding in flight)
                    for _cap, name in lst[i:]:
                        pv = self._all[name]
                        if not selector_matches(claim, pv):
                            c.add(SELECTOR)
                        elif node is not None and not node_affinity_matches(
                                pv, node.name, node.labels):
                            c.add(AFFINITY)
        return c
