"""The Linux system calls the container runtime needs and Python 3.11 lacks, through ctypes.

`os.unshare`/`os.setns` only arrived in Python 3.12, and `mount`, `umount2`, `sethostname`,
`pivot_root` and `prctl` were never in `os`. Each wrapper here checks the return value and
raises `OSError` with the real errno and the arguments, so a failing mount says which one.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)

# namespaces (linux/sched.h)
CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

# mount flags (linux/mount.h)
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MNT_DETACH = 2

# prctl options (linux/prctl.h)
PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
PR_GET_CHILD_SUBREAPER = 37
PR_SET_NO_NEW_PRIVS = 38

_SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41}.get(os.uname().machine)

_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong,
                        ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.unshare.argtypes = [ctypes.c_int]
_libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]
_libc.sethostname.argtypes = [ctypes.c_char_p, ctypes.c_size_t]


def _b(s: str | None) -> bytes | None:
    return None if s is None else os.fsencode(s)


def _check(rc: int, what: str) -> None:
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


_SYS_CLONE = {"x86_64": 56, "aarch64": 220}.get(os.uname().machine)
_libc.syscall.restype = ctypes.c_long


def fork_without_handlers() -> int:
    """fork(2) as a bare clone system call, for a process that is single-threaded and has
    closed the descriptors it inherited: no pthread_atfork handler runs in the child. libuv's
    (uvloop under `k1s up`) would close and re-create its signal pipe under the descriptor
    numbers it had in the agent, which here already belong to something else (e.g. the pod's
    namespace files a container is about to join). Returns like os.fork()."""
    if _SYS_CLONE is None:
        return os.fork()
    pid = _libc.syscall(_SYS_CLONE, signal.SIGCHLD, 0, 0, 0, 0)
    if pid < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"clone: {os.strerror(err)}")
    return pid


def unshare(flags: int) -> None:
    _check(_libc.unshare(flags), f"unshare({flags:#x})")


def setns(fd: int, nstype: int = 0) -> None:
    _check(_libc.setns(fd, nstype), f"setns({fd}, {nstype:#x})")


def setns_path(path: str, nstype: int = 0) -> None:
    """Join the namespace behind a /proc/<pid>/ns/<kind> file or a bind-mounted one
    (/run/netns/<name>)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        setns(fd, nstype)
    finally:
        os.close(fd)


def mount(source: str | None, target: str, fstype: str | None = None, flags: int = 0,
          data: str | None = None) -> None:
    _check(_libc.mount(_b(source), _b(target), _b(fstype), flags, _b(data)),
           f"mount({source!r}, {target!r}, {fstype!r}, {flags:#x}, {data!r})")


def umount2(target: str, flags: int = 0) -> None:
    _check(_libc.umount2(_b(target), flags), f"umount2({target!r}, {flags})")


def sethostname(name: str) -> None:
    raw = name.encode()
    _check(_libc.sethostname(raw, len(raw)), f"sethostname({name!r})")


def pivot_root(new_root: str, put_old: str) -> None:
    if _SYS_PIVOT_ROOT is None:
        raise OSError(38, f"pivot_root: unknown syscall number on {os.uname().machine}")
    _check(_libc.syscall(_SYS_PIVOT_ROOT, _b(new_root), _b(put_old)),
           f"pivot_root({new_root!r}, {put_old!r})")


def prctl(option: int, arg2: int = 0) -> int:
    z = ctypes.c_ulong(0)
    rc = _libc.prctl(ctypes.c_int(option), ctypes.c_ulong(arg2), z, z, z)
    if rc < 0:
        _check(rc, f"prctl({option}, {arg2})")
    return rc


def set_child_subreaper() -> None:
    """Orphans of our descendants come back to us (the sandbox's PID 1 reaps them late)."""
    prctl(PR_SET_CHILD_SUBREAPER, 1)


def is_child_subreaper() -> bool:
    out = ctypes.c_int(0)
    z = ctypes.c_ulong(0)
    _check(_libc.prctl(ctypes.c_int(PR_GET_CHILD_SUBREAPER), ctypes.byref(out), z, z, z),
           "prctl(PR_GET_CHILD_SUBREAPER)")
    return bool(out.value)


def set_no_new_privs() -> None:
    """execve can no longer grant privileges (setuid bits, file capabilities) to this process
    or its descendants: securityContext.allowPrivilegeEscalation=false."""
    prctl(PR_SET_NO_NEW_PRIVS, 1)


def proc_start_time(pid: int, *, zombies: bool = False) -> int | None:
    """Field 22 of /proc/<pid>/stat (start time in clock ticks since boot): with the pid it
    names one process for good, so a recycled pid is never mistaken for ours. None when the
    process is gone (or a zombie: it has exited, only its status remains)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    rest = raw[raw.rindex(b")") + 2:].split()      # the command name may hold spaces or ')'
    if rest[0] in (b"Z", b"X") and not zombies:
        return None
    return int(rest[19])


def alive(pid: int, start_time: int | None) -> bool:
    return pid > 0 and start_time is not None and proc_start_time(pid) == start_time


def reap_if_ours(pid: int, start_time: int | None) -> None:
    """Collect `pid` if it is that very process, exited, and our child (an orphan handed to us
    as the subreaper); never touches a recycled pid or another child's status."""
    if pid > 0 and start_time is not None and \
            proc_start_time(pid, zombies=True) == start_time and proc_start_time(pid) is None:
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
