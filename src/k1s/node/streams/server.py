"""The node's stream server (kubelet's streaming endpoints): aiohttp on 127.0.0.1, a random
port, advertised on the Node as `status.daemonEndpoints.kubeletEndpoint.Port` (the host is
always 127.0.0.1: the root namespace may connect only to loopback). Only the API server talks
to it; it proxies kubectl's requests here.

Paths (kubelet's, plus the pod uid so a recreated pod of the same name is never mixed up):
- `GET /exec/{ns}/{pod}/{uid}/{container}?command=..&stdin&stdout&stderr&tty` and
  `GET /attach/...` (same query): WebSocket, subprotocol `v5.channel.k8s.io`;
- `GET /portForward/{ns}/{pod}/{uid}`: WebSocket `SPDY/3.1+portforward.k8s.io`, whose binary
  messages carry one raw SPDY/3.1 byte stream each way;
- `GET /containerLogs/{ns}/{pod}/{uid}/{container}?follow&tailLines&sinceSeconds&sinceTime&
  timestamps&previous&limitBytes`: text/plain, streamed.

Containers are found from the runtime's files (`process.read_state`, `sandbox.load_holder`),
so the server needs only the data directory and works for pods adopted after a restart.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import socket
import time

from aiohttp import WSMsgType, web

from ..network import forward
from ..runtime import process, sandbox
from . import exec as execmod, logs, spdy

log = logging.getLogger(__name__)

EXEC_PROTOCOL = "v5.channel.k8s.io"
PORTFORWARD_PROTOCOL = "SPDY/3.1+portforward.k8s.io"
STDIN, STDOUT, STDERR, ERROR, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255


def status_json(code: int, reason: str, message: str) -> web.Response:
    body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}
    return web.Response(body=json.dumps(body).encode(), status=code,
                        content_type="application/json")


def _bool(v: str | None) -> bool:
    return (v or "").lower() in ("true", "1", "yes")


def exit_status(code: int, argv: list[str] | None = None) -> dict:
    """The v4/v5 error-channel Status for an exit code (kubectl exits with the ExitCode cause)."""
    if code == 0:
        return {"metadata": {}, "status": "Success"}
    return {"metadata": {}, "status": "Failure",
            "message": f"command terminated with non-zero exit code: error executing command "
                       f"[{' '.join(argv or [])}], exit code {code}",
            "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]}}


class StreamServer:
    def __init__(self, data_dir: str, host: str = "127.0.0.1", port: int = 0):
        self.data_dir = os.path.realpath(data_dir)
        self.host, self.port = host, port
        self._runner: web.AppRunner | None = None

    @property
    def endpoint(self) -> str:
        return f"{self.host}:{self.port}"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/exec/{ns}/{pod}/{uid}/{container}", self.exec)
        app.router.add_get("/attach/{ns}/{pod}/{uid}/{container}", self.attach)
        app.router.add_get("/portForward/{ns}/{pod}/{uid}", self.port_forward)
        app.router.add_get("/containerLogs/{ns}/{pod}/{uid}/{container}", self.logs)
        sock = socket.socket(socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False,
                                     shutdown_timeout=0.25, handler_cancellation=True)
        await self._runner.setup()
        await web.SockSite(self._runner, sock).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # -- lookups ---------------------------------------------------------------------------------
    def _state(self, request: web.Request) -> process.ContainerState | web.Response:
        """The running container a request names, or the refusal to answer with (also for a
        request that is no WebSocket upgrade, after the container checks: the API server asks
        that way to learn why an upgrade failed)."""
        m = request.match_info
        try:
            st = process.read_state(self.data_dir, m["uid"], m["container"])
        except ValueError:
            st = None
        if st is None or not st.running:
            return status_json(404, "NotFound", f'container not found ("{m["container"]}")')
        if not _is_upgrade(request):
            return status_json(400, "BadRequest", "Upgrade request required")
        return st

    # -- exec / attach ---------------------------------------------------------------------------
    async def exec(self, request: web.Request) -> web.StreamResponse:
        st = self._state(request)
        if isinstance(st, web.Response):
            return st
        q = request.query
        argv = q.getall("command", [])
        tty, stdin = _bool(q.get("tty")), _bool(q.get("stdin"))
        ws = web.WebSocketResponse(protocols=(EXEC_PROTOCOL,), autoping=True, max_msg_size=0)
        await ws.prepare(request)
        try:
            m = request.match_info
            ex = await execmod.spawn(st.pid, argv, stdin=stdin, tty=tty,
                                     stderr=_bool(q.get("stderr")) and not tty,
                                     env=process.read_env(self.data_dir, m["uid"],
                                                          m["container"]),
                                     user=process.read_identity(self.data_dir, m["uid"],
                                                                m["container"]))
        except OSError as e:
            msg = (f'exec: "{argv[0] if argv else ""}": executable file not found in $PATH'
                   if isinstance(e, FileNotFoundError) else str(e))
            await _send(ws, ERROR, json.dumps({
                "metadata": {}, "status": "Failure", "reason": "InternalError",
                "message": f"Internal error occurred: error executing command in container: "
                           f"{msg}"}).encode())
            await ws.close()
            return ws
        try:
            code = await _run_exec(ws, ex, stdin)
            if code is not None:
                await _send(ws, ERROR, json.dumps(exit_status(code, argv)).encode())
        finally:
            ex.kill()
            if ex.master is not None:
                os.close(ex.master)
            await ws.close()
        return ws

    async def attach(self, request: web.Request) -> web.StreamResponse:
        """The container's output from now on, from its log (the runtime gives PID 1 a
        /dev/null stdin and keeps no live pipe to attach to, so stdin is accepted and dropped);
        ends when the container exits."""
        st = self._state(request)
        if isinstance(st, web.Response):
            return st
        ws = web.WebSocketResponse(protocols=(EXEC_PROTOCOL,), autoping=True, max_msg_size=0)
        await ws.prepare(request)
        uid, name = request.match_info["uid"], request.match_info["container"]
        tty = _bool(request.query.get("tty"))

        def finished() -> bool:
            s = process.read_state(self.data_dir, uid, name)
            return s is None or not s.running or s.restart != st.restart

        async def pump() -> None:
            opts = logs.Options(tail=0, follow=True)
            async for rec in _records(st.log_path, opts, finished):
                ch = STDERR if rec.stream == "stderr" and not tty else STDOUT
                await _send(ws, ch, rec.content + (b"" if rec.partial else b"\n"))

        task = asyncio.create_task(pump())
        reader = asyncio.create_task(_drain(ws))
        await asyncio.wait({task, reader}, return_when=asyncio.FIRST_COMPLETED)
        reader.cancel()
        if task.done() and not ws.closed:
            await _send(ws, ERROR, json.dumps(exit_status(0)).encode())
        task.cancel()
        await ws.close()
        return ws

    # -- logs ------------------------------------------------------------------------------------
    async def logs(self, request: web.Request) -> web.StreamResponse:
        m, q = request.match_info, request.query
        uid, name = m["uid"], m["container"]
        try:
            st = process.read_state(self.data_dir, uid, name)
        except ValueError:
            st = None
        if st is None:
            return status_json(400, "BadRequest", f'container "{name}" in pod "{m["pod"]}" is '
                                                  f'waiting to start: ContainerCreating')
        try:
            opts = _log_options(q)
        except ValueError as e:
            return status_json(400, "BadRequest", str(e))
        path = st.log_path
        if _bool(q.get("previous")):
            path = process.log_path(self.data_dir, uid, name, st.restart - 1) \
                if st.restart > 0 else ""
            if not path or not os.path.exists(path):
                return status_json(400, "BadRequest", f'previous terminated container "{name}" '
                                                      f'in pod "{m["pod"]}" not found')
            opts = dataclasses.replace(opts, follow=False)   # a finished run has no more

        def finished() -> bool:
            """Following ends when this run of the container has ended."""
            s = process.read_state(self.data_dir, uid, name)
            return s is None or s.exit_code is not None or s.restart != st.restart
        resp = web.StreamResponse(headers={"Content-Type": "text/plain"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        async for chunk in logs.stream_logs(path, opts, finished):
            await resp.write(chunk)
        await resp.write_eof()
        return resp

    # -- port-forward ----------------------------------------------------------------------------
    async def port_forward(self, request: web.Request) -> web.StreamResponse:
        uid = request.match_info["uid"]
        try:
            holder = sandbox.load_holder(self.data_dir, uid)
        except ValueError:
            holder = None
        if holder is None:
            return status_json(404, "NotFound", f'pod "{request.match_info["pod"]}" not found '
                                                f'on this node')
        if not _is_upgrade(request):
            return status_json(400, "BadRequest", "Upgrade request required")
        netns = holder.ns_path("net")
        ws = web.WebSocketResponse(protocols=(PORTFORWARD_PROTOCOL,), autoping=True,
                                   max_msg_size=0)
        await ws.prepare(request)
        await PortForward(ws, netns, uid).run()
        return ws


# -- helpers -------------------------------------------------------------------------------------
def _is_upgrade(request: web.Request) -> bool:
    return request.headers.get("Upgrade", "").lower() == "websocket"


async def _send(ws: web.WebSocketResponse, channel: int, data: bytes) -> None:
    if not ws.closed:
        await ws.send_bytes(bytes([channel]) + data)


async def _drain(ws: web.WebSocketResponse) -> None:
    async for _msg in ws:
        pass


async def _records(path, opts, finished):
    """Follow `path` from its end, as records (attach wants each record's stream)."""
    offset = os.path.getsize(path) if os.path.exists(path) else 0
    while True:
        stop = finished()
        try:
            with open(path, "rb") as f:
                f.seek(offset)
                data = f.read()
        except FileNotFoundError:
            data = b""
        end = data.rfind(b"\n") + 1
        if end:
            offset += end
            for ln in data[:end].split(b"\n")[:-1]:
                r = logs.parse_record(ln)
                if r is not None:
                    yield r
        elif stop:
            return
        else:
            await asyncio.sleep(logs.FOLLOW_POLL)


def _log_options(q) -> logs.Options:
    def num(key: str) -> int | None:
        v = q.get(key)
        if v is None or v == "":
            return None
        try:
            return int(v)
        except ValueError:
            raise ValueError(f"{key}: invalid value {v!r}") from None
    since_ns = None
    if q.get("sinceSeconds"):
        since_ns = time.time_ns() - num("sinceSeconds") * 1_000_000_000
    elif q.get("sinceTime"):
        since_ns = logs.parse_time(q["sinceTime"])
    return logs.Options(tail=num("tailLines"), since_ns=since_ns,
                        timestamps=_bool(q.get("timestamps")), limit_bytes=num("limitBytes"),
                        follow=_bool(q.get("follow")))


async def _run_exec(ws: web.WebSocketResponse, ex: execmod.Exec, stdin: bool) -> int | None:
    """Relay until the command ends; its exit code, or None if the client went away first."""
    proc = ex.proc
    loop = asyncio.get_running_loop()
    outputs: list[asyncio.Task] = []
    if ex.master is not None:
        q: asyncio.Queue[bytes] = asyncio.Queue()

        def readable() -> None:
            try:
                data = os.read(ex.master, 65536)
            except BlockingIOError:
                return
            except OSError:            # EIO: every slave side is closed
                data = b""
            if not data:
                loop.remove_reader(ex.master)
            q.put_nowait(data)
        loop.add_reader(ex.master, readable)

        async def pty_out() -> None:
            while True:
                data = await q.get()
                if not data:
                    return
                await _send(ws, STDOUT, data)
        outputs.append(asyncio.create_task(pty_out()))
    else:
        async def pipe_out(reader, channel) -> None:
            while True:
                data = await reader.read(65536)
                if not data:
                    return
                await _send(ws, channel, data)
        outputs.append(asyncio.create_task(pipe_out(proc.stdout, STDOUT)))
        if proc.stderr is not None:
            outputs.append(asyncio.create_task(pipe_out(proc.stderr, STDERR)))

    async def write_stdin(data: bytes) -> None:
        if ex.master is not None:
            while data:
                try:
                    n = os.write(ex.master, data)
                    data = data[n:]
                except BlockingIOError:
                    await asyncio.sleep(0.01)
        elif proc.stdin is not None and not proc.stdin.is_closing():
            proc.stdin.write(data)
            try:
                await proc.stdin.drain()
            except (BrokenPipeError, ConnectionResetError):
                pass

    async def close_stdin() -> None:
        if ex.master is not None:
            await write_stdin(b"\x04")
        elif proc.stdin is not None and not proc.stdin.is_closing():
            proc.stdin.close()

    async def client() -> None:
        async for msg in ws:
            if msg.type != WSMsgType.BINARY or not msg.data:
                continue
            ch, data = msg.data[0], msg.data[1:]
            if ch == STDIN and stdin:
                await write_stdin(data)
            elif ch == RESIZE:
                try:
                    size = json.loads(data)
                    ex.resize(int(size.get("Width", 0)), int(size.get("Height", 0)))
                except (ValueError, TypeError, AttributeError):
                    pass
            elif ch == CLOSE and data[:1] == bytes([STDIN]):
                await close_stdin()

    reader = asyncio.create_task(client())
    done_all = asyncio.gather(proc.wait(), *outputs)
    try:
        await asyncio.wait({reader, done_all}, return_when=asyncio.FIRST_COMPLETED)
        if not done_all.done():
            return None                 # the client is gone: the caller kills the command
        return proc.returncode
    finally:
        reader.cancel()
        if ex.master is not None:
            loop.remove_reader(ex.master)
        if not done_all.done():
            done_all.cancel()
            for t in outputs:
                t.cancel()


class PortForward:
    """One port-forward session: every pair of SYN_STREAMs (error + data, joined by
    `requestid`) becomes one TCP connection to 127.0.0.1:<port> inside the pod's network
    namespace."""

    def __init__(self, ws: web.WebSocketResponse, netns: str, uid: str = ""):
        self.ws, self.netns, self.uid = ws, netns, uid
        self.s = spdy.Session()
        self.by_request: dict[str, dict] = {}
        self.by_stream: dict[int, dict] = {}
        self.tasks: set[asyncio.Task] = set()
        self._lock = asyncio.Lock()

    async def send(self, data: bytes) -> None:
        if self.ws.closed:
            return
        async with self._lock:
            await self.ws.send_bytes(data)

    async def run(self) -> None:
        try:
            async for msg in self.ws:
                if msg.type != WSMsgType.BINARY:
                    continue
                try:
                    frames = self.s.feed(msg.data)
                except spdy.ProtocolError as e:
                    log.warning("port-forward: %s", e)
                    break
                for f in frames:
                    await self.handle(f)
        finally:
            for t in list(self.tasks):
                t.cancel()
            for conn in self.by_request.values():
                w = conn.get("writer")
                if w is not None:
                    w.close()

    async def handle(self, f: spdy.Frame) -> None:
        if not f.control:
            conn = self.by_stream.get(f.stream_id)
            if conn is None or f.stream_id != conn.get("data"):
                return                                  # e.g. the error stream's empty FIN
            if f.payload:
                conn["inbox"].put_nowait(f.payload)
            if f.fin:
                conn["inbox"].put_nowait(None)
            return
        if f.type == spdy.SYN_STREAM:
            await self.send(self.s.syn_reply(f.stream_id))
            rid = f.headers.get("requestid", "")
            kind = f.headers.get("streamtype", "")
            conn = self.by_request.setdefault(rid, {"inbox": asyncio.Queue()})
            conn[kind] = f.stream_id
            conn.setdefault("port", f.headers.get("port", ""))
            self.by_stream[f.stream_id] = conn
            if "data" in conn and "error" in conn and "task" not in conn:
                t = asyncio.create_task(self.forward(rid, conn))
                conn["task"] = t
                self.tasks.add(t)
                t.add_done_callback(self.tasks.discard)
        elif f.type == spdy.PING:
            await self.send(self.s.ping(f.payload))
        elif f.type == spdy.RST_STREAM:
            conn = self.by_stream.get(f.stream_id)
            if conn is not None and f.stream_id == conn.get("data"):
                conn["inbox"].put_nowait(None)
                w = conn.get("writer")
                if w is not None:
                    w.close()

    async def fail(self, data_id: int, err_id: int, message: str) -> None:
        """The message on the error stream (kubectl prints it), then the end of both streams
        (the data stream's end closes kubectl's local connection)."""
        await self.send(self.s.data(err_id, message.encode(), fin=True))
        await self.send(self.s.data(data_id, b"", fin=True))

    async def forward(self, rid: str, conn: dict) -> None:
        data_id, err_id = conn["data"], conn["error"]
        port = conn["port"]
        try:
            p = int(port)
            if not 0 < p < 65536:
                raise ValueError
        except ValueError:
            await self.fail(data_id, err_id, f"invalid port: {port!r}")
            return
        try:
            reader, writer = await forward.open_connection(self.netns, "127.0.0.1", p)
        except (OSError, asyncio.TimeoutError) as e:
            why = (os.strerror(e.errno) if isinstance(e, OSError) and e.errno
                   else "i/o timeout").lower()
            msg = (f"error forwarding port {p} to pod {self.uid}: failed to connect to "
                   f"localhost:{p} inside the pod's network namespace: connect: {why}")
            await self.fail(data_id, err_id, msg)
            self.by_request.pop(rid, None)
            return
        conn["writer"] = writer

        async def upstream() -> None:          # client -> pod
            while True:
                chunk = await conn["inbox"].get()
                if chunk is None:
                    if writer.can_write_eof():
                        writer.write_eof()
                    return
                writer.write(chunk)
                await writer.drain()
        up = asyncio.create_task(upstream())
        try:
            while True:
                chunk = await reader.read(65536)
                if not chunk:
                    break
                await self.send(self.s.data(data_id, chunk))
            await self.send(self.s.data(data_id, b"", fin=True))
            await self.send(self.s.data(err_id, b"", fin=True))
        except (OSError, ConnectionResetError):
            pass
        finally:
            up.cancel()
            writer.close()
            self.by_request.pop(rid, None)
