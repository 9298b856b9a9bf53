"""Running a command inside a running container: `spawn(pid, argv, ...)`.

The command joins the namespaces of the container's PID 1 (`pid`): net, uts, ipc, pid and mnt,
then its root (the container may have been chroot'ed rather than pivot_root'ed) and working
directory, its environment (from /proc/<pid>/environ, as CRI exec keeps the container's env),
its cgroups (its limits apply) and its user: groups, gid, uid and no_new_privs as the container
was started with (`process.read_identity`, passed by the caller), else as PID 1 has them now.
Joining a PID namespace only affects children, so the forked child that entered the
namespaces forks once more: the grandchild is in the container's PID namespace and execs the
command; the child stays as a small waiter that exits with the grandchild's status
(128+signal for a signal), which is what asyncio sees. SIGTERM to the waiter (a client went
away) makes it SIGKILL and reap the command; should the waiter die anyway, the command dies
with it (PR_SET_PDEATHSIG).

With a tty the command runs on a new pty as its session's controlling terminal; without one
stdin is a pipe (only when asked for: otherwise /dev/null) and stdout/stderr are pipes.
"""

from __future__ import annotations

import asyncio
import ctypes
import fcntl
import os
import signal
import struct
import termios
from dataclasses import dataclass

from ..runtime import linux
from ..runtime.process import Identity

NAMESPACES = ("net", "uts", "ipc", "pid", "mnt")    # mnt last: /proc paths resolve before it
PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True)


def _setns(fd: int) -> None:
    if _libc.setns(fd, 0) != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"setns: {os.strerror(e)}")


def container_env(pid: int) -> dict[str, str]:
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            raw = f.read()
    except OSError:
        return {}
    env = {}
    for item in raw.split(b"\0"):
        if b"=" in item:
            k, v = item.split(b"=", 1)
            env[k.decode(errors="replace")] = v.decode(errors="replace")
    return env


@dataclass
class Exec:
    proc: asyncio.subprocess.Process
    master: int | None = None          # the pty's master side, with a tty

    def resize(self, width: int, height: int) -> None:
        if self.master is not None and width > 0 and height > 0:
            fcntl.ioctl(self.master, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))

    def kill(self) -> None:
        """End the command: SIGTERM asks the waiter to SIGKILL and reap it."""
        if self.proc.returncode is None:
            try:
                self.proc.terminate()
            except ProcessLookupError:
                pass


def cgroup_procs(pid: int, root: str = "/sys/fs/cgroup") -> list[str]:
    """The cgroup.procs files of the groups `pid` is in (v1 limit controllers and the v2
    group), below the root of each hierarchy: an exec'd command shares the container's limits
    and dies with its cgroup, as CRI exec does."""
    out = []
    try:
        with open(f"/proc/{pid}/cgroup") as f:
            lines = f.read().splitlines()
    except OSError:
        return []
    for line in lines:
        num, ctls, path = line.split(":", 2)
        if path in ("", "/"):
            continue
        if num == "0" and ctls == "":
            dirs = [f"{root}/unified{path}", f"{root}{path}"]
        else:
            dirs = [f"{root}/{c}{path}" for c in ctls.split(",")
                    if c in ("memory", "cpu", "pids", "freezer")]
        for d in dirs:
            if os.path.exists(f"{d}/cgroup.procs"):
                out.append(f"{d}/cgroup.procs")
                break
    return out


