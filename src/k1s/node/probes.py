"""Container probes for the node agent: liveness, readiness and startup, as the kubelet runs them.

`ProbeManager.sync(pod, targets)` keeps one asyncio task per (pod, container, kind) whose
container is running and has that probe; each task probes its container every periodSeconds
after initialDelaySeconds, and flips its thresholded result after successThreshold /
failureThreshold consecutive equal tries. The agent reads `results(uid)` (absent = no result
yet: not ready, alive, not started) and is told by `on_change(uid)` when one changed.

The checks themselves (exec, httpGet, tcpSocket, grpc) reach the container the way the kubelet does,
but without leaving the pod: sockets are made inside the pod's network namespace
(`network.forward`), because the root namespace of these machines may reach only loopback, and
exec probes join the container (`streams.exec.spawn`). All I/O is async: a probe never blocks
the agent's event loop.

Upstream behaviour kept (pkg/kubelet/prober, pkg/probe): a try that *errors* (an unknown named
port, the container gone before the command ran) is thrown away, not counted, and reported as
`<Kind> probe errored: ...`; a liveness/startup result of False stays until the container
restarts (a new `run` gets fresh workers); the startup probe gates the other two and stops once
it has succeeded; a pod being deleted gets liveness/startup True and those workers stop, so a
shutting-down container is not restarted.

Periods and timeouts: the API only allows whole seconds (periodSeconds >= 1); this module takes
the numbers as given, so tests may pass fractional seconds to keep runs short.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import os
import signal
import socket
import ssl
import subprocess
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Callable

from . import grpcprobe
from .network import forward
from .runtime import linux
from .streams import exec as streams_exec

log = logging.getLogger(__name__)

KINDS = ("startup", "liveness", "readiness")
PROBE_FIELDS = {"startup": "startupProbe", "liveness": "livenessProbe",
                "readiness": "readinessProbe"}
TITLES = {"startup": "Startup", "liveness": "Liveness", "readiness": "Readiness"}

USER_AGENT = "kube-probe/1.32"           # kubelet's, by the Kubernetes version we speak
MAX_OUTPUT = 10 * 1024                   # exec output kept for the event (kubelet: 10 KiB)
MAX_HEADER_BYTES = 1 << 16
MAX_REDIRECT_REQUESTS = 10               # Go's client: the 10th redirect is an error
MAX_ERROR_RETRIES = 3                    # kubelet retries a try that errored, at once


# -- targets and results ---------------------------------------------------------------------
@dataclass(frozen=True)
class Target:
    """Where a running container's probes go."""
    pid: int                  # the container's PID 1 (for exec probes)
    netns: str | None         # the pod's network namespace path (None: the agent's own)
    pod_ip: str               # default host for httpGet/tcpSocket
    run: int                  # the container's restart count: a new run resets its probes
    # exec probes run as CRI's ExecSync does: with the container's environment and user
    env: dict | None = field(default=None, compare=False)
    user: object = field(default=None, compare=False)


@dataclass(frozen=True)
class Outcome:
    """One try: ok (success) or not; `errored` tries are not counted (kubelet throws the
    result away); `detail` is the text of the event."""
    ok: bool
    detail: str = ""
    errored: bool = False


# -- thresholds (pure) ------------------------------------------------------------------------
@dataclass(frozen=True)
class Run:
    """The last counted try and how many in a row gave it."""
    last: bool | None = None
    count: int = 0


def step(run: Run, ok: bool, success_threshold: int,
         failure_threshold: int) -> tuple[Run, bool | None]:
    """Count one try. Returns the new run and the result to publish, or None while the run
    is below its threshold (the published result stays as it was)."""
    run = Run(ok, run.count + 1) if run.last == ok else Run(ok, 1)
    need = success_threshold if ok else failure_threshold
    return run, (ok if run.count >= need else None)


@dataclass(frozen=True)
class Settings:
    initial_delay: float
    period: float
    timeout: float
    success_threshold: int
    failure_threshold: int


def _num(v, default: float, minimum: float) -> float:
    try:
        v = float(v)
    except (TypeError, ValueError):
        return default
    return v if v >= minimum else default


