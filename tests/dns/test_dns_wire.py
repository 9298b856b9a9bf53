"""wire.respond: the message layer. Malformed input never raises; sizes fit the transport
(TC over UDP, the whole answer over TCP); EDNS(0) is honoured."""

from __future__ import annotations

from dnslib import CLASS, EDNS0, QTYPE, DNSHeader, DNSQuestion, DNSRecord
from hypothesis import given
from hypothesis import strategies as st

from dns_objects import endpoint, endpoint_slice, nginx_objects, service
from k1s.dns.records import ZoneData
from k1s.dns.wire import EDNS_UDP, respond

BIG = "big.default.svc.cluster.local"


def zone() -> ZoneData:
    svc, sl = nginx_objects()
    big = service("big", cluster_ip="None")
    big_sl = endpoint_slice("big-1", "big", [endpoint(f"10.1.{i // 250}.{i % 250 + 1}",
                                                      f"big-{i}") for i in range(200)])
    return ZoneData.build([svc, big], [sl, big_sl])


def ask(data: ZoneData, name: str, qtype: str = "A", *, udp=True, edns: int | None = None):
    q = DNSRecord.question(name, qtype)
    if edns is not None:
        q.add_ar(EDNS0(udp_len=edns))
    raw = respond(q.pack(), data, udp=udp)
    return raw, DNSRecord.parse(raw), q


def test_answer_echoes_id_and_question():
    raw, r, q = ask(zone(), "WEB-0.nginx.default.svc.cluster.local")
    assert r.header.id == q.header.id and r.header.qr == 1 and r.header.aa == 1
    assert str(r.q.qname) == "WEB-0.nginx.default.svc.cluster.local."
    assert [(str(a.rname), str(a.rdata), a.ttl) for a in r.rr] == [
        ("WEB-0.nginx.default.svc.cluster.local.", "10.244.0.5", 5)]


def test_udp_answer_too_big_is_truncated_and_complete_over_tcp():
    data = zone()
    raw, r, _ = ask(data, BIG)
    assert len(raw) <= 512
    assert r.header.tc == 1 and not r.rr and str(r.q.qname) == BIG + "."
    raw, r, _ = ask(data, BIG, udp=False)
    assert r.header.tc == 0 and len(r.rr) == 200 and len(raw) > 512


def test_edns_raises_the_udp_limit():
    data = zone()
    # 200 A records are ~3.2 kB: within a 4096-byte EDNS buffer, not within 1232
    raw, r, _ = ask(data, BIG, edns=4096)
    assert r.header.tc == 0 and len(r.rr) == 200 and 512 < len(raw) <= 4096
    opt = [a for a in r.ar if a.rtype == QTYPE.OPT]
    assert opt and opt[0].rclass == EDNS_UDP
    raw, r, _ = ask(data, BIG, edns=1232)
    assert r.header.tc == 1 and len(raw) <= 1232


def many(n: int) -> ZoneData:
    return ZoneData.build([service("many", cluster_ip="None")],
                          [endpoint_slice("many-1", "many", [endpoint(f"10.2.0.{i}", f"m-{i}")
                                                             for i in range(1, n + 1)])])


def test_srv_glue_is_dropped_before_truncating():
    name = "_web._tcp.many.default.svc.cluster.local"
    # 7 SRV records with their 7 glue A records: 576 bytes; without the glue they fit in 512
    raw_tcp, full, _ = ask(many(7), name, "SRV", udp=False)
    assert len(raw_tcp) > 512 and len(full.rr) == 7 and len(full.ar) == 7
    raw, r, _ = ask(many(7), name, "SRV")
    assert len(raw) <= 512 and r.header.tc == 0 and len(r.rr) == 7 and not r.ar
    # 9 do not fit even without glue: TC, and the client retries over TCP
    raw, r, _ = ask(many(9), name, "SRV")
    assert r.header.tc == 1 and not r.rr


