"""Property: for random batches of concurrent create/update/delete with random expected
revisions, the store behaves exactly like a sequential in-memory model: same results, same
state at every revision, and watches deliver exactly the model's events."""

import asyncio
import os
import tempfile

from hypothesis import HealthCheck, given, settings, strategies as st

from k1s.store import SqliteStore
from store_model import Model

KEYS = ["/r/a", "/r/b", "/r/c", "/s/a"]

# An expected revision: 0 (unconditional), the key's current one, or an arbitrary (mostly
# stale or wrong) number.
expected_st = st.one_of(st.just(0), st.just("current"), st.integers(1, 40))
op_st = st.one_of(
    st.tuples(st.just("create"), st.sampled_from(KEYS), st.binary(max_size=4)),
    st.tuples(st.just("update"), st.sampled_from(KEYS), st.binary(max_size=4), expected_st),
    st.tuples(st.just("delete"), st.sampled_from(KEYS), expected_st),
)
# Each inner list is submitted concurrently (so it lands in one or a few writer batches);
# a watch may be opened before each batch, from a random earlier revision.
batch_st = st.tuples(st.lists(op_st, min_size=1, max_size=8),
                     st.one_of(st.none(), st.tuples(st.sampled_from(["", "/r/", "/s/"]),
                                                    st.floats(0, 1))))
program_st = st.tuples(st.lists(batch_st, min_size=1, max_size=10),
                       st.one_of(st.none(), st.floats(0, 1)))   # optional compaction point


def outcome(result):
    """Comparable form of a write's result: the KV, or the exception's type and details."""
    if isinstance(result, Exception):
        return type(result).__name__, str(result), getattr(result, "current", None)
    return result


async def run_program(path, batches, compact_at):
    model = Model()
    store = SqliteStore(path, compact_interval=None)
    await store.start()
    watches = []
    try:
        for ops, watch_spec in batches:
            if watch_spec is not None:
                prefix, frac = watch_spec
                after = int(model.revision * frac)
                watches.append((prefix, after, store.watch(prefix, after)))
            calls, expected = [], []
            for op in ops:
                kind, key, *args = op
                if kind != "create":
                    exp = args[-1]
                    cur = model.current.get(key)
                    args[-1] = (cur.mod_revision if cur else 7) if exp == "current" else exp
                expected.append(outcome(getattr(model, kind)(key, *args)))
                calls.append(getattr(store, kind)(key, *args))
            got = await asyncio.gather(*calls, return_exceptions=True)
            assert [outcome(g) for g in got] == expected
            assert store.current_revision() == model.revision

        # every watch (consumed before compaction could overtake it): exactly the model's
        # events after its revision, under its prefix
        final = model.revision
        for prefix, after, w in watches:
            want = [e for e in model.events if e.revision > after and e.kv.key.startswith(prefix)]
            got = []
            if want:
                async def collect():
                    async for ev in w:
                        got.append(ev)
                        if ev.revision == want[-1].revision:
                            return
                await asyncio.wait_for(collect(), 5)
            w.close()
            assert got == want, (prefix, after, final)

        # history reads above a compaction point match the model's snapshots
        compacted = 0
        if compact_at is not None:
            compacted = int(model.revision * compact_at)
            await store.compact(compacted)
        for rev in range(max(compacted + 1, 1), model.revision + 1):
            for prefix in ("", "/r/"):
                res = await store.range(prefix, revision=rev, count=True)
                assert res.kvs == model.state_at(rev, prefix) and res.count == len(res.kvs)
        assert (await store.range("")).kvs == model.state_at(model.revision)

        # and a watch opened now replays the same history from the log
        if model.revision > compacted:
            got = []
            async with store.watch("", compacted) as w:
                async for ev in w:
                    got.append(ev)
                    if ev.revision == model.revision:
                        break
            assert got == [e for e in model.events if e.revision > compacted]
    finally:
        await store.close()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(program=program_st)
def test_store_matches_model(program):
    batches, compact_at = program
    with tempfile.TemporaryDirectory() as d:
        asyncio.run(run_program(os.path.join(d, "state.db"), batches, compact_at))
