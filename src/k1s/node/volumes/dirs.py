"""The fallback volume: a plain directory `<data>/volumes/pvc-<uid>/mount`, used where loop
devices are unavailable (not root, no /dev/loop-control, no e2fsprogs) or a class asks for it
(parameter `mode: directory`). Capacity is NOT enforced: the provisioner says so in a Warning
event. Usage is the sum of file sizes (there is no filesystem of its own to ask)."""

from __future__ import annotations

import os
import shutil

from . import paths
from .images import Usage


def create(data_dir: str, pv_name: str) -> bool:
    """Make the directory; True if it did not exist."""
    mnt = paths.mount_path(data_dir, pv_name)
    existed = os.path.isdir(mnt)
    os.makedirs(mnt, exist_ok=True)
    return not existed


def delete(data_dir: str, pv_name: str) -> None:
    vdir = paths.volume_dir(data_dir, pv_name)
    if os.path.ismount(paths.mount_path(data_dir, pv_name)):
        raise RuntimeError(f"{vdir} is a mount point; refusing to delete through it")
    if os.path.exists(vdir):
        shutil.rmtree(vdir)


def usage(mount_dir: str, capacity_bytes: int) -> Usage:
    """Bytes in files under mount_dir (not following symlinks), against the requested size."""
    used = 0
    for root, _dirs, files in os.walk(mount_dir):
        for name in files:
            try:
                used += os.lstat(os.path.join(root, name)).st_blocks * 512
            except OSError:
                pass
    return Usage(capacity_bytes, used, max(capacity_bytes - used, 0))
