"""The pod volume planner: what each volume type becomes, every FailedMount reason, readOnly
rules, hostPath type checks and path-escape attempts (table-driven), plus properties."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given, settings, strategies as st

from k1s.node.podvolumes import planner
from k1s.node.podvolumes.planner import Bind, EmptyDir, Failed, FileEntry, Files

UID = "11111111-2222-3333-4444-555555555555"
CLAIM_UID = "aaaaaaaa-2222-3333-4444-555555555555"
PV = "pvc-" + CLAIM_UID


def pod(*volumes, containers=None, name="web-0"):
    return {"metadata": {"name": name, "namespace": "default", "uid": UID,
                         "labels": {"app": "web", "tier": "a b"},
                         "annotations": {"note": 'say "hi"'}},
            "spec": {"containers": containers or [{"name": "c", "image": "nginx"}],
                     "volumes": list(volumes)}}


def claim(name="data", phase="Bound", volume=PV, deleting=False, owner=None):
    c = {"metadata": {"name": name, "namespace": "default", "uid": CLAIM_UID},
         "spec": {"volumeName": volume} if volume else {}, "status": {"phase": phase}}
    if deleting:
        c["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    if owner:
        c["metadata"]["ownerReferences"] = [{"uid": owner, "controller": True}]
    return c


def pv(source, modes=("ReadWriteOnce",), name=PV, ref_uid=CLAIM_UID, ann=None, mode=None):
    spec = {"capacity": {"storage": "1Gi"}, "accessModes": list(modes),
            "claimRef": {"namespace": "default", "name": "data", "uid": ref_uid}, **source}
    if mode:
        spec["volumeMode"] = mode
    return {"metadata": {"name": name, "annotations": ann or {}}, "spec": spec}


def objs(*items):
    table = {}
    for kind, o in items:
        ns = o["metadata"].get("namespace", "") if kind != "PersistentVolume" else ""
        table[(kind, ns, o["metadata"]["name"])] = o
    return lambda k, ns, n: table.get((k, ns, n))


def b64(s: bytes) -> str:
    return base64.b64encode(s).decode()


PVC_VOL = {"name": "data", "persistentVolumeClaim": {"claimName": "data"}}
PVC_RO = {"name": "data", "persistentVolumeClaim": {"claimName": "data", "readOnly": True}}
LOCAL = {"local": {"path": "/srv/data"}}
NOT_BOUND = "error processing PVC default/data: PVC is not bound"

# (id, volume, objects, expected decision)
CLAIM_CASES = [
    ("local", PVC_VOL, [("PersistentVolumeClaim", claim()), ("PersistentVolume", pv(LOCAL))],
     Bind("data", "/srv/data", False, check="local", label=PV)),
    ("pod-readOnly", PVC_RO, [("PersistentVolumeClaim", claim()), ("PersistentVolume", pv(LOCAL))],
     Bind("data", "/srv/data", True, check="local", label=PV)),
    ("rox-only-pv", PVC_VOL, [("PersistentVolumeClaim", claim()),
                              ("PersistentVolume", pv(LOCAL, modes=("ReadOnlyMany",)))],
     Bind("data", "/srv/data", True, check="local", label=PV)),
    ("rox-and-rwo", PVC_VOL,
     [("PersistentVolumeClaim", claim()),
      ("PersistentVolume", pv(LOCAL, modes=("ReadOnlyMany", "ReadWriteOnce")))],
     Bind("data", "/srv/data", False, check="local", label=PV)),
    ("hostPath-pv", PVC_VOL,
     [("PersistentVolumeClaim", claim()),
      ("PersistentVolume", pv({"hostPath": {"path": "/h", "type": "Directory"}}))],
     Bind("data", "/h", False, check="Directory", label=PV)),
    ("provisioned", PVC_VOL,
     [("PersistentVolumeClaim", claim()),
      ("PersistentVolume", pv({"local": {"path": "/d/volumes/x/mount", "fsType": "ext4"},
                               "mountOptions": ["noatime"]},
                              ann={"pv.kubernetes.io/provisioned-by": "k1s.io/local"}))],
     Bind("data", "/d/volumes/x/mount", False, check="local", pv_image=PV,
          mount_options=("noatime",), label=PV)),
    ("claim-missing", PVC_VOL, [],
     Failed("data", 'error processing PVC default/data: failed to fetch PVC from API server: '
                    'persistentvolumeclaims "data" not found', claim=True)),
    ("claim-pending", PVC_VOL, [("PersistentVolumeClaim", claim(phase="Pending", volume=None))],
     Failed("data", NOT_BOUND, claim=True)),
    ("claim-deleting", PVC_VOL, [("PersistentVolumeClaim", claim(deleting=True))],
     Failed("data", "error processing PVC default/data: PVC is being deleted", claim=True)),
    ("pv-missing", PVC_VOL, [("PersistentVolumeClaim", claim())],
     Failed("data", f'error processing PVC default/data: failed to fetch PV {PV} from API '
                    f'server: persistentvolumes "{PV}" not found', claim=True)),
    ("pv-other-claim", PVC_VOL, [("PersistentVolumeClaim", claim()),
                                 ("PersistentVolume", pv(LOCAL, ref_uid="other"))],
     Failed("data", "error processing PVC default/data: the PVC's UID "
                    f"'{CLAIM_UID}' does not match the PV claimRef UID 'other'", claim=True)),
    ("rbd", PVC_VOL, [("PersistentVolumeClaim", claim(volume="pv-volume")),
                      ("PersistentVolume", pv({"rbd": {"image": "foo"}}, name="pv-volume"))],
     Failed("data", 'MountVolume.SetUp failed for volume "pv-volume" : rbd volumes are not '
                    'supported on this node (k1s mounts local, hostPath and k1s.io/local '
                    'volumes)')),
    ("nfs", PVC_VOL, [("PersistentVolumeClaim", claim()),
                      ("PersistentVolume", pv({"nfs": {"server": "x", "path": "/"}}))],
     Failed("data", f'MountVolume.SetUp failed for volume "{PV}" : nfs volumes are not '
                    'supported on this node (k1s mounts local, hostPath and k1s.io/local '
                    'volumes)')),
    ("csi", PVC_VOL, [("PersistentVolumeClaim", claim()),
                      ("PersistentVolume", pv({"csi": {"driver": "ebs.csi.aws.com"}}))],
     Failed("data", f'MountVolume.SetUp failed for volume "{PV}" : csi volumes (driver '
                    '"ebs.csi.aws.com") are not supported on this node (k1s mounts local, '
                    'hostPath and k1s.io/local volumes)')),
    ("block", PVC_VOL, [("PersistentVolumeClaim", claim()),
                        ("PersistentVolume", pv(LOCAL, mode="Block"))],
     Failed("data", f'MountVolume.SetUp failed for volume "{PV}" : block volumes are not '
                    'supported on this node (k1s mounts local, hostPath and k1s.io/local '
                    'volumes)')),
    ("ephemeral-not-owned", {"name": "scratch", "ephemeral": {"volumeClaimTemplate": {}}},
     [("PersistentVolumeClaim", claim(name="web-0-scratch"))],
     Failed("scratch", "error processing PVC default/web-0-scratch: PVC default/web-0-scratch "
                       "was not created for pod default/web-0 (pod is not owner)", claim=True)),
    ("ephemeral-owned", {"name": "scratch", "ephemeral": {"volumeClaimTemplate": {}}},
     [("PersistentVolumeClaim", claim(name="web-0-scratch", owner=UID)),
      ("PersistentVolume", pv(LOCAL))],
     Bind("scratch", "/srv/data", False, check="local", label=PV)),
]


@pytest.mark.parametrize("vol,items,want", [c[1:] for c in CLAIM_CASES],
                         ids=[c[0] for c in CLAIM_CASES])
def test_claim_volumes(vol, items, want):
    p = pod(vol)
    lookup = objs(*items)
    assert planner.plan(p, lookup) == [want]
    if isinstance(want, Bind):
        assert ("PersistentVolume", "", PV) in planner.pv_references(p, lookup)


HOSTPATH_CASES = [
    # (type, what is there, expected (create, error))
    ("", None, (None, None)),
    ("DirectoryOrCreate", None, ("dir", None)),
    ("DirectoryOrCreate", "dir", (None, None)),
    ("DirectoryOrCreate", "file", (None, "hostPath type check failed: /x is not a directory")),
    ("Directory", None, (None, "hostPath type check failed: /x is not a directory")),
    ("Directory", "dir", (None, None)),
    ("Directory", "file", (None, "hostPath type check failed: /x is not a directory")),
    ("FileOrCreate", None, ("file", None)),
    ("FileOrCreate", "file", (None, None)),
    ("FileOrCreate", "dir", (None, "hostPath type check failed: /x is not a file")),
    ("File", None, (None, "hostPath type check failed: /x is not a file")),
    ("File", "file", (None, None)),
    ("Socket", "socket", (None, None)),
    ("Socket", "file", (None, "hostPath type check failed: /x is not a socket file")),
    ("CharDevice", "char", (None, None)),
    ("CharDevice", "block", (None, "hostPath type check failed: /x is not a character device")),
    ("BlockDevice", "block", (None, None)),
    ("BlockDevice", None, (None, "hostPath type check failed: /x is not a block device")),
    ("Bogus", "dir", (None, "Bogus is an invalid volume type")),
]


@pytest.mark.parametrize("htype,kind,want", HOSTPATH_CASES)
def test_hostpath_type_checks(htype, kind, want):
    assert planner.hostpath_check(htype, "/x", kind) == want


def test_inline_hostpath_and_bad_type():
    got = planner.plan(pod({"name": "h", "hostPath": {"path": "/var/log", "type": "Directory"}},
                           {"name": "bad", "hostPath": {"path": "/x", "type": "Weird"}},
                           {"name": "rel", "hostPath": {"path": "x"}}), objs())
    assert got[0] == Bind("h", "/var/log", False, check="Directory")
    assert got[1] == Failed("bad", 'MountVolume.SetUp failed for volume "bad" : Weird is an '
                                   'invalid volume type')
    assert isinstance(got[2], Failed) and "absolute" in got[2].message


def test_empty_dir_variants():
    mem_limits = [{"name": "a", "resources": {"limits": {"memory": "64Mi"}}},
                  {"name": "b", "resources": {"limits": {"memory": "32Mi"}}}]
    got = planner.plan(pod({"name": "d", "emptyDir": {}},
                           {"name": "s", "emptyDir": {"sizeLimit": "1Gi"}},
                           {"name": "m", "emptyDir": {"medium": "Memory", "sizeLimit": "16Mi"}},
                           {"name": "n", "emptyDir": {"medium": "Memory"}},
                           {"name": "h", "emptyDir": {"medium": "HugePages"}},
                           containers=mem_limits), objs())
    assert got[:4] == [EmptyDir("d"), EmptyDir("s", "", 1 << 30),
                       EmptyDir("m", "Memory", 16 << 20), EmptyDir("n", "Memory", 96 << 20)]
    assert isinstance(got[4], Failed) and "HugePages" in got[4].message
    # a sizeLimit above the pod's limit is capped by it
    [capped] = planner.plan(pod({"name": "m", "emptyDir": {"medium": "Memory",
                                                           "sizeLimit": "1Gi"}},
                                containers=mem_limits), objs())
    assert capped == EmptyDir("m", "Memory", 96 << 20)
    # without a limit on every container: the node's allocatable memory, else tmpfs's default
    assert planner.plan(pod({"name": "n", "emptyDir": {"medium": "Memory"}}), objs(),
                        allocatable={"memory": "2Gi"}) == [EmptyDir("n", "Memory", 2 << 30)]
    assert planner.plan(pod({"name": "n", "emptyDir": {"medium": "Memory"}}), objs()) == \
        [EmptyDir("n", "Memory", None)]


CM = {"metadata": {"name": "cfg", "namespace": "default"},
      "data": {"a.conf": "A", "b": "B"}, "binaryData": {"bin": b64(b"\x00\x01")}}
SECRET = {"metadata": {"name": "s", "namespace": "default"},
          "data": {"user": b64(b"admin"), "pass": b64(b"p\x00w")}}


def test_config_map_all_keys_and_binary():
    [got] = planner.plan(pod({"name": "c", "configMap": {"name": "cfg"}}),
                         objs(("ConfigMap", CM)))
    assert got == Files("c", "kubernetes.io~configmap",
                        {"a.conf": FileEntry(b"A"), "b": FileEntry(b"B"),
                         "bin": FileEntry(b"\x00\x01")})


def test_config_map_items_modes_and_optional():
    vol = {"name": "c", "configMap": {"name": "cfg", "defaultMode": 0o600, "items": [
        {"key": "a.conf", "path": "etc/a.conf", "mode": 0o400}, {"key": "b", "path": "b.txt"}]}}
    [got] = planner.plan(pod(vol), objs(("ConfigMap", CM)))
    assert got.files == {"etc/a.conf": FileEntry(b"A", 0o400), "b.txt": FileEntry(b"B", 0o600)}
    missing_key = {"name": "c", "configMap": {"name": "cfg", "items": [{"key": "zz", "path": "z"}]}}
    [got] = planner.plan(pod(missing_key), objs(("ConfigMap", CM)))
    assert got == Failed("c", 'MountVolume.SetUp failed for volume "c" : configmap references '
                              'non-existent config key: zz')
    missing_key["configMap"]["optional"] = True
    [got] = planner.plan(pod(missing_key), objs(("ConfigMap", CM)))
    assert got.files == {}


SOURCE_MISSING = [
    ({"name": "c", "configMap": {"name": "nope"}},
     'MountVolume.SetUp failed for volume "c" : configmap "nope" not found'),
    ({"name": "c", "secret": {"secretName": "nope"}},
     'MountVolume.SetUp failed for volume "c" : secret "nope" not found'),
    ({"name": "c", "projected": {"sources": [{"secret": {"name": "nope"}}]}},
     'MountVolume.SetUp failed for volume "c" : secret "nope" not found'),
    ({"name": "c", "nfs": {"server": "x", "path": "/"}},
     'MountVolume.SetUp failed for volume "c" : nfs volumes are not supported on this node '
     f'({planner.SUPPORTED_INLINE})'),
]


@pytest.mark.parametrize("vol,msg", SOURCE_MISSING)
def test_missing_sources_fail(vol, msg):
    assert planner.plan(pod(vol), objs()) == [Failed("c", msg)]


def test_optional_missing_objects_are_empty():
    got = planner.plan(pod({"name": "c", "configMap": {"name": "nope", "optional": True}},
                           {"name": "s", "secret": {"secretName": "nope", "optional": True}}),
                       objs())
    assert [g.files for g in got] == [{}, {}]


def test_secret_decoded_in_memory_with_modes():
    vol = {"name": "s", "secret": {"secretName": "s", "defaultMode": 0o440}}
    [got] = planner.plan(pod(vol), objs(("Secret", SECRET)))
    assert got == Files("s", "kubernetes.io~secret",
                        {"user": FileEntry(b"admin", 0o440), "pass": FileEntry(b"p\x00w", 0o440)},
                        tmpfs=True)
    [dflt] = planner.plan(pod({"name": "s", "secret": {"secretName": "s"}}),
                          objs(("Secret", SECRET)))
    assert {e.mode for e in dflt.files.values()} == {0o644}
    [miss] = planner.plan(pod({"name": "s", "secret": {"secretName": "s", "items": [
        {"key": "nope", "path": "x"}]}}), objs(("Secret", SECRET)))
    assert miss == Failed("s", 'MountVolume.SetUp failed for volume "s" : references '
                               'non-existent secret key: nope')


ESCAPES = [
    # a key or path that could leave the volume or hit the writer's own links
    ("key", "../../etc/passwd", "must not contain '..'"),
    ("key", "..data", "must not start with '..'"),
    ("key", "a/b", "a valid config key"),
    ("path", "/etc/passwd", "must be relative path"),
    ("path", "a/../../x", "must not contain '..'"),
    ("path", "..data/x", "must not start with '..'"),
    ("path", "a//b", "clean relative path"),
]


@pytest.mark.parametrize("where,bad,msg", ESCAPES)
def test_path_escapes_refused(where, bad, msg):
    cm = {"metadata": {"name": "cfg", "namespace": "default"}, "data": {bad: "x", "ok": "y"}}
    if where == "key":
        vol = {"name": "c", "configMap": {"name": "cfg"}}
    else:
        vol = {"name": "c", "configMap": {"name": "cfg", "items": [{"key": "ok", "path": bad}]}}
    [got] = planner.plan(pod(vol), objs(("ConfigMap", cm)))
    assert isinstance(got, Failed) and msg in got.message, got
    if where == "path":          # downwardAPI and projected item paths follow the same rule
        down = {"name": "c", "downwardAPI": {"items": [
            {"path": bad, "fieldRef": {"fieldPath": "metadata.name"}}]}}
        token = {"name": "c", "projected": {"sources": [
            {"serviceAccountToken": {"path": bad}}]}}
        for vol in (down, token):
            [got] = planner.plan(pod(vol), objs())
            assert isinstance(got, Failed) and msg in got.message, got


def test_bad_volume_name_refused():
    [got] = planner.plan(pod({"name": "../x", "emptyDir": {}}), objs())
    assert isinstance(got, Failed) and "DNS label" in got.message


def test_file_and_directory_conflict_refused():
    vol = {"name": "c", "configMap": {"name": "cfg", "items": [
        {"key": "b", "path": "a"}, {"key": "b", "path": "a/b"}]}}
    [got] = planner.plan(pod(vol), objs(("ConfigMap", CM)))
    assert isinstance(got, Failed) and "both a file and the directory" in got.message


def test_downward_api_fields_and_resources():
    containers = [{"name": "c", "resources": {"limits": {"cpu": "500m", "memory": "128Mi"},
                                              "requests": {"cpu": "250m"}}},
                  {"name": "free"}]
    items = [{"path": "name", "fieldRef": {"fieldPath": "metadata.name"}},
             {"path": "ns", "fieldRef": {"fieldPath": "metadata.namespace"}},
             {"path": "uid", "fieldRef": {"fieldPath": "metadata.uid"}},
             {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
             {"path": "annotations", "fieldRef": {"fieldPath": "metadata.annotations"}},
             {"path": "app", "fieldRef": {"fieldPath": "metadata.labels['app']"}},
             {"path": "cpu_limit", "resourceFieldRef": {"containerName": "c",
                                                        "resource": "limits.cpu"}},
             {"path": "cpu_req_m", "resourceFieldRef": {"containerName": "c",
                                                        "resource": "requests.cpu",
                                                        "divisor": "1m"}},
             {"path": "mem_mi", "resourceFieldRef": {"containerName": "c",
                                                     "resource": "limits.memory",
                                                     "divisor": "1Mi"}},
             {"path": "mem_req", "resourceFieldRef": {"containerName": "c",
                                                      "resource": "requests.memory"}},
             {"path": "node_cpu", "resourceFieldRef": {"containerName": "free",
                                                       "resource": "limits.cpu"}}]
    [got] = planner.plan(pod({"name": "d", "downwardAPI": {"items": items}},
                             containers=containers), objs(), allocatable={"cpu": "4"})
    files = {k: v.data.decode() for k, v in got.files.items()}
    assert files == {"name": "web-0", "ns": "default", "uid": UID,
                     "labels": 'app="web"\ntier="a b"', "annotations": 'note="say \\"hi\\""',
                     "app": "web", "cpu_limit": "1", "cpu_req_m": "250", "mem_mi": "128",
                     "mem_req": str(128 << 20), "node_cpu": "4"}
    bad = {"name": "d", "downwardAPI": {"items": [
        {"path": "ip", "fieldRef": {"fieldPath": "status.podIP"}}]}}
    [got] = planner.plan(pod(bad), objs())
    assert isinstance(got, Failed) and "status.podIP" in got.message


def test_projected_merges_sources_and_token_placeholder():
    vol = {"name": "p", "projected": {"defaultMode": 0o640, "sources": [
        {"configMap": {"name": "cfg", "items": [{"key": "b", "path": "cfg/b"}]}},
        {"secret": {"name": "s", "items": [{"key": "user", "path": "user"}]}},
        {"downwardAPI": {"items": [{"path": "podname",
                                    "fieldRef": {"fieldPath": "metadata.name"}}]}},
        {"serviceAccountToken": {"path": "token", "audience": "vault", "expirationSeconds": 600}}]}}
    p = pod(vol)
    assert planner.references(p) == {("ConfigMap", "default", "cfg"), ("Secret", "default", "s")}
    [got] = planner.plan(p, objs(("ConfigMap", CM), ("Secret", SECRET)), now=1000.0)
    assert got.tmpfs and got.plugin == "kubernetes.io~projected"
    assert set(got.files) == {"cfg/b", "user", "podname", "token"}
    assert all(e.mode == 0o640 for e in got.files.values())
    header, claims, sig = got.files["token"].data.decode().split(".")
    import json
    body = json.loads(base64.urlsafe_b64decode(claims + "=" * (-len(claims) % 4)))
    assert body["sub"] == "system:serviceaccount:default:default" and body["aud"] == ["vault"]
    assert body["kubernetes.io"]["pod"]["uid"] == UID and sig == ""
    # the same window gives the same token: periodic setups do not rewrite it
    [again] = planner.plan(p, objs(("ConfigMap", CM), ("Secret", SECRET)), now=1100.0)
    assert again.files["token"] == got.files["token"]


def test_event_messages_aggregate_claims():
    fails = [Failed("b", "error processing PVC default/y: PVC is not bound", claim=True),
             Failed("a", "error processing PVC default/x: PVC is not bound", claim=True),
             Failed("c", 'MountVolume.SetUp failed for volume "c" : secret "s" not found')]
    assert planner.event_messages(fails) == [
        "Unable to attach or mount volumes: unmounted volumes=[a b], unattached volumes=[a b], "
        "failed to process volumes=[a b]: error processing PVC default/y: PVC is not bound",
        'MountVolume.SetUp failed for volume "c" : secret "s" not found']


@pytest.mark.parametrize("sub,ok", [("html", True), ("a/b", True), ("/etc", False),
                                     ("../x", False), ("a/../../x", False), ("..x", True)])
def test_sub_path_lexical(sub, ok):
    if ok:
        assert planner.check_sub_path(sub) == sub
    else:
        with pytest.raises(planner.Invalid):
            planner.check_sub_path(sub)


SEGMENT = st.sampled_from(["a", "b", "..", ".", "", "..data", "x.y", "..a", "c-d"])


@settings(max_examples=300, deadline=None)
@given(st.lists(SEGMENT, min_size=1, max_size=5), st.booleans())
def test_accepted_paths_never_escape(parts, absolute):
    """Whatever a user writes, an accepted path normalises to itself, stays below the
    volume, and never touches the writer's `..` entries."""
    import posixpath
    p = ("/" if absolute else "") + "/".join(parts)
    try:
        planner.check_path(p)
    except planner.Invalid:
        return
    norm = posixpath.normpath(p)
    assert norm == p and not norm.startswith("/") and not norm.startswith("..")
    assert posixpath.normpath(posixpath.join("/vol", p)).startswith("/vol/")


