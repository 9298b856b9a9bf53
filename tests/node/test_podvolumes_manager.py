"""The pod volume manager on this machine (root): a loop-mounted image PV made with the local
provisioner's helpers, tmpfs emptyDir with a size, secrets on tmpfs, a configMap update seen
through the same bind mount, hostPath type checks, FailedMount reasons, subPath escapes, and a
teardown that leaves no mount and no directory behind (checked in /proc/self/mountinfo)."""

from __future__ import annotations

import asyncio
import base64
import errno
import os
import shutil
import socket
import tempfile

import pytest

from k1s.node.podvolumes import manager
from k1s.node.podvolumes.manager import HostVolume, MountFailed, VolumeManager
from k1s.node.volumes import images, paths

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="mounts need root (CI runs as root)")

UID = "0c0c0c0c-1111-2222-3333-444444444444"
CLAIM_UID = "5a5a5a5a-1111-2222-3333-444444444444"
PV = "pvc-" + CLAIM_UID


def mounted_under(root: str) -> list[str]:
    return manager.mounts_under(os.path.realpath(root))


@pytest.fixture
def data_dir():
    d = tempfile.mkdtemp(prefix="k1s-podvol-")
    yield d
    for mp in mounted_under(d):                 # never leave a mount behind, whatever failed
        manager._umount(mp)
    assert mounted_under(d) == []
    shutil.rmtree(d)


class Store:
    """What the agent's informers would hold; fetch is the async callable setup takes."""

    def __init__(self, *objs):
        self.objs = {}
        for kind, o in objs:
            self.put(kind, o)

    def put(self, kind, o):
        ns = "" if kind == "PersistentVolume" else o["metadata"].get("namespace", "default")
        self.objs[(kind, ns, o["metadata"]["name"])] = o

    async def fetch(self, kind, ns, name):
        return self.objs.get((kind, ns, name))


def pod(*volumes, containers=None):
    return {"metadata": {"name": "web-0", "namespace": "default", "uid": UID},
            "spec": {"containers": containers or [{"name": "c"}], "volumes": list(volumes)}}


def run(coro):
    return asyncio.run(coro)


def test_loop_image_pv_is_mounted_again_and_survives_teardown(data_dir):
    ok, why = images.loop_supported()
    if not ok:
        pytest.skip(f"loop devices unavailable here: {why}")
    prov_dir = os.path.join(data_dir, "provisioner")   # the provisioner's own data dir
    images.create(prov_dir, PV, 8 << 20)          # as the provisioner makes it
    mnt = paths.mount_path(prov_dir, PV)
    claim = {"metadata": {"name": "www-web-0", "namespace": "default", "uid": CLAIM_UID},
             "spec": {"volumeName": PV}, "status": {"phase": "Bound"}}
    pv = {"metadata": {"name": PV,
                       "annotations": {"pv.kubernetes.io/provisioned-by": "k1s.io/local"}},
          "spec": {"accessModes": ["ReadWriteOnce"], "local": {"path": mnt, "fsType": "ext4"},
                   "claimRef": {"uid": CLAIM_UID}}}
    store = Store(("PersistentVolumeClaim", claim), ("PersistentVolume", pv))
    p = pod({"name": "www", "persistentVolumeClaim": {"claimName": "www-web-0"}})
    vm = VolumeManager(data_dir)
    try:
        assert not os.path.ismount(mnt)
        vols = run(vm.setup(p, store.fetch))
        assert vols == {"www": HostVolume(mnt, False)}
        assert os.path.ismount(mnt)                # the image itself, on a loop device
        assert images.loop_devices(prov_dir, PV)
        with open(os.path.join(mnt, "index.html"), "w") as f:
            f.write("hello web-0\n")
        images.unmount(prov_dir, PV)               # as after a node restart
        assert run(vm.setup(p, store.fetch)) == vols
        assert os.path.ismount(mnt)
        with open(os.path.join(mnt, "index.html")) as f:
            assert f.read() == "hello web-0\n"
        run(vm.teardown(UID))                      # the PV's data is not the pod's to remove
        assert os.path.ismount(mnt)
        assert os.path.exists(os.path.join(mnt, "index.html"))
        assert not os.path.exists(manager.pod_volumes_dir(data_dir, UID))
        # readOnly from the pod's claim reference
        p_ro = pod({"name": "www", "persistentVolumeClaim": {"claimName": "www-web-0",
                                                             "readOnly": True}})
        assert run(vm.setup(p_ro, store.fetch)) == {"www": HostVolume(mnt, True)}
    finally:
        images.delete(prov_dir, PV)
    assert images.loop_devices(prov_dir, PV) == []


