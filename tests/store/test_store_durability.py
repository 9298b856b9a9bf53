"""Durability: a closed store reopens with its data and revision; a process killed with
SIGKILL loses nothing it acknowledged."""

import asyncio
import os
import signal
import subprocess
import sys

from k1s.store import SqliteStore

CHILD = os.path.join(os.path.dirname(__file__), "crash_writer.py")


async def test_close_and_reopen_keeps_data_and_revision(db_path):
    s = SqliteStore(db_path, compact_interval=None)
    await s.start()
    a = await s.create("/a", b"1")
    await s.update("/a", b"2", a.mod_revision)
    await s.create("/b", b"1")
    await s.compact(2)
    last = await s.delete("/b")                    # the newest revision belongs to a delete
    await s.close()

    s = SqliteStore(db_path, compact_interval=None)
    await s.start()
    try:
        assert s.current_revision() == last.mod_revision == 4
        assert s.compacted_revision() == 2
        assert [(kv.key, kv.value, kv.version) for kv in (await s.range("")).kvs] == [
            ("/a", b"2", 2)]
        assert (await s.create("/b", b"again")).mod_revision == 5   # 4 is never reused
        assert [e.revision for e in await take_all(s, after=2)] == [3, 4, 5]
    finally:
        await s.close()


async def take_all(store, after):
    w = store.watch("", after)
    out = []
    async for ev in w:
        out.append(ev)
        if ev.revision == store.current_revision():
            break
    w.close()
    return out


def test_kill_9_loses_no_acknowledged_write(db_path):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [os.path.join(os.path.dirname(__file__), "..", "..", "src"), env.get("PYTHONPATH", "")])
    child = subprocess.Popen([sys.executable, CHILD, db_path], stdout=subprocess.PIPE,
                             env=env, text=True)
    try:
        assert child.stdout.readline().startswith("ready")
        acked = []
        while len(acked) < 400:                   # kill mid-stream
            acked.append(child.stdout.readline().rstrip("\n").split(" ", 2))
        child.send_signal(signal.SIGKILL)
        acked += [line.split(" ", 2) for line in child.stdout.read().splitlines()]
    finally:
        child.kill()
        child.wait()
        child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    # a line cut short by the kill is dropped (its write was acknowledged, but is also
    # checked implicitly by the history check below)
    acked = [a for a in acked if len(a) == 3 and a[2] in ("deleted", a[0], "updated " + a[0])]

    async def check():
        s = SqliteStore(db_path, compact_interval=None)
        await s.start()
        try:
            top = max(int(rev) for _, rev, _ in acked)
            assert s.current_revision() >= top
            for key, rev, value in acked:
                kv = await s.get(key)
                if value == "deleted":
                    assert kv is None or kv.mod_revision > int(rev)
                else:
                    assert kv is not None and kv.mod_revision == int(rev), key
                    assert kv.value.decode() == value
            # the history holds every acknowledged write, and revisions continue after it
            history = await take_all(s, after=0)
            assert [e.revision for e in history] == list(range(1, s.current_revision() + 1))
            assert (await s.create("/after-crash", b"v")).mod_revision == \
                s.current_revision() > top
        finally:
            await s.close()
    asyncio.run(check())