@pytest.mark.parametrize("expr,env,want", [
    ("$(POD_NAME)/logs", {"POD_NAME": "web-0"}, "web-0/logs"),
    ("$(MISSING)", {}, "$(MISSING)"),
    ("a$$(POD_NAME)", {"POD_NAME": "x"}, "a$(POD_NAME)"),
    ("$(A)$(B)", {"A": "1", "B": "2"}, "12"),
    ("$(", {}, "$("),
    ("cost$", {}, "cost$"),
])
def test_expand(expr, env, want):
    assert planner.expand(expr, env) == want


def test_sub_path_expr_checked_after_expansion():
    assert planner.sub_path_of({"subPathExpr": "$(N)"}, {"N": "web-0"}) == "web-0"
    with pytest.raises(planner.Invalid, match="must not contain"):
        planner.sub_path_of({"subPathExpr": "$(N)"}, {"N": "../../etc"})
    with pytest.raises(planner.Invalid, match="relative"):
        planner.sub_path_of({"subPathExpr": "$(N)"}, {"N": "/etc"})


def user(name, uid, node="n1", phase="Running", created="2026-01-01T00:00:00Z"):
    return {"metadata": {"name": name, "namespace": "default", "uid": uid,
                         "creationTimestamp": created},
            "spec": {"nodeName": node}, "status": {"phase": phase}}


