"""The node agent's volume manager: makes a pod's volumes real on this host and takes them down.

    vm = VolumeManager(data_dir)
    volumes = await vm.setup(pod, fetch)   # {volume name: HostVolume(path, read_only)}
    problems = vm.check_sub_paths(pod, volumes)   # {container: message} (subPath refused)
    await vm.teardown(pod_uid)

`fetch(kind, namespace, name)` is an async callable returning the object or None (the agent
backs it with its informers; this module never talks to the API server). `setup` is meant to
be called again periodically: it is idempotent, re-mounts what is missing (an image volume
after a restart, as the provisioner does) and rewrites configMap/secret/downwardAPI/projected
files atomically when their data changed, so containers see updates through the same path.
When some volumes cannot be set up it raises MountFailed after setting up the others;
`MountFailed.messages` are the FailedMount event messages. Exceptions from `fetch` propagate
(the agent retries). Call teardown only once the pod's periodic setups have stopped.
Then, per container: `check_sub_paths` (subPath refused -> CreateContainerConfigError) and
`container_mounts` (the runtime's VolumeMount fields).

Where things live (kubelet's layout, every path derived from the pod uid and the volume name,
both checked against the formats the API server issues):
    <data>/pods/<uid>/volumes/kubernetes.io~empty-dir/<name>     (tmpfs if medium Memory)
    <data>/pods/<uid>/volumes/kubernetes.io~configmap/<name>
    <data>/pods/<uid>/volumes/kubernetes.io~secret/<name>        (tmpfs: secrets stay off disk)
    <data>/pods/<uid>/volumes/kubernetes.io~downward-api/<name>
    <data>/pods/<uid>/volumes/kubernetes.io~projected/<name>     (tmpfs: may hold secrets)
Claims and hostPath volumes are bound from where their data is; nothing of theirs is under
the pod's directory, so teardown (unmount what is mounted under it, then remove it) can never
touch a PV's data.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import errno
import os
import shutil
import stat
import threading
import time
from dataclasses import dataclass

from k1s.node import identity
from k1s.node.volumes import dirs, images, loopmount, paths

from . import atomic, planner
from .planner import Bind, EmptyDir, Failed, Files

MNT_DETACH = 2
_image_lock = threading.Lock()
_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


@dataclass(frozen=True)
class HostVolume:
    path: str
    read_only: bool = False


class NewMounterFailed(planner.Invalid):
    """A local PV whose path is missing (kubelet's local plugin refuses it in NewMounter)."""


@dataclass(frozen=True)
class ContainerMount:
    """One volumeMount of a container, resolved: the same fields as the runtime's VolumeMount
    (`VolumeMount(**dataclasses.asdict(m))`)."""
    host_path: str
    container_path: str
    read_only: bool = False
    sub_path: str = ""


class MountFailed(Exception):
    """Some volumes could not be set up. `failures` per volume, `messages` for events,
    `volumes` what was set up anyway."""

    def __init__(self, failures: list[Failed], volumes: dict[str, HostVolume]):
        self.failures = failures
        self.messages = planner.event_messages(failures)
        self.volumes = volumes
        super().__init__("; ".join(self.messages))


def node_allocatable(data_dir: str) -> dict[str, str]:
    """What an unset limit means for a downwardAPI resourceFieldRef: the node's capacity."""
    out = {"cpu": str(os.cpu_count() or 1), "memory": str(identity.memory_bytes()),
           "ephemeral-storage": "0"}
    try:
        st = os.statvfs(data_dir)
        out["ephemeral-storage"] = str(st.f_blocks * st.f_frsize)
    except OSError:
        pass
    return out


# -- paths ------------------------------------------------------------------------------------
def pod_volumes_dir(data_dir: str, uid: str) -> str:
    if not isinstance(uid, str) or not paths.UID_RE.match(uid):
        raise paths.UnsafePath(f"invalid pod uid {uid!r}: expected a UUID")
    return os.path.join(os.path.realpath(data_dir), "pods", uid, "volumes")


def volume_path(data_dir: str, uid: str, plugin: str, name: str) -> str:
    if plugin not in planner.PLUGIN_DIRS.values():
        raise paths.UnsafePath(f"unknown volume plugin {plugin!r}")
    if not planner.VOLUME_NAME_RE.match(name or ""):
        raise paths.UnsafePath(f"invalid volume name {name!r}")
    root = pod_volumes_dir(data_dir, uid)
    path = os.path.join(root, plugin, name)
    _no_links(path)
    return path


def _no_links(path: str) -> None:
    """Refuse a path that a symlink planted anywhere on the way (pods/, pods/<uid>/,
    volumes/, the plugin or volume directory) would move out of the pod's directory: `path`
    is built from the resolved data dir, so resolving it must give itself back."""
    if os.path.realpath(path) != path:
        raise paths.UnsafePath(f"{path} resolves outside the pod's directory "
                               f"(to {os.path.realpath(path)})")


def mounts_under(root: str) -> list[str]:
    """Mount points strictly below root (from /proc/self/mountinfo), deepest first."""
    out = []
    prefix = root.rstrip("/") + "/"
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split(" ")
            mp = _unescape(fields[4]) if "\\" in fields[4] else fields[4]
            if mp.startswith(prefix):
                out.append(mp)
    return sorted(out, key=lambda p: (-p.count("/"), p))


def _unescape(s: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as \ooo
    out, i = [], 0
    while i < len(s):
        if s[i] == "\\" and s[i + 1:i + 4].isdigit() and len(s[i + 1:i + 4]) == 3:
            out.append(chr(int(s[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(s[i])
            i += 1
    return "".join(out)


def _umount(target: str) -> None:
    if _libc.umount2(os.fsencode(target), 0) == 0:
        return
    e = ctypes.get_errno()
    if e == errno.EINVAL:            # not a mount point (any more)
        return
    if e == errno.EBUSY and _libc.umount2(os.fsencode(target), MNT_DETACH) == 0:
        return                       # still in use: detach now, the kernel frees it later
    e = ctypes.get_errno() or e
    raise OSError(e, f"umount {target}: {os.strerror(e)}")


def _file_kind(path: str) -> str | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    m = st.st_mode
    if stat.S_ISDIR(m):
        return "dir"
    if stat.S_ISREG(m):
        return "file"
    if stat.S_ISSOCK(m):
        return "socket"
    if stat.S_ISCHR(m):
        return "char"
    if stat.S_ISBLK(m):
        return "block"
    return "other"


def needs_ownership(root: str, gid: int, read_only: bool) -> bool:
    """fsGroupChangePolicy OnRootMismatch: the volume root already has the group, setgid and
    the group permissions -> nothing to do."""
    st = os.stat(root)
    perms = (0o440 if read_only else 0o660) | 0o110
    return st.st_gid != gid or (st.st_mode & perms) != perms or not st.st_mode & stat.S_ISGID


def set_ownership(root: str, gid: int, read_only: bool) -> None:
    """Group `gid` on everything under root (symlinks themselves, never their targets), group
    read (read-only) or read-write on files, setgid and group search on directories: kubelet's
    SetVolumeOwnership. Does not descend into other mounts."""
    mask = 0o440 if read_only else 0o660
    root_dev = os.lstat(root).st_dev

    def fix(p: str, st: os.stat_result) -> None:
        os.lchown(p, -1, gid)
        if stat.S_ISLNK(st.st_mode):
            return
        m = mask | (stat.S_ISGID | 0o110 if stat.S_ISDIR(st.st_mode) else 0)
        os.chmod(p, stat.S_IMODE(st.st_mode) | m)
    fix(root, os.lstat(root))
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            fix(p, st)
        dirnames[:] = [n for n in dirnames
                       if os.lstat(os.path.join(dirpath, n)).st_dev == root_dev]


def resolve_sub_path(root: str, sub_path: str) -> str:
    """root/sub_path with symlinks resolved, refused if it leaves root (the part that does
    not exist yet is resolved lexically: the runtime creates it as a directory)."""
    planner.check_sub_path(sub_path)
    real_root = os.path.realpath(root)
    real = os.path.realpath(os.path.join(real_root, sub_path))
    if os.path.commonpath([real_root, real]) != real_root:
        raise planner.Invalid(f"subPath {sub_path!r} resolves outside its volume "
                              f"(through a symlink)")
    return real


# -- the manager ------------------------------------------------------------------------------
class VolumeManager:
    def __init__(self, data_dir: str, *, allocatable: dict[str, str] | None = None,
                 executor=None, teardown_executor=None):
        self.data_dir = data_dir
        self.allocatable = allocatable or node_allocatable(data_dir)
        # setups and teardowns block (mounts, loop devices): separate pools, so that a wave
        # of pods going away never queues the mounts of pods starting behind its unmounts
        self.executor, self.teardown_executor = executor, teardown_executor
        self._locks: dict[str, asyncio.Lock] = {}
        self._owned: set[tuple[str, str]] = set()    # (pod uid, volume): fsGroup applied

    def _lock(self, uid: str) -> asyncio.Lock:
        return self._locks.setdefault(uid, asyncio.Lock())

    async def setup(self, pod: dict, fetch, claim_users=None) -> dict[str, HostVolume]:
        """`claim_users`, optional: async (namespace, claim name) -> the pods using that claim
        (e.g. from a pod informer indexed by claim); given, access modes are enforced."""
        uid = (pod.get("metadata") or {}).get("uid", "")
        pod_volumes_dir(self.data_dir, uid)          # refuses a malformed uid up front
        objects: dict[tuple[str, str, str], dict | None] = {}

        async def get_all(keys):
            keys = sorted(k for k in keys if k not in objects)
            found = await asyncio.gather(*(fetch(*k) for k in keys))
            objects.update(zip(keys, found))

        def lookup(kind, ns, name):
            return objects.get((kind, ns, name))
        await get_all(planner.references(pod))
        await get_all(planner.pv_references(pod, lookup))
        users = None
        if claim_users is not None:
            ns = (pod.get("metadata") or {}).get("namespace", "default")
            names = sorted({c for v in (pod.get("spec") or {}).get("volumes") or ()
                            if (c := planner.claim_name(pod, v))})
            found = await asyncio.gather(*(claim_users(ns, c) for c in names))
            users = {c: list(f or ()) for c, f in zip(names, found)}
        decisions = planner.plan(pod, lookup, allocatable=self.allocatable, now=time.time(),
                                 claim_users=users)
        async with self._lock(uid):
            volumes, failures = await asyncio.get_running_loop().run_in_executor(
                self.executor, self._apply, uid, decisions)
        if failures:
            raise MountFailed(failures, volumes)
        return volumes

    def _apply(self, uid: str, decisions) -> tuple[dict[str, HostVolume], list[Failed]]:
        volumes: dict[str, HostVolume] = {}
        failures: list[Failed] = []
        for d in decisions:
            if isinstance(d, Failed):
                failures.append(d)
                continue
            try:
                volumes[d.name] = self._apply_one(uid, d)
            except (OSError, images.VolumeError, paths.UnsafePath, planner.Invalid) as e:
                label = (d.label if isinstance(d, Bind) else "") or d.name
                why = str(e)
                if isinstance(e, OSError) and e.strerror:
                    why = e.strerror + (f": {e.filename}" if e.filename else "")
                msg = planner.setup_failed(label, why)
                if isinstance(e, NewMounterFailed):   # kubelet fails a local PV earlier
                    msg = f'MountVolume.NewMounter initialization failed for volume "{label}" ' \
                          f": {why}"
                failures.append(Failed(d.name, msg))
        return volumes, failures

    def _apply_one(self, uid: str, d) -> HostVolume:
        if isinstance(d, Bind):
            hv = self._bind(d)
            # ownership once per pod and volume (setup runs periodically; a walk of a large
            # volume each time would be wasteful), as kubelet does once per mount
            if d.gid is not None and (uid, d.name) not in self._owned:
                if d.gid_policy == "Always" or needs_ownership(d.path, d.gid, d.read_only):
                    set_ownership(d.path, d.gid, d.read_only)
                self._owned.add((uid, d.name))
            return hv
        if isinstance(d, EmptyDir):
            path = volume_path(self.data_dir, uid, d.plugin, d.name)
            os.makedirs(path, exist_ok=True)
            if d.medium == "Memory":
                if not os.path.ismount(path):
                    opts = ["nosuid", "nodev", "mode=0777"]
                    if d.size_bytes:
                        opts.append(f"size={d.size_bytes}")
                    loopmount.mount("tmpfs", path, "tmpfs", opts)
            else:
                os.chmod(path, 0o777)                # emptyDir is world-writable, as upstream
            if d.gid is not None and needs_ownership(path, d.gid, False):
                os.chown(path, -1, d.gid)
                os.chmod(path, 0o777 | stat.S_ISGID)
            return HostVolume(path, False)
        if isinstance(d, Files):
            path = volume_path(self.data_dir, uid, d.plugin, d.name)
            os.makedirs(path, mode=0o755, exist_ok=True)
            if d.tmpfs and not os.path.ismount(path):
                try:
                    loopmount.mount("tmpfs", path, "tmpfs", ["nosuid", "nodev", "mode=0755"])
                except PermissionError:
                    pass         # not root: the files go on disk (nothing else can mount)
            changed = atomic.write(path, d.files)
            if d.gid is not None and (changed or needs_ownership(path, d.gid, True)):
                set_ownership(path, d.gid, True)     # modes already carry group read
            return HostVolume(path, True)
        raise TypeError(f"unknown decision {d!r}")

    def _bind(self, d: Bind) -> HostVolume:
        if d.pv_image:
            self._ensure_image(d)
        if d.check == "local":
            if not os.path.exists(d.path):
                raise NewMounterFailed(f'path "{d.path}" does not exist')
            return HostVolume(d.path, d.read_only)
        kind = _file_kind(d.path)
        create, err = planner.hostpath_check(d.check, d.path, kind)
        if d.check == "" and kind is None:
            create = "dir"       # an unchecked missing path: made as a directory, as runtimes do
        if create == "dir":
            os.makedirs(d.path, mode=0o755, exist_ok=True)
        elif create == "file":
            fd = os.open(d.path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
            os.close(fd)
        if err:
            raise planner.Invalid(err)
        return HostVolume(d.path, d.read_only)

    def _ensure_image(self, d: Bind) -> None:
        """The provisioner's volume: `<data>/volumes/pvc-<uid>/mount`. Its data dir is read
        from the PV's path (it may not be ours: another data dir on this host), and in image
        mode (a disk.img beside it) the image must be mounted there — after a restart nothing
        is. Binding the bare directory instead would put the pod's writes under the mount
        point, hidden as soon as the image is mounted again: refused. A directory-mode
        volume (no image) is the directory itself."""
        if not paths.PV_NAME_RE.match(d.pv_image or ""):
            return
        mnt = os.path.realpath(d.path)
        vdir = os.path.dirname(mnt)
        if os.path.basename(mnt) != paths.MOUNT_DIR or os.path.basename(vdir) != d.pv_image \
                or os.path.basename(os.path.dirname(vdir)) != "volumes":
            return                   # not laid out as the provisioner does: a plain local PV
        data = os.path.dirname(os.path.dirname(vdir))
        if not os.path.exists(paths.image_path(data, d.pv_image)):
            return
        with _image_lock:            # two pods sharing a volume must not mount it twice
            if not os.path.ismount(mnt):
                live = images.loop_devices(data, d.pv_image)
                if live:
                    # the image's filesystem is still alive elsewhere (e.g. the mount was
                    # taken away while a container's bind of it lives on): mount that same
                    # device, so there is one superblock; a second loop device on the same
                    # file would mean two ext4 instances writing one image — corruption
                    loopmount.mount(live[0], mnt, "ext4", ["noinit_itable", *d.mount_options])
                else:
                    images.mount(data, d.pv_image, d.mount_options)
        if not os.path.ismount(mnt):
            raise planner.Invalid(f"volume image of {d.pv_image} is not mounted at {mnt}")

    def check_sub_paths(self, pod: dict, volumes: dict[str, HostVolume],
                        env: dict[str, dict[str, str]] | None = None) -> dict[str, str]:
        """Containers whose subPath (or subPathExpr, expanded with `env[container]`, the
        container's resolved environment) is refused: {container name: message}. Call before
        starting a container (upstream reports CreateContainerConfigError); the runtime's
        VolumeMount.sub_path is `planner.sub_path_of(mount, env)`."""
        out: dict[str, str] = {}
        spec = pod.get("spec") or {}
        for c in list(spec.get("initContainers") or ()) + list(spec.get("containers") or ()):
            for m in c.get("volumeMounts") or ():
                vol = volumes.get(m.get("name", ""))
                if vol is None or not (m.get("subPath") or m.get("subPathExpr")):
                    continue
                try:
                    sub = planner.sub_path_of(m, (env or {}).get(c.get("name", "")))
                    if sub:
                        resolve_sub_path(vol.path, sub)
                except planner.Invalid as e:
                    out.setdefault(c.get("name", ""),
                                   f'failed to prepare subPath for volumeMount "{m.get("name")}" '
                                   f'of container "{c.get("name")}": {e}')
        return out

    @staticmethod
    def container_mounts(container: dict, volumes: dict[str, HostVolume],
                         env: dict[str, str] | None = None) -> list[ContainerMount]:
        """A container's volumeMounts on the host: read-only when the mount or the volume
        says so; subPath (or subPathExpr expanded with `env`) checked lexically here and
        resolved within the volume by the runtime. A mount of a volume that was not set up
        raises KeyError (setup failed for it: the container must not start)."""
        out = []
        for m in container.get("volumeMounts") or ():
            hv = volumes[m.get("name", "")]
            out.append(ContainerMount(hv.path, m.get("mountPath", ""),
                                      bool(m.get("readOnly")) or hv.read_only,
                                      planner.sub_path_of(m, env)))
        return out

    def empty_dir_usage(self, pod: dict) -> dict[str, tuple[int, int | None]]:
        """On-disk emptyDirs: {name: (bytes used, sizeLimit or None)} (reported, not evicted)."""
        uid = (pod.get("metadata") or {}).get("uid", "")
        out = {}
        for d in planner.plan(pod, lambda *_: None):
            if isinstance(d, EmptyDir) and d.medium == "":
                path = volume_path(self.data_dir, uid, d.plugin, d.name)
                if os.path.isdir(path):
                    out[d.name] = (dirs.usage(path, d.size_bytes or 0).used_bytes, d.size_bytes)
        return out

    async def teardown(self, pod_uid: str) -> None:
        """Unmount every tmpfs under the pod's volume directory and remove it."""
        async with self._lock(pod_uid):
            await asyncio.get_running_loop().run_in_executor(
                self.teardown_executor, self._teardown, pod_uid)
        self._locks.pop(pod_uid, None)

    def _teardown(self, uid: str) -> None:
        self._owned = {k for k in self._owned if k[0] != uid}
        root = pod_volumes_dir(self.data_dir, uid)
        if not os.path.lexists(root):
            return
        for mp in mounts_under(root):
            _umount(mp)
        left = mounts_under(root)
        if left:                 # never remove a directory through a mount
            raise OSError(errno.EBUSY, f"still mounted under {root}: {', '.join(left)}")
        if os.path.islink(root):
            os.unlink(root)          # a planted link: remove it, never what it points at
            return
        _no_links(root)              # a link above it would make rmtree delete elsewhere
        shutil.rmtree(root)          # (rmtree itself never follows links inside)
