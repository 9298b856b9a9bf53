"""Benchmark of the SQLite store: writes/s (sequential and 64 concurrent creates) and point
gets/s, each beside a reference measured in the same run: raw stdlib sqlite3 called inline on
the loop (blocking it), one commit per write (the same insert + log append), and a raw inline
point get.

    python bench/bench_store.py [--runs 5] [--writes 3000] [--uvloop]

Prints the median of several runs. Values are a 3.8 KB JSON document (a typical Pod).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sqlite3
import statistics
import tempfile
import time

from k1s.store import SqliteStore

VALUE = (b'{"kind":"Pod","apiVersion":"v1","metadata":{"name":"web-0"},"spec":'
         + b'"' + b"x" * 3_700 + b'"}')
CONCURRENCY = 64


async def store_sequential(path: str, n: int) -> float:
    async with SqliteStore(path, compact_interval=None) as s:
        t = time.perf_counter()
        for i in range(n):
            await s.create(f"/registry/pods/default/p{i}", VALUE)
        return n / (time.perf_counter() - t)


async def store_concurrent(path: str, n: int) -> float:
    async with SqliteStore(path, compact_interval=None) as s:
        per = n // CONCURRENCY

        async def worker(w: int) -> None:
            for i in range(per):
                await s.create(f"/registry/pods/ns{w}/p{i}", VALUE)
        t = time.perf_counter()
        await asyncio.gather(*(worker(w) for w in range(CONCURRENCY)))
        return per * CONCURRENCY / (time.perf_counter() - t)


async def store_gets(path: str, n: int, keys: int) -> float:
    async with SqliteStore(path, compact_interval=None) as s:
        await asyncio.gather(*(s.create(f"/registry/pods/default/p{i}", VALUE)
                               for i in range(keys)))
        rnd = random.Random(1)
        names = [f"/registry/pods/default/p{rnd.randrange(keys)}" for _ in range(n)]
        t = time.perf_counter()
        for k in names:
            await s.get(k)
        return n / (time.perf_counter() - t)


def raw_connect(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.executescript(
        "CREATE TABLE kv (key TEXT PRIMARY KEY, value BLOB, create_revision INTEGER, "
        "mod_revision INTEGER, version INTEGER);"
        "CREATE TABLE log (revision INTEGER PRIMARY KEY, key TEXT, type INTEGER, value BLOB);")
    return conn


async def raw_sequential(path: str, n: int) -> float:
    conn = raw_connect(path)
    t = time.perf_counter()
    for i in range(n):
        key = f"/registry/pods/default/p{i}"
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO kv VALUES (?, ?, ?, ?, 1)", (key, VALUE, i + 1, i + 1))
        conn.execute("INSERT INTO log VALUES (?, ?, 0, ?)", (i + 1, key, VALUE))
        conn.execute("COMMIT")
    rate = n / (time.perf_counter() - t)
    conn.close()
    return rate


async def raw_gets(path: str, n: int, keys: int) -> float:
    conn = raw_connect(path)
    conn.execute("BEGIN")
    for i in range(keys):
        conn.execute("INSERT INTO kv VALUES (?, ?, 1, 1, 1)", (f"/registry/pods/default/p{i}",
                                                               VALUE))
    conn.execute("COMMIT")
    rnd = random.Random(1)
    names = [f"/registry/pods/default/p{rnd.randrange(keys)}" for _ in range(n)]
    t = time.perf_counter()
    for k in names:
        conn.execute("SELECT value, create_revision, mod_revision, version FROM kv "
                     "WHERE key = ?", (k,)).fetchone()
    rate = n / (time.perf_counter() - t)
    conn.close()
    return rate


async def median_of(runs: int, bench, *args) -> float:
    rates = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as d:
            rates.append(await bench(os.path.join(d, "bench.db"), *args))
    return statistics.median(rates)


async def main(args: argparse.Namespace) -> None:
    n, r = args.writes, args.runs
    rows = [
        ("creates, sequential (SqliteStore)", await median_of(r, store_sequential, n)),
        ("creates, 64 concurrent (SqliteStore)", await median_of(r, store_concurrent, n * 3)),
        ("reference: raw sqlite3 inline, commit per write",
         await median_of(r, raw_sequential, n)),
        ("point gets (SqliteStore)", await median_of(r, store_gets, n * 5, 2_000)),
        ("reference: raw sqlite3 inline point get", await median_of(r, raw_gets, n * 5, 2_000)),
    ]
    loop_name = "uvloop" if args.uvloop else "asyncio"
    print(f"k1s store benchmark ({loop_name}, value {len(VALUE)} bytes, median of {r} runs)")
    for name, rate in rows:
        print(f"  {name:<52} {rate:>10,.0f} /s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--writes", type=int, default=3_000)
    parser.add_argument("--uvloop", action="store_true")
    ns = parser.parse_args()
    if ns.uvloop:
        import uvloop
        uvloop.install()
    asyncio.run(main(ns))