def settings_of(probe: dict, kind: str) -> Settings:
    """The probe's timing with the API's defaults (the apiserver defaults them; a pod from
    elsewhere may not have been). successThreshold is 1 for liveness and startup."""
    success = int(_num(probe.get("successThreshold"), 1, 1))
    return Settings(initial_delay=_num(probe.get("initialDelaySeconds"), 0, 0),
                    period=_num(probe.get("periodSeconds"), 10, 1e-3),
                    timeout=_num(probe.get("timeoutSeconds"), 1, 1e-3),
                    success_threshold=1 if kind != "readiness" else success,
                    failure_threshold=int(_num(probe.get("failureThreshold"), 3, 1)))


# -- Go-like error texts (users grep events for these) -----------------------------------------
def _host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _os_error_text(e: OSError) -> str:
    # asyncio's sock_connect puts "Connect call failed (...)" in strerror: use the errno's
    text = os.strerror(e.errno) if e.errno else (e.strerror or str(e))
    return text[:1].lower() + text[1:]


def _dial_error(host: str, port: int, e: BaseException) -> str:
    if isinstance(e, socket.gaierror):
        return f"dial tcp: lookup {host}: no such host"
    if isinstance(e, (TimeoutError, asyncio.TimeoutError)):
        return f"dial tcp {_host_port(host, port)}: i/o timeout"
    if isinstance(e, OSError):
        return f"dial tcp {_host_port(host, port)}: connect: {_os_error_text(e)}"
    return f"dial tcp {_host_port(host, port)}: {e}"


# -- ports --------------------------------------------------------------------------------------
class ProbeError(Exception):
    """A try that could not be made (kubelet: the prober errored): not counted."""


def resolve_port(port, container: dict) -> int:
    """A probe's port: a number, or the name of one of the container's ports (a numeric
    string is taken as a number, as kubelet does)."""
    if isinstance(port, bool):
        raise ProbeError(f"invalid port {port!r}")
    if isinstance(port, str):
        for p in container.get("ports") or []:
            if isinstance(p, dict) and p.get("name") == port:
                port = p.get("containerPort")
                break
        else:
            if not port.isdigit():
                raise ProbeError(f"port {port!r} not found in the ports of container "
                                 f"{container.get('name')!r}")
            port = int(port)
    if not isinstance(port, int) or not 0 < port < 65536:
        raise ProbeError(f"invalid port number: {port}")
    return port


# -- the checks -----------------------------------------------------------------------------------
async def _connect(netns: str | None, host: str, port: int, timeout: float) -> socket.socket:
    """A connected non-blocking socket from the pod's namespace (or the agent's own)."""
    return await forward.connect(netns, host, port, timeout=timeout)


async def check_tcp(target: Target, action: dict, container: dict, timeout: float) -> Outcome:
    port = resolve_port(action.get("port"), container)
    host = action.get("host") or target.pod_ip
    try:
        sock = await _connect(target.netns, host, port, timeout)
    except (OSError, asyncio.TimeoutError) as e:
        return Outcome(False, _dial_error(host, port, e))
    sock.close()
    return Outcome(True)


def _insecure_tls() -> ssl.SSLContext:
    # kubelet does not verify probe certificates (InsecureSkipVerify)
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return False


def request_headers(action: dict) -> tuple[list[tuple[str, str]], str | None]:
    """The probe's httpHeaders with kubelet's defaults (User-Agent, Accept) where the probe
    sets none, and the Host override if any. A header with a line break is dropped: it could
    only smuggle a second request."""
    out: list[tuple[str, str]] = []
    host = None
    for h in action.get("httpHeaders") or []:
        if not isinstance(h, dict) or not h.get("name"):
            continue
        name, value = str(h["name"]), str(h.get("value") or "")
        if any(c in name + value for c in "\r\n\0") or ":" in name:
            continue
        if name.lower() == "host":
            host = value
        else:
            out.append((name, value))
    given = {n.lower() for n, _ in out}
    if "user-agent" not in given:
        out.append(("User-Agent", USER_AGENT))
    if "accept" not in given:
        out.append(("Accept", "*/*"))
    # an empty User-Agent means none, as in Go
    return [(n, v) for n, v in out if not (n.lower() == "user-agent" and v == "")], host


