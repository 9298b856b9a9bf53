"""One container's processes: start, logs, exit status, stop, and re-adoption by pid files.

`start_container(...)` forks a small monitor (as conmon does for CRI-O) that outlives the agent:
1. the monitor leaves the agent's session and file descriptors behind, unshares a PID
   namespace and forks the container's first process, which becomes PID 1 there (with
   shareProcessNamespace it joins the pod's PID namespace instead, whose PID 1 is the
   sandbox's pause: the container's first process is then one process among the pod's);
2. it puts that process in the container's cgroup before letting it continue; the process
   joins the pod's net/UTS/IPC namespaces (the sandbox holder's), makes its own mount
   namespace and view (`sandbox.build_root`), switches to the container's `Identity`
   (securityContext: groups, gid, uid, no_new_privs) and execs the command;
3. the monitor copies stdout/stderr into `<data>/pods/<uid>/logs/<name>/<restart>.log` in the
   CRI format (`<RFC3339Nano> stdout F <line>`; `P` for a partial line), rotating by size,
   until the first process exits; then it kills what is left in the cgroup, drains the output
   and writes `exit.json` (exit code, reason, time, message).
The agent learns the outcome from files (`state.json`, `exit.json`), so a restarted agent reads
exactly what the old one would have: `read_state` checks the pid's start time in
/proc/<pid>/stat, so a recycled pid is never taken for the container. Beside them,
`env.json` and `identity.json` say how `kubectl exec` runs commands in the container.

Exit codes as upstream: the status, or 128+signal; reason Completed (0), Error, OOMKilled
(killed while the cgroup's oom_kill counter moved), StartError (the exec failed; code 128).
The message (`exit_message`): the start error, else what the container wrote to its
terminationMessagePath (a per-start host file bind-mounted there, mode 0666), else with
FallbackToLogsOnError and a failure the tail of its log, with kubelet's limits.
Stopping: the stop signal to the first process, and SIGKILL after the grace period; in its own
PID namespace its death makes the kernel kill every other process there, and in any case the
monitor kills the container's cgroup once it is gone (containerd's kill-all when a container
shares the pod's PID namespace).
"""

from __future__ import annotations

import errno
import gc
import json
import os
import select
import shutil
import signal
import time
from dataclasses import dataclass, field

from ..streams import logs
from . import linux
from .cgroups import Cgroup, Limits
from .sandbox import (Holder, VolumeMount, build_root, check_name, close_fds_except,
                      kill_and_reap, pod_dir, read_child_report, read_json, reset_signals,
                      write_json)

LOG_MAX_BYTES = 10 * 1024 * 1024       # kubelet's containerLogMaxSize default
LOG_MAX_FILES = 5                      # kubelet's containerLogMaxFiles default
PARTIAL_CHUNK = 16 * 1024              # a line longer than this is split into P records
DRAIN_SECONDS = 2.0                    # output still read after the main process exited


TERMINATION_MESSAGE_MAX = 4096         # kubelet's MaxContainerTerminationMessageLength
FALLBACK_LOG_LINES = 80                # ...MaxContainerTerminationMessageLogLines
FALLBACK_LOG_BYTES = 2048              # ...MaxContainerTerminationMessageLogLength


@dataclass
class Identity:
    """Who a container's processes are: the user and groups its first process switches to
    right before exec, and whether execve may grant privileges (no_new_privs). `kubectl exec`
    and exec probes run as the same identity, as CRI exec uses the container's process spec."""
    uid: int = 0
    gid: int = 0
    groups: list[int] = field(default_factory=list)     # supplementary, in order
    no_new_privs: bool = False

    def apply(self) -> None:
        """Switch this (forked, about-to-exec) process: groups, then gid, then uid (once the
        uid is not 0 the others can no longer be changed)."""
        os.setgroups(self.groups)
        os.setresgid(self.gid, self.gid, self.gid)
        os.setresuid(self.uid, self.uid, self.uid)
        if self.no_new_privs:
            linux.set_no_new_privs()

    def to_json(self) -> dict:
        return {"uid": self.uid, "gid": self.gid, "groups": list(self.groups),
                "no_new_privs": self.no_new_privs}

    @classmethod
    def from_json(cls, d: dict) -> "Identity":
        return cls(int(d["uid"]), int(d["gid"]), [int(g) for g in d.get("groups") or []],
                   bool(d.get("no_new_privs")))

    @classmethod
    def of_process(cls, pid: int) -> "Identity | None":
        """The real ids, supplementary groups and no_new_privs of a running process (from
        /proc/<pid>/status); None if it is gone."""
        fields: dict[str, list[str]] = {}
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    key, _, rest = line.partition(":")
                    fields[key] = rest.split()
            return cls(int(fields["Uid"][0]), int(fields["Gid"][0]),
                       [int(g) for g in fields.get("Groups", [])],
                       fields.get("NoNewPrivs", ["0"])[0] == "1")
        except (OSError, KeyError, IndexError, ValueError):
            return None


