"""Times as Kubernetes writes them: RFC 3339 timestamps and kubectl's short ages (`5m30s`, `2d`).

`human_duration` follows upstream's duration.HumanDuration, the function behind every AGE column:
about two significant units, with the second unit shown only while it is still informative.

    < 2m        seconds           "59s", "119s"
    < 10m       minutes+seconds   "5m", "5m30s"
    < 3h        minutes           "10m", "179m"
    < 8h        hours+minutes     "3h", "7h59m"
    < 2d        hours             "8h", "47h"
    < 8d        days+hours        "2d", "7d23h"
    < 2y        days              "8d", "729d"
    < 8y        years+days        "2y", "7y364d"
    otherwise   years             "8y"

A duration a little below zero (clock skew up to 2s) reads as "0s"; anything more negative is
"<invalid>".
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

__all__ = ["human_duration", "translate_since", "rfc3339", "rfc3339_micro", "parse_rfc3339",
           "now_rfc3339"]


def _units(big: int, big_unit: str, small: int, small_unit: str) -> str:
    # Two units, the second left out when it is zero ("5m", "5m30s").
    return f"{big}{big_unit}" if small == 0 else f"{big}{big_unit}{small}{small_unit}"


def human_duration(seconds: float) -> str:
    # Go truncates toward zero at every step; int() does the same.
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        return _units(minutes, "m", s % 60, "s")
    if minutes < 180:
        return f"{minutes}m"
    hours = s // 3600
    if hours < 8:
        return _units(hours, "h", minutes % 60, "m")
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return _units(hours // 24, "d", hours % 24, "h")
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        return _units(hours // 24 // 365, "y", (hours // 24) % 365, "d")
    return f"{hours // 24 // 365}y"


def translate_since(timestamp: str | None, now: float) -> str:
    """An AGE cell: the time since an RFC 3339 timestamp, or `<unknown>` when it is unset."""
    if not timestamp:
        return "<unknown>"
    try:
        t = parse_rfc3339(timestamp)
    except ValueError:
        return "<unknown>"
    return human_duration(now - t)


def rfc3339(ts: float) -> str:
    """metav1.Time: whole seconds, UTC, `Z` suffix (`2024-05-01T12:00:00Z`)."""
    return datetime.fromtimestamp(int(ts // 1), tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def rfc3339_micro(ts: float) -> str:
    """metav1.MicroTime: microseconds, UTC (`2024-05-01T12:00:00.123456Z`)."""
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def now_rfc3339() -> str:
    return rfc3339(datetime.now(tz=timezone.utc).timestamp())


_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


def parse_rfc3339(s: str) -> float:
    """Seconds since the epoch for an RFC 3339 timestamp (any fraction, `Z` or an offset)."""
    m = _RFC3339.match(s)
    if not m:
        raise ValueError(f"invalid RFC 3339 timestamp: {s!r}")
    year, month, day, hh, mm, ss = (int(g) for g in m.groups()[:6])
    frac = float(m.group(7)) if m.group(7) else 0.0
    zone = m.group(8)
    tz = timezone.utc
    if zone not in ("Z", "z"):
        sign = 1 if zone[0] == "+" else -1
        tz = timezone(sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6])))
    dt = datetime(year, month, day, hh, mm, ss, tzinfo=tz)
    return dt.timestamp() + frac