def test_memory_empty_dir_is_a_sized_tmpfs_and_teardown_unmounts(data_dir):
    p = pod({"name": "cache", "emptyDir": {"medium": "Memory", "sizeLimit": "4Mi"}},
            {"name": "scratch", "emptyDir": {"sizeLimit": "1Mi"}})
    vm = VolumeManager(data_dir)
    vols = run(vm.setup(p, Store().fetch))
    cache, scratch = vols["cache"].path, vols["scratch"].path
    assert cache.startswith(manager.pod_volumes_dir(data_dir, UID) + "/kubernetes.io~empty-dir/")
    assert os.path.ismount(cache) and not os.path.ismount(scratch)
    st = os.statvfs(cache)
    assert st.f_blocks * st.f_frsize == 4 << 20
    with pytest.raises(OSError) as e:
        with open(os.path.join(cache, "big"), "wb") as f:
            f.write(b"x" * (5 << 20))
    assert e.value.errno == errno.ENOSPC
    assert os.stat(scratch).st_mode & 0o777 == 0o777
    with open(os.path.join(scratch, "f"), "wb") as f:
        f.write(b"y" * (2 << 20))
    used, limit = vm.empty_dir_usage(p)["scratch"]
    assert used >= 2 << 20 and limit == 1 << 20      # over its limit: reported, not evicted
    assert run(vm.setup(p, Store().fetch)) == vols    # idempotent: no second tmpfs
    assert len(mounted_under(data_dir)) == 1
    run(vm.teardown(UID))
    assert mounted_under(data_dir) == []
    assert not os.path.exists(manager.pod_volumes_dir(data_dir, UID))
    run(vm.teardown(UID))                              # twice is fine


def bind(source: str, target: str) -> None:
    from k1s.node.runtime import linux
    linux.mount(source, target, None, linux.MS_BIND)


def test_config_map_update_is_visible_through_the_same_bind(data_dir):
    cm = {"metadata": {"name": "site", "namespace": "default"},
          "data": {"index.html": "v1\n", "old.txt": "gone soon"}}
    store = Store(("ConfigMap", cm))
    p = pod({"name": "site", "configMap": {"name": "site"}})
    vm = VolumeManager(data_dir)
    vols = run(vm.setup(p, store.fetch))
    assert vols["site"].read_only
    view = os.path.join(data_dir, "container-view")   # what a container bind-mounts
    os.makedirs(view)
    bind(vols["site"].path, view)
    try:
        with open(os.path.join(view, "index.html")) as f:
            assert f.read() == "v1\n"
        assert os.stat(os.path.join(view, "index.html")).st_mode & 0o777 == 0o644
        store.put("ConfigMap", {"metadata": cm["metadata"], "data": {"index.html": "v2\n",
                                                                     "new.txt": "n"}})
        assert run(vm.setup(p, store.fetch)) == vols
        with open(os.path.join(view, "index.html")) as f:
            assert f.read() == "v2\n"
        assert sorted(n for n in os.listdir(view) if not n.startswith("..")) == \
            ["index.html", "new.txt"]
    finally:
        manager._umount(view)
    run(vm.teardown(UID))
    assert mounted_under(data_dir) == []


def test_secret_on_tmpfs_decoded_with_modes(data_dir):
    sec = {"metadata": {"name": "creds", "namespace": "default"},
           "data": {"password": base64.b64encode(b"s3cr\x00t").decode()}}
    p = pod({"name": "creds", "secret": {"secretName": "creds", "defaultMode": 0o400}},
            {"name": "info", "downwardAPI": {"items": [
                {"path": "name", "fieldRef": {"fieldPath": "metadata.name"}}]}})
    vm = VolumeManager(data_dir)
    vols = run(vm.setup(p, Store(("Secret", sec)).fetch))
    path = vols["creds"].path
    assert os.path.ismount(path)                       # never written to the node's disk
    with open(os.path.join(path, "password"), "rb") as f:
        assert f.read() == b"s3cr\x00t"
    assert os.stat(os.path.join(path, "password")).st_mode & 0o777 == 0o400
    with open(os.path.join(vols["info"].path, "name")) as f:
        assert f.read() == "web-0"
    run(vm.teardown(UID))
    assert mounted_under(data_dir) == []


