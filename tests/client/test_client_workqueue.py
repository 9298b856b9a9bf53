"""WorkQueue: de-duplication, no concurrent processing of a key, delays, back-off, shutdown."""

import asyncio

import pytest
from hypothesis import given, settings, strategies as st

from k1s.client.workqueue import ShutDown, WorkQueue, run_workers


async def drain(q: WorkQueue) -> list:
    """Everything currently queued, marking each done."""
    out = []
    while len(q):
        k = await q.get()
        out.append(k)
        q.done(k)
    return out


async def test_duplicates_are_processed_once_in_fifo_order():
    q = WorkQueue()
    for k in ["a", "b", "a", "c", "b", "a"]:
        q.add(k)
    assert len(q) == 3
    assert await drain(q) == ["a", "b", "c"]


async def test_key_readded_while_processing_is_requeued_after_done():
    q = WorkQueue()
    q.add("a")
    k = await q.get()
    q.add("a")          # changed again while a worker holds it
    q.add("a")
    assert len(q) == 0  # never handed to a second worker meanwhile
    q.done(k)
    assert len(q) == 1
    assert await q.get() == "a"


async def test_key_not_readded_is_not_requeued_by_done():
    q = WorkQueue()
    q.add("a")
    q.done(await q.get())
    assert len(q) == 0


async def test_get_waits_for_add():
    q = WorkQueue()
    getter = asyncio.create_task(q.get())
    await asyncio.sleep(0.01)
    assert not getter.done()
    q.add("x")
    assert await asyncio.wait_for(getter, 1) == "x"


async def test_cancelled_getter_does_not_lose_a_wakeup():
    q = WorkQueue()
    g1 = asyncio.create_task(q.get())
    g2 = asyncio.create_task(q.get())
    await asyncio.sleep(0)
    q.add("x")          # wakes g1 ...
    g1.cancel()         # ... which is cancelled before it runs
    assert await asyncio.wait_for(g2, 1) == "x"


async def test_add_after_orders_by_ready_time():
    q = WorkQueue()
    q.add_after("late", 0.06)
    q.add_after("early", 0.02)
    q.add_after("now", 0)
    assert await q.get() == "now"
    assert len(q) == 0
    got = [await asyncio.wait_for(q.get(), 1), await asyncio.wait_for(q.get(), 1)]
    assert got == ["early", "late"]


async def test_add_after_keeps_the_earlier_ready_time_of_a_waiting_key():
    q = WorkQueue()
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    q.add_after("k", 0.5)
    q.add_after("k", 0.02)
    q.add_after("k", 0.3)      # later than the pending one: ignored
    assert await asyncio.wait_for(q.get(), 1) == "k"
    assert loop.time() - t0 < 0.25
    q.done("k")
    await asyncio.sleep(0.6)
    assert len(q) == 0          # the superseded entries did not fire again


@pytest.mark.parametrize("failures,expected", [
    (0, 0.01), (1, 0.02), (2, 0.04), (3, 0.08), (4, 0.1), (10, 0.1), (2000, 0.1)])
async def test_backoff_is_exponential_and_capped(failures, expected):
    q = WorkQueue(base_delay=0.01, max_delay=0.1)
    q._failures["k"] = failures
    assert q.when("k") == pytest.approx(expected)
    assert q.num_requeues("k") == failures + 1


async def test_add_rate_limited_waits_and_forget_resets():
    q = WorkQueue(base_delay=0.04, max_delay=1)
    loop = asyncio.get_running_loop()
    delays = []
    for _ in range(3):
        t0 = loop.time()
        q.add_rate_limited("k")
        k = await asyncio.wait_for(q.get(), 2)
        delays.append(loop.time() - t0)
        q.done(k)
    assert q.num_requeues("k") == 3
    # 0.04, 0.08, 0.16 (timers never fire early)
    assert delays[0] >= 0.04 and delays[1] >= 0.08 and delays[2] >= 0.16
    assert delays[2] > delays[0]
    q.forget("k")
    assert q.num_requeues("k") == 0


async def test_shutdown_drains_then_raises_and_ignores_adds():
    q = WorkQueue()
    q.add("a")
    waiter_q = WorkQueue()
    waiter = asyncio.create_task(waiter_q.get())
    await asyncio.sleep(0)
    q.shutdown()
    waiter_q.shutdown()
    with pytest.raises(ShutDown):
        await asyncio.wait_for(waiter, 1)
    q.add("b")
    q.add_after("c", 0.01)
    assert await q.get() == "a"   # already queued: still handed out
    with pytest.raises(ShutDown):
        await q.get()


async def test_run_workers_retries_failures_and_forgets_successes():
    q = WorkQueue(base_delay=0.001, max_delay=0.01)
    attempts: dict[str, int] = {}
    done = asyncio.Event()

    async def sync(key):
        attempts[key] = attempts.get(key, 0) + 1
        if key == "flaky" and attempts[key] < 3:
            raise RuntimeError("transient")
        if attempts.get("flaky", 0) >= 3 and attempts.get("ok"):
            done.set()

    q.add("flaky")
    q.add("ok")
    runner = asyncio.create_task(run_workers(q, sync, workers=2))
    await asyncio.wait_for(done.wait(), 2)
    assert attempts == {"flaky": 3, "ok": 1}
    assert q.num_requeues("flaky") == 0
    q.shutdown()
    await asyncio.wait_for(runner, 1)


async def test_run_workers_never_syncs_one_key_concurrently():
    q = WorkQueue()
    active: set = set()
    overlaps = []
    seen = []

    async def sync(key):
        if key in active:
            overlaps.append(key)
        active.add(key)
        seen.append(key)
        await asyncio.sleep(0.005)
        if len(seen) < 5:
            q.add(key)  # the object changed again while we worked on it
        active.discard(key)

    q.add("k")
    runner = asyncio.create_task(run_workers(q, sync, workers=4))
    for _ in range(200):
        if len(seen) >= 5 and not len(q):
            break
        await asyncio.sleep(0.005)
    q.shutdown()
    await asyncio.wait_for(runner, 1)
    assert overlaps == []
    assert seen == ["k"] * 5


async def test_run_workers_cancellation_stops_workers():
    q = WorkQueue()
    runner = asyncio.create_task(run_workers(q, lambda k: asyncio.sleep(0), workers=3))
    await asyncio.sleep(0.01)
    runner.cancel()
    with pytest.raises(asyncio.CancelledError):
        await runner


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["add", "get", "done"]),
                          st.integers(min_value=0, max_value=4)), max_size=60))
def test_invariants_under_random_operations(ops):
    """Queued keys are unique and never also being processed; done() requeues dirty keys."""

    async def run():
        q = WorkQueue()
        held: list = []
        for op, k in ops:
            if op == "add":
                q.add(k)
            elif op == "get" and len(q):
                held.append(await q.get())
            elif op == "done" and held:
                q.done(held.pop(k % len(held)))
            queued = list(q._queue)
            assert len(queued) == len(set(queued))
            assert not set(queued) & set(held)
            assert set(queued) <= q._dirty
            assert len(held) == len(set(held))

    asyncio.run(run())