def _preexec(ns_fds: list[int], root_fd: int, cwd_fd: int, tty: bool, cg_fds: list[int],
             user: Identity | None):
    def run() -> None:
        for fd in ns_fds:
            _setns(fd)
        os.fchdir(root_fd)
        os.chroot(".")
        try:
            os.fchdir(cwd_fd)
        except OSError:
            os.chdir("/")
        go_r, go_w = os.pipe()
        # a bare fork: Python's own after-fork hooks cannot run in a child made by uvloop's
        # spawn (they fail with RecursionError), and none are needed before exec
        child = linux.fork_without_handlers()
        if child:
            # the waiter: puts the command in the container's cgroups before it runs, then
            # keeps nothing of the session's descriptors, only the grandchild's status
            for fd in cg_fds:
                try:
                    os.write(fd, str(child).encode())
                except OSError:
                    pass
            os.write(go_w, b"g")
            null = os.open("/dev/null", os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(null, fd)
            os.closerange(3, 65536)
            for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGPIPE):
                signal.signal(sig, signal.SIG_IGN)

            def end_command(_sig, _frame) -> None:
                # the session is over: kill the command and reap it here (were the waiter to
                # die first, the command would be left a zombie of the container's PID 1)
                try:
                    os.kill(child, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            signal.signal(signal.SIGTERM, end_command)
            # under uvloop the child inherits libuv's blocked signal mask: without this the
            # SIGTERM of Exec.kill() (a client gone, a probe timed out) would never arrive
            signal.pthread_sigmask(signal.SIG_SETMASK, [])
            while True:
                try:
                    _, status = os.waitpid(child, 0)
                    break
                except InterruptedError:
                    continue
            code = os.waitstatus_to_exitcode(status)
            os._exit(128 - code if code < 0 else code)
        os.close(go_w)
        os.read(go_r, 1)
        os.close(go_r)
        _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() == 1:
            os._exit(137)
        for sig in (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT, signal.SIGTERM,
                    signal.SIGQUIT, signal.SIGHUP, signal.SIGCHLD):
            signal.signal(sig, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_SETMASK, [])
        if tty:
            os.setsid()
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)
        if user is not None:            # last: the steps above may need root
            user.apply()
    return run


async def spawn(pid: int, argv: list[str], *, stdin: bool, tty: bool, stderr: bool,
                env: dict[str, str] | None = None, user: Identity | None = None) -> Exec:
    """Start `argv` in the container whose PID 1 is `pid`, as `user` (the identity the
    container was started with, `process.read_identity`; without it, the one `pid` has now).
    Raises OSError (e.g. ENOENT for an unknown command, ESRCH when the container is gone)."""
    if not argv:
        raise OSError(22, "no command given")
    fds: list[int] = []
    master = slave = None
    try:
        for kind in NAMESPACES:
            fds.append(os.open(f"/proc/{pid}/ns/{kind}", os.O_RDONLY | os.O_CLOEXEC))
        root_fd = os.open(f"/proc/{pid}/root", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        fds.append(root_fd)
        cwd_fd = os.open(f"/proc/{pid}/cwd", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        fds.append(cwd_fd)
        cg_fds = []
        for procs in cgroup_procs(pid):
            try:
                cg_fds.append(os.open(procs, os.O_WRONLY | os.O_CLOEXEC))
            except OSError:
                pass                    # best effort: the command still runs, unlimited
        fds += cg_fds
        # the container's configured environment (process.read_env) when the caller has it,
        # else what PID 1's environ still shows
        env = dict(env) if env is not None else container_env(pid)
        if user is None:
            user = Identity.of_process(pid)
            if user is None:
                raise ProcessLookupError(3, f"no such process: {pid}")
        env.setdefault("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        if tty:
            env.setdefault("TERM", "xterm")
            master, slave = os.openpty()
            os.set_blocking(master, False)
            streams = dict(stdin=slave, stdout=slave, stderr=slave)
        else:
            streams = dict(stdin=asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL,
                           stdout=asyncio.subprocess.PIPE,
                           stderr=asyncio.subprocess.PIPE if stderr
                           else asyncio.subprocess.DEVNULL)
        enter = _preexec(fds[:len(NAMESPACES)], root_fd, cwd_fd, tty, cg_fds, user)
        proc = await asyncio.create_subprocess_exec(*argv, env=env, preexec_fn=enter,
                                                    limit=1 << 16, **streams)
    except BaseException:
        if master is not None:
            os.close(master)
        raise
    finally:
        for fd in fds:
            os.close(fd)
        if slave is not None:
            os.close(slave)
    return Exec(proc, master)