def probe_url(scheme: str, host: str, port: int, path: str) -> str:
    if not path.startswith("/"):
        path = "/" + path
    return f"{scheme.lower()}://{_host_port(host, port)}{path}"


class _HTTPFailure(Exception):
    """A request that got no usable response: the text after `Get "<url>": `."""


async def _http_once(netns: str | None, url: str, headers: list[tuple[str, str]],
                     host_header: str | None) -> tuple[int, str | None]:
    """One GET: (status, Location header)."""
    u = urllib.parse.urlsplit(url)
    host = u.hostname or ""
    port = u.port or (443 if u.scheme == "https" else 80)
    try:
        sock = await _connect(netns, host, port, 3600)     # the caller bounds the whole try
    except OSError as e:
        raise _HTTPFailure(_dial_error(host, port, e)) from None
    tls = u.scheme == "https"
    try:
        reader, writer = await asyncio.open_connection(
            sock=sock, ssl=_insecure_tls() if tls else None,
            server_hostname=(host if tls and not _is_ip(host) else "") if tls else None,
            limit=MAX_HEADER_BYTES)
    except ssl.SSLError as e:
        sock.close()
        raise _HTTPFailure(f"remote error: tls: {e.reason or e}") from None
    except OSError as e:
        sock.close()
        raise _HTTPFailure(_os_error_text(e)) from None
    except BaseException:               # the try's time ran out during the handshake
        sock.close()
        raise
    try:
        target = (u.path or "/") + (f"?{u.query}" if u.query else "")
        lines = [f"GET {target} HTTP/1.1", f"Host: {host_header or u.netloc}"]
        lines += [f"{n}: {v}" for n, v in headers]
        lines += ["Connection: close", "", ""]
        try:
            writer.write("\r\n".join(lines).encode("latin-1", "replace"))
            await writer.drain()
        except OSError as e:
            raise _HTTPFailure(f"write tcp {_host_port(host, port)}: "
                               f"{_os_error_text(e)}") from None
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as e:
            raise _HTTPFailure("EOF" if not e.partial else
                               "net/http: HTTP/1.x transport connection broken: "
                               "unexpected EOF") from None
        except asyncio.LimitOverrunError:
            raise _HTTPFailure("net/http: server response headers exceeded "
                               f"{MAX_HEADER_BYTES} bytes; aborted") from None
        except OSError as e:
            raise _HTTPFailure(f"read tcp {_host_port(host, port)}: "
                               f"{_os_error_text(e)}") from None
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        parts = status_line.split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit() \
                or len(parts[1]) != 3:
            raise _HTTPFailure("net/http: HTTP/1.x transport connection broken: "
                               f"malformed HTTP response {json.dumps(status_line)}")
        location = None
        for line in header_lines:
            name, sep, value = line.partition(":")
            if sep and name.strip().lower() == "location":
                location = value.strip()
        return int(parts[1]), location
    finally:
        # not awaited: a TLS peer that never answers close_notify must not turn a response
        # we already have into a timeout
        writer.close()


async def check_http(target: Target, action: dict, container: dict, timeout: float) -> Outcome:
    port = resolve_port(action.get("port"), container)
    host = action.get("host") or target.pod_ip
    scheme = str(action.get("scheme") or "HTTP").lower()
    if scheme not in ("http", "https"):
        raise ProbeError(f"unsupported scheme {action.get('scheme')!r}")
    url = probe_url(scheme, host, port, str(action.get("path") or "/"))
    headers, host_header = request_headers(action)
    first_host = urllib.parse.urlsplit(url).hostname
    current = url
    try:
        async with asyncio.timeout(timeout):
            for requests in range(1, MAX_REDIRECT_REQUESTS + 1):
                status, location = await _http_once(target.netns, current, headers, host_header)
                if not (300 <= status < 400 and location):
                    break
                nxt = urllib.parse.urljoin(current, location)
                parsed = urllib.parse.urlsplit(nxt)
                if parsed.scheme not in ("http", "https") or parsed.hostname != first_host:
                    break        # a redirect off the host ends the try with the 3xx (success)
                if requests == MAX_REDIRECT_REQUESTS:
                    return Outcome(False, f'Get {json.dumps(location)}: '
                                          f'stopped after {MAX_REDIRECT_REQUESTS} redirects')
                current = nxt
    except (TimeoutError, asyncio.TimeoutError):
        return Outcome(False, f'Get {json.dumps(current)}: context deadline exceeded '
                              f'(Client.Timeout exceeded while awaiting headers)')
    except _HTTPFailure as e:
        return Outcome(False, f"Get {json.dumps(current)}: {e}")
    if 200 <= status < 400:
        return Outcome(True)
    return Outcome(False, f"HTTP probe failed with statuscode: {status}")


