"""The node stream server's own protocol, below kubectl: the v5 channel frames of exec (the
exit Status on channel 3, a normal close), a tty with resizes, /dev/null stdin without -i,
refusals as Status JSON before any upgrade, and SPDY PING over the port-forward tunnel."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest

from k1s.node.streams import spdy
from k1s.node.streams.server import StreamServer

from runtime_util import needs_root, pod, runtime, sh  # noqa: F401 - runtime: a fixture

pytestmark = needs_root
TIMEOUT = 30.0


@pytest.fixture
async def node(runtime):  # noqa: F811
    rt = runtime()
    p = pod("web-0", [sh("main", "exec sleep 100000")])
    rt.start_sync(p)
    server = StreamServer(rt.data_dir)
    await server.start()
    try:
        yield server, p["metadata"]["uid"]
    finally:
        await server.stop()


async def _session(url: str, *frames: bytes, proto: str = "v5.channel.k8s.io"):
    """Send `frames`, collect every message until the server closes."""
    got = []
    async with aiohttp.ClientSession() as s:
        async with s.ws_connect(url, protocols=(proto,)) as ws:
            assert ws.protocol == proto
            for f in frames:
                await ws.send_bytes(f)
            async for msg in ws:
                assert msg.type == aiohttp.WSMsgType.BINARY
                got.append(msg.data)
            return got, ws.close_code


def _channels(msgs: list[bytes]) -> dict[int, bytes]:
    out: dict[int, bytes] = {}
    for m in msgs:
        out[m[0]] = out.get(m[0], b"") + m[1:]
    return out


async def test_exit_status_on_channel_3_then_a_normal_close(node):
    server, uid = node
    url = (f"http://{server.endpoint}/exec/default/web-0/{uid}/main?command=sh&command=-c"
           f"&command=echo+out;echo+err>%262;exit+3&stdout=true&stderr=true")
    msgs, code = await asyncio.wait_for(_session(url), TIMEOUT)
    ch = _channels(msgs)
    assert (ch[1], ch[2], code) == (b"out\n", b"err\n", 1000)
    assert msgs[-1][0] == 3                       # the status comes last
    assert json.loads(ch[3]) == {
        "metadata": {}, "status": "Failure", "reason": "NonZeroExitCode",
        "message": json.loads(ch[3])["message"],
        "details": {"causes": [{"reason": "ExitCode", "message": "3"}]}}

    url = f"http://{server.endpoint}/exec/default/web-0/{uid}/main?command=cat&stdout=true"
    msgs, code = await asyncio.wait_for(_session(url), TIMEOUT)  # stdin is /dev/null
    assert json.loads(_channels(msgs)[3]) == {"metadata": {}, "status": "Success"}


async def test_tty_applies_resizes_and_close_of_stdin(node):
    server, uid = node
    url = (f"http://{server.endpoint}/exec/default/web-0/{uid}/main?command=sh&command=-c"
           f"&command=read+x;stty+size;cat&stdin=true&stdout=true&tty=true")
    msgs, code = await asyncio.wait_for(_session(
        url, b"\x04" + b'{"Width":100,"Height":40}\n', b"\x00go\n", b"\xff\x00"), TIMEOUT)
    ch = _channels(msgs)
    assert 2 not in ch                            # a tty has one output stream
    assert b"40 100" in ch[1]
    # closing stdin sent ^D: cat ended and the shell with it
    assert json.loads(ch[3])["status"] == "Success"


async def test_refusals_are_status_json_before_any_upgrade(node):
    server, uid = node
    async with aiohttp.ClientSession() as s:
        async with s.get(f"http://{server.endpoint}/exec/default/web-0/{uid}/nope"
                         f"?command=true") as r:
            assert r.status == 404
            assert (await r.json())["message"] == 'container not found ("nope")'
        async with s.get(f"http://{server.endpoint}/exec/default/web-0/{uid}/main"
                         f"?command=true") as r:
            assert r.status == 400
            assert (await r.json())["message"] == "Upgrade request required"
        async with s.get(f"http://{server.endpoint}/containerLogs/default/web-0/{uid}/main"
                         f"?tailLines=x") as r:
            assert r.status == 400 and "tailLines" in (await r.json())["message"]


async def test_port_forward_answers_ping_and_syn_stream(node):
    server, uid = node
    client = spdy.Session()
    url = f"http://{server.endpoint}/portForward/default/web-0/{uid}"
    async with aiohttp.ClientSession() as s:
        async with s.ws_connect(url, protocols=("SPDY/3.1+portforward.k8s.io",)) as ws:
            await ws.send_bytes(spdy.Session.ping(b"\x00\x00\x00\x01") +
                                client.syn_stream(1, {"streamType": "error", "port": "9",
                                                      "requestID": "0"}))
            frames = []
            while len(frames) < 2:
                msg = await asyncio.wait_for(ws.receive(), TIMEOUT)
                frames += client.feed(msg.data)
            assert (frames[0].type, frames[0].payload) == (spdy.PING, b"\x00\x00\x00\x01")
            assert (frames[1].type, frames[1].stream_id) == (spdy.SYN_REPLY, 1)
