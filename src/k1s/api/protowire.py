"""The protobuf wire format, the little of it k1s needs without a protobuf library: varints and
the (field number, wire type, value) walk of a message, for decoding kubectl's protobuf bodies
(apiserver.protobuf) and the gRPC health messages of gRPC probes (node.grpcprobe).

Each field is a varint key `number << 3 | wire type`, then a varint (type 0), 8 bytes (type 1),
a varint length and that many bytes (type 2) or 4 bytes (type 5); groups (3, 4) are not used by
any message k1s reads.
"""

from __future__ import annotations

from typing import Any, Iterator

VARINT, I64, LEN, I32 = 0, 1, 2, 5


class Malformed(ValueError):
    """The bytes are not a well-formed protobuf message."""


def encode_varint(n: int) -> bytes:
    """A varint; a negative number as its 64-bit two's complement (ten bytes), as int64."""
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def read_varint(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    """The varint at buf[pos:end] and the position after it."""
    result = shift = 0
    while True:
        if pos >= end:
            raise Malformed("unexpected EOF")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise Malformed("integer overflow")


def fields(buf: bytes, pos: int, end: int) -> Iterator[tuple[int, int, Any]]:
    """Yield (field number, wire type, value) for each field in buf[pos:end].

    The value is an int for varint/64-bit/32-bit fields (fixed-width ones as unsigned little
    endian) and a bytes slice for length-delimited ones.
    """
    while pos < end:
        key, pos = read_varint(buf, pos, end)
        num, wt = key >> 3, key & 7
        if num == 0:
            raise Malformed("illegal field number 0")
        if wt == VARINT:
            val, pos = read_varint(buf, pos, end)
        elif wt == I64:
            if pos + 8 > end:
                raise Malformed("unexpected EOF")
            val = int.from_bytes(buf[pos:pos + 8], "little")
            pos += 8
        elif wt == LEN:
            n, pos = read_varint(buf, pos, end)
            if pos + n > end:
                raise Malformed("unexpected EOF")
            val = buf[pos:pos + n]
            pos += n
        elif wt == I32:
            if pos + 4 > end:
                raise Malformed("unexpected EOF")
            val = int.from_bytes(buf[pos:pos + 4], "little")
            pos += 4
        else:
            # Groups (3, 4) are not used by any Kubernetes message; 6 and 7 do not exist.
            raise Malformed(f"illegal wireType {wt} for field {num}")
        yield num, wt, val
