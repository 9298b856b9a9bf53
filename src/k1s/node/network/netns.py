"""Named network namespaces (/run/netns/<name>, as `ip netns` keeps them) and running code
inside one.

Why threads: a socket belongs to the network namespace it was created in, for its whole life,
whichever thread later uses it. So to reach a pod (the root namespace of these machines may
connect only to loopback) a short-lived helper thread `setns`es into the pod's or the node's
namespace, creates the socket there and hands it back; the caller connects, binds and reads
from its own thread or event loop. Namespaces are per thread on Linux, so the rest of the
process never moves. The helper thread is never reused: it ends with the call.

Names are built only from k1s-controlled parts (a prefix, a sanitized node name, a pod uid),
checked against a strict alphabet, so a name can never escape /run/netns. Python 3.11 has no
os.setns/os.unshare: they are ctypes calls here.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import ctypes
import ctypes.util
import errno
import hashlib
import os
import re
import socket
import threading

NETNS_DIR = "/run/netns"
CLONE_NEWNET = 0x40000000
MS_BIND = 4096
MS_REC = 16384
MS_SHARED = 1 << 20
MNT_DETACH = 2

DEFAULT_PREFIX = "k1s"
_PREFIX_RE = re.compile(r"^[a-z][a-z0-9]{0,15}$")       # no '-': prefixes never nest
_UID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,63}$")  # a pod uid (a UUID in practice)
NODE_TAG_MAX = 48                                         # netns names stay short and readable

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_lock = threading.Lock()         # create/remove of names, within this process


def _check(ret: int, what: str, target: str) -> None:
    if ret != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"{what}: {os.strerror(e)}", target)


# -- names --------------------------------------------------------------------------------------
def check_prefix(prefix: str) -> str:
    if not _PREFIX_RE.fullmatch(prefix or ""):
        raise ValueError(f"invalid network namespace prefix {prefix!r}: want [a-z][a-z0-9]{{0,15}}")
    return prefix


def node_tag(node_name: str) -> str:
    """A node name reduced to [a-z0-9-], at most NODE_TAG_MAX characters. When reducing changed
    anything (upper case, dots, length), a hash of the full name keeps distinct nodes apart."""
    raw = node_name or ""
    tag = re.sub(r"[^a-z0-9-]+", "-", raw.lower()).strip("-")
    if tag != raw or len(tag) > NODE_TAG_MAX or not tag:
        digest = hashlib.sha256(raw.encode()).hexdigest()[:8]
        tag = f"{tag[:NODE_TAG_MAX - 9].rstrip('-')}-{digest}".lstrip("-")
    return tag


def check_uid(uid: str) -> str:
    if not _UID_RE.fullmatch(uid or ""):
        raise ValueError(f"invalid pod uid {uid!r} for a network namespace name")
    return uid


def node_netns_name(prefix: str, node_name: str) -> str:
    return f"{check_prefix(prefix)}-node-{node_tag(node_name)}"


def pod_netns_prefix(prefix: str, node_name: str) -> str:
    """The part before the uid of every pod namespace of a node (`_` never occurs in a tag)."""
    return f"{check_prefix(prefix)}-pod-{node_tag(node_name)}_"


def pod_netns_name(prefix: str, node_name: str, uid: str) -> str:
    return pod_netns_prefix(prefix, node_name) + check_uid(uid)


def path_of(name: str) -> str:
    if not name or "/" in name or name in (".", "..") or "\0" in name:
        raise ValueError(f"invalid network namespace name {name!r}")
    return os.path.join(NETNS_DIR, name)


# -- namespaces ---------------------------------------------------------------------------------
def _nsfs_dev() -> int:
    return os.stat("/proc/self/ns/net").st_dev


def is_netns(path: str) -> bool:
    """Whether `path` is a mounted network namespace (a file on nsfs), not a bare placeholder
    left by a crash between creating the file and mounting the namespace on it."""
    try:
        return os.stat(path).st_dev == _nsfs_dev()
    except FileNotFoundError:
        return False


def _ensure_dir() -> None:
    """Create /run/netns as a shared mount, as iproute2 does, so a namespace unmounted here is
    unmounted in mount namespaces that were copied from this one and kept it shared."""
    os.makedirs(NETNS_DIR, exist_ok=True)
    d = NETNS_DIR.encode()
    if _libc.mount(b"", d, b"none", MS_SHARED | MS_REC, None) != 0:
        # not a mount point yet: bind it on itself, then share it
        _check(_libc.mount(d, d, b"none", MS_BIND | MS_REC, None), "bind", NETNS_DIR)
        _check(_libc.mount(b"", d, b"none", MS_SHARED | MS_REC, None), "share", NETNS_DIR)


def _run_thread(fn, *args, **kwargs):
    """Run fn in a fresh thread that ends with it; return its result or raise its error."""
    fut: concurrent.futures.Future = concurrent.futures.Future()
    threading.Thread(target=_fill, args=(fut, fn, args, kwargs), daemon=True,
                     name="k1s-netns").start()
    return fut.result()


def _fill(fut, fn, args, kwargs) -> None:
    # running from here on: a caller that gives up meanwhile cannot cancel the future, so
    # setting its result never fails in this thread (see in_netns_async for the leftovers)
    if not fut.set_running_or_notify_cancel():
        return
    try:
        fut.set_result(fn(*args, **kwargs))
    except BaseException as e:            # handed to the caller
        fut.set_exception(e)


def _unshare_and_mount(path: str) -> None:
    _check(_libc.unshare(CLONE_NEWNET), "unshare", path)
    # /proc/thread-self: /proc/self/ns/net would name the main thread's namespace
    _check(_libc.mount(b"/proc/thread-self/ns/net", path.encode(), b"none", MS_BIND, None),
           "mount", path)


def create(name: str) -> str:
    """Create the named network namespace if it is not there; return its path. Idempotent."""
    path = path_of(name)
    with _lock:
        if is_netns(path):
            return path
        _ensure_dir()
        try:
            os.close(os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0))
        except FileExistsError:
            pass                                  # a placeholder from a crash: mount on it
        try:
            _run_thread(_unshare_and_mount, path)
        except BaseException:
            try:
                os.unlink(path)
            except OSError:
                pass
            raise
    return path


def remove(name: str) -> bool:
    """Unmount and delete the named namespace; False when it was not there. The kernel frees
    it (and the interfaces in it) once no process or open file still holds it."""
    path = path_of(name)
    with _lock:
        if not os.path.lexists(path):
            return False
        if _libc.umount2(path.encode(), MNT_DETACH) != 0:
            e = ctypes.get_errno()
            if e != errno.EINVAL:                 # EINVAL: a placeholder, nothing mounted
                raise OSError(e, f"umount: {os.strerror(e)}", path)
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
    return True


def names(prefix: str = "") -> list[str]:
    """The named namespaces whose names start with `prefix`, sorted."""
    try:
        return sorted(n for n in os.listdir(NETNS_DIR) if n.startswith(prefix))
    except FileNotFoundError:
        return []


def cleanup_all(prefix: str) -> list[str]:
    """Remove every namespace k1s made with this prefix (node, pod and fabric namespaces;
    their veths and bridges go with them). For tests and reset paths; returns the names
    removed."""
    check_prefix(prefix)
    gone = []
    for n in names(prefix + "-"):
        ours = n.startswith((f"{prefix}-node-", f"{prefix}-pod-")) or n == f"{prefix}-fabric"
        if ours and remove(n):
            gone.append(n)
    return gone


# -- running inside one ---------------------------------------------------------------------------
def _enter(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        _check(_libc.setns(fd, CLONE_NEWNET), "setns", path)
    finally:
        os.close(fd)


def _entered(path, fn, args, kwargs):
    _enter(path)
    return fn(*args, **kwargs)


def in_netns(path: str, fn, *args, **kwargs):
    """Call fn(*args, **kwargs) in a fresh thread inside the network namespace at `path`;
    return its result (or raise its error). Blocks the caller: from an event loop use
    `in_netns_async`."""
    return _run_thread(_entered, path, fn, args, kwargs)


async def in_netns_async(path: str, fn, *args, discard=None, **kwargs):
    """`in_netns` without blocking the running event loop. Should the caller be cancelled
    while the helper thread works, `discard(result)` disposes of what it made (a socket's
    close), instead of leaving it to the garbage collector."""
    fut: concurrent.futures.Future = concurrent.futures.Future()
    threading.Thread(target=_fill, args=(fut, _entered, (path, fn, args, kwargs), {}),
                     daemon=True, name="k1s-netns").start()
    try:
        return await asyncio.shield(asyncio.wrap_future(fut))
    except asyncio.CancelledError:
        if discard is not None:
            fut.add_done_callback(
                lambda f: discard(f.result()) if not f.cancelled() and f.exception() is None
                else None)
        raise


def socket_in(path: str, family: int = socket.AF_INET, type: int = socket.SOCK_STREAM,
              proto: int = 0) -> socket.socket:
    """A new socket that lives in the namespace at `path` (created by a helper thread)."""
    return in_netns(path, socket.socket, family, type, proto)


async def socket_in_async(path: str, family: int = socket.AF_INET,
                          type: int = socket.SOCK_STREAM, proto: int = 0) -> socket.socket:
    return await in_netns_async(path, socket.socket, family, type, proto,
                                discard=lambda sock: sock.close())
