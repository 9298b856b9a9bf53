"""Every on-disk path of a local volume, derived from the claim's uid only.

User-chosen names (claim, namespace, class) never reach the filesystem: a volume lives in
`<data>/volumes/pvc-<uid>/`, the uid is checked against the UUID format the API server issues,
and every resolved path is asserted to stay under `<data>/volumes` (symlinks resolved), so no
input can make the provisioner create, mount or delete anything elsewhere.
"""

from __future__ import annotations

import os
import re

UID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
PV_NAME_RE = re.compile(r"^pvc-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
IMAGE_FILE = "disk.img"
MOUNT_DIR = "mount"


class UnsafePath(ValueError):
    """A uid or volume name that could not have come from the API server, or a path that
    resolves outside the volumes directory."""


def pv_name_for(uid: str) -> str:
    """`pvc-<uid>` for a claim uid; refuses anything that is not a lower-case UUID."""
    if not isinstance(uid, str) or not UID_RE.match(uid):
        raise UnsafePath(f"invalid claim uid {uid!r}: expected a UUID")
    return f"pvc-{uid}"


def check_pv_name(name: str) -> str:
    if not isinstance(name, str) or not PV_NAME_RE.match(name):
        raise UnsafePath(f"invalid volume name {name!r}: expected pvc-<uid>")
    return name


def volumes_root(data_dir: str) -> str:
    return os.path.join(os.path.realpath(data_dir), "volumes")


def _under(root: str, path: str, *, root_is_real: bool = False) -> str:
    """`path` resolved, asserted to be strictly inside `root` (resolved)."""
    real_root = root if root_is_real else os.path.realpath(root)
    real = os.path.realpath(path)
    if os.path.commonpath([real_root, real]) != real_root or real == real_root:
        raise UnsafePath(f"path {path!r} resolves outside {real_root}")
    return real


def _real_root(data_dir: str) -> str:
    """volumes_root resolved once per call chain (each realpath is a syscall per component)."""
    return os.path.realpath(os.path.join(data_dir, "volumes"))


def _volume_dir(root: str, pv_name: str) -> str:
    return _under(root, os.path.join(root, check_pv_name(pv_name)), root_is_real=True)


def volume_dir(data_dir: str, pv_name: str) -> str:
    """`<data>/volumes/<pv_name>` for a valid pvc-<uid> name, checked to stay under volumes."""
    return _volume_dir(_real_root(data_dir), pv_name)


def image_path(data_dir: str, pv_name: str) -> str:
    root = _real_root(data_dir)
    return _under(root, os.path.join(_volume_dir(root, pv_name), IMAGE_FILE), root_is_real=True)


def mount_path(data_dir: str, pv_name: str) -> str:
    root = _real_root(data_dir)
    return _under(root, os.path.join(_volume_dir(root, pv_name), MOUNT_DIR), root_is_real=True)