def access_case(claim_modes, pv_modes, users):
    me = pod(PVC_VOL)
    me["metadata"]["creationTimestamp"] = "2026-01-02T00:00:00Z"
    me["spec"]["nodeName"] = "n1"
    c = claim()
    c["spec"]["accessModes"] = list(claim_modes)
    lookup = objs(("PersistentVolumeClaim", c), ("PersistentVolume", pv(LOCAL, modes=pv_modes)))
    [got] = planner.plan(me, lookup, claim_users={"data": users})
    return got


RWO, RWOP, RWX = "ReadWriteOnce", "ReadWriteOncePod", "ReadWriteMany"
ACCESS_CASES = [
    # (id, claim modes, pv modes, other users, expected failure text or None)
    ("alone", [RWO], [RWO], [], None),
    ("rwo-same-node", [RWO], [RWO], [user("a", "u-a")], None),
    ("rwo-other-node-older", [RWO], [RWO], [user("a", "u-a", node="n2")],
     f'Multi-Attach error for volume "{PV}" Volume is already used by pod(s) a'),
    ("rwo-other-node-younger", [RWO], [RWO],
     [user("a", "u-a", node="n2", created="2026-01-03T00:00:00Z")], None),
    ("rwo-other-node-finished", [RWO], [RWO], [user("a", "u-a", node="n2", phase="Succeeded")],
     None),
    ("rwx-other-node", [RWX], [RWX, RWO], [user("a", "u-a", node="n2")], None),
    ("rwop-older-same-node", [RWOP], [RWOP], [user("a", "u-a")],
     f'MountVolume.SetUp failed for volume "{PV}" : volume uses the ReadWriteOncePod access '
     'mode and is already in use by pod default/a'),
    ("rwop-self-only", [RWOP], [RWOP], [user("web-0", UID)], None),
    ("rwop-unscheduled-other", [RWOP], [RWOP], [user("a", "u-a", node="")], None),
]


