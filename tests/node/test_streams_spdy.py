"""SPDY/3.1 framing for port-forward (k1s.node.streams.spdy): frames survive any split of the
byte stream, header blocks share one zlib stream per direction, data frames carry FIN."""

from __future__ import annotations

import struct
import zlib

from hypothesis import given, strategies as st

from k1s.node.streams import spdy


def test_dictionary_is_spdy3s():
    # its first word and its last bytes, and the size every SPDY/3 peer uses
    assert spdy.DICTIONARY[:11] == b"\x00\x00\x00\x07options"
    assert spdy.DICTIONARY.endswith(b",enq=0.") and len(spdy.DICTIONARY) == 1423


def test_syn_stream_headers_round_trip_over_one_compression_stream():
    client, server = spdy.Session(), spdy.Session()
    wire = b""
    for sid, kind in ((1, "error"), (3, "data"), (5, "error"), (7, "data")):
        wire += client.syn_stream(sid, {"streamType": kind, "port": "80",
                                        "requestID": str(sid // 4)})
    frames = server.feed(wire)
    assert [(f.type, f.stream_id, f.headers) for f in frames] == [
        (spdy.SYN_STREAM, sid, {"streamtype": kind, "port": "80", "requestid": str(sid // 4)})
        for sid, kind in ((1, "error"), (3, "data"), (5, "error"), (7, "data"))]
    # the later blocks reuse the shared zlib history: they are smaller than the first
    sizes = [len(client.syn_stream(9 + 2 * i, {"streamType": "data", "port": "80",
                                               "requestID": "9"})) for i in range(2)]
    assert sizes[1] <= sizes[0]


def test_syn_reply_with_an_empty_header_block():
    s, peer = spdy.Session(), spdy.Session()
    f, = peer.feed(s.syn_reply(3))
    assert (f.control, f.type, f.stream_id, f.headers) == (True, spdy.SYN_REPLY, 3, {})
    # what Go's spdystream reads: version 3, type 2, a count of 0 after inflating
    assert f.payload[:4] == struct.pack(">I", 3)
    inflated = zlib.decompressobj(zdict=spdy.DICTIONARY).decompress(f.payload[4:])
    assert inflated == b"\x00\x00\x00\x00"


@given(st.lists(st.tuples(st.integers(1, 1 << 20), st.binary(max_size=300), st.booleans()),
                max_size=12),
       st.lists(st.integers(1, 50), min_size=1, max_size=20))
def test_frames_survive_any_split(items, cuts):
    wire = b"".join(spdy.Session.data(sid, data, fin) for sid, data, fin in items)
    wire += spdy.Session.ping(b"\x00\x00\x00\x07")
    s = spdy.Session()
    frames, pos, i = [], 0, 0
    while pos < len(wire):
        n = cuts[i % len(cuts)]
        frames += s.feed(wire[pos:pos + n])
        pos += n
        i += 1
    assert [(f.stream_id, f.payload, f.fin) for f in frames[:-1]] == items
    assert (frames[-1].type, frames[-1].payload) == (spdy.PING, b"\x00\x00\x00\x07")


def test_large_data_is_split_into_frames_and_fin_only_on_the_last():
    payload = bytes(range(256)) * 1000
    frames = spdy.Session().feed(spdy.Session.data(3, payload, fin=True))
    assert len(frames) > 1
    assert b"".join(f.payload for f in frames) == payload
    assert [f.fin for f in frames] == [False] * (len(frames) - 1) + [True]


def test_rst_stream_names_its_stream():
    f, = spdy.Session().feed(spdy.Session.rst(5))
    assert (f.type, f.stream_id, f.payload[4:]) == (spdy.RST_STREAM, 5, struct.pack(">I", 5))
