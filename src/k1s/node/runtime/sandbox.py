"""A pod's sandbox: the namespaces its containers share, its generated /etc files, and the
mounts that give each container a private view of the host.

Namespaces, as Kubernetes lays them out (without shareProcessNamespace):
- per pod: UTS (the pod's hostname), IPC, and network (an existing named netns made by the
  network helper, joined with setns; without one the pod shares the node's network). A tiny
  holder process (`k1s-pause`: coreutils `sleep infinity` under another argv[0]) keeps them
  alive between container restarts; containers join them through /proc/<holder>/ns/*.
- per container: mount and PID (the container's first process is PID 1 of its own PID
  namespace: when it dies the kernel kills everything left in that namespace).
- with spec.shareProcessNamespace the PID namespace is the pod's: the holder is its PID 1 (a
  pause that reaps the pod's orphans, as upstream's), and every container's processes see the
  others'.

A container's filesystem (`build_root`, run inside the container's fresh mount namespace):
- overlayfs with the host's `/` as the only lower layer and upper/work directories under
  `<data>/pods/<uid>/containers/<name>/`, so writes to / land there and never on the host.
  Tested on these machines (kernel 6.x, ext4 root): overlay accepts `lowerdir=/` even with the
  upper dir inside it, so no rootfs of bind mounts is needed (runc's failure on "/" was
  pivot_root of the live root, which we avoid by pivoting into the overlay). If a kernel
  refuses, the fallback is a read-only recursive bind of `/`, and the reason is reported.
  The lower layer holds the root filesystem only, not the host's other mounts;
- fresh /proc (the container's PID namespace), the host's devices through an overlay of /dev
  (the container's files made there stay in its own layer; /dev/pts and the like are the
  host's), /sys read-only, private tmpfs on /tmp, /run and /dev/shm, the data directory hidden
  (other pods' files);
- the pod's /etc/hosts, /etc/hostname and /etc/resolv.conf, the image's files (read-only),
  the volumes (read-only when asked, with subPath), the termination message file;
- with readOnlyRootFilesystem, the root, /tmp, /run and the /etc files read-only (volumes,
  /dev, /dev/shm and the termination message file stay writable),
then pivot_root into it and detach the host's tree.

Every path inside the container is resolved with `secure_join` (symlinks interpreted inside
the container's root), so an image or a volume cannot make a mount land on the host.
Every on-disk path is derived from the pod uid (checked to be a UUID) and the container name
(checked to be a DNS label).
"""

from __future__ import annotations

import errno
import functools
import json
import os
import re
import select
import signal
import stat
import sys
import time
from dataclasses import dataclass, field

from k1s.node.dnsconfig import ResolvConf, pod_resolv_conf, read_node_resolv_conf

from . import linux
from ..volumes.paths import UID_RE, UnsafePath  # noqa: F401 - UID_RE re-exported

CLUSTER_DOMAIN = "cluster.local"
LABEL_RE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
PAUSE_ARGV0 = "k1s-pause"
SLEEP = "/bin/sleep"
NS_KINDS = (("net", linux.CLONE_NEWNET), ("uts", linux.CLONE_NEWUTS),
            ("ipc", linux.CLONE_NEWIPC))


@dataclass
class VolumeMount:
    """A volume the caller resolved to a host path, mounted at container_path."""
    host_path: str
    container_path: str
    read_only: bool = False
    sub_path: str = ""


@dataclass
class SandboxConfig:
    uid: str
    name: str
    namespace: str = "default"
    hostname: str = ""              # spec.hostname (else the pod name)
    subdomain: str = ""
    pod_ip: str | None = None
    dns_server: str | None = None   # None: the node's nameservers
    netns: str | None = None        # e.g. /run/netns/<name>; None: the node's network
    host_aliases: list[tuple[str, list[str]]] = field(default_factory=list)
    share_pid: bool = False         # spec.shareProcessNamespace
    dns: ResolvConf | None = None   # the pod's resolv.conf (None: ClusterFirst, no dnsConfig)

    @property
    def pod_hostname(self) -> str:
        return pod_hostname(self.name, self.hostname)

    @property
    def fqdn(self) -> str | None:
        if not self.subdomain:
            return None
        return f"{self.pod_hostname}.{self.subdomain}.{self.namespace}.svc.{CLUSTER_DOMAIN}"