@pytest.mark.parametrize("claim_modes,pv_modes,users,want", [c[1:] for c in ACCESS_CASES],
                         ids=[c[0] for c in ACCESS_CASES])
def test_access_modes_backstop(claim_modes, pv_modes, users, want):
    got = access_case(claim_modes, pv_modes, users)
    if want is None:
        assert isinstance(got, Bind), got
    else:
        assert got == Failed("data", want)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["n1", "n2", ""]), st.integers(0, 5),
                          st.sampled_from(["Running", "Pending", "Failed"])),
                min_size=1, max_size=5))
def test_rwop_at_most_one_active_pod_wins(specs):
    """Whatever pods share a ReadWriteOncePod claim, at most one active pod may mount it,
    and one always may (no deadlock between two starting pods)."""
    pods = [user(f"p{i}", f"u-{i}", node=n, phase=ph, created=f"2026-01-0{d + 1}T00:00:00Z")
            for i, (n, d, ph) in enumerate(specs)]
    c = claim()
    c["spec"]["accessModes"] = [RWOP]
    winners = [p for p in pods if planner._active(p) and
               planner.access_problem(p, c, pv(LOCAL, modes=[RWOP]), pods) is None]
    active = [p for p in pods if planner._active(p)]
    assert len(winners) == (1 if active else 0)


