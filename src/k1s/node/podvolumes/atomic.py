"""kubelet's atomic writer: a set of files in a directory replaced all at once, so a reader
sees either the old set or the new one, never a mix or a half-written file.

Layout of a target directory (as upstream's pkg/volume/util/atomic_writer.go):
    ..2026_12_04_16_30_00.123456789/   the files of one version (a timestamped directory)
    ..data -> ..2026_12_04_16_30_00.123456789
    key    -> ..data/key               one link per top-level name the user sees
    dir    -> ..data/dir               (nested paths go through their top-level directory)

An update writes a new timestamped directory in full, then renames a fresh `..data_tmp`
symlink over `..data` (rename(2) is atomic), then adds links for new top-level names and
removes links for names gone. A name present in both versions is visible throughout.

Why the previous version's directory is kept until the next update (upstream removes it at
once): a reader that resolved `..data` just before the swap still finds its files; it would
need to stall across two whole updates to see one vanish.

Every payload path is checked again here (relative, no `..` segment, not starting with `..`)
and files are created with O_EXCL|O_NOFOLLOW inside a directory we just made, so nothing the
user names can land outside the target directory.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from typing import Mapping

from .planner import FileEntry, check_path, check_payload

DATA = "..data"
DATA_TMP = "..data_tmp"


def _timestamped_dir(target: str) -> str:
    t = time.time()
    prefix = time.strftime("..%Y_%m_%d_%H_%M_%S.", time.gmtime(t)) + f"{int(t * 1e9) % 10**9:09d}"
    d = tempfile.mkdtemp(prefix=prefix, dir=target)
    os.chmod(d, 0o755)
    return d


def current_version(target: str) -> str | None:
    """The timestamped directory `..data` points at, or None."""
    try:
        link = os.readlink(os.path.join(target, DATA))
    except OSError:
        return None
    if "/" in link or not link.startswith(".."):
        return None
    return link


def read_version(target: str, version: str) -> dict[str, FileEntry]:
    """The files of one version: relative path -> FileEntry (data, permission bits)."""
    root = os.path.join(target, version)
    out: dict[str, FileEntry] = {}
    for dirpath, _dirs, files in os.walk(root):
        for f in files:
            full = os.path.join(dirpath, f)
            st = os.lstat(full)
            with open(full, "rb") as fh:
                out[os.path.relpath(full, root)] = FileEntry(fh.read(), st.st_mode & 0o7777)
    return out


def visible(target: str) -> dict[str, FileEntry]:
    """What a reader of the directory sees (through the links), `..` entries left out."""
    out: dict[str, FileEntry] = {}
    for name in os.listdir(target):
        if name.startswith(".."):
            continue
        full = os.path.join(target, name)
        if os.path.isdir(full):
            for dirpath, _dirs, files in os.walk(full, followlinks=False):
                for f in files:
                    p = os.path.join(dirpath, f)
                    with open(p, "rb") as fh:
                        out[os.path.relpath(p, target)] = FileEntry(
                            fh.read(), os.stat(p).st_mode & 0o7777)
        elif os.path.exists(full):
            with open(full, "rb") as fh:
                out[name] = FileEntry(fh.read(), os.stat(full).st_mode & 0o7777)
    return out


def _write_files(version_dir: str, payload: Mapping[str, FileEntry]) -> None:
    for rel, entry in payload.items():
        parent = version_dir
        for part in rel.split("/")[:-1]:
            parent = os.path.join(parent, part)
            if not os.path.isdir(parent) or os.path.islink(parent):
                os.mkdir(parent, 0o755)
        full = os.path.join(version_dir, rel)
        fd = os.open(full, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                     0o600)
        try:
            view = memoryview(entry.data)
            while view:
                n = os.write(fd, view)
                view = view[n:]
            os.fchmod(fd, entry.mode)        # the exact mode, whatever the umask
        finally:
            os.close(fd)


def write(target: str, payload: Mapping[str, FileEntry]) -> bool:
    """Make the directory show exactly `payload`. True if anything changed."""
    for p in payload:
        check_path(p)
    check_payload(payload)
    if os.path.islink(target):
        raise OSError(f"{target} is a symlink; refusing to write through it")
    os.makedirs(target, mode=0o755, exist_ok=True)
    old = current_version(target)
    tops = {p.split("/")[0] for p in payload}
    if old is not None and read_version(target, old) == dict(payload):
        _link_names(target, tops)            # heal links a crash may have left missing
        return False
    new_dir = _timestamped_dir(target)
    try:
        _write_files(new_dir, payload)
        tmp = os.path.join(target, DATA_TMP)
        if os.path.lexists(tmp):
            os.unlink(tmp)
        os.symlink(os.path.basename(new_dir), tmp)
        os.rename(tmp, os.path.join(target, DATA))
    except BaseException:
        shutil.rmtree(new_dir, ignore_errors=True)
        raise
    _link_names(target, tops)
    for name in os.listdir(target):          # names no longer in the payload
        if not name.startswith("..") and name not in tops:
            full = os.path.join(target, name)
            if os.path.islink(full):
                os.unlink(full)
    keep = {os.path.basename(new_dir), old}
    for name in os.listdir(target):          # versions older than the one just replaced
        if name.startswith("..") and name not in keep and name not in (DATA, DATA_TMP):
            full = os.path.join(target, name)
            if os.path.isdir(full) and not os.path.islink(full):
                shutil.rmtree(full, ignore_errors=True)
    return True


def _link_names(target: str, tops: set[str]) -> None:
    for name in tops:
        link = os.path.join(target, name)
        want = os.path.join(DATA, name)
        if os.path.islink(link):
            if os.readlink(link) == want:
                continue
            os.unlink(link)
        elif os.path.lexists(link):
            raise OSError(f"{link} exists and is not one of the writer's links")
        os.symlink(want, link)
