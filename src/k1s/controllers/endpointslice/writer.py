"""Writing EndpointSlice plans, shared by the EndpointSlice and the mirroring controllers: the
slices a key owns as far as we know (the informer's, overlaid by our own recent writes, which
the informer may not show yet), carrying out a `planner.Plan`, and telling a slice change
someone else made from the echo of our own write."""

from __future__ import annotations

import asyncio
from typing import Callable

from k1s.api import registry
from k1s.client.errors import ApiError
from k1s.controllers.endpoints.pods import meta
from k1s.controllers.endpoints.recent import RecentWrites

from .planner import Plan

SLICE = registry.get("endpointslices.discovery.k8s.io")


def namespace_terminating(e: BaseException) -> bool:
    return isinstance(e, ApiError) and e.code == 403 and "being terminated" in (e.message or "")


class SliceWriter:
    def __init__(self, client, slices, index: str, keys_of: Callable[[dict], list[str]], *,
                 concurrency: int = 16):
        self.client = client
        self.slices = slices                 # the EndpointSlice informer
        self.index = index                   # its index from key to the key's slices
        self.keys_of = keys_of               # a slice -> the keys that own it
        self.recent = RecentWrites(slices)
        self._writes = asyncio.Semaphore(concurrency)
        slices.add_indexer(index, keys_of)

    def existing(self, key: str) -> list[dict]:
        seen = {meta(sl).get("name", ""): sl for sl in self.slices.by_index(self.index, key)}
        return list(self.recent.overlay(key, seen).values())

    def requeue_on_changes(self, queue, delay: float) -> None:
        """Queue (after `delay`) the key of a slice someone else changed, took over (its
        managed-by label changed) or deleted, so it is set right again; the echo of our own
        write is not worth a sync."""
        def updated(old: dict, new: dict) -> None:
            for key in set(self.keys_of(old)) | set(self.keys_of(new)):
                if not self.recent.is_ours(key, new):
                    queue.add_after(key, delay)

        def deleted(sl: dict) -> None:
            for key in self.keys_of(sl):
                queue.add_after(key, delay)
        self.slices.add_handler(on_update=updated, on_delete=deleted)

    def forget(self, key: str) -> None:
        self.recent.forget(key)

    async def apply(self, key: str, plan: Plan) -> list[BaseException]:
        """Every write of the plan, concurrently; the errors (none: all done)."""
        results = await asyncio.gather(
            *(self._write(key, "create", sl) for sl in plan.create),
            *(self._write(key, "update", sl) for sl in plan.update),
            *(self._write(key, "delete", sl) for sl in plan.delete),
            return_exceptions=True)
        return [r for r in results if isinstance(r, BaseException)]

    async def _write(self, key: str, verb: str, sl: dict) -> None:
        async with self._writes:
            ns = meta(sl).get("namespace")
            if verb == "create":
                self.recent.wrote(key, await self.client.create(SLICE, sl, ns))
            elif verb == "update":
                self.recent.wrote(key, await self.client.update(SLICE, sl))
            else:
                try:
                    await self.client.delete(SLICE, meta(sl).get("name", ""), ns)
                except ApiError as e:
                    if not e.is_not_found():
                        raise
                self.recent.deleted(key, sl)