def _go_seconds(t: float) -> str:
    return f"{t:g}s"


async def check_grpc(target: Target, action: dict, timeout: float) -> Outcome:
    """grpc.health.v1.Health/Check at the pod's IP and the given port, with kubelet's words."""
    port = action.get("port")
    if not isinstance(port, int) or not 0 < port < 65536:
        raise ProbeError(f"invalid port number: {port}")
    service = str(action.get("service") or "")
    addr = f"{target.pod_ip}:{port}"
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    try:
        sock = await _connect(target.netns, target.pod_ip, port, timeout)
    except (TimeoutError, asyncio.TimeoutError):
        return Outcome(False, f"timeout: failed to connect service {json.dumps(addr)} within "
                              f"{_go_seconds(timeout)}: context deadline exceeded")
    except OSError as e:
        return Outcome(False, f"error: failed to connect service at {json.dumps(addr)}: "
                              f"{_dial_error(target.pod_ip, port, e)}")
    try:
        async with asyncio.timeout_at(deadline):
            status = await grpcprobe.check(sock, addr, service)
    except (TimeoutError, asyncio.TimeoutError):
        return Outcome(False, f"timeout: health rpc did not complete within "
                              f"{_go_seconds(timeout)}")
    except grpcprobe.RPCError as e:
        if e.code == grpcprobe.UNIMPLEMENTED:
            return Outcome(False, "error: this server does not implement the grpc health "
                                  f"protocol (grpc.health.v1.Health): {e.message}")
        return Outcome(False, f"error: health rpc probe failed: {e}")
    except grpcprobe.BROKEN as e:
        return Outcome(False, f"error: health rpc probe failed: {e}")
    finally:
        sock.close()
    ok, detail = grpcprobe.outcome(status)
    return Outcome(ok, "" if ok else detail)


async def check_exec(target: Target, action: dict, timeout: float) -> Outcome:
    argv = [str(a) for a in action.get("command") or []]
    if not argv:
        raise ProbeError("exec probe has no command")
    try:
        ex = await streams_exec.spawn(target.pid, argv, stdin=False, tty=False, stderr=True,
                                      env=target.env, user=target.user)
    except OSError as e:
        if e.filename == argv[0]:       # the command itself could not be run: a failure
            return Outcome(False, f"exec: {json.dumps(argv[0])}: "
                                  f"{_os_error_text(e)}")
        raise ProbeError(f"cannot enter the container: {_os_error_text(e)}") from None
    except subprocess.SubprocessError as e:   # joining the container failed (it is gone)
        raise ProbeError(f"cannot enter the container: {e}") from None
    out = bytearray()

    async def pump(stream) -> None:
        # stdout and stderr interleave in one buffer, as CombinedOutput
        while chunk := await stream.read(4096):
            if len(out) < MAX_OUTPUT:
                out.extend(chunk[:MAX_OUTPUT - len(out)])

    loop = asyncio.get_running_loop()
    parts = [loop.create_task(ex.proc.wait()), loop.create_task(pump(ex.proc.stdout)),
             loop.create_task(pump(ex.proc.stderr))]
    try:
        _done, pending = await asyncio.wait(parts, timeout=timeout)
        if pending:
            _end(ex)
            return Outcome(False, f"command {json.dumps(' '.join(argv))} timed out")
        return Outcome(parts[0].result() == 0, out.decode(errors="replace"))
    except BaseException:
        _end(ex)                        # the worker was stopped mid-try
        raise
    finally:
        for t in parts:
            t.cancel()
        await asyncio.gather(*parts, return_exceptions=True)
        await _reap(ex)


