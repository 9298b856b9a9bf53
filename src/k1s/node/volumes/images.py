"""Volumes with real capacity: a sparse ext4 image per volume, mounted through a loop device.

Layout (see paths.py): `<data>/volumes/pvc-<uid>/disk.img` mounted at `.../mount`. A write
past the image size fails with ENOSPC because the filesystem itself is that size.

Why these choices:
- The image is sparse (`truncate`) and made with lazy inode-table and journal init, so creating
  one costs a few milliseconds whatever its size; `noinit_itable` on mount stops the kernel
  from zeroing inode tables in the background (a sparse file already reads as zeros).
- `-m 0`: no blocks reserved for root, so the user gets the size they asked for.
- loopmount.py attaches the loop device (autoclear) and mounts with system calls: constant
  cost however many volumes exist, where `mount -o loop` scans them all; unmounting detaches
  the device, and delete still detaches any loop device left backing the image (a crash).
- ext4 images are copies of a per-size template made once by mkfs, each given its own UUID
  (template.py): a thousand mkfs processes would make provisioning CPU-bound.
- the image is made as `disk.img.tmp` and renamed, so a crash never leaves a half-made one.
- Online growth (resize2fs on the mounted fs) needs CAP_SYS_RESOURCE; where it is refused we
  grow offline: unmount, e2fsck, resize2fs, mount again (the data stays).

All functions are synchronous (they run commands); callers run them in a bounded thread pool.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from dataclasses import dataclass

from . import loopmount, paths, template

SUPPORTED_FS = ("ext4", "ext3", "ext2")
MKFS_EXT_OPTS = "nodiscard,lazy_itable_init=1,lazy_journal_init=1"
MIN_IMAGE_BYTES = 4 * 1024 * 1024   # mkfs.ext4 cannot make a useful fs much smaller than this


class VolumeError(RuntimeError):
    """A command that sets up or tears down a volume failed; the message says which and why."""


@dataclass(frozen=True)
class Usage:
    capacity_bytes: int
    used_bytes: int
    available_bytes: int


def _run(*argv: str) -> str:
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    except FileNotFoundError:
        raise VolumeError(f"{argv[0]}: command not found") from None
    if p.returncode != 0:
        msg = (p.stderr or p.stdout).strip().splitlines()
        raise VolumeError(f"{' '.join(argv[:2])}: exit {p.returncode}: {msg[-1] if msg else ''}")
    return p.stdout


def loop_supported() -> tuple[bool, str]:
    """Whether this machine can give volumes real capacity, and if not, why (for the event)."""
    if os.geteuid() != 0:
        return False, "not running as root"
    if not os.path.exists("/dev/loop-control"):
        return False, "no /dev/loop-control (loop devices unavailable)"
    for tool in ("mkfs.ext4", "mount", "umount", "losetup", "resize2fs", "e2fsck"):
        if shutil.which(tool) is None:
            return False, f"{tool} is not installed (Debian: e2fsprogs, util-linux, mount)"
    return True, ""


def image_bytes(size_bytes: int) -> int:
    """The image size for a request: at least MIN_IMAGE_BYTES, rounded up to 4 KiB blocks."""
    size = max(int(size_bytes), MIN_IMAGE_BYTES)
    return (size + 4095) // 4096 * 4096


def create(data_dir: str, pv_name: str, size_bytes: int, fs_type: str = "ext4") -> bool:
    """Make the image (if it does not exist yet) and the mount dir. True if newly made."""
    if fs_type not in SUPPORTED_FS:
        raise VolumeError(f"unsupported fsType {fs_type!r}")
    vdir = paths.volume_dir(data_dir, pv_name)
    img = paths.image_path(data_dir, pv_name)
    os.makedirs(paths.mount_path(data_dir, pv_name), exist_ok=True)
    if os.path.exists(img):
        return False
    tmp = os.path.join(vdir, paths.IMAGE_FILE + ".tmp")
    size = image_bytes(size_bytes)
    try:
        made = fs_type == "ext4" and _copy_template(data_dir, size, tmp)
        if not made:
            _mkfs(fs_type, size, tmp)
        os.rename(tmp, img)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return True


def _mkfs(fs_type: str, size: int, path: str, csum_seed: bool = False) -> None:
    with open(path, "wb") as f:
        f.truncate(size)
    features = ["-O", "metadata_csum_seed"] if csum_seed else []
    _run(f"mkfs.{fs_type}", "-F", "-q", "-m", "0", *features, "-E", MKFS_EXT_OPTS, path)


def _copy_template(data_dir: str, size: int, dst: str) -> bool:
    """Make dst from the ext4 template of this size (made on first use). False if the
    template cannot be used here (then the caller runs mkfs itself)."""
    tdir = os.path.join(paths.volumes_root(data_dir), ".templates")
    tpl = os.path.join(tdir, f"ext4-{size}.img")
    try:
        with template.lock_for(tpl):
            if not os.path.exists(tpl):
                os.makedirs(tdir, exist_ok=True)
                _mkfs("ext4", size, tpl + ".tmp", csum_seed=True)
                if not template.can_rewrite_uuid(template.superblock(tpl + ".tmp")):
                    os.unlink(tpl + ".tmp")
                    return False
                os.rename(tpl + ".tmp", tpl)
                template.prune(tdir)
        template.copy_sparse(tpl, dst)
        template.set_uuid(dst, uuid.uuid4())
        return True
    except (OSError, ValueError, VolumeError):
        return False


def is_mounted(data_dir: str, pv_name: str) -> bool:
    return os.path.ismount(paths.mount_path(data_dir, pv_name))


def mount(data_dir: str, pv_name: str, options: list[str] | tuple[str, ...] = ()) -> bool:
    """Mount the image at its mount dir; nothing if already mounted. True if it mounted now."""
    mnt = paths.mount_path(data_dir, pv_name)
    img = paths.image_path(data_dir, pv_name)
    if os.path.ismount(mnt):
        return False
    if not os.path.exists(img):
        raise VolumeError(f"image {img} does not exist")
    os.makedirs(mnt, exist_ok=True)
    try:
        # ext2/ext3 images mount through the ext4 driver, as mount(8) ends up doing
        loopmount.attach_and_mount(img, mnt, "ext4", ["noinit_itable", *options])
    except OSError as e:
        raise VolumeError(str(e)) from None
    return True


def loop_devices(data_dir: str, pv_name: str) -> list[str]:
    """The loop devices currently backed by this volume's image."""
    img = paths.image_path(data_dir, pv_name)
    if not os.path.exists(img):
        return []
    return loopmount.backing_devices(img)