JUNK = st.one_of(st.none(), st.booleans(), st.integers(-5, 10 ** 4), st.text(max_size=12),
                 st.lists(st.text(max_size=4), max_size=2), st.dictionaries(st.text(max_size=4),
                                                                           st.text(max_size=4),
                                                                           max_size=2))
PATHS = st.one_of(st.text(alphabet="ab./", max_size=10), JUNK)


def _items(draw_keys=True):
    return st.lists(st.fixed_dictionaries({"key": st.sampled_from(["a.conf", "b", "zz"]),
                                           "path": PATHS}, optional={"mode": JUNK}), max_size=3)


VOLUMES = st.one_of(
    st.fixed_dictionaries({"configMap": st.fixed_dictionaries(
        {"name": st.sampled_from(["cfg", "nope"])},
        optional={"items": _items(), "defaultMode": JUNK, "optional": JUNK})}),
    st.fixed_dictionaries({"secret": st.fixed_dictionaries(
        {"secretName": st.sampled_from(["s", "nope"])},
        optional={"items": _items(), "defaultMode": JUNK})}),
    st.fixed_dictionaries({"downwardAPI": st.fixed_dictionaries({"items": st.lists(
        st.fixed_dictionaries({"path": PATHS}, optional={
            "fieldRef": st.fixed_dictionaries({"fieldPath": st.one_of(
                st.sampled_from(["metadata.name", "metadata.labels", "spec.nodeName"]), JUNK)}),
            "resourceFieldRef": st.fixed_dictionaries(
                {"containerName": st.sampled_from(["c", "x"]),
                 "resource": st.sampled_from(["limits.cpu", "requests.memory", "bogus"])},
                optional={"divisor": st.one_of(st.sampled_from(["1m", "0", "1Mi", "-1"]), JUNK)}),
            "mode": JUNK}), max_size=3)})}),
    st.fixed_dictionaries({"emptyDir": st.fixed_dictionaries({}, optional={
        "medium": st.sampled_from(["", "Memory", "HugePages"]), "sizeLimit": JUNK})}),
    st.fixed_dictionaries({"hostPath": st.fixed_dictionaries(
        {"path": st.one_of(st.sampled_from(["/x", "rel"]), JUNK)}, optional={"type": JUNK})}),
    st.fixed_dictionaries({"persistentVolumeClaim": st.fixed_dictionaries(
        {"claimName": st.sampled_from(["data", "nope"])}, optional={"readOnly": JUNK})}),
    st.dictionaries(st.sampled_from(["nfs", "gitRepo", "csi"]), JUNK, min_size=1, max_size=1),
)