def _end(ex) -> None:
    """Kill a probe's command. The waiter `spawn` leaves between us and the command kills it
    on SIGTERM, but a waiter forked under uvloop may have SIGTERM blocked: so the command (the
    waiter's child) gets SIGKILL directly too, and the waiter, blocked in waitpid, reaps it and
    exits with it."""
    pid = ex.proc.pid
    if ex.proc.returncode is None:
        try:
            with open(f"/proc/{pid}/task/{pid}/children") as f:
                children = [int(c) for c in f.read().split()]
        except (OSError, ValueError):
            children = []
        for child in children:
            try:
                os.kill(child, signal.SIGKILL)
            except ProcessLookupError:
                pass
    ex.kill()


async def _reap(ex) -> None:
    try:
        await asyncio.wait_for(asyncio.shield(ex.proc.wait()), 10)
    except BaseException:               # never let cleanup hide the reason we are here
        pass


async def run_check(probe: dict, target: Target, container: dict, timeout: float) -> Outcome:
    """One try of `probe` against the running container."""
    try:
        if isinstance(probe.get("exec"), dict):
            return await check_exec(target, probe["exec"], timeout)
        if isinstance(probe.get("httpGet"), dict):
            return await check_http(target, probe["httpGet"], container, timeout)
        if isinstance(probe.get("tcpSocket"), dict):
            return await check_tcp(target, probe["tcpSocket"], container, timeout)
        if isinstance(probe.get("grpc"), dict):
            return await check_grpc(target, probe["grpc"], timeout)
        raise ProbeError(f"missing probe handler for container {container.get('name')!r}")
    except ProbeError as e:
        return Outcome(False, str(e), errored=True)


def container_age(pid: int) -> float:
    """Seconds since the process `pid` started (0 when it is unknown)."""
    ticks = linux.proc_start_time(pid) if pid > 0 else None
    if ticks is None:
        return 0.0
    age = time.clock_gettime(time.CLOCK_BOOTTIME) - ticks / os.sysconf("SC_CLK_TCK")
    return max(0.0, age)


# -- the workers --------------------------------------------------------------------------------
@dataclass
class _Worker:
    container: str
    kind: str
    run: int
    target: Target
    task: asyncio.Task | None = None


@dataclass
class _Pod:
    pod: dict
    workers: dict[tuple[str, str], _Worker] = field(default_factory=dict)
    results: dict[tuple[str, str], bool] = field(default_factory=dict)
    started: dict[str, asyncio.Event] = field(default_factory=dict)   # container -> startup ok


def _containers(pod: dict) -> dict[str, dict]:
    spec = pod.get("spec") or {}
    out = {}
    for c in (spec.get("initContainers") or []) + (spec.get("containers") or []):
        if isinstance(c, dict) and c.get("name"):
            out[c["name"]] = c
    return out


