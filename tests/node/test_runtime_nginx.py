"""The image catalog end to end: nginx from the catalog, in a pod joined to its own network
namespace, serves a file from a mounted volume (checked from inside the pod's namespaces, as
probes will be: the root namespace may reach only loopback), and busybox's applets; plus the
catalog's pure rules (references, command/args)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import uuid

import pytest

from k1s.node.runtime import images, linux, sandbox
from k1s.node.runtime.images import ImageNotKnown, parse_reference, resolve
from k1s.node.runtime.sandbox import VolumeMount

from runtime_util import finished, log_lines, needs_root, pod, runtime, wait_for  # noqa: F401


@pytest.fixture
def netns():
    """A throwaway named network namespace with lo up (the network helper makes the real ones);
    removed afterwards."""
    if os.geteuid() != 0:
        pytest.skip("creating a network namespace needs root")
    name = f"k1s-rt-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        yield f"/run/netns/{name}"
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def in_pod(pid: int, argv: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(argv, preexec_fn=sandbox.enter(pid), capture_output=True,
                          text=True, timeout=30)


@needs_root
@pytest.mark.skipif(not os.path.exists("/usr/sbin/nginx"), reason="apt-get install nginx-light")
def test_nginx_serves_a_volume_inside_the_pod_network(runtime, tmp_path, netns):
    html = tmp_path / "html"
    html.mkdir()
    (html / "index.html").write_text("hello web-0\n")
    rt = runtime(netns_for=lambda p: netns,
                 volumes_for=lambda p, c: [VolumeMount(str(html), "/usr/share/nginx/html")])
    p = pod("web-0", [{"name": "nginx", "image": "docker.io/library/nginx:1.25"}])
    uid = p["metadata"]["uid"]
    rt.start_sync(p)

    def answers():
        st = rt.container_states(uid)["nginx"]
        assert st.exit_code is None, (st, log_lines(st.log_path))
        r = in_pod(st.pid, ["curl", "-s", "http://localhost/"])
        return r.stdout if r.returncode == 0 else None
    assert wait_for(answers) == "hello web-0\n"
    st = rt.container_states(uid)["nginx"]
    # nginx is PID 1 of its PID namespace, and sits in the pod's network namespace
    holder = rt.holder_pid(uid)
    assert os.readlink(f"/proc/{st.pid}/ns/net") == os.readlink(f"/proc/{holder}/ns/net")
    assert os.stat(netns).st_ino == os.stat(f"/proc/{st.pid}/ns/net").st_ino
    assert in_pod(st.pid, ["cat", "/proc/1/comm"]).stdout.strip() == "nginx"
    # the access log goes to stdout in the container log, as the official image does
    wait_for(lambda: any('"GET / HTTP/1.1" 200' in ln for ln in log_lines(st.log_path)))
    # and it is in the pod's UTS namespace
    assert in_pod(st.pid, ["hostname"]).stdout.strip() == "web-0"

    # nginx's stop signal is SIGQUIT (graceful), as the official image's STOPSIGNAL
    async def stop_and_wait():
        await rt.stop(p, 60)
        while not rt.stopped(uid):
            await asyncio.sleep(0.02)
    asyncio.run(asyncio.wait_for(stop_and_wait(), 60))
    st = rt.container_states(uid)["nginx"]
    assert (st.exit_code, st.reason) == (0, "Completed")


@needs_root
@pytest.mark.skipif(not os.path.exists("/usr/bin/busybox"), reason="apt-get install busybox")
def test_busybox_runs_sh_and_has_its_applets(runtime):
    rt = runtime()
    # busybox has no entrypoint and cmd `sh`: args are the whole command line
    p = pod("bb", [{"name": "c", "image": "busybox:1.36",
                    "args": ["sh", "-c", "readlink -f $(command -v nslookup); "
                                         "readlink -f $(command -v wget)"]}])
    rt.start_sync(p)
    st = finished(rt, p["metadata"]["uid"])
    assert (st.exit_code, log_lines(st.log_path)) == (0, ["/usr/bin/busybox"] * 2)


def test_parse_reference():
    cases = {
        "nginx": ("nginx", "latest"),
        "nginx:1.9.1": ("nginx", "1.9.1"),
        "docker.io/library/nginx:1.25": ("nginx", "1.25"),
        "library/busybox": ("busybox", "latest"),
        "busybox@sha256:" + "a" * 64: ("busybox", "sha256:" + "a" * 64),
        "registry.k8s.io/pause:3.9": ("registry.k8s.io/pause", "3.9"),
        "localhost:5000/team/app": ("localhost:5000/team/app", "latest"),
    }
    for ref, want in cases.items():
        assert parse_reference(ref) == want, ref


@pytest.mark.parametrize("bad", ["", "  ", "Nginx", "nginx:", "a//b", "-x"])
def test_bad_references_are_refused_with_a_reason(bad):
    with pytest.raises(ImageNotKnown) as e:
        resolve(bad)
    assert e.value.reason == "InvalidImageName"


def test_command_and_args_follow_upstream_rules():
    if not os.path.exists("/usr/sbin/nginx"):
        pytest.skip("apt-get install nginx-light")
    assert resolve("nginx").argv == ["nginx", "-g", "daemon off;"]
    # the image has no entrypoint: args replace the cmd entirely, as upstream
    assert resolve("nginx", args=["nginx", "-T"]).argv == ["nginx", "-T"]
    assert resolve("nginx", command=["sh"]).argv == ["sh"]              # command drops cmd
    assert resolve("nginx", command=["sh"], args=["-c", "x"]).argv == ["sh", "-c", "x"]
    assert resolve("example.com/app", command=["true"]).argv == ["true"]
    with pytest.raises(ImageNotKnown) as e:
        resolve("example.com/app:1")
    assert e.value.reason == "ImageNotKnown" and "example.com/app:1" in str(e.value)


def test_catalog_files_are_written_once(tmp_path):
    entry = images.CATALOG["nginx"]
    binds = images.materialize(str(tmp_path), entry)
    assert [c for _h, c in binds] == [c for c, _ in entry.files]
    before = [os.stat(h).st_mtime_ns for h, _c in binds]
    assert images.materialize(str(tmp_path), entry) == binds
    assert [os.stat(h).st_mtime_ns for h, _c in binds] == before
    conf = open(binds[0][0]).read()
    assert "include /etc/nginx/conf.d/*.conf;" in conf and "access_log  /dev/stdout" in conf
    assert all(h.startswith(str(tmp_path)) for h, _c in binds)
    assert linux.proc_start_time(os.getpid()) is not None
