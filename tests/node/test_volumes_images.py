"""ext4 images on real loop devices: capacity is enforced, growth works, restarts re-adopt.

These need root, /dev/loop-control and e2fsprogs; elsewhere they skip with the reason. Every
loop device and mount a test makes is removed by the fixture, whatever the test did.
"""

from __future__ import annotations

import errno
import os

import pytest

from k1s.node.volumes import dirs, images, paths

OK, WHY = images.loop_supported()
needs_loop = pytest.mark.skipif(not OK, reason=f"no loop-device volumes here: {WHY}")

MiB = 1024 * 1024


@pytest.fixture
def vol(tmp_path):
    """(data_dir, pv_name); unmounts and detaches whatever the test left behind."""
    data = str(tmp_path / "data")
    name = paths.pv_name_for("6f1c1a2e-3b4d-4e5f-8a9b-0c1d2e3f4a5b")
    yield data, name
    if OK:
        images.unmount(data, name)
        assert images.loop_devices(data, name) == []
        assert not images.is_mounted(data, name)


def write(path: str, nbytes: int) -> None:
    chunk = b"\xa5" * MiB
    with open(path, "wb") as f:
        left = nbytes
        while left > 0:
            f.write(chunk[:min(left, MiB)])
            left -= MiB
        f.flush()
        os.fsync(f.fileno())


@needs_loop
def test_create_mount_usage_resize_delete(vol):
    data, name = vol
    assert images.create(data, name, 16 * MiB) is True
    assert images.create(data, name, 16 * MiB) is False         # idempotent
    assert os.path.getsize(paths.image_path(data, name)) == 16 * MiB
    assert images.mount(data, name) is True
    assert images.mount(data, name) is False                     # already mounted: nothing
    assert len(images.loop_devices(data, name)) == 1
    mnt = paths.mount_path(data, name)
    u0 = images.usage(mnt)
    assert 12 * MiB < u0.capacity_bytes <= 16 * MiB
    write(os.path.join(mnt, "a"), 4 * MiB)
    u1 = images.usage(mnt)
    assert u1.used_bytes - u0.used_bytes >= 4 * MiB
    assert u1.available_bytes < u0.available_bytes
    assert images.resize(data, name, 32 * MiB) is True
    assert images.resize(data, name, 16 * MiB) is False          # never shrinks
    assert images.is_mounted(data, name)
    assert images.usage(mnt).capacity_bytes > 26 * MiB
    with open(os.path.join(mnt, "a"), "rb") as f:                # the data survived the growth
        assert f.read(4) == b"\xa5" * 4
    images.delete(data, name)
    assert not os.path.exists(paths.volume_dir(data, name))
    assert images.loop_devices(data, name) == []


@needs_loop
def test_write_past_size_fails_with_enospc_then_growth_lets_it_succeed(vol):
    data, name = vol
    images.create(data, name, 8 * MiB)
    images.mount(data, name)
    mnt = paths.mount_path(data, name)
    with pytest.raises(OSError) as e:
        write(os.path.join(mnt, "big"), 12 * MiB)
    assert e.value.errno == errno.ENOSPC
    os.unlink(os.path.join(mnt, "big"))
    images.resize(data, name, 24 * MiB)
    write(os.path.join(mnt, "big"), 12 * MiB)
    assert os.path.getsize(os.path.join(mnt, "big")) == 12 * MiB


@needs_loop
def test_restart_readopts_existing_image(vol):
    data, name = vol
    images.create(data, name, 8 * MiB)
    images.mount(data, name, ["noatime"])
    mnt = paths.mount_path(data, name)
    write(os.path.join(mnt, "keep"), MiB)
    images.unmount(data, name)                                   # the machine restarted
    assert not images.is_mounted(data, name) and images.loop_devices(data, name) == []
    assert images.create(data, name, 8 * MiB) is False           # the image is kept, not remade
    assert images.mount(data, name) is True
    assert os.path.getsize(os.path.join(mnt, "keep")) == MiB


@needs_loop
def test_mount_options_are_passed_to_mount(vol):
    data, name = vol
    images.create(data, name, 8 * MiB)
    images.mount(data, name, ["ro"])
    with pytest.raises(OSError) as e:
        write(os.path.join(paths.mount_path(data, name), "x"), 1)
    assert e.value.errno == errno.EROFS


def test_unsupported_fs_type_is_refused(vol):
    data, name = vol
    with pytest.raises(images.VolumeError):
        images.create(data, name, 8 * MiB, fs_type="xfs")


def test_directory_mode_has_no_capacity_but_reports_usage(tmp_path):
    data = str(tmp_path)
    name = paths.pv_name_for("6f1c1a2e-3b4d-4e5f-8a9b-0c1d2e3f4a5c")
    assert dirs.create(data, name) is True
    mnt = paths.mount_path(data, name)
    write(os.path.join(mnt, "f"), 2 * MiB)
    u = dirs.usage(mnt, MiB)
    assert u.used_bytes >= 2 * MiB and u.available_bytes == 0
    dirs.delete(data, name)
    assert not os.path.exists(paths.volume_dir(data, name))


@pytest.mark.parametrize("options,flags,data", [
    ([], 0, ""),
    (["ro"], 1, ""),
    (["noatime", "nodev,nosuid"], 1024 | 4 | 2, ""),
    (["rw", "defaults", "data=ordered", "noinit_itable"], 0, "data=ordered,noinit_itable"),
    (["sync", "relatime", "commit=5"], 16 | (1 << 21), "commit=5"),
])
def test_mount_options_split_into_flags_and_data(options, flags, data):
    from k1s.node.volumes import loopmount
    assert loopmount.split_options(options) == (flags, data)


@needs_loop
def test_leftover_loop_device_is_detached(vol):
    """A crash between attach and mount leaves an attached, unmounted device: unmount frees it."""
    from k1s.node.volumes import loopmount
    data, name = vol
    images.create(data, name, 8 * MiB)
    dev, fd = loopmount.attach(paths.image_path(data, name))
    try:
        assert images.loop_devices(data, name) == [dev]
    finally:
        os.close(fd)
    # autoclear has already freed it once the last holder closed; attach one without it
    import subprocess
    dev = subprocess.run(["losetup", "--find", "--show", paths.image_path(data, name)],
                         capture_output=True, text=True, check=True).stdout.strip()
    assert images.loop_devices(data, name) == [dev]
    images.unmount(data, name)
    assert images.loop_devices(data, name) == []


@needs_loop
def test_images_from_the_template_are_sound_and_have_their_own_uuid(tmp_path):
    import subprocess
    from k1s.node.volumes import template
    data = str(tmp_path)
    names = [paths.pv_name_for(f"6f1c1a2e-3b4d-4e5f-8a9b-0c1d2e3f4a{i:02x}") for i in range(3)]
    for n in names:
        images.create(data, n, 16 * MiB)
    uuids = set()
    for n in names:
        img = paths.image_path(data, n)
        sb = template.superblock(img)
        assert template.can_rewrite_uuid(sb)
        uuids.add(sb[template.SB_UUID:template.SB_UUID + 16])
        fsck = subprocess.run(["e2fsck", "-f", "-n", img], capture_output=True, text=True)
        assert fsck.returncode == 0, fsck.stdout + fsck.stderr
    assert len(uuids) == 3
    assert os.listdir(os.path.join(data, "volumes", ".templates")) == [f"ext4-{16 * MiB}.img"]


def test_crc32c_known_answer():
    from k1s.node.volumes import template
    assert template.crc32c(b"123456789") == 0xE3069283       # the standard check value
    assert template.crc32c(b"") == 0