@settings(max_examples=400, deadline=None)
@given(st.lists(VOLUMES, max_size=4), st.lists(st.one_of(
    st.sampled_from(["data", "cfg", "ok-1"]), JUNK), min_size=4, max_size=4))
def test_any_volume_spec_gives_one_decision_each_and_no_traceback(vols, names):
    """Bad input (wrong types, escaping paths, junk modes) becomes a FailedMount reason, never
    an exception; every accepted file path is one the atomic writer accepts."""
    volumes = [dict(v, name=n) for v, n in zip(vols, names)]
    lookup = objs(("ConfigMap", CM), ("Secret", SECRET), ("PersistentVolumeClaim", claim()),
                  ("PersistentVolume", pv(LOCAL)))
    p = pod(*volumes)
    for kind, ns, name in planner.references(p) | planner.pv_references(p, lookup):
        assert isinstance(name, str) and name         # what the agent's informers are asked
    got = planner.plan(p, lookup, allocatable={"cpu": "2", "memory": "1Gi"})
    assert len(got) == len(volumes)
    for d in got:
        assert isinstance(d, (Bind, EmptyDir, Files, Failed))
        if isinstance(d, Files):
            for p, e in d.files.items():
                assert planner.check_path(p) == p and 0 <= e.mode <= 0o777
                assert isinstance(e.data, bytes)
        if isinstance(d, Failed):
            assert isinstance(d.message, str) and d.message


def test_fs_group_ownership_rules():
    p = pod({"name": "s", "secret": {"secretName": "s", "defaultMode": 0o400}},
            {"name": "e", "emptyDir": {}},
            {"name": "h", "hostPath": {"path": "/x"}},
            PVC_VOL)
    p["spec"]["securityContext"] = {"fsGroup": 2000, "fsGroupChangePolicy": "OnRootMismatch"}
    got = planner.plan(p, objs(("Secret", SECRET), ("PersistentVolumeClaim", claim()),
                               ("PersistentVolume", pv(LOCAL))))
    assert got[0].gid == 2000 and {e.mode for e in got[0].files.values()} == {0o440}
    assert got[1] == EmptyDir("e", gid=2000)
    assert got[2] == Bind("h", "/x", False)                    # hostPath: left alone
    assert got[3].gid == 2000 and got[3].gid_policy == "OnRootMismatch"
    p["spec"]["securityContext"] = {"fsGroup": True}            # junk: ignored
    assert planner.plan(p, objs(("Secret", SECRET)))[1] == EmptyDir("e")