@dataclass
class ContainerSpec:
    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    working_dir: str = ""
    limits: Limits = field(default_factory=Limits)
    image_binds: list[tuple[str, str]] = field(default_factory=list)   # (host, container)
    volumes: list[VolumeMount] = field(default_factory=list)
    restart: int = 0
    log_max_bytes: int = LOG_MAX_BYTES
    log_max_files: int = LOG_MAX_FILES
    identity: Identity | None = None       # None: the monitor's own (root, as the agent)
    read_only_root: bool = False           # securityContext.readOnlyRootFilesystem
    termination_message_path: str = ""     # '' : no termination message file
    fallback_to_logs: bool = False         # terminationMessagePolicy FallbackToLogsOnError
    oom_score_adj: int | None = None       # by QoS class, as kubelet (runtime.oom_score_adj)


@dataclass
class ContainerState:
    name: str
    pid: int = 0
    start_time: int | None = None
    started_at: float | None = None
    restart: int = 0
    exit_code: int | None = None         # None while running
    reason: str = ""
    message: str = ""
    finished_at: float | None = None
    log_path: str = ""
    notes: list[str] = field(default_factory=list)    # limits not enforced, overlay fallback

    @property
    def running(self) -> bool:
        return self.exit_code is None and linux.alive(self.pid, self.start_time)


def container_dir(data_dir: str, uid: str, name: str) -> str:
    return os.path.join(pod_dir(data_dir, uid), "containers", check_name(name))


def log_path(data_dir: str, uid: str, name: str, restart: int) -> str:
    return os.path.join(pod_dir(data_dir, uid), "logs", check_name(name), f"{int(restart)}.log")


# -- CRI log writing ---------------------------------------------------------------------------
def rfc3339nano(ns: int) -> str:
    secs, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{frac:09d}Z"


class LogWriter:
    """CRI-format records into `path`; past max_bytes the file becomes path.1 (older ones
    shift up; at most max_files files in all) and a new one starts."""

    def __init__(self, path: str, max_bytes: int = LOG_MAX_BYTES,
                 max_files: int = LOG_MAX_FILES):
        self.path, self.max_bytes, self.max_files = path, max_bytes, max(1, max_files)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o640)
        self.size = os.fstat(self.fd).st_size
        self.pending = {"stdout": b"", "stderr": b""}

    def feed(self, stream: str, data: bytes) -> None:
        buf = self.pending[stream] + data
        while True:
            nl = buf.find(b"\n")
            if nl < 0:
                break
            self._record(stream, b"F", buf[:nl])
            buf = buf[nl + 1:]
        while len(buf) >= PARTIAL_CHUNK:
            self._record(stream, b"P", buf[:PARTIAL_CHUNK])
            buf = buf[PARTIAL_CHUNK:]
        self.pending[stream] = buf

    def close(self) -> None:
        for stream, buf in self.pending.items():
            if buf:
                self._record(stream, b"F", buf)
        self.pending = {"stdout": b"", "stderr": b""}
        os.close(self.fd)

    def _record(self, stream: str, tag: bytes, line: bytes) -> None:
        rec = (rfc3339nano(time.time_ns()).encode() + b" " + stream.encode() + b" " + tag +
               b" " + line + b"\n")
        if self.size and self.size + len(rec) > self.max_bytes:
            self._rotate()
        os.write(self.fd, rec)
        self.size += len(rec)

    def _rotate(self) -> None:
        os.close(self.fd)
        keep = self.max_files - 1
        if keep <= 0:
            os.unlink(self.path)
        else:
            for i in range(keep, 0, -1):
                src = self.path if i == 1 else f"{self.path}.{i - 1}"
                if os.path.exists(src):
                    os.replace(src, f"{self.path}.{i}")
        self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC,
                          0o640)
        self.size = 0


