"""Container probes (k1s.node.probes): the threshold rule as a table and as a property, then
real checks — httpGet and tcpSocket from inside a pod's network namespace, exec in a real
container — and the ProbeManager's workers: thresholds, startup gating, a new run resetting
results, liveness on hold, a deleted pod's quiet shutdown, forget/close leaving no task.

Periods here are fractions of a second (the module takes them as given; the API's minimum is 1)
so runs stay short; nothing asserts on timing: sequences are checked through the callbacks,
which the workers call synchronously at the moment a try is counted.
"""

from __future__ import annotations

import asyncio
import datetime
import os
import socket
import ssl
import uuid

import pytest
from aiohttp import web
from hypothesis import given, strategies as st

from k1s.node import probes
from k1s.node.probes import Outcome, ProbeManager, Run, Target, step

from runtime_util import pids_in_pid_ns, pod, runtime, sh  # noqa: F401 - runtime: fixture

TIMEOUT = 30.0                   # generous: noisy machines, never a timing assertion
FAST = {"periodSeconds": 0.05, "timeoutSeconds": 5}


async def eventually(check, timeout: float = TIMEOUT, interval: float = 0.02):
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        got = check()
        if got:
            return got
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met in {timeout}s")
        await asyncio.sleep(interval)


# -- thresholds (pure) ----------------------------------------------------------------------
@pytest.mark.parametrize("tries,success,failure,published", [
    ([True], 1, 3, [True]),
    ([False], 1, 3, [None]),
    ([False, False], 1, 2, [None, False]),                 # two failures flip, one does not
    ([False, True, False], 1, 2, [None, True, None]),      # a success breaks the run
    ([True, True, True], 3, 1, [None, None, True]),
    ([True, False, True, True], 2, 1, [None, False, None, True]),
    ([False, False, False, False], 1, 3, [None, None, False, False]),
])
def test_threshold_table(tries, success, failure, published):
    run, got = Run(), []
    for ok in tries:
        run, result = step(run, ok, success, failure)
        got.append(result)
    assert got == published


@given(st.lists(st.booleans(), max_size=60), st.integers(1, 5), st.integers(1, 5))
def test_threshold_property(tries, success, failure):
    """After every try: a result is published iff the last `threshold` tries all gave it, and
    the published value is always the latest try's."""
    run = Run()
    for i, ok in enumerate(tries):
        run, result = step(run, ok, success, failure)
        need = success if ok else failure
        tail = tries[max(0, i + 1 - need):i + 1]
        assert (result is not None) == (len(tail) == need and all(t == ok for t in tail))
        assert result in (None, ok)
        assert run.last == ok and 1 <= run.count <= i + 1


@pytest.mark.parametrize("probe,kind,want", [
    ({}, "readiness", (0, 10, 1, 1, 3)),
    ({"initialDelaySeconds": 5, "periodSeconds": 2, "timeoutSeconds": 3,
      "successThreshold": 2, "failureThreshold": 4}, "readiness", (5, 2, 3, 2, 4)),
    ({"successThreshold": 3}, "liveness", (0, 10, 1, 1, 3)),   # must be 1 for liveness
    ({"periodSeconds": 0, "failureThreshold": 0}, "startup", (0, 10, 1, 1, 3)),
])
def test_settings_defaults(probe, kind, want):
    s = probes.settings_of(probe, kind)
    assert (s.initial_delay, s.period, s.timeout, s.success_threshold,
            s.failure_threshold) == want


def test_ports_by_number_and_name():
    c = {"name": "web", "ports": [{"name": "http", "containerPort": 8080}]}
    assert probes.resolve_port(80, c) == 80
    assert probes.resolve_port("http", c) == 8080
    assert probes.resolve_port("8081", c) == 8081
    with pytest.raises(probes.ProbeError, match="'admin' not found in the ports of container"
                                                " 'web'"):
        probes.resolve_port("admin", c)
    with pytest.raises(probes.ProbeError, match="invalid port number: 70000"):
        probes.resolve_port(70000, c)