def test_two_questions_is_formerr():
    q = DNSRecord(DNSHeader(id=7), questions=[DNSQuestion("a.cluster.local"),
                                              DNSQuestion("b.cluster.local")])
    r = DNSRecord.parse(respond(q.pack(), zone()))
    assert r.header.id == 7 and r.header.rcode == 1


def test_no_question_is_formerr():
    q = DNSRecord(DNSHeader(id=8))
    r = DNSRecord.parse(respond(q.pack(), zone()))
    assert r.header.id == 8 and r.header.rcode == 1


def test_other_opcode_is_notimp():
    q = DNSRecord.question("nginx.default.svc.cluster.local")
    q.header.opcode = 2          # STATUS
    r = DNSRecord.parse(respond(q.pack(), zone()))
    assert r.header.rcode == 4


def test_chaos_class_is_refused():
    q = DNSRecord.question("version.bind", "TXT", "CH")
    r = DNSRecord.parse(respond(q.pack(), zone()))
    assert r.header.rcode == 5 and q.q.qclass == CLASS.CH


def test_outside_the_zone_is_refused_not_forwarded():
    raw, r, _ = ask(zone(), "example.com")
    assert r.header.rcode == 5 and r.header.aa == 0 and not r.rr


def test_responses_and_runts_are_dropped():
    data = zone()
    q = DNSRecord.question("nginx.default.svc.cluster.local")
    reply = q.reply()
    assert respond(reply.pack(), data) is None
    assert respond(b"", data) is None
    assert respond(b"\x00" * 11, data) is None


def test_garbage_after_header_is_formerr_with_the_id():
    r = DNSRecord.parse(respond(b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\xff",
                                zone()))
    assert r.header.id == 0x1234 and r.header.rcode == 1 and r.header.qr == 1


@given(st.binary(max_size=600))
def test_any_bytes_never_raise(data):
    out = respond(data, ZONE)
    if out is not None:
        r = DNSRecord.parse(out)
        assert r.header.qr == 1 and out[:2] == data[:2]


@given(st.binary(min_size=12, max_size=40))
def test_a_valid_query_with_mangled_tail_never_raises(tail):
    q = DNSRecord.question("web-0.nginx.default.svc.cluster.local").pack()
    for cut in (12, 20, len(q)):
        out = respond(q[:cut] + tail, ZONE)
        assert out is None or DNSRecord.parse(out).header.qr == 1


ZONE = zone()


def test_cached_responses_follow_the_zone_and_echo_the_id():
    from k1s.dns.wire import Responder
    data = ZoneData.build(*[[o] for o in nginx_objects()])
    cached = Responder(data)
    q = DNSRecord.question("web-1.nginx.default.svc.cluster.local")
    for qid in (1, 2):
        q.header.id = qid
        r = DNSRecord.parse(cached(q.pack()))
        assert r.header.id == qid and [str(a.rdata) for a in r.rr] == ["10.244.0.6"]
    assert cached.hits == 1
    svc, sl = nginx_objects()
    sl["endpoints"][1]["conditions"]["ready"] = False
    data.set_slice(sl)
    r = DNSRecord.parse(cached(q.pack()))
    assert r.header.rcode == 3 and not r.rr
    # UDP and TCP answers are cached apart (TC only over UDP)
    big = many(40)     # 40 A records: ~690 bytes
    cached = Responder(big)
    qb = DNSRecord.question("many.default.svc.cluster.local").pack()
    assert DNSRecord.parse(cached(qb)).header.tc == 1
    assert len(DNSRecord.parse(cached(qb, udp=False)).rr) == 40


def test_unknown_edns_version_is_badvers():
    q = DNSRecord.question("nginx.default.svc.cluster.local")
    q.add_ar(EDNS0(udp_len=4096, version=1))
    r = DNSRecord.parse(respond(q.pack(), ZONE))
    (opt,) = [a for a in r.ar if a.rtype == QTYPE.OPT]
    assert (opt.ttl >> 24) << 4 | r.header.rcode == 16 and not r.rr