class ProbeManager:
    """The probe workers of every pod on the node. Call everything from the agent's event
    loop (sync starts tasks on it)."""

    def __init__(self, *, on_change: Callable[[str], None],
                 on_event: Callable[[dict, str, str, str], None] | None = None):
        self.on_change = on_change
        self.on_event = on_event
        self._pods: dict[str, _Pod] = {}
        self._tasks: set[asyncio.Task] = set()

    # -- the agent's side ------------------------------------------------------------------
    def sync(self, pod: dict, targets: dict[str, Target]) -> None:
        """`targets`: the pod's running containers by name. Starts a worker per probe of each;
        stops those of containers gone or restarted (a new run starts fresh, results cleared)."""
        uid = pod["metadata"]["uid"]
        state = self._pods.setdefault(uid, _Pod(pod))
        state.pod = pod
        containers = _containers(pod)
        changed = False
        for key, w in list(state.workers.items()):
            t = targets.get(w.container)
            if t is None or t.run != w.run:
                self._stop(state, key)
                changed |= state.results.pop(key, None) is not None
                if key[1] == "startup":
                    state.started.pop(w.container, None)
            else:
                w.target = t                   # same run: a new address is used next try
        deleting = bool((pod.get("metadata") or {}).get("deletionTimestamp"))
        for name, t in targets.items():
            c = containers.get(name)
            if c is None:
                continue
            for kind in KINDS:
                probe = c.get(PROBE_FIELDS[kind])
                if not isinstance(probe, dict) or (name, kind) in state.workers:
                    continue
                w = _Worker(name, kind, t.run, t)
                state.workers[(name, kind)] = w
                if kind == "startup":
                    state.started[name] = asyncio.Event()
                w.task = self._spawn(self._work(uid, state, w, c, probe))
        if deleting:
            changed |= self._quiet_shutdown(state)
        if changed:
            self._notify(uid)

    def results(self, uid: str) -> dict[tuple[str, str], bool]:
        state = self._pods.get(uid)
        return dict(state.results) if state else {}

    def forget(self, uid: str) -> None:
        state = self._pods.pop(uid, None)
        if state:
            for key in list(state.workers):
                self._stop(state, key)

    async def close(self) -> None:
        for uid in list(self._pods):
            self.forget(uid)
        tasks = list(self._tasks)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- internals ---------------------------------------------------------------------------
    def _spawn(self, coro) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _stop(self, state: _Pod, key: tuple[str, str]) -> None:
        w = state.workers.pop(key)
        if w.task is not None and not w.task.done():
            w.task.cancel()

    def _quiet_shutdown(self, state: _Pod) -> bool:
        """A pod being deleted: liveness and startup read True and stop probing (kubelet), so
        its containers stop by their grace period, not by a probe."""
        changed = False
        for key, w in state.workers.items():
            if w.kind in ("liveness", "startup"):
                if w.task is not None and not w.task.done():
                    w.task.cancel()
                if state.results.get(key) is not True:
                    state.results[key] = True
                    changed = True
                if w.kind == "startup" and w.container in state.started:
                    state.started[w.container].set()
        return changed

    def _notify(self, uid: str) -> None:
        try:
            self.on_change(uid)
        except Exception:
            log.exception("probe on_change callback failed for pod %s", uid)

    def _event(self, pod: dict, reason: str, message: str) -> None:
        if self.on_event is None:
            return
        try:
            self.on_event(pod, "Warning", reason, message)
        except Exception:
            log.exception("probe on_event callback failed")

    def _publish(self, uid: str, state: _Pod, w: _Worker, value: bool) -> None:
        key = (w.container, w.kind)
        if self._pods.get(uid) is not state or state.workers.get(key) is not w:
            return                             # stopped meanwhile: the result is gone
        if state.results.get(key) != value:
            state.results[key] = value
            self._notify(uid)

    async def _work(self, uid: str, state: _Pod, w: _Worker, container: dict,
                    probe: dict) -> None:
        key = (w.container, w.kind)
        s = settings_of(probe, w.kind)
        title = TITLES[w.kind]
        loop = asyncio.get_running_loop()
        run = Run()
        # the delay counts from the container's start, as kubelet's (an agent restarted
        # under a running container does not delay its probes again)
        await asyncio.sleep(max(0.0, s.initial_delay - container_age(w.target.pid)))
        next_at = loop.time()
        while True:
            gate = state.started.get(w.container)
            if w.kind != "startup" and gate is not None and not gate.is_set():
                await gate.wait()           # liveness/readiness wait for startup
                next_at = loop.time()
            out = Outcome(False, errored=True)
            for _ in range(MAX_ERROR_RETRIES):
                try:
                    out = await run_check(probe, w.target, container, s.timeout)
                except Exception as e:      # a bug here must not end the worker
                    log.exception("%s probe of %s/%s crashed", w.kind, uid, w.container)
                    out = Outcome(False, f"internal error: {e}", errored=True)
                if not out.errored:
                    break
            if out.errored:
                self._event(state.pod, "Unhealthy", f"{title} probe errored: {out.detail}")
            else:
                if not out.ok:
                    self._event(state.pod, "Unhealthy",
                                f"{title} probe failed: {out.detail}")
                run, result = step(run, out.ok, s.success_threshold, s.failure_threshold)
                if result is not None:
                    self._publish(uid, state, w, result)
                    if w.kind in ("liveness", "startup") and result is False:
                        return              # on hold until the container restarts
                    if w.kind == "startup" and result is True:
                        if state.workers.get(key) is w:
                            state.started[w.container].set()
                        return              # started: startup probing ends
            next_at += s.period
            now = loop.time()
            if next_at < now:
                next_at = now               # a slow try skips ticks, as a ticker does
            await asyncio.sleep(next_at - now)
