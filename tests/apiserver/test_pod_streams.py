"""kubectl exec / logs / port-forward / cp against an in-process API server whose pod stream
subresources are proxied (k1s.apiserver.streams) to a node stream server
(k1s.node.streams.server) in front of real containers of the process runtime.

The requests go through the API server's own dispatcher, as kubectl's do against `k1s up`.
Every container, namespace and mount the test makes is removed afterwards.
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
import subprocess
import uuid
from dataclasses import dataclass

import aiohttp
import pytest

from k1s.api import registry
from k1s.client.rest import APIClient
from k1s.node.network import forward, netns
from k1s.node.runtime.runtime import ProcessRuntime
from k1s.node.streams.server import StreamServer

from k1s_harness import pinned_kubectl

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="containers and namespaces need root")

PODS = registry.core("pods")
NODES = registry.core("nodes")
TIMEOUT = 60.0

@dataclass
class Run:
    code: int
    out: str
    err: str


@dataclass
class Stack:
    url: str
    kubeconfig: str
    client: APIClient
    runtime: ProcessRuntime
    netns_path: str
    cache: str
    tmp: str

    async def kubectl(self, *args: str, input: bytes | None = None,
                      timeout: float = TIMEOUT) -> Run:
        p = await asyncio.create_subprocess_exec(
            pinned_kubectl(), "--kubeconfig", self.kubeconfig, "--cache-dir", self.cache, *args,
            stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            out, err = await asyncio.wait_for(p.communicate(input), timeout)
        except asyncio.TimeoutError:
            p.kill()
            await p.wait()
            raise
        return Run(p.returncode, out.decode(), err.decode())

    async def pod(self, name: str, containers: list[dict], *, node: str | None = "n1",
                  start: bool = True) -> dict:
        obj = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
               "spec": {"containers": containers}}
        if node:
            obj["spec"]["nodeName"] = node
        pod = await self.client.create(PODS, obj, "default")
        if start:
            self.runtime.start_sync(pod)
            pod["status"] = {**(pod.get("status") or {}), "phase": "Running"}
            pod = await self.client.update_status(PODS, pod)
        return pod


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sh(name: str, script: str) -> dict:
    return {"name": name, "image": "busybox", "command": ["sh", "-c", script]}


@pytest.fixture
async def stack(api_server, tmp_path):
    ns_name = "k1sst" + uuid.uuid4().hex[:10]
    path = netns.create(ns_name)
    subprocess.run(["ip", "-n", ns_name, "link", "set", "lo", "up"], check=True)
    data = tmp_path / "node"
    data.mkdir()
    rt = ProcessRuntime(str(data), netns_for=lambda pod: path)
    server = StreamServer(str(data))
    await server.start()
    client = APIClient(api_server.url)
    node = await client.create(NODES, {"apiVersion": "v1", "kind": "Node",
                                       "metadata": {"name": "n1"}})
    node["status"] = {"daemonEndpoints": {"kubeletEndpoint": {"Port": server.port}}}
    await client.update_status(NODES, node)
    try:
        yield Stack(api_server.url, api_server.kubeconfig, client, rt, path,
                    str(tmp_path / "kcache"), str(tmp_path))
    finally:
        for uid in list(rt.pods):
            rt.forget(uid)
        await server.stop()
        await client.close()
        netns.remove(ns_name)


async def test_exec_output_exit_code_stdin_and_namespaces(stack):
    await stack.pod("web-0", [sh("main", "echo started; exec sleep 100000")])
    r = await stack.kubectl("exec", "web-0", "--", "sh", "-c", "echo hi; echo err >&2; exit 3")
    assert (r.code, r.out) == (3, "hi\n")
    assert "err\n" in r.err and "command terminated with exit code 3" in r.err

    r = await stack.kubectl("exec", "-i", "web-0", "--", "cat", input=b"a\nb\n")
    assert (r.code, r.out) == (0, "a\nb\n")
    # without -i the command's stdin is /dev/null: cat ends at once, kubectl's input unread
    r = await stack.kubectl("exec", "web-0", "--", "cat", input=b"ignored\n")
    assert (r.code, r.out) == (0, "")

    # the pod's UTS namespace (its hostname is the pod name, not the machine's)
    r = await stack.kubectl("exec", "web-0", "--", "hostname")
    assert (r.code, r.out) == (0, "web-0\n")
    assert socket.gethostname() != "web-0"
    # the container's PID namespace: its PID 1 is the container's command
    r = await stack.kubectl("exec", "web-0", "--", "cat", "/proc/1/cmdline")
    assert r.code == 0 and r.out.split("\0")[0] == "sleep"
    # the container's environment
    r = await stack.kubectl("exec", "web-0", "--", "sh", "-c", "echo $HOSTNAME")
    assert r.out == "web-0\n"

    r = await stack.kubectl("exec", "web-0", "--", "no-such-command-k1s")
    assert r.code != 0 and "executable file not found" in r.err


async def test_exec_with_tty(stack):
    await stack.pod("web-0", [sh("main", "exec sleep 100000")])
    # kubectl only makes a tty when its own stdin is one: run it under script(1)
    cmd = (f"{pinned_kubectl()} --kubeconfig {stack.kubeconfig} --cache-dir {stack.cache} "
           f"exec -it web-0 -- sh -c 'tty; exit 5'")
    p = await asyncio.create_subprocess_exec(
        "script", "-qec", cmd, "/dev/null", stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE)
    out, _err = await asyncio.wait_for(p.communicate(b""), TIMEOUT)
    assert p.returncode == 5
    assert b"/dev/pts/" in out


async def test_logs_tail_timestamps_follow_previous(stack):
    pod = await stack.pod("logger", [sh("main", "echo one; echo two; echo three; "
                                                "sleep 1; echo four >&2")])
    uid = pod["metadata"]["uid"]
    # -f ends when the container exits, with every line
    r = await stack.kubectl("logs", "-f", "logger")
    assert (r.code, r.out) == (0, "one\ntwo\nthree\nfour\n")
    r = await stack.kubectl("logs", "logger", "--tail=2")
    assert r.out == "three\nfour\n"
    r = await stack.kubectl("logs", "logger", "--timestamps", "--tail=1")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z four\n", r.out), r.out
    r = await stack.kubectl("logs", "logger", "--limit-bytes=6")
    assert r.out == "one\ntw"
    r = await stack.kubectl("logs", "logger", "--since=1h")
    assert r.out == "one\ntwo\nthree\nfour\n"
    r = await stack.kubectl("logs", "logger", "--previous")
    assert r.code == 1
    assert 'previous terminated container "main" in pod "logger" not found' in r.err
    # a restart: --previous shows the first run's log, the default the current one
    stack.runtime.start_container(pod, sh("main", "echo again"))
    st = stack.runtime.container_states(uid)["main"]
    assert st.restart == 1
    for _ in range(200):
        r = await stack.kubectl("logs", "logger")
        if r.out == "again\n":
            break
        await asyncio.sleep(0.1)
    assert r.out == "again\n"
    r = await stack.kubectl("logs", "logger", "-p")
    assert r.out == "one\ntwo\nthree\nfour\n"


async def test_port_forward_to_a_server_in_the_pod_network_namespace(stack):
    await stack.pod("web-0", [sh("main", "exec sleep 100000")])

    async def serve(reader, writer):            # echo until the client half-closes
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
        writer.close()
    lsock = forward.tcp_listener(stack.netns_path, "127.0.0.1", 0)
    pod_port = lsock.getsockname()[1]
    srv = await asyncio.start_server(serve, sock=lsock)
    # nothing listens on that port in the root namespace: only the pod's has the server
    with socket.socket() as probe:
        probe.settimeout(2)
        assert probe.connect_ex(("127.0.0.1", pod_port)) != 0
    local = free_port()
    p = await asyncio.create_subprocess_exec(
        pinned_kubectl(), "--kubeconfig", stack.kubeconfig, "--cache-dir", stack.cache,
        "port-forward", "pod/web-0", f"{local}:{pod_port}", stdout=subprocess.PIPE,
        stderr=subprocess.PIPE)
    try:
        line = await asyncio.wait_for(p.stdout.readline(), TIMEOUT)
        assert f"Forwarding from 127.0.0.1:{local} -> {pod_port}" in line.decode()
        async def echo(payload: bytes) -> bytes:
            reader, writer = await asyncio.open_connection("127.0.0.1", local)
            writer.write(payload)
            await writer.drain()
            writer.write_eof()                  # FIN travels to the pod's side
            got = await reader.read()
            writer.close()
            return got
        # several connections at once over one session, each with more than a frame's worth
        payloads = [os.urandom(300_000 + i) for i in range(3)]
        got = await asyncio.wait_for(asyncio.gather(*(echo(b) for b in payloads)), TIMEOUT)
        assert got == payloads
        assert await asyncio.wait_for(echo(b"again"), TIMEOUT) == b"again"
        # a port nothing listens on: the connection ends, kubectl reports it, keeps going
        port2 = free_port()
        p2 = await asyncio.create_subprocess_exec(
            pinned_kubectl(), "--kubeconfig", stack.kubeconfig, "--cache-dir", stack.cache,
            "port-forward", "pod/web-0", f"{port2}:1", stdout=subprocess.PIPE,
            stderr=subprocess.PIPE)
        try:
            line = await asyncio.wait_for(p2.stdout.readline(), TIMEOUT)
            assert f"Forwarding from 127.0.0.1:{port2} -> 1" in line.decode()
            reader, writer = await asyncio.open_connection("127.0.0.1", port2)
            assert await asyncio.wait_for(reader.read(), TIMEOUT) == b""
            writer.close()
            # kubectl 1.37 gives up the whole session on a forwarding error
            _out, err = await asyncio.wait_for(p2.communicate(), TIMEOUT)
        finally:
            if p2.returncode is None:
                p2.kill()
                await p2.wait()
        err = err.decode()
        assert "An error occurred forwarding" in err
        assert "failed to connect to localhost:1" in err and "connection refused" in err
        assert "lost connection to pod" in err
    finally:
        p.kill()
        await p.wait()
        srv.close()
        await srv.wait_closed()


async def test_cp_both_ways(stack):
    await stack.pod("web-0", [sh("main", "exec sleep 100000")])
    src = os.path.join(stack.tmp, "hello.txt")
    payload = "hello from the host\n" * 1000
    with open(src, "w") as f:
        f.write(payload)
    r = await stack.kubectl("cp", src, "web-0:/tmp/hello.txt")
    assert r.code == 0, r.err
    r = await stack.kubectl("exec", "web-0", "--", "cat", "/tmp/hello.txt")
    assert r.out == payload
    # the file is in the container's own view, not on the host
    assert not os.path.exists("/tmp/hello.txt") or open("/tmp/hello.txt").read() != payload
    back = os.path.join(stack.tmp, "back.txt")
    r = await stack.kubectl("cp", "web-0:/tmp/hello.txt", back)
    assert r.code == 0, r.err
    assert open(back).read() == payload

    # a directory tree, there and back
    tree = os.path.join(stack.tmp, "tree")
    os.makedirs(os.path.join(tree, "sub"))
    for rel, body in (("a.txt", "A\n"), ("sub/b.bin", "\0\1\2" * 5000)):
        with open(os.path.join(tree, rel), "w") as f:
            f.write(body)
    r = await stack.kubectl("cp", tree, "web-0:/tmp/tree")
    assert r.code == 0, r.err
    r = await stack.kubectl("exec", "web-0", "--", "find", "/tmp/tree", "-type", "f")
    assert sorted(r.out.split()) == ["/tmp/tree/a.txt", "/tmp/tree/sub/b.bin"]
    again = os.path.join(stack.tmp, "again")
    r = await stack.kubectl("cp", "web-0:/tmp/tree", again)
    assert r.code == 0, r.err
    assert open(os.path.join(again, "sub", "b.bin")).read() == "\0\1\2" * 5000
    assert open(os.path.join(again, "a.txt")).read() == "A\n"


async def test_errors_with_upstream_messages(stack):
    await stack.pod("nonode", [sh("main", "true")], node=None, start=False)
    r = await stack.kubectl("exec", "nonode", "--", "true")
    assert r.code != 0 and "pod nonode does not have a host assigned" in r.err
    r = await stack.kubectl("logs", "nonode")        # upstream: no host, no logs
    assert (r.code, r.out) == (0, "")

    await stack.pod("pending", [sh("main", "true")], start=False)
    r = await stack.kubectl("exec", "pending", "--", "true")
    assert r.code != 0 and 'container not found ("main")' in r.err
    r = await stack.kubectl("logs", "pending")
    assert r.code != 0
    assert 'container "main" in pod "pending" is waiting to start: ContainerCreating' in r.err

    await stack.pod("two", [sh("a", "exec sleep 100000"), sh("b", "exec sleep 100000")])
    r = await stack.kubectl("exec", "two", "-c", "nope", "--", "true")
    assert r.code != 0 and "container nope is not valid for pod two" in r.err
    async with aiohttp.ClientSession() as s:
        async with s.get(f"{stack.url}/api/v1/namespaces/default/pods/two/log") as resp:
            body = await resp.json()
            assert resp.status == 400
            assert body["message"] == ("a container name must be specified for pod two, "
                                       "choose one of: [a b]")
        async with s.get(f"{stack.url}/api/v1/namespaces/default/pods/ghost/log") as resp:
            assert resp.status == 404
    r = await stack.kubectl("exec", "two", "-c", "b", "--", "hostname")
    assert (r.code, r.out) == (0, "two\n")


def _procs_with_cmdline(arg: str) -> list[int]:
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/cmdline", "rb") as f:
                    if f.read().split(b"\0")[:2] == [b"sleep", arg.encode()]:
                        out.append(int(d))
            except OSError:
                pass
    return out


async def test_exec_joins_the_container_cgroups_and_ends_with_its_client(stack):
    pod = await stack.pod("web-0", [sh("main", "exec sleep 100000")])
    st = stack.runtime.container_states(pod["metadata"]["uid"])["main"]
    r = await stack.kubectl("exec", "web-0", "--", "cat", "/proc/self/cgroup")
    want = open(f"/proc/{st.pid}/cgroup").read()
    mem = [ln for ln in want.splitlines() if ":memory:" in ln or ln.startswith("0::")]
    assert mem and all(ln in r.out.splitlines() for ln in mem), (r.out, want)

    # kubectl goes away mid-command: the command is ended, not left behind in the pod
    arg = str(40000 + os.getpid() % 10000)
    p = await asyncio.create_subprocess_exec(
        pinned_kubectl(), "--kubeconfig", stack.kubeconfig, "--cache-dir", stack.cache,
        "exec", "web-0", "--", "sleep", arg, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    for _ in range(600):
        if _procs_with_cmdline(arg):
            break
        await asyncio.sleep(0.05)
    assert _procs_with_cmdline(arg)
    pid = _procs_with_cmdline(arg)[0]
    assert os.readlink(f"/proc/{pid}/ns/pid") == os.readlink(f"/proc/{st.pid}/ns/pid")
    p.kill()
    await p.wait()
    for _ in range(600):
        if not os.path.exists(f"/proc/{pid}"):
            break
        await asyncio.sleep(0.05)
    assert not os.path.exists(f"/proc/{pid}")      # ended and reaped: not even a zombie


async def test_attach_streams_the_container_output_until_it_exits(stack):
    await stack.pod("talker", [sh("main", "i=0; while [ ! -e /tmp/stop ]; do echo tick $i; "
                                          "i=$((i+1)); sleep 0.1; done; echo bye; echo gone >&2")])
    p = await asyncio.create_subprocess_exec(
        pinned_kubectl(), "--kubeconfig", stack.kubeconfig, "--cache-dir", stack.cache,
        "attach", "talker", stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        first = await asyncio.wait_for(p.stdout.readline(), TIMEOUT)
        assert first.startswith(b"tick ")         # attached: output from now on
        r = await stack.kubectl("exec", "talker", "--", "touch", "/tmp/stop")
        assert r.code == 0
        rest = await asyncio.wait_for(p.stdout.read(), TIMEOUT)
        err = await p.stderr.read()
        assert await p.wait() == 0
    finally:
        if p.returncode is None:
            p.kill()
            await p.wait()
    lines = (first + rest).decode().splitlines()
    assert lines[-1] == "bye"
    assert all(ln.startswith("tick ") for ln in lines[:-1])
    assert b"gone" in err


async def test_logs_of_one_container_among_several(stack):
    await stack.pod("duo", [sh("a", "echo from-a; exec sleep 100000"),
                            sh("b", "echo from-b; exec sleep 100000")])
    for _ in range(200):
        r = await stack.kubectl("logs", "duo", "-c", "b")
        if r.out:
            break
        await asyncio.sleep(0.05)
    assert (r.code, r.out) == (0, "from-b\n")
    r = await stack.kubectl("logs", "duo", "-c", "nope")
    assert r.code != 0 and "container nope is not valid for pod duo" in r.err