# -- start -------------------------------------------------------------------------------------
def start_container(data_dir: str, uid: str, holder: Holder, spec: ContainerSpec,
                    files: dict[str, str]) -> ContainerState:
    """Start one container of the pod whose namespaces `holder` keeps. Returns once its
    process has exec'd (or failed to: then the state already holds the exit)."""
    cdir = container_dir(data_dir, uid, spec.name)
    os.makedirs(cdir, exist_ok=True)
    for sub in ("upper", "work", "dev-upper", "dev-work", "rootfs"):   # fresh layers per start
        p = os.path.join(cdir, sub)
        if sub != "rootfs":
            shutil.rmtree(p, ignore_errors=True)
        os.makedirs(p, exist_ok=True)
    for f in ("state.json", "exit.json"):
        try:
            os.unlink(os.path.join(cdir, f))
        except FileNotFoundError:
            pass
    _write_env(cdir, spec.env)
    _write_identity(cdir, spec.identity)
    if spec.termination_message_path:
        # kubelet's per-start host file behind terminationMessagePath: empty, and writable
        # whoever the container runs as
        tpath = _fresh_termination_file(cdir)
        spec.volumes = list(spec.volumes) + [VolumeMount(tpath, spec.termination_message_path)]
    cg = Cgroup.create(uid, spec.name, spec.limits)
    lpath = log_path(data_dir, uid, spec.name, spec.restart)
    r, w = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.close(r)
            _monitor(data_dir, cdir, holder, spec, files, cg, lpath, w)
            code = 0
        except BaseException:                          # noqa: BLE001 - nothing may escape
            pass
        os._exit(code)
    os.close(w)
    try:
        report = read_child_report(r)
    except TimeoutError as e:
        # a monitor that hung before the container exec'd: end it and what it started, and
        # let the agent try again, rather than wait for it forever
        kill_and_reap(pid)
        cg.kill()
        raise OSError(errno.ETIMEDOUT, f"container {spec.name}: {e}") from None
    finally:
        os.close(r)
    st = read_state(data_dir, uid, spec.name)
    if st is None:
        _reap(pid)
        raise OSError(errno.EIO, f"container {spec.name}: the monitor died before starting it: "
                      f"{report.decode(errors='replace')}")
    st.notes = list(cg.problems) + st.notes
    return st


