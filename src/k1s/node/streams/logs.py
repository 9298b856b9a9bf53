"""Reading a container's CRI-format log files (`<RFC3339Nano> <stream> <F|P> <content>`, as
the runtime's monitor writes them) the way `kubectl logs` asks: tail, since, timestamps,
limitBytes, follow.

Pure parts (`parse_record`, `select`, `render`) hold the rules; `stream_logs` is the only part
that touches files and the clock. A `P` record is part of a line that goes on in the next record,
so it is written without a newline and `tailLines` counts only completed (`F`) lines.
"""

from __future__ import annotations

import asyncio
import calendar
import os
from dataclasses import dataclass
from typing import AsyncIterator, Callable

FOLLOW_POLL = 0.1        # seconds between looks at a followed file


@dataclass(frozen=True)
class Record:
    ts: str              # as written (RFC3339 with 9 fraction digits)
    ns: int              # the same, nanoseconds since the epoch
    stream: str          # stdout | stderr
    partial: bool
    content: bytes


@dataclass(frozen=True)
class Options:
    tail: int | None = None
    since_ns: int | None = None
    timestamps: bool = False
    limit_bytes: int | None = None
    follow: bool = False


def parse_time(ts: str) -> int:
    """RFC3339 (`...Z` or `+hh:mm`, any fraction) -> nanoseconds since the epoch."""
    ts = ts.strip()
    off = 0
    if ts.endswith("Z") or ts.endswith("z"):
        body = ts[:-1]
    else:
        sign = 1 if ts[-6] == "+" else -1
        off = sign * (int(ts[-5:-3]) * 3600 + int(ts[-2:]) * 60)
        body = ts[:-6]
    frac = 0
    if "." in body:
        body, f = body.split(".", 1)
        frac = int((f + "000000000")[:9])
    secs = calendar.timegm((int(body[0:4]), int(body[5:7]), int(body[8:10]),
                            int(body[11:13]), int(body[14:16]), int(body[17:19]), 0, 0, 0))
    return (secs - off) * 1_000_000_000 + frac


def parse_record(line: bytes) -> Record | None:
    """One line of the file (without its newline); None for a malformed one."""
    parts = line.split(b" ", 3)
    if len(parts) < 3:
        return None
    try:
        ts = parts[0].decode()
        ns = parse_time(ts)
    except (ValueError, IndexError, UnicodeDecodeError):
        return None
    content = parts[3] if len(parts) == 4 else b""
    return Record(ts, ns, parts[1].decode(errors="replace"), parts[2] == b"P", content)


def go_rfc3339nano(ts: str) -> str:
    """Go's RFC3339Nano drops trailing zeros of the fraction (kubelet formats it that way)."""
    if "." not in ts:
        return ts
    head, rest = ts.split(".", 1)
    frac, zone = rest[:-1], rest[-1:]
    frac = frac.rstrip("0")
    return f"{head}.{frac}{zone}" if frac else f"{head}{zone}"


def select(records: list[Record], opts: Options) -> list[Record]:
    """The records to show: newer than `since`, then the last `tail` lines."""
    out = [r for r in records if opts.since_ns is None or r.ns >= opts.since_ns]
    if opts.tail is not None:
        if opts.tail <= 0:
            return []
        lines = 0
        start = len(out)
        for i in range(len(out) - 1, -1, -1):
            if not out[i].partial:
                lines += 1
                if lines > opts.tail:
                    break
            start = i
        out = out[start:]
    return out


def render(r: Record, opts: Options, at_line_start: bool) -> bytes:
    prefix = (go_rfc3339nano(r.ts).encode() + b" ") if opts.timestamps and at_line_start else b""
    return prefix + r.content + (b"" if r.partial else b"\n")


def files_of(path: str) -> list[str]:
    """The rotated files (path.N ... path.1) oldest first, then path itself."""
    rotated = []
    i = 1
    while os.path.exists(f"{path}.{i}"):
        rotated.append(f"{path}.{i}")
        i += 1
    return list(reversed(rotated)) + ([path] if os.path.exists(path) else [])


def _read_records(path: str) -> tuple[list[Record], int]:
    """Every whole record of a file, and the offset after the last one."""
    with open(path, "rb") as f:
        data = f.read()
    end = data.rfind(b"\n") + 1
    recs = [r for r in (parse_record(ln) for ln in data[:end].split(b"\n")[:-1]) if r]
    return recs, end


async def stream_logs(path: str, opts: Options,
                      finished: Callable[[], bool]) -> AsyncIterator[bytes]:
    """Chunks of the rendered log. With follow, keeps reading `path` until `finished()` says
    the container is gone and nothing new is left."""
    records: list[Record] = []
    files = files_of(path)
    offset = 0
    for p in files:
        recs, end = _read_records(p)
        records += recs
        if p == path:
            offset = end
    budget = opts.limit_bytes
    line_start = True

    def emit(recs: list[Record]) -> tuple[bytes, bool]:
        nonlocal budget, line_start
        out = bytearray()
        for r in recs:
            out += render(r, opts, line_start)
            line_start = not r.partial
        if budget is not None:
            out = out[:budget]
            budget -= len(out)
        return bytes(out), budget is not None and budget <= 0

    chunk, done = emit(select(records, opts))
    if chunk:
        yield chunk
    if done or not opts.follow:
        return
    # Follow through an open descriptor: after a rotation the old file (now path.1) is drained
    # to its end before the new path is opened, so no line is lost in between.
    f = _open_at(path, offset)
    try:
        pending = b""
        while True:
            stop = finished()           # before reading: a last write is not missed
            data = f.read() if f is not None else b""
            if not data:
                cur = _inode(path)
                if cur is not None and (f is None or cur != os.fstat(f.fileno()).st_ino):
                    rest = f.read() if f is not None else b""
                    if f is not None:
                        f.close()
                    f = _open_at(path, 0)
                    if not rest:
                        continue        # read the new file before deciding to stop
                    data = rest
            if data:
                pending += data
                end = pending.rfind(b"\n") + 1
                if end:
                    recs = [r for r in (parse_record(ln)
                                        for ln in pending[:end].split(b"\n")[:-1]) if r]
                    pending = pending[end:]
                    if opts.since_ns is not None:
                        recs = [r for r in recs if r.ns >= opts.since_ns]
                    chunk, done = emit(recs)
                    if chunk:
                        yield chunk
                    if done:
                        return
                continue
            if stop:
                return
            await asyncio.sleep(FOLLOW_POLL)
    finally:
        if f is not None:
            f.close()


def _open_at(path: str, offset: int):
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        return None
    f.seek(offset)
    return f


def _inode(path: str) -> int | None:
    try:
        return os.stat(path).st_ino
    except FileNotFoundError:
        return None
