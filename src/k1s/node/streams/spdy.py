"""SPDY/3.1 framing, as much as kubectl's port-forward needs (moby/spdystream's dialect).

Frames (big-endian): a control frame is `0x80 0x03 | type:u16 | flags:u8 | length:u24 |
payload`; a data frame is `stream_id:u32 (top bit 0) | flags:u8 | length:u24 | payload`.
Header blocks (SYN_STREAM, SYN_REPLY, HEADERS) are `count:u32` then length-prefixed
name/value pairs, compressed by ONE zlib stream per direction for the whole connection, primed
with SPDY/3's fixed dictionary and sync-flushed after every block (so each side must keep its
compressor and decompressor for the connection's life: `Session` does).

`Parser.feed(bytes)` yields whole frames however the bytes were split (the WebSocket tunnel's
message boundaries mean nothing).
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS, PING, GOAWAY, HEADERS, WINDOW_UPDATE = \
    1, 2, 3, 4, 6, 7, 8, 9
FLAG_FIN = 0x01
RST_CANCEL = 5
MAX_FRAME = 1 << 24

_WORDS = ("options head post put delete trace accept accept-charset accept-encoding "
          "accept-language accept-ranges age allow authorization cache-control connection "
          "content-base content-encoding content-language content-length content-location "
          "content-md5 content-range content-type date etag expect expires from host if-match "
          "if-modified-since if-none-match if-range if-unmodified-since last-modified location "
          "max-forwards pragma proxy-authenticate proxy-authorization range referer retry-after "
          "server te trailer transfer-encoding upgrade user-agent vary via warning "
          "www-authenticate method get status").split() + \
    ["200 OK", "version", "HTTP/1.1", "url", "public", "set-cookie", "keep-alive", "origin"]
_TAIL = ("100101201202205206300302303304305306307402405406407408409410411412413414415416417"
         "502504505203 Non-Authoritative Information204 No Content301 Moved Permanently"
         "400 Bad Request401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error"
         "501 Not Implemented503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct "
         "Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,"
         "image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain,"
         "text/javascript,publicprivatemax-age=gzip,deflate,sdchcharset=utf-8"
         "charset=iso-8859-1,utf-,*,enq=0.")
# The SPDY/3 header-compression dictionary (draft-mbelshe-httpbis-spdy-00 §2.6.10.1): the
# length-prefixed common header words, then a run of common values.
DICTIONARY = b"".join(struct.pack(">I", len(w)) + w.encode() for w in _WORDS) + _TAIL.encode()
assert len(DICTIONARY) == 1423


@dataclass
class Frame:
    control: bool
    type: int = 0            # control frames
    stream_id: int = 0       # data frames, and the control frames that name a stream
    flags: int = 0
    payload: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def fin(self) -> bool:
        return bool(self.flags & FLAG_FIN)


class ProtocolError(Exception):
    pass


class Session:
    """One connection's framing state: a parser for what the peer sends and builders for what we
    send, each with its own zlib stream."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._inflate = zlib.decompressobj(zdict=DICTIONARY)
        self._deflate = zlib.compressobj(level=9, zdict=DICTIONARY)

    # -- reading ---------------------------------------------------------------------------------
    def feed(self, data: bytes) -> list[Frame]:
        self._buf += data
        out = []
        while len(self._buf) >= 8:
            length = int.from_bytes(self._buf[5:8], "big")
            if len(self._buf) < 8 + length:
                break
            head, payload = bytes(self._buf[:8]), bytes(self._buf[8:8 + length])
            del self._buf[:8 + length]
            out.append(self._frame(head, payload))
        return out

    def _frame(self, head: bytes, payload: bytes) -> Frame:
        flags = head[4]
        if not head[0] & 0x80:
            return Frame(False, stream_id=int.from_bytes(head[:4], "big") & 0x7FFFFFFF,
                         flags=flags, payload=payload)
        version = int.from_bytes(head[:2], "big") & 0x7FFF
        if version != 3:
            raise ProtocolError(f"unsupported SPDY version {version}")
        ftype = int.from_bytes(head[2:4], "big")
        f = Frame(True, type=ftype, flags=flags, payload=payload)
        if ftype in (SYN_STREAM, SYN_REPLY, HEADERS, RST_STREAM, WINDOW_UPDATE) and \
                len(payload) >= 4:
            f.stream_id = int.from_bytes(payload[:4], "big") & 0x7FFFFFFF
        if ftype == SYN_STREAM:
            f.headers = self._headers(payload[10:])
        elif ftype in (SYN_REPLY, HEADERS):
            f.headers = self._headers(payload[4:])
        return f

    def _headers(self, block: bytes) -> dict[str, str]:
        raw = self._inflate.decompress(block)
        if len(raw) < 4:
            return {}
        n = int.from_bytes(raw[:4], "big")
        pos, out = 4, {}
        for _ in range(n):
            ln = int.from_bytes(raw[pos:pos + 4], "big")
            name = raw[pos + 4:pos + 4 + ln].decode("latin-1")
            pos += 4 + ln
            lv = int.from_bytes(raw[pos:pos + 4], "big")
            value = raw[pos + 4:pos + 4 + lv].decode("latin-1")
            pos += 4 + lv
            out[name.lower()] = value       # a repeated header's values are NUL-joined
        return out

    # -- writing ---------------------------------------------------------------------------------
    def _block(self, headers: dict[str, str]) -> bytes:
        raw = struct.pack(">I", len(headers))
        for k, v in headers.items():
            kb, vb = k.lower().encode(), v.encode()
            raw += struct.pack(">I", len(kb)) + kb + struct.pack(">I", len(vb)) + vb
        return self._deflate.compress(raw) + self._deflate.flush(zlib.Z_SYNC_FLUSH)

    @staticmethod
    def control(ftype: int, payload: bytes, flags: int = 0) -> bytes:
        return struct.pack(">HHI", 0x8003, ftype, (flags << 24) | len(payload)) + payload

    def syn_reply(self, stream_id: int, headers: dict[str, str] | None = None,
                  flags: int = 0) -> bytes:
        return self.control(SYN_REPLY, struct.pack(">I", stream_id) + self._block(headers or {}),
                            flags)

    def syn_stream(self, stream_id: int, headers: dict[str, str], flags: int = 0) -> bytes:
        """(For tests and clients.)"""
        payload = struct.pack(">IIBB", stream_id, 0, 0, 0) + self._block(headers)
        return self.control(SYN_STREAM, payload, flags)

    @staticmethod
    def data(stream_id: int, payload: bytes, fin: bool = False) -> bytes:
        out = []
        # a data frame carries at most 2^24-1 bytes; stay well below for latency
        for i in range(0, max(len(payload), 1), 1 << 16):
            chunk = payload[i:i + (1 << 16)]
            last = fin and i + (1 << 16) >= len(payload)
            out.append(struct.pack(">II", stream_id & 0x7FFFFFFF,
                                   ((FLAG_FIN if last else 0) << 24) | len(chunk)) + chunk)
        return b"".join(out)

    @staticmethod
    def rst(stream_id: int, status: int = RST_CANCEL) -> bytes:
        return Session.control(RST_STREAM, struct.pack(">II", stream_id, status))

    @staticmethod
    def ping(payload: bytes) -> bytes:
        return Session.control(PING, payload)