def _monitor(data_dir: str, cdir: str, holder: Holder, spec: ContainerSpec,
             files: dict[str, str], cg: Cgroup, lpath: str, ready_w: int) -> None:
    # a forked copy of the agent: a collection would touch every object and turn the pages
    # it shares with the agent into private copies, so the monitor never collects
    gc.disable()
    os.setsid()
    null = os.open("/dev/null", os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    if null > 2:
        os.close(null)
    close_fds_except({ready_w})                        # the agent's sockets stay the agent's
    reset_signals()
    try:
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)  # a write to a gone reader: EPIPE
    except ValueError:
        pass
    ns_fds = [os.open(holder.ns_path(k), os.O_RDONLY | os.O_CLOEXEC)
              for k in ("net", "uts", "ipc")]
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    go_r, go_w = os.pipe2(os.O_CLOEXEC)
    exc_r, exc_w = os.pipe2(os.O_CLOEXEC)
    if holder.pid_ns:
        # shareProcessNamespace: the child is born in the pod's PID namespace, whose PID 1 is
        # the holder (the sandbox's pause), next to the other containers' processes
        linux.setns_path(holder.ns_path("pid"), linux.CLONE_NEWPID)
    else:
        linux.unshare(linux.CLONE_NEWPID)
    pid = linux.fork_without_handlers()                # see there: our fds must stay ours
    if pid == 0:                                       # PID 1 of the container's namespace
        try:
            for fd in (out_r, err_r, go_w, exc_r, ready_w):
                os.close(fd)
            if os.read(go_r, 1) != b"g":
                os._exit(1)
            for fd in ns_fds:
                linux.setns(fd, 0)
            linux.unshare(linux.CLONE_NEWNS)
            fallback = build_root(os.path.join(cdir, "rootfs"), os.path.join(cdir, "upper"),
                                  os.path.join(cdir, "work"), data_dir=data_dir, files=files,
                                  image_binds=spec.image_binds, volumes=spec.volumes,
                                  dev_layer=(os.path.join(cdir, "dev-upper"),
                                             os.path.join(cdir, "dev-work")),
                                  read_only=spec.read_only_root,
                                  working_dir=spec.working_dir)
            if fallback:
                os.write(exc_w, b"N" + fallback.encode())
            os.dup2(out_w, 1)                          # stdin stays /dev/null
            os.dup2(err_w, 2)
            env = dict(spec.env)
            env.setdefault("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
            if spec.working_dir:                       # made by build_root (as root)
                os.chdir(spec.working_dir)
            if spec.identity is not None:              # the last step that needs root
                spec.identity.apply()
            close_fds_except({exc_w})
            reset_signals()
            os.execvpe(spec.argv[0], spec.argv, env)
        except BaseException as e:                     # noqa: BLE001 - reported as StartError
            try:
                os.write(exc_w, b"E" + f"{e}".encode()[:4000])
            finally:
                os._exit(127)
    for fd in (out_w, err_w, go_r, exc_w, *ns_fds):
        os.close(fd)
    pidfd = os.pidfd_open(pid)                         # our unreaped child: it is that one
    notes: list[str] = []
    try:
        cg.add(pid)
    except OSError as e:
        notes.append(f"cgroup: {e.strerror}: limits not enforced")
    if spec.oom_score_adj is not None:
        # set before the container runs, so its children inherit it; lowering a score
        # needs CAP_SYS_RESOURCE, which a sandboxed agent may lack: then it keeps ours
        try:
            with open(f"/proc/{pid}/oom_score_adj", "w") as f:
                f.write(str(spec.oom_score_adj))
        except OSError as e:
            notes.append(f"oom_score_adj {spec.oom_score_adj}: {e.strerror}")
    start_time = linux.proc_start_time(pid)
    state = {"pid": pid, "start_time": start_time, "started_at": time.time(),
             "restart": spec.restart, "log_path": lpath, "monitor": os.getpid(),
             "monitor_start": linux.proc_start_time(os.getpid()), "notes": notes}
    os.write(go_w, b"g")
    os.close(go_w)
    msg = b""
    while True:
        b = os.read(exc_r, 4096)
        if not b:
            break
        msg += b
    os.close(exc_r)
    error = ""
    if msg.startswith(b"N"):
        notes.append(msg[1:].decode(errors="replace"))
    elif msg.startswith(b"E"):
        error = msg[1:].decode(errors="replace")
    log = LogWriter(lpath, spec.log_max_bytes, spec.log_max_files)   # exists once started
    write_json(os.path.join(cdir, "state.json"), state)
    os.close(ready_w)                                  # the agent may read state.json now
    streams = {out_r: "stdout", err_r: "stderr"}
    status: int | None = None
    drain_until = 0.0
    while streams:
        if status is None:
            ready, _, _ = select.select([*streams, pidfd], [], [])
        else:
            ready, _, _ = select.select(list(streams), [], [],
                                        max(0.0, drain_until - time.monotonic()))
            if not ready:
                break                                  # a straggler the kill did not reach
        for fd in ready:
            if fd == pidfd:
                _, status = os.waitpid(pid, 0)
                # the container ends with its main process. In its own PID namespace the
                # kernel has killed the rest already; in the pod's shared one only the cgroup
                # reaches them (containerd kills all of a container's processes then too)
                cg.kill()
                drain_until = time.monotonic() + DRAIN_SECONDS
                continue
            data = os.read(fd, 65536)
            if data:
                log.feed(streams[fd], data)
            else:
                os.close(fd)
                del streams[fd]
    for fd in streams:
        os.close(fd)
    os.close(pidfd)
    log.close()
    if status is None:
        _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if code < 0:
        code = 128 - code
    if error:
        code, reason = 128, "StartError"
    elif code == 137 and cg.oom_killed():
        reason = "OOMKilled"
    else:
        reason = "Completed" if code == 0 else "Error"
    cg.kill()                                          # nothing of it may outlive PID 1
    cg.remove()
    write_json(os.path.join(cdir, "exit.json"),
               {"exit_code": code, "reason": reason,
                "message": exit_message(cdir, spec, lpath, code, error),
                "finished_at": time.time()})


# -- termination message ----------------------------------------------------------------------
def _fresh_termination_file(cdir: str) -> str:
    path = os.path.join(cdir, "termination-log")
    try:
        os.unlink(path)                                # the previous start's message
    except FileNotFoundError:
        pass
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
    os.fchmod(fd, 0o666)                               # not narrowed by the umask
    os.close(fd)
    return path


def exit_message(cdir: str, spec: ContainerSpec, lpath: str, code: int, error: str) -> str:
    """state.terminated.message as kubelet composes it: the runtime's own message (a start
    error), then ': ' and what the container wrote to its termination message file (at most
    4096 bytes); with FallbackToLogsOnError, a failed container that wrote nothing there gets
    the tail of its log instead (80 lines, at most 2048 bytes)."""
    text = b""
    if spec.termination_message_path:
        try:
            fd = os.open(os.path.join(cdir, "termination-log"),
                         os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
            with os.fdopen(fd, "rb") as f:
                text = f.read(TERMINATION_MESSAGE_MAX)
        except OSError:
            pass
    if not text and spec.fallback_to_logs and code != 0 and not error:
        text = log_tail(lpath, FALLBACK_LOG_LINES, FALLBACK_LOG_BYTES)
    message = text.decode(errors="replace")
    if error and message:
        return f"{error}: {message}"
    return error or message


def log_tail(path: str, lines: int, max_bytes: int) -> bytes:
    """The last `lines` lines of a container's log as `kubectl logs --tail` renders them, cut
    to `max_bytes` (the rotated files are read only as far as needed)."""
    records: list[logs.Record] = []
    for p in reversed(logs.files_of(path)):
        try:
            with open(p, "rb") as f:
                data = f.read()
        except OSError:
            continue
        recs = [r for r in (logs.parse_record(ln) for ln in data.split(b"\n")) if r]
        records = recs + records
        if sum(not r.partial for r in records) >= lines:
            break
    out = b"".join(logs.render(r, logs.Options(), True)
                   for r in logs.select(records, logs.Options(tail=lines)))
    return out[:max_bytes]


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass


# -- state, re-adoption ------------------------------------------------------------------------
def _write_identity(cdir: str, identity: Identity | None) -> None:
    """Who the container runs as, for exec and exec probes (identity.json beside env.json)."""
    path = os.path.join(cdir, "identity.json")
    if identity is None:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        return
    write_json(path, identity.to_json())


def read_identity(data_dir: str, uid: str, name: str) -> Identity | None:
    """The identity a container was started with (None: not recorded, i.e. the agent's)."""
    d = read_json(os.path.join(container_dir(data_dir, uid, name), "identity.json"))
    try:
        return Identity.from_json(d) if isinstance(d, dict) else None
    except (KeyError, TypeError, ValueError):
        return None


def _write_env(cdir: str, env: dict[str, str]) -> None:
    """The container's environment as configured, for exec (CRI exec runs commands with the
    container's env). /proc/<pid>/environ is no substitute: nginx, like many daemons,
    overwrites that area with its process title. Owner-only: it may hold secrets."""
    path = os.path.join(cdir, "env.json")
    fd = os.open(path + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(env, f)
    os.replace(path + ".tmp", path)


def read_env(data_dir: str, uid: str, name: str) -> dict[str, str] | None:
    """The environment a container was started with (None: not recorded)."""
    try:
        with open(os.path.join(container_dir(data_dir, uid, name), "env.json")) as f:
            env = json.load(f)
    except (OSError, ValueError):
        return None
    return {str(k): str(v) for k, v in env.items()} if isinstance(env, dict) else None


def read_state(data_dir: str, uid: str, name: str) -> ContainerState | None:
    """What the files say about a container: None if it was never started."""
    cdir = container_dir(data_dir, uid, name)
    s = read_json(os.path.join(cdir, "state.json"))
    if s is None:
        return None
    st = ContainerState(name=name, pid=int(s["pid"]), start_time=s.get("start_time"),
                        started_at=s.get("started_at"), restart=int(s.get("restart", 0)),
                        log_path=s.get("log_path", ""), notes=list(s.get("notes") or []))
    e = read_json(os.path.join(cdir, "exit.json"))
    if e is not None:
        st.exit_code, st.reason = int(e["exit_code"]), e.get("reason", "")
        st.message, st.finished_at = e.get("message", ""), e.get("finished_at")
    elif not linux.alive(st.pid, st.start_time) and \
            not linux.alive(int(s.get("monitor", 0)), s.get("monitor_start")):
        # both gone without an exit file (the machine rebooted, the monitor was killed)
        st.exit_code, st.reason = 137, "Error"
        st.message = "the container's monitor is gone; its exit status is unknown"
    return st


def monitor_of(data_dir: str, uid: str, name: str) -> tuple[int, int | None] | None:
    s = read_json(os.path.join(container_dir(data_dir, uid, name), "state.json"))
    return (int(s["monitor"]), s.get("monitor_start")) if s else None


def reap_monitor(data_dir: str, uid: str, name: str) -> None:
    """Collect the monitor's exit if it is our child (it is not after an agent restart)."""
    m = monitor_of(data_dir, uid, name)
    if m is None:
        return
    try:
        os.waitpid(m[0], os.WNOHANG)
    except ChildProcessError:
        pass


def signal_container(st: ContainerState, sig: int) -> bool:
    """Send `sig` to the container's PID 1 if it is still that process."""
    if not linux.alive(st.pid, st.start_time):
        return False
    try:
        os.kill(st.pid, sig)
        return True
    except ProcessLookupError:
        return False