def pod_hostname(name: str, hostname: str = "") -> str:
    """spec.hostname, else the pod name cut to 63 characters (as kubelet)."""
    h = hostname or name
    return h[:63].rstrip("-.") or "pod"


def check_uid(uid: str) -> str:
    if not isinstance(uid, str) or not UID_RE.match(uid):
        raise UnsafePath(f"invalid pod uid {uid!r}: expected a UUID")
    return uid


def check_name(name: str) -> str:
    if not isinstance(name, str) or not LABEL_RE.match(name):
        raise UnsafePath(f"invalid container name {name!r}: expected a DNS label")
    return name


@functools.lru_cache(maxsize=64)
def _real(data_dir: str) -> str:
    # the data directory is the operator's, not a user's: resolving it once per process is
    # enough (every path below it is still built from checked uids and names only)
    return os.path.realpath(data_dir)


def pods_root(data_dir: str) -> str:
    return os.path.join(_real(data_dir), "pods")


def pod_dir(data_dir: str, uid: str) -> str:
    return os.path.join(pods_root(data_dir), check_uid(uid))


# -- generated files ---------------------------------------------------------------------------
def hosts_file(cfg: SandboxConfig) -> str:
    lines = ["# Kubernetes-managed hosts file.",
             "127.0.0.1\tlocalhost",
             "::1\tlocalhost ip6-localhost ip6-loopback",
             "fe00::0\tip6-localnet", "fe00::0\tip6-mcastprefix",
             "fe00::1\tip6-allnodes", "fe00::2\tip6-allrouters"]
    names = [cfg.fqdn, cfg.pod_hostname] if cfg.fqdn else [cfg.pod_hostname]
    lines.append(f"{cfg.pod_ip or '127.0.1.1'}\t" + "\t".join(names))
    if cfg.host_aliases:
        lines.append("")
        lines.append("# Entries added by HostAliases.")
        for ip, hostnames in cfg.host_aliases:
            lines.append(f"{ip}\t" + "\t".join(hostnames))
    return "\n".join(lines) + "\n"


def resolv_conf(cfg: SandboxConfig, host_resolv: str = "/etc/resolv.conf") -> str:
    """The pod's resolv.conf: `cfg.dns` as the runtime formed it from the pod (dnsPolicy,
    dnsConfig: k1s.node.dnsconfig), else a ClusterFirst one for `cfg.dns_server`."""
    if cfg.dns is not None:
        return cfg.dns.render()
    pod = {"metadata": {"name": cfg.name, "namespace": cfg.namespace, "uid": cfg.uid}}
    return pod_resolv_conf(pod, cfg.dns_server, read_node_resolv_conf(host_resolv),
                           CLUSTER_DOMAIN).render()


def write_pod_files(data_dir: str, cfg: SandboxConfig) -> dict[str, str]:
    """Write the pod's /etc files under its directory: {container path: host path}."""
    d = os.path.join(pod_dir(data_dir, cfg.uid), "etc")
    os.makedirs(d, exist_ok=True)
    out = {}
    for cpath, content in (("/etc/hosts", hosts_file(cfg)),
                           ("/etc/hostname", cfg.pod_hostname + "\n"),
                           ("/etc/resolv.conf", resolv_conf(cfg))):
        host = os.path.join(d, os.path.basename(cpath))
        tmp = host + ".tmp"
        with open(tmp, "w") as f:
            f.write(content)
        os.chmod(tmp, 0o644)
        os.replace(tmp, host)
        out[cpath] = host
    return out


# -- the namespace holder ----------------------------------------------------------------------
@dataclass
class Holder:
    pid: int
    start_time: int
    pid_ns: bool = False            # PID 1 of the pod's own PID namespace (shared by all)

    def alive(self) -> bool:
        return linux.alive(self.pid, self.start_time)

    def ns_path(self, kind: str) -> str:
        return f"/proc/{self.pid}/ns/{kind}"