def unmount(data_dir: str, pv_name: str) -> None:
    """Unmount and detach every loop device backing the image; nothing if neither is there."""
    mnt = paths.mount_path(data_dir, pv_name)
    if os.path.ismount(mnt):
        try:
            loopmount.umount(mnt)
        except OSError as e:
            raise VolumeError(str(e)) from None
        return          # the device was attached with autoclear: the kernel detached it
    for dev in loop_devices(data_dir, pv_name):     # attached but unmounted (a crash): detach
        try:
            loopmount.detach(dev)
        except OSError as e:
            if dev in loop_devices(data_dir, pv_name):
                raise VolumeError(f"detach {dev}: {e}") from None


def delete(data_dir: str, pv_name: str) -> None:
    """Unmount, detach, and remove the volume's directory with its data."""
    vdir = paths.volume_dir(data_dir, pv_name)
    unmount(data_dir, pv_name)
    if os.path.ismount(paths.mount_path(data_dir, pv_name)):   # never delete through a mount
        raise VolumeError(f"{vdir} is still mounted")
    shutil.rmtree(vdir, ignore_errors=False) if os.path.exists(vdir) else None


def usage(mount_dir: str) -> Usage:
    """Bytes of the filesystem mounted at mount_dir: total, used, available (statvfs)."""
    st = os.statvfs(mount_dir)
    total = st.f_blocks * st.f_frsize
    avail = st.f_bavail * st.f_frsize
    used = (st.f_blocks - st.f_bfree) * st.f_frsize
    return Usage(total, used, avail)


def image_size(data_dir: str, pv_name: str) -> int:
    return os.path.getsize(paths.image_path(data_dir, pv_name))


def resize(data_dir: str, pv_name: str, new_size_bytes: int,
           options: list[str] | tuple[str, ...] = ()) -> bool:
    """Grow the image and its filesystem to new_size_bytes (never shrinks). Online when the
    kernel lets us, else offline. True if it grew."""
    img = paths.image_path(data_dir, pv_name)
    target = image_bytes(new_size_bytes)
    if os.path.getsize(img) >= target:
        return False
    with open(img, "r+b") as f:
        f.truncate(target)
    devs = loop_devices(data_dir, pv_name)
    if devs and is_mounted(data_dir, pv_name):
        loopmount.set_capacity(devs[0])
        try:
            _run("resize2fs", devs[0])
            return True
        except VolumeError:
            pass     # online resize refused (no CAP_SYS_RESOURCE): fall back to offline
        unmount(data_dir, pv_name)
        _offline_grow(img)
        mount(data_dir, pv_name, options)
        return True
    was_mounted = is_mounted(data_dir, pv_name)
    if was_mounted:
        unmount(data_dir, pv_name)
    _offline_grow(img)
    if was_mounted:
        mount(data_dir, pv_name, options)
    return True


def _offline_grow(img: str) -> None:
    # e2fsck exits 1 when it fixed something, which is fine before a resize
    p = subprocess.run(["e2fsck", "-f", "-p", img], capture_output=True, text=True, timeout=300)
    if p.returncode not in (0, 1):
        raise VolumeError(f"e2fsck {img}: exit {p.returncode}: {p.stderr.strip()}")
    _run("resize2fs", img)