def test_host_path_types_on_the_real_filesystem(data_dir):
    host = os.path.join(data_dir, "host")
    os.makedirs(host)
    sock_path = os.path.join(host, "s.sock")
    s = socket.socket(socket.AF_UNIX)
    s.bind(sock_path)
    try:
        p = pod({"name": "mk", "hostPath": {"path": f"{host}/made", "type": "DirectoryOrCreate"}},
                {"name": "mkf", "hostPath": {"path": f"{host}/f.txt", "type": "FileOrCreate"}},
                {"name": "sock", "hostPath": {"path": sock_path, "type": "Socket"}},
                {"name": "null", "hostPath": {"path": "/dev/null", "type": "CharDevice"}})
        vm = VolumeManager(data_dir)
        vols = run(vm.setup(p, Store().fetch))
        assert os.path.isdir(f"{host}/made") and os.path.isfile(f"{host}/f.txt")
        assert vols["sock"] == HostVolume(sock_path, False)
        bad = pod({"name": "d", "hostPath": {"path": f"{host}/nope", "type": "Directory"}},
                  {"name": "f", "hostPath": {"path": f"{host}/made", "type": "File"}},
                  {"name": "b", "hostPath": {"path": "/dev/null", "type": "BlockDevice"}},
                  {"name": "ok", "emptyDir": {}})
        with pytest.raises(MountFailed) as e:
            run(vm.setup(bad, Store().fetch))
        assert e.value.messages == [
            f'MountVolume.SetUp failed for volume "d" : hostPath type check failed: '
            f'{host}/nope is not a directory',
            f'MountVolume.SetUp failed for volume "f" : hostPath type check failed: '
            f'{host}/made is not a file',
            'MountVolume.SetUp failed for volume "b" : hostPath type check failed: '
            '/dev/null is not a block device']
        assert set(e.value.volumes) == {"ok"}             # the rest is set up anyway
        assert not os.path.exists(f"{host}/nope")
    finally:
        s.close()
    run(vm.teardown(UID))


def test_unmountable_pv_and_missing_claim_fail_with_reasons(data_dir):
    rbd = {"metadata": {"name": "pv-volume"},
           "spec": {"accessModes": ["ReadWriteOnce"], "rbd": {"image": "foo"}}}
    claim = {"metadata": {"name": "c", "namespace": "default", "uid": CLAIM_UID},
             "spec": {"volumeName": "pv-volume"}, "status": {"phase": "Bound"}}
    p = pod({"name": "data", "persistentVolumeClaim": {"claimName": "c"}},
            {"name": "other", "persistentVolumeClaim": {"claimName": "missing"}})
    with pytest.raises(MountFailed) as e:
        run(VolumeManager(data_dir).setup(
            p, Store(("PersistentVolumeClaim", claim), ("PersistentVolume", rbd)).fetch))
    assert e.value.messages == [
        "Unable to attach or mount volumes: unmounted volumes=[other], unattached "
        "volumes=[other], failed to process volumes=[other]: error processing PVC "
        "default/missing: failed to fetch PVC from API server: persistentvolumeclaims "
        '"missing" not found',
        'MountVolume.SetUp failed for volume "pv-volume" : rbd volumes are not supported on '
        'this node (k1s mounts local, hostPath and k1s.io/local volumes)']


