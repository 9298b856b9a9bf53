"""Helpers the controller integration tests share: run controllers against a test server,
poll until a condition holds, read an object that may be gone."""

from __future__ import annotations

import asyncio
import contextlib

from k1s.client.errors import ApiError
from k1s.client.rest import APIClient
from k1s.controllers.context import ControllerContext


@contextlib.asynccontextmanager
async def running_controllers(url: str, *factories):
    """A client, with each `factory(ctx)` controller running until the block ends."""
    c = APIClient(url)
    ctx = ControllerContext.create(c, "k1s-test")
    tasks = [asyncio.create_task(f(ctx).run()) for f in factories]
    try:
        yield c
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await ctx.close()
        await c.close()


async def eventually(check, timeout: float = 10.0):
    """Poll an async predicate until it returns a truthy value (and return that value)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        got = await check()
        if got:
            return got
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met in {timeout}s: {check.__name__}")
        await asyncio.sleep(0.05)


async def get_or_none(c: APIClient, r, name: str, ns: str | None = None) -> dict | None:
    try:
        return await c.get(r, name, ns)
    except ApiError as e:
        if e.is_not_found():
            return None
        raise