def test_request_headers_defaults_and_overrides():
    headers, host = probes.request_headers({})
    assert headers == [("User-Agent", "kube-probe/1.32"), ("Accept", "*/*")]
    assert host is None
    headers, host = probes.request_headers({"httpHeaders": [
        {"name": "Accept", "value": "application/json"}, {"name": "X-A", "value": "1"},
        {"name": "X-A", "value": "2"}, {"name": "Host", "value": "example.com"},
        {"name": "X-Bad", "value": "a\r\nGET /evil HTTP/1.1"}]})
    assert headers == [("Accept", "application/json"), ("X-A", "1"), ("X-A", "2"),
                       ("User-Agent", "kube-probe/1.32")]
    assert host == "example.com"


# -- httpGet / tcpSocket against real servers ------------------------------------------------
def _app(seen: list) -> web.Application:
    async def ok(request):
        seen.append(request)
        return web.Response(text="fine")

    async def fail(request):
        return web.Response(status=500, text="secret body")

    async def hop(request):
        n = int(request.match_info["n"])
        raise web.HTTPFound("/ok" if n == 0 else f"/hop/{n - 1}")

    async def away(request):
        raise web.HTTPFound("http://elsewhere.invalid/")

    async def loop(request):
        raise web.HTTPFound("/loop")

    async def slow(request):
        await asyncio.sleep(3600)

    app = web.Application()
    app.add_routes([web.get("/ok", ok), web.get("/fail", fail), web.get("/hop/{n}", hop),
                    web.get("/loop", loop),
                    web.get("/away", away), web.get("/slow", slow)])
    return app


async def _serve(sock: socket.socket, seen: list, tls: ssl.SSLContext | None = None):
    runner = web.AppRunner(_app(seen), handle_signals=False, shutdown_timeout=0.1)
    await runner.setup()
    await web.SockSite(runner, sock, ssl_context=tls).start()
    return runner


