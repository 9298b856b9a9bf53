"""kubelet's atomic writer: after any sequence of updates the visible files are exactly the
latest payload (data and modes), and a reader looping on a file present in every version
never sees it missing or half-written while the updates happen."""

from __future__ import annotations

import os
import tempfile
import threading

import pytest
from hypothesis import given, settings, strategies as st

from k1s.node.podvolumes import atomic
from k1s.node.podvolumes.planner import FileEntry, Invalid

NAMES = st.sampled_from(["a", "b.conf", "dir/x", "dir/y", "deep/er/z", "k-1", "dir2/q"])
MODES = st.sampled_from([0o644, 0o400, 0o600, 0o755])


def payloads():
    entry = st.builds(FileEntry, st.binary(max_size=64), MODES)
    return st.dictionaries(NAMES, entry, max_size=6).filter(_no_conflicts)


def _no_conflicts(p):
    return not any(q.startswith(k + "/") for k in p for q in p)


def _writer_entries(target):
    return sorted(n for n in os.listdir(target) if n.startswith(".."))


@settings(max_examples=60, deadline=None)
@given(st.lists(payloads(), min_size=1, max_size=8))
def test_visible_files_equal_latest_payload(updates):
    with tempfile.TemporaryDirectory() as tmp:
        target = os.path.join(tmp, "vol")
        stable_values = []
        stop = threading.Event()
        seen_bad: list[str] = []

        def reader():
            path = os.path.join(target, "stable")
            while not stop.is_set():
                try:
                    with open(path, "rb") as f:
                        data = f.read()
                except FileNotFoundError:
                    if stable_values:          # once written, it is in every version
                        seen_bad.append("missing")
                    continue
                if data not in stable_values:
                    seen_bad.append(f"partial or unknown content {data[:20]!r}")
        t = threading.Thread(target=reader, daemon=True)
        previous = None
        try:
            for i, payload in enumerate(updates):
                value = f"version {i} ".encode() * 200       # large enough to tear if partial
                stable_values.append(value)
                full = dict(payload, stable=FileEntry(value, 0o644))
                changed = atomic.write(target, full)
                if i == 0:
                    t.start()
                assert changed            # the stable value changes every time
                assert atomic.visible(target) == full
                # invariant: ..data, the current version and at most the one it replaced
                entries = _writer_entries(target)
                assert "..data" in entries and "..data_tmp" not in entries
                assert len(entries) <= 3
                # writing the same payload again changes nothing
                assert atomic.write(target, full) is False
                assert atomic.visible(target) == full
                previous = full
        finally:
            stop.set()
            if t.is_alive():
                t.join()
        assert seen_bad == []
        assert previous is not None


def test_removed_names_disappear_and_nested_dirs_follow():
    with tempfile.TemporaryDirectory() as tmp:
        atomic.write(tmp, {"a": FileEntry(b"1"), "d/x": FileEntry(b"2"), "d/y": FileEntry(b"3")})
        atomic.write(tmp, {"d/y": FileEntry(b"4", 0o600)})
        assert atomic.visible(tmp) == {"d/y": FileEntry(b"4", 0o600)}
        assert not os.path.lexists(os.path.join(tmp, "a"))
        assert os.readlink(os.path.join(tmp, "d")) == "..data/d"
        atomic.write(tmp, {})
        assert atomic.visible(tmp) == {}


@pytest.mark.parametrize("bad", ["../escape", "/abs", "..data", "a/../../b"])
def test_writer_refuses_escaping_paths(bad):
    with tempfile.TemporaryDirectory() as tmp:
        target = os.path.join(tmp, "vol")
        with pytest.raises(Invalid):
            atomic.write(target, {bad: FileEntry(b"x")})
        assert not os.path.exists(os.path.join(tmp, "escape"))
        assert not os.path.exists(os.path.join(tmp, "b"))


def test_writer_heals_a_missing_link():
    with tempfile.TemporaryDirectory() as tmp:
        atomic.write(tmp, {"a": FileEntry(b"1")})
        os.unlink(os.path.join(tmp, "a"))      # a crash between the swap and the links
        assert atomic.write(tmp, {"a": FileEntry(b"1")}) is False
        assert atomic.visible(tmp) == {"a": FileEntry(b"1")}
