"""The CRI log reading rules of `kubectl logs` (k1s.node.streams.logs): parsing records,
tail/since selection, timestamps as Go's RFC3339Nano, limitBytes, and following a file that
is still written and rotated."""

from __future__ import annotations

import asyncio
import os

import pytest
from hypothesis import given, strategies as st

from k1s.node.runtime.process import LogWriter, rfc3339nano
from k1s.node.streams import logs
from k1s.node.streams.logs import Options, Record


def rec(i: int, content: str, partial: bool = False, stream: str = "stdout") -> Record:
    ns = 1_700_000_000_000_000_000 + i * 1_000_000_000
    return Record(rfc3339nano(ns), ns, stream, partial, content.encode())


def text(records: list[Record], opts: Options = Options()) -> str:
    out, start = b"", True
    for r in logs.select(records, opts):
        out += logs.render(r, opts, start)
        start = not r.partial
    return out.decode()


@pytest.mark.parametrize("line,want", [
    (b"2026-12-04T10:00:00.123456789Z stdout F hello world",
     ("stdout", False, b"hello world", 1796378400123456789)),
    (b"2026-12-04T10:00:00.5Z stderr P part", ("stderr", True, b"part", 1796378400500000000)),
    (b"2026-12-04T10:00:00Z stdout F ", ("stdout", False, b"", 1796378400000000000)),
    (b"2026-12-04T12:00:00+02:00 stdout F x", ("stdout", False, b"x", 1796378400000000000)),
])
def test_parse_record(line, want):
    r = logs.parse_record(line)
    assert (r.stream, r.partial, r.content, r.ns) == want


@pytest.mark.parametrize("line", [b"", b"garbage", b"notatime stdout F x", b"2026-12-04T10"])
def test_malformed_records_are_skipped(line):
    assert logs.parse_record(line) is None


@pytest.mark.parametrize("ts,want", [
    ("2026-12-04T10:00:00.123456789Z", "2026-12-04T10:00:00.123456789Z"),
    ("2026-12-04T10:00:00.120000000Z", "2026-12-04T10:00:00.12Z"),
    ("2026-12-04T10:00:00.000000000Z", "2026-12-04T10:00:00Z"),
])
def test_timestamps_are_go_rfc3339nano(ts, want):
    assert logs.go_rfc3339nano(ts) == want


RECS = [rec(0, "a"), rec(1, "b1", partial=True), rec(2, "b2"), rec(3, "c")]


@pytest.mark.parametrize("opts,want", [
    (Options(), "a\nb1b2\nc\n"),
    (Options(tail=1), "c\n"),
    (Options(tail=2), "b1b2\nc\n"),           # a partial record belongs to the next line
    (Options(tail=10), "a\nb1b2\nc\n"),
    (Options(tail=0), ""),
    (Options(since_ns=RECS[3].ns), "c\n"),
    (Options(since_ns=RECS[3].ns + 1), ""),
])
def test_select(opts, want):
    assert text(RECS, opts) == want


def test_timestamps_prefix_each_line_once():
    out = text(RECS, Options(timestamps=True, tail=2))
    lines = out.splitlines()
    assert lines == [f"{logs.go_rfc3339nano(RECS[1].ts)} b1b2",
                     f"{logs.go_rfc3339nano(RECS[3].ts)} c"]


lines_st = st.lists(st.tuples(st.text("xyz", max_size=4), st.booleans()), max_size=30)


@given(lines_st, st.integers(min_value=0, max_value=40))
def test_tail_is_a_suffix_with_at_most_n_lines(items, n):
    recs = [rec(i, c, partial=p) for i, (c, p) in enumerate(items)]
    full = text(recs)
    got = text(recs, Options(tail=n))
    assert full.endswith(got)
    assert got.count("\n") == min(n, full.count("\n"))
    # it starts at a line start: nothing is cut in the middle of a line
    assert got == "" or len(got) == len(full) or full[len(full) - len(got) - 1] == "\n"


@given(lines_st, st.integers(min_value=0, max_value=31))
def test_since_keeps_exactly_the_newer_records(items, k):
    recs = [rec(i, c, partial=p) for i, (c, p) in enumerate(items)]
    since = rec(k, "").ns
    got = logs.select(recs, Options(since_ns=since))
    assert got == [r for r in recs if r.ns >= since]


def _collect(path, opts, finished):
    async def run():
        out = b""
        async for chunk in logs.stream_logs(path, opts, finished):
            out += chunk
        return out
    return asyncio.run(asyncio.wait_for(run(), 30))


def test_reads_rotated_files_in_order_and_limit_bytes(tmp_path):
    path = str(tmp_path / "0.log")
    w = LogWriter(path, max_bytes=200, max_files=5)
    for i in range(12):
        w.feed("stdout", f"line {i:02d}\n".encode())
    w.close()
    assert os.path.exists(path + ".1")
    out = _collect(path, Options(), lambda: True).decode()
    assert out == "".join(f"line {i:02d}\n" for i in range(12))
    assert _collect(path, Options(limit_bytes=10), lambda: True) == b"line 00\nli"


def test_follow_sees_lines_written_later_and_across_rotation(tmp_path):
    path = str(tmp_path / "0.log")
    w = LogWriter(path, max_bytes=150, max_files=3)   # three records a file
    w.feed("stdout", b"first\n")
    done = {"v": False}
    got = bytearray()

    async def run():
        async def writer():
            # pairs of lines, the next pair once the reader has the last: a pair rotates the
            # file at most once, sometimes between the reader's looks
            for k in range(6):
                w.feed("stdout", f"later {2 * k}\n".encode())
                w.feed("stdout", f"later {2 * k + 1}\n".encode())
                while not got.endswith(f"later {2 * k + 1}\n".encode()):
                    await asyncio.sleep(0.005)
            w.close()
            done["v"] = True
        t = asyncio.create_task(writer())
        async for chunk in logs.stream_logs(path, Options(follow=True), lambda: done["v"]):
            got.extend(chunk)
        await t
    asyncio.run(asyncio.wait_for(run(), 30))
    assert os.path.exists(path + ".1")
    # every line once, in order, the ones written to the file rotated away included
    assert got.decode() == "first\n" + "".join(f"later {i}\n" for i in range(12))