def _free_closed_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _self_signed(tmp_path) -> ssl.SSLContext:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "probe-test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256()))
    (tmp_path / "c.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "k.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(tmp_path / "c.pem", tmp_path / "k.pem")
    return ctx


@pytest.fixture
async def local_http():
    """An HTTP server on the agent's own loopback (netns None: hostNetwork pods)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    seen: list = []
    runner = await _serve(sock, seen)
    try:
        yield sock.getsockname()[1], seen
    finally:
        await runner.cleanup()


def _get(port, path="/ok", **extra) -> dict:
    return {"port": port, "path": path, **extra}


LOCAL = Target(pid=0, netns=None, pod_ip="127.0.0.1", run=0)


async def test_http_status_codes_headers_and_redirects(local_http):
    port, seen = local_http
    check = probes.check_http
    got = await check(LOCAL, _get(port, httpHeaders=[{"name": "X-Probe", "value": "yes"}]),
                      {}, 5)
    assert got == Outcome(True)
    req = seen[-1]
    assert req.headers["User-Agent"] == "kube-probe/1.32" and req.headers["Accept"] == "*/*"
    assert req.headers["X-Probe"] == "yes" and req.headers["Host"] == f"127.0.0.1:{port}"
    # the status text, never the body
    assert await check(LOCAL, _get(port, "/fail"), {}, 5) == \
        Outcome(False, "HTTP probe failed with statuscode: 500")
    assert await check(LOCAL, _get(port, "/nope"), {}, 5) == \
        Outcome(False, "HTTP probe failed with statuscode: 404")
    # redirects on the same host are followed; the 10th is an error
    n = len(seen)
    assert await check(LOCAL, _get(port, "/hop/8"), {}, 5) == Outcome(True)
    assert len(seen) == n + 1
    assert await check(LOCAL, _get(port, "/loop"), {}, 5) == \
        Outcome(False, 'Get "/loop": stopped after 10 redirects')
    # a redirect to another host ends the try with the 3xx: a success, as kubelet
    assert await check(LOCAL, _get(port, "/away"), {}, 5) == Outcome(True)
    # a named port of the container; the path gets its leading slash
    assert await check(LOCAL, _get("web", "ok"), {"ports": [{"name": "web",
                                                            "containerPort": port}]}, 5) \
        == Outcome(True)


async def test_http_refused_and_timeout_texts(local_http):
    port, _seen = local_http
    closed = _free_closed_port()
    assert await probes.check_http(LOCAL, _get(closed, "/"), {}, 5) == Outcome(
        False, f'Get "http://127.0.0.1:{closed}/": dial tcp 127.0.0.1:{closed}: '
               f'connect: connection refused')
    got = await probes.check_http(LOCAL, _get(port, "/slow"), {}, 0.3)
    assert got == Outcome(False, f'Get "http://127.0.0.1:{port}/slow": context deadline '
                                 f'exceeded (Client.Timeout exceeded while awaiting headers)')


async def test_https_without_certificate_verification(tmp_path):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    runner = await _serve(sock, [], tls=_self_signed(tmp_path))
    try:
        port = sock.getsockname()[1]
        assert await probes.check_http(LOCAL, _get(port, scheme="HTTPS"), {}, 5) == \
            Outcome(True)
        assert await probes.check_http(LOCAL, _get(port, "/fail", scheme="HTTPS"), {}, 5) == \
            Outcome(False, "HTTP probe failed with statuscode: 500")
    finally:
        await runner.cleanup()


async def test_grpc_and_unknown_ports():
    closed = _free_closed_port()
    got = await probes.run_check({"grpc": {"port": closed}}, LOCAL, {}, 1)
    assert not got.ok and not got.errored
    assert got.detail.startswith(f'error: failed to connect service at "127.0.0.1:{closed}"')
    got = await probes.run_check({"tcpSocket": {"port": "admin"}}, LOCAL, {"name": "c"}, 1)
    assert got.errored and "'admin' not found" in got.detail


async def test_http_server_closing_without_an_answer():
    async def hang_up(reader, writer):
        # the whole request read first: closing with it unread would be a reset instead
        await reader.readuntil(b"\r\n\r\n")
        writer.close()

    server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        got = await probes.check_http(LOCAL, _get(port, "/"), {}, 5)
    assert got == Outcome(False, f'Get "http://127.0.0.1:{port}/": EOF')


async def test_errored_tries_are_not_counted_but_failures_are():
    """An unknown named port errors (kubelet throws such a try away: the result stays
    absent); a grpc probe nothing answers fails and counts."""
    events = []
    m = ProbeManager(on_change=lambda _u: None, on_event=lambda _p, *a: events.append(a))
    p = pod("web-0", [{"name": "c", "ports": [{"name": "http", "containerPort": 80}],
                       "readinessProbe": {"tcpSocket": {"port": "admin"},
                                          "failureThreshold": 1, **FAST},
                       "livenessProbe": {"grpc": {"port": _free_closed_port()},
                                         "failureThreshold": 1, **FAST}}])
    uid = p["metadata"]["uid"]
    try:
        m.sync(p, {"c": LOCAL})
        await eventually(lambda: sum(e[2].startswith("Readiness") for e in events) >= 3)
        assert m.results(uid) == {("c", "liveness"): False}
        assert ("Warning", "Unhealthy", "Readiness probe errored: port 'admin' not found in "
                "the ports of container 'c'") in events
        assert any(e[2].startswith("Liveness probe failed: error: failed to connect service")
                   for e in events)
    finally:
        await m.close()


async def test_initial_delay_holds_the_first_try():
    """A readiness probe still in its initial delay makes no try while a liveness probe of the
    same container (the clock here) keeps trying."""
    closed = _free_closed_port()
    events = []
    m = ProbeManager(on_change=lambda _u: None, on_event=lambda _p, *a: events.append(a[2]))
    p = pod("web-0", [{"name": "c",
                       "readinessProbe": {"tcpSocket": {"port": closed},
                                          "initialDelaySeconds": 100000, **FAST},
                       "livenessProbe": {"tcpSocket": {"port": closed},
                                         "failureThreshold": 100000, **FAST}}])
    try:
        m.sync(p, {"c": LOCAL})
        await eventually(lambda: len(events) >= 3)
        assert set(events) == {f"Liveness probe failed: dial tcp 127.0.0.1:{closed}: "
                               f"connect: connection refused"}
        assert m.results(p["metadata"]["uid"]) == {}
    finally:
        await m.close()


def test_container_age_counts_from_the_process_start():
    assert 0 < probes.container_age(os.getpid()) <= probes.container_age(1)
    assert probes.container_age(0) == 0


@pytest.fixture
async def pod_net(prefix):
    """One pod network namespace with an address; nothing of it reachable from the root."""
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root (CI and these machines run as root)")
    from k1s.node.network import NodeNetwork, PodNetwork
    from k1s.node.pods import AddressPool
    cidr = "10.244.7.0/24"
    node = NodeNetwork("node-p", cidr, prefix=prefix)
    p = PodNetwork(node, str(uuid.uuid4()))
    ip = await asyncio.to_thread(p.setup, AddressPool(cidr).allocate(p.uid))
    return p.path, ip


async def test_http_and_tcp_probes_reach_inside_the_pod_namespace(pod_net):
    from k1s.node.network import forward
    path, ip = pod_net
    sock = forward.tcp_listener(path, "0.0.0.0", 0)
    port = sock.getsockname()[1]
    seen: list = []
    runner = await _serve(sock, seen)
    target = Target(pid=0, netns=path, pod_ip=ip, run=0)
    try:
        assert await probes.check_http(target, _get(port), {}, 5) == Outcome(True)
        assert seen[-1].headers["Host"] == f"{ip}:{port}"
        assert await probes.check_http(target, _get(port, "/fail"), {}, 5) == \
            Outcome(False, "HTTP probe failed with statuscode: 500")
        assert await probes.check_tcp(target, {"port": port}, {}, 5) == Outcome(True)
        # the same address is not reachable from the agent's own namespace
        assert not (await probes.check_tcp(Target(0, None, ip, 0), {"port": port}, {}, 1)).ok
    finally:
        await runner.cleanup()
    # nothing listens any more: refused, with Go's texts
    assert await probes.check_tcp(target, {"port": port}, {}, 5) == \
        Outcome(False, f"dial tcp {ip}:{port}: connect: connection refused")
    assert await probes.check_http(target, _get(port, "/"), {}, 5) == Outcome(
        False, f'Get "http://{ip}:{port}/": dial tcp {ip}:{port}: connect: connection refused')


async def test_readiness_from_http_through_the_manager(pod_net):
    from k1s.node.network import forward
    path, ip = pod_net
    sock = forward.tcp_listener(path, "0.0.0.0", 0)
    port = sock.getsockname()[1]
    runner = await _serve(sock, [])
    events, changes = [], []
    m = ProbeManager(on_change=changes.append, on_event=lambda *a: events.append(a[1:]))
    p = pod("web-0", [{"name": "c", "readinessProbe": {"httpGet": {"port": port, "path": "/ok"},
                                                       **FAST},
                       "livenessProbe": {"httpGet": {"port": port, "path": "/fail"},
                                         "failureThreshold": 2, **FAST}}])
    uid = p["metadata"]["uid"]
    try:
        m.sync(p, {"c": Target(pid=0, netns=path, pod_ip=ip, run=0)})
        assert m.results(uid) == {}
        await eventually(lambda: m.results(uid) == {("c", "readiness"): True,
                                                    ("c", "liveness"): False})
        assert ("Warning", "Unhealthy",
                "Liveness probe failed: HTTP probe failed with statuscode: 500") in events
        assert changes and set(changes) == {uid}
    finally:
        await m.close()
        await runner.cleanup()


# -- exec probes in a real container ---------------------------------------------------------
@pytest.fixture
def container(runtime):  # noqa: F811
    """A running container (busybox sh as PID 1) and its Target."""
    if os.geteuid() != 0:
        pytest.skip("containers need root")
    rt = runtime()
    p = pod("db-0", [sh("c", "exec sleep 100000")])
    rt.start_sync(p)
    st = rt.container_states(p["metadata"]["uid"])["c"]
    assert st.running
    return rt, p, Target(pid=st.pid, netns=None, pod_ip="127.0.0.1", run=0)


def _in(target: Target, path: str) -> str:
    return f"/proc/{target.pid}/root{path}"


def _write(path: str, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)


async def test_exec_exit_codes_output_and_timeout(container):
    _rt, _p, t = container
    run = probes.check_exec
    assert await run(t, {"command": ["true"]}, 5) == Outcome(True, "")
    assert await run(t, {"command": ["sh", "-c", "echo out; echo err >&2; exit 1"]}, 5) == \
        Outcome(False, "out\nerr\n")
    # inside the container: its own filesystem and PID namespace
    _write(_in(t, "/tmp/marker"), "here")
    assert await run(t, {"command": ["cat", "/tmp/marker"]}, 5) == Outcome(True, "here")
    got = await run(t, {"command": ["nope-not-a-command"]}, 5)
    assert not got.ok and "nope-not-a-command" in got.detail
    pid_ns = os.readlink(f"/proc/{t.pid}/ns/pid")
    got = await run(t, {"command": ["sh", "-c", "sleep 1000"]}, 0.5)
    assert got == Outcome(False, 'command "sh -c sleep 1000" timed out')
    # the timed-out command was killed: only the container's own process is left
    await eventually(lambda: pids_in_pid_ns(pid_ns) == [t.pid])


def test_exec_timeout_kills_the_command_under_uvloop(container):
    """`k1s up` runs on uvloop, whose spawned children start with signals blocked: a timed-out
    command must still die, and nothing be left in the container."""
    import uvloop
    _rt, _p, t = container
    pid_ns = os.readlink(f"/proc/{t.pid}/ns/pid")

    async def run():
        got = await probes.check_exec(t, {"command": ["sleep", "1000"]}, 0.5)
        assert got == Outcome(False, 'command "sleep 1000" timed out')
        assert await probes.check_exec(t, {"command": ["sh", "-c", "exit 3"]}, 5) == \
            Outcome(False, "")
        await eventually(lambda: pids_in_pid_ns(pid_ns) == [t.pid])
    uvloop.run(run())


async def test_failure_threshold_two_flips_after_two_failures(container):
    _rt, p, t = container
    uid = p["metadata"]["uid"]
    rc = _in(t, "/tmp/rc")
    _write(rc, "0")
    p["spec"]["containers"][0]["readinessProbe"] = {
        "exec": {"command": ["sh", "-c", "exit $(cat /tmp/rc)"]}, "failureThreshold": 2, **FAST}
    seen_at_event, published = [], []
    m = ProbeManager(on_change=lambda u: published.append((dict(m.results(u)),
                                                           len(seen_at_event))),
                     on_event=lambda pod_, *a: seen_at_event.append(
                         (a, m.results(uid).get(("c", "readiness")))))
    try:
        m.sync(p, {"c": t})
        await eventually(lambda: m.results(uid) == {("c", "readiness"): True})
        _write(rc, "1")
        await eventually(lambda: m.results(uid) == {("c", "readiness"): False})
        # the first failure did not flip it: at the second failure's event it was still True
        first, second = seen_at_event[0], seen_at_event[1]
        assert first == (("Warning", "Unhealthy", "Readiness probe failed: "), True)
        assert second == first
        assert published == [({("c", "readiness"): True}, 0),
                             ({("c", "readiness"): False}, 2)]
        _write(rc, "0")       # readiness recovers (it is never on hold)
        await eventually(lambda: m.results(uid) == {("c", "readiness"): True})
    finally:
        await m.close()


async def test_startup_gates_liveness_and_readiness_then_stops(container):
    _rt, p, t = container
    uid = p["metadata"]["uid"]
    c = p["spec"]["containers"][0]
    c["startupProbe"] = {"exec": {"command": ["sh", "-c", "echo s >> /tmp/s; test -f /tmp/up"]},
                         "failureThreshold": 100000, **FAST}
    c["livenessProbe"] = {"exec": {"command": ["sh", "-c", "echo l >> /tmp/l"]}, **FAST}
    c["readinessProbe"] = {"exec": {"command": ["true"]}, **FAST}
    startup_tries_when_started = []

    def changed(_uid):
        if m.results(uid).get(("c", "startup")) and not startup_tries_when_started:
            startup_tries_when_started.append(_lines(_in(t, "/tmp/s")))

    events = []
    m = ProbeManager(on_change=changed, on_event=lambda _p, *a: events.append(a))
    try:
        m.sync(p, {"c": t})
        await eventually(lambda: len(events) >= 3)
        assert all(e == ("Warning", "Unhealthy", "Startup probe failed: ") for e in events)
        assert m.results(uid) == {}                       # not started, not ready, alive
        assert not os.path.exists(_in(t, "/tmp/l"))       # liveness has not probed
        _write(_in(t, "/tmp/up"), "")
        await eventually(lambda: m.results(uid) == {("c", "startup"): True,
                                                    ("c", "liveness"): True,
                                                    ("c", "readiness"): True})
        await eventually(lambda: _lines(_in(t, "/tmp/l")) >= 3)
        # the startup probe ran no more once it had succeeded
        assert _lines(_in(t, "/tmp/s")) == startup_tries_when_started[0]
    finally:
        await m.close()


def _lines(path: str) -> int:
    try:
        with open(path) as f:
            return len(f.readlines())
    except FileNotFoundError:
        return 0


async def test_liveness_failure_holds_until_a_new_run(container):
    _rt, p, t = container
    uid = p["metadata"]["uid"]
    c = p["spec"]["containers"][0]
    c["livenessProbe"] = {"exec": {"command": ["sh", "-c", "echo l >> /tmp/l; exit 1"]},
                          "failureThreshold": 1, **FAST}
    c["readinessProbe"] = {"exec": {"command": ["sh", "-c", "echo r >> /tmp/r"]}, **FAST}
    m = ProbeManager(on_change=lambda _u: None)
    try:
        m.sync(p, {"c": t})
        await eventually(lambda: m.results(uid).get(("c", "liveness")) is False)
        tries = _lines(_in(t, "/tmp/l"))
        assert tries == 1
        # readiness keeps probing meanwhile; liveness stays on hold
        r = _lines(_in(t, "/tmp/r"))
        await eventually(lambda: _lines(_in(t, "/tmp/r")) >= r + 3)
        assert _lines(_in(t, "/tmp/l")) == 1
        assert m.results(uid)[("c", "liveness")] is False
        # the agent restarted the container: a new run, fresh workers, results cleared
        m.sync(p, {"c": Target(t.pid, t.netns, t.pod_ip, run=1)})
        assert m.results(uid) == {}
        await eventually(lambda: _lines(_in(t, "/tmp/l")) == 2)
        await eventually(lambda: m.results(uid).get(("c", "liveness")) is False)
        # a container no longer running loses its workers and results
        m.sync(p, {})
        assert m.results(uid) == {}
    finally:
        await m.close()


async def test_a_deleted_pod_reads_alive_and_stops_liveness(container):
    _rt, p, t = container
    uid = p["metadata"]["uid"]
    c = p["spec"]["containers"][0]
    c["livenessProbe"] = {"exec": {"command": ["sh", "-c", "echo l >> /tmp/l; exit 1"]},
                          "failureThreshold": 1000, **FAST}
    m = ProbeManager(on_change=lambda _u: None)
    try:
        m.sync(p, {"c": t})
        await eventually(lambda: _lines(_in(t, "/tmp/l")) >= 1)
        p["metadata"]["deletionTimestamp"] = "2026-12-04T00:00:00Z"
        m.sync(p, {"c": t})
        assert m.results(uid) == {("c", "liveness"): True}
        await eventually(lambda: _work_tasks() == [])
    finally:
        await m.close()


def _work_tasks() -> list[asyncio.Task]:
    return [task for task in asyncio.all_tasks()
            if getattr(task.get_coro(), "__qualname__", "") == "ProbeManager._work"]


async def test_forget_and_close_leave_no_tasks_and_no_commands(container):
    _rt, p, t = container
    uid = p["metadata"]["uid"]
    pid_ns = os.readlink(f"/proc/{t.pid}/ns/pid")
    c = p["spec"]["containers"][0]
    c["livenessProbe"] = {"exec": {"command": ["sh", "-c", "touch /tmp/busy; sleep 1000"]},
                          "periodSeconds": 1, "timeoutSeconds": 1000}
    c["readinessProbe"] = {"tcpSocket": {"port": 1}, "initialDelaySeconds": 1000}
    m = ProbeManager(on_change=lambda _u: None)
    m.sync(p, {"c": t})
    assert len(_work_tasks()) == 2
    await eventually(lambda: os.path.exists(_in(t, "/tmp/busy")))
    m.forget(uid)
    assert m.results(uid) == {}
    await eventually(lambda: _work_tasks() == [])
    # the probe's command in the container was killed with its worker
    await eventually(lambda: pids_in_pid_ns(pid_ns) == [t.pid])
    m.sync(p, {"c": t})
    assert len(_work_tasks()) == 2
    await m.close()
    assert _work_tasks() == []
    await eventually(lambda: pids_in_pid_ns(pid_ns) == [t.pid])