def test_sub_paths_resolved_within_the_volume(data_dir):
    containers = [{"name": "ok", "volumeMounts": [{"name": "v", "mountPath": "/a",
                                                   "subPath": "html"}]},
                  {"name": "dots", "volumeMounts": [{"name": "v", "mountPath": "/a",
                                                     "subPath": "../../etc"}]},
                  {"name": "link", "volumeMounts": [{"name": "v", "mountPath": "/a",
                                                     "subPath": "escape/passwd"}]},
                  {"name": "expr", "volumeMounts": [{"name": "v", "mountPath": "/a",
                                                     "subPathExpr": "$(DIR)/x"}]},
                  {"name": "expr-ok", "volumeMounts": [{"name": "v", "mountPath": "/a",
                                                        "subPathExpr": "$(POD)"}]}]
    p = pod({"name": "v", "emptyDir": {}}, containers=containers)
    vm = VolumeManager(data_dir)
    vols = run(vm.setup(p, Store().fetch))
    os.symlink("/etc", os.path.join(vols["v"].path, "escape"))
    env = {"expr": {"DIR": "escape"}, "expr-ok": {"POD": "web-0"}}
    assert vm.check_sub_paths(p, vols, env) == {
        "expr": 'failed to prepare subPath for volumeMount "v" of container "expr": '
                "subPath 'escape/x' resolves outside its volume (through a symlink)",
        "dots": 'failed to prepare subPath for volumeMount "v" of container "dots": '
                "subPath '../../etc' must not contain '..'",
        "link": 'failed to prepare subPath for volumeMount "v" of container "link": '
                "subPath 'escape/passwd' resolves outside its volume (through a symlink)"}
    run(vm.teardown(UID))
    assert os.path.exists("/etc/passwd")              # teardown never follows the link


def test_volume_dirs_cannot_be_redirected_by_a_planted_symlink(data_dir):
    outside = tempfile.mkdtemp(prefix="k1s-outside-")
    try:
        pods = os.path.join(os.path.realpath(data_dir), "pods", UID)
        os.makedirs(pods)
        os.symlink(outside, os.path.join(pods, "volumes"))
        with pytest.raises(MountFailed) as e:
            run(VolumeManager(data_dir).setup(pod({"name": "v", "emptyDir": {}}),
                                              Store().fetch))
        assert "resolves outside" in e.value.messages[0]
        assert os.listdir(outside) == []
        run(VolumeManager(data_dir).teardown(UID))     # removes the link, not its target
        assert os.path.isdir(outside)
    finally:
        shutil.rmtree(outside)


def test_teardown_refuses_a_linked_pod_directory(data_dir):
    outside = tempfile.mkdtemp(prefix="k1s-outside-")
    try:
        os.makedirs(os.path.join(outside, "volumes"))
        with open(os.path.join(outside, "volumes", "precious"), "w") as f:
            f.write("keep me")
        os.makedirs(os.path.join(os.path.realpath(data_dir), "pods"))
        os.symlink(outside, os.path.join(os.path.realpath(data_dir), "pods", UID))
        vm = VolumeManager(data_dir)
        with pytest.raises(MountFailed):
            run(vm.setup(pod({"name": "v", "emptyDir": {}}), Store().fetch))
        with pytest.raises(paths.UnsafePath):
            run(vm.teardown(UID))
        assert os.listdir(os.path.join(outside, "volumes")) == ["precious"]
    finally:
        shutil.rmtree(outside)


def test_read_write_once_pod_claim_used_by_an_older_pod_is_refused(data_dir):
    host = os.path.join(data_dir, "pvdata")
    claim = {"metadata": {"name": "c", "namespace": "default", "uid": CLAIM_UID},
             "spec": {"volumeName": "pv-h", "accessModes": ["ReadWriteOncePod"]},
             "status": {"phase": "Bound"}}
    pv = {"metadata": {"name": "pv-h"},
          "spec": {"accessModes": ["ReadWriteOncePod"],
                   "hostPath": {"path": host, "type": "DirectoryOrCreate"}}}
    store = Store(("PersistentVolumeClaim", claim), ("PersistentVolume", pv))
    me = pod({"name": "data", "persistentVolumeClaim": {"claimName": "c"}})
    me["metadata"]["creationTimestamp"] = "2026-01-02T00:00:00Z"
    me["spec"]["nodeName"] = "n1"
    other = {"metadata": {"name": "old", "namespace": "default", "uid": "u-old",
                          "creationTimestamp": "2026-01-01T00:00:00Z"},
             "spec": {"nodeName": "n1"}, "status": {"phase": "Running"}}
    users = {"c": [other]}

    async def claim_users(ns, name):
        return users.get(name, [])
    vm = VolumeManager(data_dir)
    with pytest.raises(MountFailed) as e:
        run(vm.setup(me, store.fetch, claim_users))
    assert e.value.messages == ['MountVolume.SetUp failed for volume "pv-h" : volume uses the '
                                'ReadWriteOncePod access mode and is already in use by pod '
                                'default/old']
    other["status"]["phase"] = "Succeeded"            # the holder finished: ours now
    assert run(vm.setup(me, store.fetch, claim_users)) == {"data": HostVolume(host, False)}
    assert os.path.isdir(host)
    run(vm.teardown(UID))
    assert os.path.isdir(host)                        # a PV's data is never the pod's