# PID 1 of a shared PID namespace inherits every orphan of the pod (a daemonized process, an
# exec'd command whose waiter died): like upstream's pause it must reap them, which `sleep`
# does not. A few lines of Python, without site, kept out of the agent's memory by exec; read
# from stdin so that the pod's `ps` shows `k1s-pause -I -S -` rather than the program.
REAPER = """\
import os, signal
signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGCHLD])
while True:
    try:
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass
    except ChildProcessError:
        pass
    signal.sigwait([signal.SIGCHLD])
"""


def start_holder(cfg: SandboxConfig) -> Holder:
    """Fork the process that holds the pod's UTS/IPC (and joined network) namespaces, and with
    `cfg.share_pid` its PID namespace, as that namespace's PID 1."""
    r, w = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:                                    # child: never returns
        try:
            os.close(r)
            os.setsid()
            if cfg.netns:
                linux.setns_path(cfg.netns, linux.CLONE_NEWNET)
            linux.unshare(linux.CLONE_NEWUTS | linux.CLONE_NEWIPC |
                          (linux.CLONE_NEWPID if cfg.share_pid else 0))
            linux.sethostname(cfg.pod_hostname)
            null = os.open("/dev/null", os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(null, fd)
            close_fds_except({w})
            reset_signals()
            if not cfg.share_pid:
                os.execv(SLEEP, [PAUSE_ARGV0, "infinity"])
            # only a child enters the new PID namespace (as its PID 1); this process says
            # which pid that is and leaves (the agent, a subreaper, becomes its parent)
            src_r, src_w = os.pipe()
            os.write(src_w, REAPER.encode())            # far below a pipe's capacity
            os.close(src_w)
            init = linux.fork_without_handlers()
            if init == 0:
                os.dup2(src_r, 0)
                os.close(src_r)
                os.execv(sys.executable, [PAUSE_ARGV0, "-I", "-S", "-"])
            os.close(src_r)
            os.write(w, f"P{init}\n".encode())
            os._exit(0)
        except BaseException as e:                  # noqa: BLE001 - reported to the parent
            try:
                os.write(w, f"{type(e).__name__}: {e}".encode()[:4000])
            finally:
                os._exit(127)
    os.close(w)
    try:
        msg = read_child_report(r)
    except TimeoutError as e:
        kill_and_reap(pid)
        raise OSError(errno.ETIMEDOUT, f"pod sandbox: {e}") from None
    finally:
        os.close(r)
    holder_pid = pid
    if cfg.share_pid and msg.startswith(b"P"):
        first, _, msg = msg.partition(b"\n")
        holder_pid = int(first[1:])
        os.waitpid(pid, 0)                          # the intermediate child, gone already
    if msg or (cfg.share_pid and holder_pid == pid):
        if holder_pid != pid:
            kill_and_reap(holder_pid)
        else:
            os.waitpid(pid, 0)
        raise OSError(errno.EIO, f"pod sandbox: {msg.decode(errors='replace')}")
    start = linux.proc_start_time(holder_pid)
    return Holder(holder_pid, start or 0, pid_ns=cfg.share_pid)


def kill_and_reap(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass


def save_holder(data_dir: str, uid: str, holder: Holder, cfg: SandboxConfig) -> None:
    path = os.path.join(pod_dir(data_dir, uid), "sandbox.json")
    write_json(path, {"pid": holder.pid, "start_time": holder.start_time,
                      "pid_ns": holder.pid_ns, "hostname": cfg.pod_hostname,
                      "netns": cfg.netns})


def load_holder(data_dir: str, uid: str) -> Holder | None:
    d = read_json(os.path.join(pod_dir(data_dir, uid), "sandbox.json"))
    if not d:
        return None
    h = Holder(int(d["pid"]), int(d["start_time"]), pid_ns=bool(d.get("pid_ns")))
    return h if h.alive() else None


def stop_holder(holder: Holder) -> None:
    if holder.alive():
        try:
            os.kill(holder.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    try:
        os.waitpid(holder.pid, 0)                   # ours unless the agent restarted
    except ChildProcessError:
        pass


# -- the container's filesystem (runs in the container's child, before exec) -----------------
def secure_join(root: str, path: str, *, create: str | None = None) -> str:
    """`root`+`path` with every symlink resolved as if `root` were `/`. `create`: make the
    last component if missing ('dir' or 'file'; parents are made as directories)."""
    parts = [p for p in path.split("/") if p not in ("", ".")]
    cur = ""                                         # relative to root, no symlinks
    hops = 0
    while parts:
        p = parts.pop(0)
        if p == "..":
            cur = os.path.dirname(cur)
            continue
        nxt = os.path.join(cur, p) if cur else p
        full = os.path.join(root, nxt)
        try:
            st = os.lstat(full)
        except FileNotFoundError:
            if create is None:
                raise
            if parts or create == "dir":
                os.mkdir(full, 0o755)
            else:
                os.close(os.open(full, os.O_CREAT | os.O_WRONLY, 0o644))
            cur = nxt
            continue
        if stat.S_ISLNK(st.st_mode):
            hops += 1
            if hops > 40:
                raise OSError(errno.ELOOP, f"too many symlinks in {path!r}")
            target = os.readlink(full)
            parts = [q for q in target.split("/") if q not in ("", ".")] + parts
            if target.startswith("/"):
                cur = ""
            continue
        cur = nxt
    return os.path.join(root, cur) if cur else root


def _sub_path(host_path: str, sub_path: str) -> str:
    """host_path/sub_path with the result checked to stay inside host_path (as kubelet
    refuses a subPath that escapes its volume)."""
    if not sub_path:
        return host_path
    if os.path.isabs(sub_path) or ".." in sub_path.split("/"):
        raise UnsafePath(f"subPath {sub_path!r} must be a relative path without '..'")
    base = os.path.realpath(host_path)
    full = os.path.join(base, sub_path)
    if not os.path.lexists(full):
        os.makedirs(full, exist_ok=True)             # kubelet creates a missing subPath dir
    real = os.path.realpath(full)
    if os.path.commonpath([base, real]) != base:
        raise UnsafePath(f"subPath {sub_path!r} resolves outside its volume")
    return real


def _bind(source: str, rootfs: str, cpath: str, read_only: bool) -> None:
    kind = "dir" if os.path.isdir(source) else "file"
    target = secure_join(rootfs, cpath, create=kind)
    linux.mount(source, target, None, linux.MS_BIND | linux.MS_REC)
    if read_only:
        linux.mount(None, target, None,
                    linux.MS_BIND | linux.MS_REMOUNT | linux.MS_RDONLY | linux.MS_REC)


def _dev_submounts() -> list[str]:
    """The host's mounts below /dev (e.g. /dev/pts) other than /dev/shm, outermost only: an
    overlay of /dev holds the devtmpfs alone, these are bound (recursively) over it."""
    points = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mp = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), line.split()[4])
            if mp.startswith("/dev/") and mp != "/dev/shm" and not mp.startswith("/dev/shm/"):
                points.append(mp)
    points = sorted(set(points))
    return [p for p in points if not any(p.startswith(q + "/") for q in points)]


def _mount_dev(rootfs: str, dev_layer: tuple[str, str] | None) -> str:
    """The container's /dev: the host's devices through an overlay whose upper layer is the
    container's, so a file made there (the termination message's mount point, a program's
    own) never lands in the host's /dev. Returns '' or why the host's /dev is bound instead."""
    target = secure_join(rootfs, "/dev", create="dir")
    if dev_layer is not None:
        upper, work = dev_layer
        try:
            linux.mount("overlay", target, "overlay", 0,
                        f"lowerdir=/dev,upperdir={upper},workdir={work}")
        except OSError as e:
            why = f"overlayfs on /dev refused ({e.strerror}): the host's /dev is bound instead"
        else:
            for mp in _dev_submounts():
                try:
                    _bind(mp, rootfs, mp, read_only=False)
                except OSError:
                    pass                             # e.g. gone since: not needed to run
            return ""
    else:
        why = "the host's /dev is bound"
    linux.mount("/dev", target, None, linux.MS_BIND | linux.MS_REC)
    return why


def build_root(rootfs: str, upper: str, work: str, *, data_dir: str,
               files: dict[str, str], image_binds: list[tuple[str, str]],
               volumes: list[VolumeMount], dev_layer: tuple[str, str] | None = None,
               read_only: bool = False, working_dir: str = "") -> str:
    """Make this mount namespace's view and pivot into it. Returns '' or the reasons overlay
    could not be used. Call after unshare(CLONE_NEWNS) in the container's process.
    `dev_layer`: (upper, work) directories for the overlay of /dev. `read_only`
    (readOnlyRootFilesystem): the root, /tmp, /run and the pod's /etc files are read-only, as
    with containerd; volumes, /dev, /dev/shm and /proc stay as they are. A missing
    `working_dir` is made before (as runc makes the cwd whatever the root's mode)."""
    linux.mount(None, "/", None, linux.MS_REC | linux.MS_PRIVATE)
    notes = []
    try:
        linux.mount("overlay", rootfs, "overlay", 0,
                    f"lowerdir=/,upperdir={upper},workdir={work}")
    except OSError as e:
        notes.append(f"overlayfs on / refused ({e.strerror}): read-only bind of / instead")
        linux.mount("/", rootfs, None, linux.MS_BIND | linux.MS_REC)
        linux.mount(None, rootfs, None, linux.MS_BIND | linux.MS_REMOUNT | linux.MS_RDONLY)
    linux.mount("proc", secure_join(rootfs, "/proc", create="dir"), "proc",
                linux.MS_NOSUID | linux.MS_NODEV | linux.MS_NOEXEC)
    dev_note = _mount_dev(rootfs, dev_layer)
    if dev_note and dev_layer is not None:
        notes.append(dev_note)
    linux.mount("shm", secure_join(rootfs, "/dev/shm", create="dir"), "tmpfs",
                linux.MS_NOSUID | linux.MS_NODEV, "mode=1777")
    sys_dir = secure_join(rootfs, "/sys", create="dir")
    linux.mount("/sys", sys_dir, None, linux.MS_BIND | linux.MS_REC)
    linux.mount(None, sys_dir, None,                 # read-only, as a container runtime does
                linux.MS_BIND | linux.MS_REMOUNT | linux.MS_RDONLY | linux.MS_NOSUID |
                linux.MS_NODEV | linux.MS_NOEXEC)
    for cpath, mode in (("/tmp", "1777"), ("/run", "755")):
        # with a read-only root these stay empty and read-only (an image's own /tmp would be)
        linux.mount("tmpfs", secure_join(rootfs, cpath, create="dir"), "tmpfs",
                    linux.MS_NOSUID | linux.MS_NODEV | (linux.MS_RDONLY if read_only else 0),
                    f"mode={mode}")
    real_data = os.path.realpath(data_dir)
    covered = any(real_data == p or real_data.startswith(p + "/")
                  for p in ("/tmp", "/run", "/dev", "/proc", "/sys"))
    if real_data != "/" and not covered:            # other pods' files are none of its business
        hidden = secure_join(rootfs, real_data, create="dir")
        linux.mount("k1s-hidden", hidden, "tmpfs", linux.MS_RDONLY, "mode=755,size=4k")
    for cpath, host in files.items():
        _bind(host, rootfs, cpath, read_only=read_only)
    for host, cpath in image_binds:
        _bind(host, rootfs, cpath, read_only=True)
    for v in volumes:
        if dev_note and _under(v.container_path, "/dev") and \
                not _exists_in(rootfs, v.container_path):
            # its mount point would have to be made in the host's own /dev
            raise UnsafePath(f"cannot mount {v.container_path}: {dev_note}")
        _bind(_sub_path(v.host_path, v.sub_path), rootfs, v.container_path, v.read_only)
    if working_dir:
        secure_join(rootfs, working_dir, create="dir")
    if read_only:
        # only the root's own mount: what is mounted on it keeps its flags (as runc does)
        linux.mount(None, rootfs, None, linux.MS_BIND | linux.MS_REMOUNT | linux.MS_RDONLY)
    # pivot_root(".", "."): the old root ends up stacked on the new one; detaching it leaves
    # only the container's tree (no directory for the old root needed in the view)
    os.chdir(rootfs)
    try:
        linux.pivot_root(".", ".")
        linux.umount2(".", linux.MNT_DETACH)
    except OSError:
        os.chroot(".")                                # e.g. an unknown syscall number
    os.chdir("/")
    return "; ".join(notes)


def _exists_in(rootfs: str, path: str) -> bool:
    try:
        return os.path.lexists(secure_join(rootfs, path))
    except FileNotFoundError:
        return False


def _under(path: str, top: str) -> bool:
    norm = os.path.normpath("/" + path)
    return norm == top or norm.startswith(top + "/")


# -- entering a running container (probes, exec, tests) ----------------------------------------
ALL_KINDS = ("net", "uts", "ipc", "pid", "mnt")


def enter(pid: int, kinds: tuple[str, ...] = ("net", "uts", "ipc", "mnt")):
    """A `preexec_fn` for subprocess: join the namespaces of `pid` (a container's PID 1 or
    the pod's holder) before exec, so the program runs inside the pod's view. Joining "pid"
    only places the program's children there: use `exec_argv` for that."""
    paths = [(k, f"/proc/{pid}/ns/{k}") for k in kinds]      # mnt last: the others by path

    def _preexec() -> None:
        fds = [(k, os.open(p, os.O_RDONLY | os.O_CLOEXEC)) for k, p in paths]
        for _k, fd in fds:
            linux.setns(fd, 0)
            os.close(fd)
        os.chdir("/")
    return _preexec


def exec_argv(argv: list[str]) -> list[str]:
    """`argv` run as a child of a shell, so that with `enter(pid, ALL_KINDS)` it lands in the
    container's PID namespace too (setns of a PID namespace applies to children only); the
    shell waits and exits with its status."""
    return ["/bin/sh", "-c", '"$@"; rc=$?; exit $rc', "k1s-exec", *argv]


# -- small helpers shared with process.py ------------------------------------------------------
def reset_signals() -> None:
    """Python ignores SIGPIPE and SIGXFSZ; an ignored disposition survives exec."""
    for sig in (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT, signal.SIGTERM,
                signal.SIGQUIT, signal.SIGHUP, signal.SIGCHLD):
        try:
            signal.signal(sig, signal.SIG_DFL)
        except (OSError, ValueError):
            pass
    signal.pthread_sigmask(signal.SIG_SETMASK, [])
    try:
        signal.set_wakeup_fd(-1)        # asyncio's wakeup fd number may be reused by then
    except ValueError:
        pass


def close_fds_except(keep: set[int]) -> None:
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd > 2 and fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass


CHILD_REPORT_TIMEOUT = 60.0     # seconds a forked helper (holder, monitor) may take to report


def read_child_report(fd: int, timeout: float = CHILD_REPORT_TIMEOUT) -> bytes:
    """Everything written to the pipe `fd` until its writers closed it. A child that neither
    reports nor exits within `timeout` (a fork that hung) raises TimeoutError, so the
    caller kills it instead of waiting forever."""
    out = b""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            raise TimeoutError(f"no report from a forked helper within {timeout:g} s")
        chunk = os.read(fd, 65536)
        if not chunk:
            return out
        out += chunk


def write_json(path: str, data: dict) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(data, f)
    os.replace(tmp, path)


def read_json(path: str) -> dict | None:
    try:
        with open(path) as f:
            return json.load(f)
    except (FileNotFoundError, ValueError):
        return None
