"""DNS messages: query bytes in, response bytes out (dnslib as the codec), no sockets.

`respond(data, zone, udp=...)` is everything between a received message and the bytes sent
back: it parses, checks the message is a well-formed single-question query, asks
records.answer, encodes, and fits the response to the transport:

- Over UDP a response may be 512 bytes, or the size the client advertises in EDNS(0) (capped at
  MAX_EDNS_UDP; we advertise EDNS_UDP ourselves). A larger response first loses its additional
  section (RFC 2181 §9 lets glue go without TC); if still too large it is sent as the header and
  question with TC set, and the client retries over TCP, where up to 65535 bytes go.
- Malformed input never raises: a message too short for a header, or a response, is dropped
  (None); one that fails to parse, or has other than one question, gets FORMERR; an opcode other
  than QUERY gets NOTIMP; a class other than IN (or ANY) gets REFUSED; an EDNS version other
  than 0 gets BADVERS.
"""

from __future__ import annotations

import logging

from dnslib import (AAAA, CNAME, EDNS0, NS, PTR, QTYPE, RR, SOA, SRV, TXT, A, DNSHeader,
                    DNSRecord)

from . import records
from .records import FORMERR, NOTIMP, REFUSED, Answer, Record, ZoneData

log = logging.getLogger(__name__)

PLAIN_UDP = 512         # RFC 1035 limit without EDNS
EDNS_UDP = 1232         # what we advertise (DNS flag day 2020 value)
MAX_EDNS_UDP = 4096     # never send more than this over UDP, whatever the client says
MAX_TCP = 65535
CLASS_IN, CLASS_ANY = 1, 255
BADVERS = 16


def _rdata(rec: Record):
    v = rec.value
    if rec.rtype == "A":
        return A(v)
    if rec.rtype == "AAAA":
        return AAAA(v)
    if rec.rtype == "SRV":
        prio, weight, port, target = v
        return SRV(prio, weight, port, target)
    if rec.rtype == "PTR":
        return PTR(v)
    if rec.rtype == "CNAME":
        return CNAME(v)
    if rec.rtype == "NS":
        return NS(v)
    if rec.rtype == "TXT":
        return TXT(v)
    if rec.rtype == "SOA":
        mname, rname, *times = v
        return SOA(mname, rname, tuple(times))
    raise ValueError(f"unknown record type {rec.rtype}")


def _rr(rec: Record) -> RR:
    return RR(rec.name, getattr(QTYPE, rec.rtype), CLASS_IN, rec.ttl, _rdata(rec))


def _reply(query: DNSRecord, rcode: int, *, aa: bool = False) -> DNSRecord:
    h = query.header
    return DNSRecord(DNSHeader(id=h.id, qr=1, opcode=h.opcode, aa=int(aa), rd=h.rd, ra=0,
                               rcode=rcode), q=query.q if query.questions else None)


def _error(data: bytes, rcode: int) -> bytes | None:
    """A bare error response echoing the id (and opcode, RD) of an unparsable message."""
    if len(data) < 12:
        return None
    flags = int.from_bytes(data[2:4], "big")
    if flags & 0x8000:          # a response: never answer those (no loops)
        return None
    out = (flags & 0x7900) | 0x8000 | rcode     # keep opcode and RD, set QR
    return data[:2] + out.to_bytes(2, "big") + bytes(8)


def respond(data: bytes, zone: ZoneData, *, udp: bool = True) -> bytes | None:
    """The response to the message `data`, or None to drop it."""
    if len(data) < 12:
        return None
    try:
        query = DNSRecord.parse(data)
    except Exception:            # dnslib raises several types on garbage; all mean FORMERR
        return _error(data, FORMERR)
    h = query.header
    if h.qr:
        return None
    if h.opcode != 0:
        return _error(data, NOTIMP)
    if len(query.questions) != 1:
        return _error(data, FORMERR)
    opt = next((rr for rr in query.ar if rr.rtype == QTYPE.OPT), None)
    limit = MAX_TCP
    if udp:
        limit = PLAIN_UDP if opt is None else max(PLAIN_UDP, min(opt.rclass, MAX_EDNS_UDP))
    q = query.q
    if opt is not None and (opt.ttl >> 16) & 0xFF != 0:
        # RFC 6891 §6.1.3: an EDNS version we do not speak gets BADVERS (16: extended rcode
        # 1 in the OPT record, 0 in the header) and our version, 0
        reply = _reply(query, 0)
        reply.add_ar(EDNS0(udp_len=EDNS_UDP, ext_rcode=BADVERS >> 4))
        return reply.pack()
    if q.qclass not in (CLASS_IN, CLASS_ANY):
        reply = _reply(query, REFUSED)
    else:
        try:
            ans = records.answer(zone, str(q.qname), QTYPE.get(q.qtype, str(q.qtype)))
        except Exception:
            log.exception("dns: answering %s failed", q.qname)
            ans = Answer(records.SERVFAIL, authoritative=False)
        reply = _reply(query, ans.rcode, aa=ans.authoritative)
        for r in ans.answer:
            reply.add_answer(_rr(r))
        for r in ans.authority:
            reply.add_auth(_rr(r))
        for r in ans.additional:
            reply.add_ar(_rr(r))
    if opt is not None:
        reply.add_ar(EDNS0(udp_len=EDNS_UDP))
    return _fit(reply, limit, opt is not None)


def _fit(reply: DNSRecord, limit: int, edns: bool) -> bytes:
    packed = reply.pack()
    if len(packed) <= limit:
        return packed
    reply.ar = [rr for rr in reply.ar if rr.rtype == QTYPE.OPT]
    reply.set_header_qa()
    packed = reply.pack()
    if len(packed) <= limit:
        return packed
    # Too big even without glue: header and question only, TC set; the client asks over TCP.
    short = DNSRecord(DNSHeader(id=reply.header.id, bitmap=reply.header.bitmap, tc=1),
                      q=reply.q)
    short.header.tc = 1
    if edns:
        short.add_ar(EDNS0(udp_len=EDNS_UDP))
    return short.pack()


class Responder:
    """`respond` with a cache of encoded responses, for the server's hot path.

    A response depends only on the query's bytes after its 2-byte id, the transport and the
    zone's state, and every change to the zone bumps `ZoneData.serial`: so responses are kept
    keyed by (transport, query bytes after the id), dropped wholesale when the serial moves,
    and served with the query's id put back. The cache is bounded (CACHE_ENTRIES, cleared when
    full; queries over CACHE_KEY_MAX bytes are not cached).
    """

    CACHE_ENTRIES = 4096
    CACHE_KEY_MAX = 512

    def __init__(self, zone: ZoneData):
        self.zone = zone
        self._serial = zone.serial
        self._cache: dict[tuple[bool, bytes], bytes] = {}
        self.hits = self.misses = 0

    def __call__(self, data: bytes, *, udp: bool = True) -> bytes | None:
        data = bytes(data)
        if self._serial != self.zone.serial:
            self._cache.clear()
            self._serial = self.zone.serial
        cacheable = 12 <= len(data) <= self.CACHE_KEY_MAX
        if cacheable:
            key = (udp, data[2:])
            hit = self._cache.get(key)
            if hit is not None:
                self.hits += 1
                return data[:2] + hit
        out = respond(data, self.zone, udp=udp)
        self.misses += 1
        if out is not None and cacheable:
            if len(self._cache) >= self.CACHE_ENTRIES:
                self._cache.clear()
            self._cache[key] = out[2:]
        return out