def test_directory_mode_provisioned_volume_and_container_mounts(data_dir):
    from k1s.node.volumes import dirs
    prov_dir = os.path.join(data_dir, "provisioner")
    dirs.create(prov_dir, PV)                      # no loop devices: a plain directory
    mnt = paths.mount_path(prov_dir, PV)
    claim = {"metadata": {"name": "c", "namespace": "default", "uid": CLAIM_UID},
             "spec": {"volumeName": PV}, "status": {"phase": "Bound"}}
    pv = {"metadata": {"name": PV,
                       "annotations": {"pv.kubernetes.io/provisioned-by": "k1s.io/local"}},
          "spec": {"accessModes": ["ReadWriteOnce"], "local": {"path": mnt}}}
    cm = {"metadata": {"name": "cfg", "namespace": "default"}, "data": {"k": "v"}}
    container = {"name": "web", "volumeMounts": [
        {"name": "www", "mountPath": "/usr/share/nginx/html", "subPathExpr": "$(POD)"},
        {"name": "www", "mountPath": "/ro", "readOnly": True},
        {"name": "cfg", "mountPath": "/etc/cfg"}]}
    p = pod({"name": "www", "persistentVolumeClaim": {"claimName": "c"}},
            {"name": "cfg", "configMap": {"name": "cfg"}}, containers=[container])
    vm = VolumeManager(data_dir)
    vols = run(vm.setup(p, Store(("PersistentVolumeClaim", claim), ("PersistentVolume", pv),
                                 ("ConfigMap", cm)).fetch))
    assert vols["www"] == HostVolume(mnt, False) and not os.path.ismount(mnt)
    assert vm.container_mounts(container, vols, {"POD": "web-0"}) == [
        manager.ContainerMount(mnt, "/usr/share/nginx/html", False, "web-0"),
        manager.ContainerMount(mnt, "/ro", True, ""),
        manager.ContainerMount(vols["cfg"].path, "/etc/cfg", True, "")]
    run(vm.teardown(UID))
    assert os.path.isdir(mnt)


def test_teardown_finds_mounts_in_a_data_dir_with_spaces(data_dir):
    spaced = os.path.join(data_dir, "my data\tdir")
    os.makedirs(spaced)
    p = pod({"name": "cache", "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}})
    vm = VolumeManager(spaced)
    vols = run(vm.setup(p, Store().fetch))
    assert manager.mounts_under(os.path.realpath(spaced)) == [vols["cache"].path]
    run(vm.teardown(UID))
    assert mounted_under(data_dir) == []


def test_image_still_alive_elsewhere_is_mounted_from_its_own_loop_device(data_dir):
    """The provisioner unmounts images on shutdown; a container's bind of one keeps the
    filesystem (and its loop device) alive. Mounting it again must reuse that device: a
    second loop device on the same image would be a second ext4 writing the same blocks."""
    ok, why = images.loop_supported()
    if not ok:
        pytest.skip(f"loop devices unavailable here: {why}")
    prov_dir = os.path.join(data_dir, "provisioner")
    images.create(prov_dir, PV, 8 << 20)
    images.mount(prov_dir, PV)
    mnt = paths.mount_path(prov_dir, PV)
    holder = os.path.join(data_dir, "container-bind")      # what a running container holds
    os.makedirs(holder)
    bind(mnt, holder)
    try:
        [dev] = images.loop_devices(prov_dir, PV)
        manager._umount(mnt)                                # the provisioner's shutdown
        assert not os.path.ismount(mnt) and images.loop_devices(prov_dir, PV) == [dev]
        claim = {"metadata": {"name": "c", "namespace": "default", "uid": CLAIM_UID},
                 "spec": {"volumeName": PV}, "status": {"phase": "Bound"}}
        pv = {"metadata": {"name": PV,
                           "annotations": {"pv.kubernetes.io/provisioned-by": "k1s.io/local"}},
              "spec": {"accessModes": ["ReadWriteOnce"], "local": {"path": mnt}}}
        vm = VolumeManager(data_dir)
        run(vm.setup(pod({"name": "www", "persistentVolumeClaim": {"claimName": "c"}}),
                     Store(("PersistentVolumeClaim", claim), ("PersistentVolume", pv)).fetch))
        assert os.path.ismount(mnt)
        assert images.loop_devices(prov_dir, PV) == [dev]     # no second device
        with open(os.path.join(holder, "seen"), "w") as f:
            f.write("one filesystem")
        with open(os.path.join(mnt, "seen")) as f:
            assert f.read() == "one filesystem"
        run(vm.teardown(UID))
    finally:
        if os.path.ismount(holder):
            manager._umount(holder)
        images.delete(prov_dir, PV)
    assert images.loop_devices(prov_dir, PV) == []


def test_fs_group_owns_empty_dir_secret_and_local_pv_once(data_dir):
    import stat as st_
    gid = 4321
    local = os.path.join(data_dir, "localpv")
    os.makedirs(os.path.join(local, "sub"))
    with open(os.path.join(local, "sub", "f"), "w") as f:
        f.write("x")
    os.chmod(os.path.join(local, "sub", "f"), 0o600)
    claim = {"metadata": {"name": "c", "namespace": "default", "uid": CLAIM_UID},
             "spec": {"volumeName": "pv-l"}, "status": {"phase": "Bound"}}
    pv = {"metadata": {"name": "pv-l"},
          "spec": {"accessModes": ["ReadWriteOnce"], "local": {"path": local}}}
    sec = {"metadata": {"name": "creds", "namespace": "default"},
           "data": {"password": base64.b64encode(b"pw").decode()}}
    p = pod({"name": "e", "emptyDir": {}},
            {"name": "creds", "secret": {"secretName": "creds", "defaultMode": 0o400}},
            {"name": "data", "persistentVolumeClaim": {"claimName": "c"}})
    p["spec"]["securityContext"] = {"fsGroup": gid}
    store = Store(("Secret", sec), ("PersistentVolumeClaim", claim), ("PersistentVolume", pv))
    vm = VolumeManager(data_dir)
    vols = run(vm.setup(p, store.fetch))
    e = os.stat(vols["e"].path)
    assert e.st_gid == gid and e.st_mode & st_.S_ISGID and e.st_mode & 0o777 == 0o777
    pw = os.path.join(vols["creds"].path, "password")
    assert os.stat(pw).st_gid == gid and os.stat(pw).st_mode & 0o777 == 0o440
    f = os.stat(os.path.join(local, "sub", "f"))
    assert f.st_gid == gid and f.st_mode & 0o777 == 0o660
    assert os.stat(os.path.join(local, "sub")).st_mode & st_.S_ISGID
    version = os.readlink(os.path.join(vols["creds"].path, "..data"))
    os.chmod(os.path.join(local, "sub", "f"), 0o600)            # the pod changes its own file
    assert run(vm.setup(p, store.fetch)) == vols
    assert os.readlink(os.path.join(vols["creds"].path, "..data")) == version   # no rewrite
    assert os.stat(os.path.join(local, "sub", "f")).st_mode & 0o777 == 0o600   # walked once
    run(vm.teardown(UID))
    assert mounted_under(data_dir) == []


def test_local_pv_with_a_missing_path(data_dir):
    claim = {"metadata": {"name": "c", "namespace": "default", "uid": CLAIM_UID},
             "spec": {"volumeName": "pv-gone"}, "status": {"phase": "Bound"}}
    pv = {"metadata": {"name": "pv-gone"},
          "spec": {"accessModes": ["ReadWriteOnce"], "local": {"path": f"{data_dir}/gone"}}}
    with pytest.raises(MountFailed) as e:
        run(VolumeManager(data_dir).setup(
            pod({"name": "d", "persistentVolumeClaim": {"claimName": "c"}}),
            Store(("PersistentVolumeClaim", claim), ("PersistentVolume", pv)).fetch))
    assert e.value.messages == ['MountVolume.NewMounter initialization failed for volume '
                                f'"pv-gone" : path "{data_dir}/gone" does not exist']
    assert not os.path.exists(f"{data_dir}/gone")         # never made up
