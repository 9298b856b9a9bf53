"""What each of a pod's volumes becomes on this node: pure functions, no I/O.

For a pod and the objects it references (claims, their volumes, configmaps, secrets; the pod
itself for downwardAPI) `plan` decides, per volume, one of:
- `Bind`: an existing host path bound as is (hostPath, a PV's `local`/`hostPath` path, or the
  local provisioner's volume — whose image the manager makes sure is mounted first);
- `EmptyDir`: a directory under the pod's own directory (tmpfs for medium Memory);
- `Files`: files written by the atomic writer (configMap, secret, downwardAPI, projected);
- `Failed`: why it cannot be mounted, in kubelet's FailedMount words.

Upstream's rules (kubelet's volume plugins), reduced to what a single node needs:
- a claim must exist, not be being deleted, be Bound, and its PV must exist and point back at
  it; a generic ephemeral volume's claim is `<pod>-<volume>` and must be owned by the pod.
- readOnly: the pod's `persistentVolumeClaim.readOnly`, or a PV that only offers ReadOnlyMany.
  configMap/secret/downwardAPI/projected are always read-only (kubelet mounts them so).
- file modes: `items[].mode`, else `defaultMode`, else 0644 (all four kinds).
- a key or `items[].path` that is absolute, contains a `..` segment or starts with `..` is
  refused (it could land outside the volume, or on the writer's own `..data` links).
- configMap/secret `optional: true`: a missing object is an empty volume, a missing key is
  skipped; otherwise either is a FailedMount.
- a PV source no node here can mount (rbd, nfs, iscsi, cephfs, csi, ...) or a Block volume is a
  FailedMount naming the type; so is an inline source other than the supported ones.
- fsGroup (pod securityContext): group ownership for emptyDir, the file kinds and local PVs
  (see _with_fs_group); access modes are checked as a node-side backstop when the caller
  says who else uses each claim (access_problem).
- any malformed field (a wrong type the API server let through) is a FailedMount reason,
  never an exception.
- the serviceAccountToken projection is a PLACEHOLDER (unsigned JWT, see placeholder_token)
  until k1s authenticates tokens.
"""

from __future__ import annotations

import base64
import json
import math
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Callable, Mapping

from k1s.api.quantity import parse_quantity

DEFAULT_MODE = 0o644
MAX_PATH = 4096
# a ConfigMap/Secret key as the API server allows it (upstream IsConfigMapKey)
KEY_RE = re.compile(r"^[-._a-zA-Z0-9]+$")
VOLUME_NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
PROVISIONED_BY = "pv.kubernetes.io/provisioned-by"
LOCAL_PROVISIONER = "k1s.io/local"
SUPPORTED_PV = "k1s mounts local, hostPath and k1s.io/local volumes"
SUPPORTED_INLINE = ("k1s mounts emptyDir, hostPath, configMap, secret, downwardAPI, projected, "
                    "persistentVolumeClaim and ephemeral volumes")
HOSTPATH_TYPES = ("", "DirectoryOrCreate", "Directory", "FileOrCreate", "File", "Socket",
                  "CharDevice", "BlockDevice")
# PersistentVolume spec fields that are not its volume source
PV_NON_SOURCE = {"capacity", "accessModes", "persistentVolumeReclaimPolicy", "storageClassName",
                 "claimRef", "mountOptions", "volumeMode", "nodeAffinity",
                 "volumeAttributesClassName"}
# kubelet's plugin directory names under pods/<uid>/volumes/
PLUGIN_DIRS = {"emptyDir": "kubernetes.io~empty-dir", "configMap": "kubernetes.io~configmap",
               "secret": "kubernetes.io~secret", "downwardAPI": "kubernetes.io~downward-api",
               "projected": "kubernetes.io~projected"}
TOKEN_EXPIRATION = 3600

Lookup = Callable[[str, str, str], "dict | None"]    # (kind, namespace, name) -> object


@dataclass(frozen=True)
class FileEntry:
    data: bytes
    mode: int = DEFAULT_MODE


@dataclass(frozen=True)
class Bind:
    name: str
    path: str
    read_only: bool = False
    check: str = ""                  # a hostPath type, or "local" (the path must exist)
    pv_image: str | None = None      # provisioner volume pvc-<uid>: mount its image first
    mount_options: tuple[str, ...] = ()
    label: str = ""                  # the name FailedMount messages use (the PV's, if any)
    gid: int | None = None           # the pod's fsGroup, for volumes whose ownership is managed
    gid_policy: str = "Always"       # fsGroupChangePolicy: Always | OnRootMismatch


@dataclass(frozen=True)
class EmptyDir:
    name: str
    medium: str = ""                 # "" (the node's disk) or "Memory" (tmpfs)
    size_bytes: int | None = None    # tmpfs size, or the on-disk limit usage is reported against
    plugin: str = PLUGIN_DIRS["emptyDir"]
    gid: int | None = None           # the pod's fsGroup


@dataclass(frozen=True)
class Files:
    name: str
    plugin: str
    files: dict = field(default_factory=dict)       # relative path -> FileEntry
    tmpfs: bool = False              # secrets (and projected, which may hold them) stay in memory
    gid: int | None = None           # the pod's fsGroup (modes already include group read)


@dataclass(frozen=True)
class Failed:
    name: str
    message: str
    claim: bool = False              # a claim could not be processed (kubelet's aggregate form)


Decision = Bind | EmptyDir | Files | Failed


class Invalid(ValueError):
    """A volume the planner refuses; the message is the FailedMount reason."""


# -- references -------------------------------------------------------------------------------
def claim_name(pod: dict, vol: dict) -> str | None:
    if vol.get("persistentVolumeClaim") is not None:
        c = (vol["persistentVolumeClaim"] or {}).get("claimName") if \
            isinstance(vol["persistentVolumeClaim"], dict) else None
        return c if isinstance(c, str) else ""
    if vol.get("ephemeral") is not None:
        return f"{(pod.get('metadata') or {}).get('name', '')}-{vol.get('name', '')}"
    return None


def references(pod: dict) -> set[tuple[str, str, str]]:
    """(kind, namespace, name) of every object the pod's volumes read, but PVs (see
    pv_references: they are known only once the claims are)."""
    ns = (pod.get("metadata") or {}).get("namespace", "default")
    out: set[tuple[str, str, str]] = set()
    for vol in (pod.get("spec") or {}).get("volumes") or ():
        c = claim_name(pod, vol)
        if c:
            out.add(("PersistentVolumeClaim", ns, c))
        sources = [vol]
        projected = vol.get("projected")
        if isinstance(projected, dict) and isinstance(projected.get("sources"), list):
            sources += projected["sources"]
        for src in sources:
            if not isinstance(src, dict):
                continue
            cm, sec = src.get("configMap"), src.get("secret")
            if isinstance(cm, dict) and isinstance(cm.get("name"), str) and cm["name"]:
                out.add(("ConfigMap", ns, cm["name"]))
            if isinstance(sec, dict):
                sname = sec.get("secretName") or sec.get("name")
                if isinstance(sname, str) and sname:
                    out.add(("Secret", ns, sname))
    return out


def pv_references(pod: dict, lookup: Lookup) -> set[tuple[str, str, str]]:
    ns = (pod.get("metadata") or {}).get("namespace", "default")
    out = set()
    for vol in (pod.get("spec") or {}).get("volumes") or ():
        c = claim_name(pod, vol)
        claim = lookup("PersistentVolumeClaim", ns, c) if c else None
        pv = ((claim or {}).get("spec") or {}).get("volumeName")
        if pv and isinstance(pv, str):
            out.add(("PersistentVolume", "", pv))
    return out


# -- paths ------------------------------------------------------------------------------------
def check_path(p: str) -> str:
    """A file path inside a volume, as kubelet's atomic writer accepts it."""
    if not isinstance(p, str) or not p:
        raise Invalid(f"invalid path {p!r}: must not be empty")
    if len(p) > MAX_PATH:
        raise Invalid(f"invalid path: target path is too long: {p[:64]}...")
    if p.startswith("/"):
        raise Invalid(f"invalid path: must be relative path: {p}")
    parts = p.split("/")
    if ".." in parts:
        raise Invalid(f"invalid path: must not contain '..': {p}")
    if parts[0].startswith(".."):
        raise Invalid(f"invalid path: must not start with '..': {p}")
    if "\x00" in p or any(q in ("", ".") for q in parts):
        raise Invalid(f"invalid path: must be a clean relative path: {p}")
    return p


def check_key(key: str) -> str:
    """A ConfigMap/Secret key used as a file name (no items): upstream IsConfigMapKey plus the
    writer's path rules, so `../../etc/passwd` can never become a file name."""
    check_path(key)
    if not KEY_RE.match(key):
        raise Invalid(f"invalid key {key!r}: a valid config key must consist of alphanumeric "
                      f"characters, '-', '_' or '.'")
    return key


def check_sub_path(sub_path: str) -> str:
    """The lexical half of subPath validation (the runtime resolves symlinks within the
    volume root at bind time; manager.resolve_sub_path does the same before that)."""
    if sub_path.startswith("/"):
        raise Invalid(f"subPath {sub_path!r} must be a relative path")
    if ".." in sub_path.split("/"):
        raise Invalid(f"subPath {sub_path!r} must not contain '..'")
    return sub_path


def expand(expr: str, env: Mapping[str, str]) -> str:
    """Kubernetes `$(VAR)` expansion (subPathExpr, command, args): `$(VAR)` becomes its value
    when VAR is defined and stays as written otherwise; `$$` is a literal `$`."""
    out, i, n = [], 0, len(expr)
    while i < n:
        c = expr[i]
        if c == "$" and i + 1 < n:
            nxt = expr[i + 1]
            if nxt == "$":
                out.append("$")
                i += 2
                continue
            if nxt == "(":
                end = expr.find(")", i + 2)
                if end != -1:
                    var = expr[i + 2:end]
                    out.append(env[var] if var in env else expr[i:end + 1])
                    i = end + 1
                    continue
        out.append(c)
        i += 1
    return "".join(out)


def sub_path_of(mount: Mapping, env: Mapping[str, str] | None = None) -> str:
    """A volumeMount's subPath, or its subPathExpr expanded with the container's environment
    (checked: relative, no `..`)."""
    if mount.get("subPathExpr"):
        return check_sub_path(expand(mount["subPathExpr"], env or {}))
    return check_sub_path(mount.get("subPath") or "")


def check_payload(files: Mapping[str, FileEntry]) -> None:
    """No path may be both a file and a directory of another file."""
    names = set(files)
    for p in names:
        parts = p.split("/")
        for i in range(1, len(parts)):
            if "/".join(parts[:i]) in names:
                raise Invalid(f"invalid path: {'/'.join(parts[:i])} is both a file and the "
                              f"directory of {p}")


def hostpath_check(htype: str, path: str, kind: str | None) -> tuple[str | None, str | None]:
    """kubelet's hostPath type check, given what is at the path now (`kind`: "dir", "file",
    "socket", "char", "block", "other", or None when nothing is there; symlinks followed).
    Returns (what to create: "dir" | "file" | None, error | None)."""
    def fail(what: str) -> tuple[None, str]:
        return None, f"hostPath type check failed: {path} is not a {what}"
    if htype == "":
        return None, None
    if htype == "DirectoryOrCreate":
        if kind is None:
            return "dir", None
        return (None, None) if kind == "dir" else fail("directory")
    if htype == "Directory":
        return (None, None) if kind == "dir" else fail("directory")
    if htype == "FileOrCreate":
        if kind is None:
            return "file", None
        return (None, None) if kind == "file" else fail("file")
    if htype == "File":
        return (None, None) if kind == "file" else fail("file")
    if htype == "Socket":
        return (None, None) if kind == "socket" else fail("socket file")
    if htype == "CharDevice":
        return (None, None) if kind == "char" else fail("character device")
    if htype == "BlockDevice":
        return (None, None) if kind == "block" else fail("block device")
    return None, f"{htype} is an invalid volume type"


# -- quantities -------------------------------------------------------------------------------
def _q(v) -> Decimal:
    try:
        return parse_quantity(v)
    except (ValueError, TypeError):
        raise Invalid(f"invalid quantity {v!r}") from None


def _ceil(d: Decimal) -> int:
    return int(math.ceil(d))


# -- the plan ---------------------------------------------------------------------------------
def plan(pod: dict, lookup: Lookup, *, allocatable: Mapping[str, str] | None = None,
         now: float = 0.0, claim_users: Mapping[str, list] | None = None) -> list[Decision]:
    """One decision per volume of the pod, in spec order. `lookup` answers from objects the
    caller fetched (references + pv_references); `allocatable` (cpu, memory,
    ephemeral-storage) stands in for unset limits in downwardAPI resourceFieldRefs; `now`
    (seconds) dates the placeholder service account token; `claim_users` (claim name -> the
    pods that use it), when given, enforces access modes (see access_problem)."""
    out: list[Decision] = []
    for vol in (pod.get("spec") or {}).get("volumes") or ():
        name = vol.get("name", "")
        if not isinstance(name, str) or not VOLUME_NAME_RE.match(name):
            out.append(Failed(str(name), f"invalid volume name {name!r}: must be a DNS label"))
            continue
        try:
            d = _plan_volume(pod, vol, lookup, allocatable or {}, now)
        except Invalid as e:
            d = Failed(name, setup_failed(name, str(e)))
        except (TypeError, AttributeError, KeyError, ValueError, ArithmeticError) as e:
            # a field of the wrong type the API server let through: a reason, not a crash
            d = Failed(name, setup_failed(name, f"invalid volume spec: {type(e).__name__}: {e}"))
        d = _with_fs_group(pod, d)
        cname = claim_name(pod, vol)
        if isinstance(d, Bind) and cname and claim_users is not None:
            ns = (pod.get("metadata") or {}).get("namespace", "default")
            claim = lookup("PersistentVolumeClaim", ns, cname) or {}
            pv = lookup("PersistentVolume", "", (claim.get("spec") or {}).get("volumeName", ""))
            why = access_problem(pod, claim, pv or {}, claim_users.get(cname) or [])
            if why:
                d = Failed(name, why)
        out.append(d)
    return out


def fs_group(pod: dict) -> int | None:
    sc = (pod.get("spec") or {}).get("securityContext") or {}
    g = sc.get("fsGroup") if isinstance(sc, dict) else None
    return g if isinstance(g, int) and not isinstance(g, bool) and g >= 0 else None


def _with_fs_group(pod: dict, d: Decision) -> Decision:
    """kubelet's volume ownership management with a pod fsGroup: emptyDir, the
    configMap/secret/downwardAPI/projected kinds and local PVs get group fsGroup, setgid
    directories and group access (read for read-only volumes: files' modes gain 0440, so a
    0400 secret becomes 0440); hostPath volumes are left as they are."""
    gid = fs_group(pod)
    if gid is None or isinstance(d, Failed):
        return d
    if isinstance(d, Files):
        files = {p: FileEntry(e.data, e.mode | 0o440) for p, e in d.files.items()}
        return Files(d.name, d.plugin, files, d.tmpfs, gid)
    if isinstance(d, EmptyDir):
        return EmptyDir(d.name, d.medium, d.size_bytes, d.plugin, gid)
    if isinstance(d, Bind) and d.check == "local":
        sc = (pod.get("spec") or {}).get("securityContext") or {}
        policy = sc.get("fsGroupChangePolicy") or "Always"
        return Bind(d.name, d.path, d.read_only, d.check, d.pv_image, d.mount_options, d.label,
                    gid, policy if policy in ("Always", "OnRootMismatch") else "Always")
    return d


def _active(p: dict) -> bool:
    return bool((p.get("spec") or {}).get("nodeName")) and \
        (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")


def _age_key(p: dict) -> tuple[str, str]:
    m = p.get("metadata") or {}
    return (m.get("creationTimestamp") or "", m.get("name") or "")


def access_problem(pod: dict, claim: dict, pv: dict, users: list[dict]) -> str | None:
    """The node's backstop for access modes (the scheduler is the first line): with
    ReadWriteOncePod only one pod may use the claim (the oldest active one keeps it); with
    ReadWriteOnce only pods on one node (a pod elsewhere that is older keeps it: upstream's
    attach/detach controller reports a Multi-Attach error). `users` are the pods referencing
    the claim (any node, this pod included or not); finished or unscheduled ones do not count."""
    me = pod.get("metadata") or {}
    node = (pod.get("spec") or {}).get("nodeName") or ""
    # ReadWriteOncePod is what the claim asks for; attachable to one node is what the volume
    # offers (a volume with ReadWriteMany too may be used from several nodes)
    claim_modes = set((claim.get("spec") or {}).get("accessModes") or ())
    modes = set((pv.get("spec") or {}).get("accessModes") or
                (claim.get("status") or {}).get("accessModes") or claim_modes)
    pv_name = (pv.get("metadata") or {}).get("name") or \
        (claim.get("spec") or {}).get("volumeName") or ""
    others = [u for u in users if _active(u) and
              (u.get("metadata") or {}).get("uid") != me.get("uid")]
    older = [u for u in others if _age_key(u) < _age_key(pod)]
    if "ReadWriteOncePod" in claim_modes | modes and older:
        holder = older[0].get("metadata") or {}
        return setup_failed(pv_name, "volume uses the ReadWriteOncePod access mode and is "
                                     f"already in use by pod {holder.get('namespace')}/"
                                     f"{holder.get('name')}")
    if modes and modes <= {"ReadWriteOnce", "ReadWriteOncePod"}:
        elsewhere = sorted((u["metadata"].get("name", "") for u in older
                            if (u.get("spec") or {}).get("nodeName") != node))
        if elsewhere:
            return (f'Multi-Attach error for volume "{pv_name}" Volume is already used by '
                    f"pod(s) {', '.join(elsewhere)}")
    return None


def setup_failed(volume: str, why: str) -> str:
    return f'MountVolume.SetUp failed for volume "{volume}" : {why}'


def _plan_volume(pod, vol, lookup, allocatable, now) -> Decision:
    name = vol["name"]
    if claim_name(pod, vol) is not None:
        return _claim(pod, vol, lookup)
    if vol.get("hostPath") is not None:
        hp = vol["hostPath"] or {}
        path, htype = hp.get("path") or "", hp.get("type") or ""
        if not path.startswith("/"):
            raise Invalid(f"hostPath {path!r} must be an absolute path")
        if htype not in HOSTPATH_TYPES:
            raise Invalid(f"{htype} is an invalid volume type")
        return Bind(name, path, False, check=htype)
    if vol.get("emptyDir") is not None:
        return _empty_dir(pod, name, vol["emptyDir"] or {}, allocatable)
    if vol.get("configMap") is not None:
        src = vol["configMap"] or {}
        files = _config_files(pod, "configMap", src, lookup, src.get("defaultMode"))
        return Files(name, PLUGIN_DIRS["configMap"], files)
    if vol.get("secret") is not None:
        src = vol["secret"] or {}
        files = _config_files(pod, "secret", src, lookup, src.get("defaultMode"))
        return Files(name, PLUGIN_DIRS["secret"], files, tmpfs=True)
    if vol.get("downwardAPI") is not None:
        src = vol["downwardAPI"] or {}
        files = _downward_files(pod, src.get("items") or (), src.get("defaultMode"), allocatable)
        return Files(name, PLUGIN_DIRS["downwardAPI"], files)
    if vol.get("projected") is not None:
        return _projected(pod, name, vol["projected"] or {}, lookup, allocatable, now)
    kinds = [k for k in vol if k != "name"]
    kind = kinds[0] if kinds else "unknown"
    raise Invalid(f"{kind} volumes are not supported on this node ({SUPPORTED_INLINE})")


def _claim(pod, vol, lookup) -> Decision:
    name = vol["name"]
    meta = pod.get("metadata") or {}
    ns = meta.get("namespace", "default")
    cname = claim_name(pod, vol)
    pod_ro = bool((vol.get("persistentVolumeClaim") or {}).get("readOnly"))

    def fail(why: str) -> Failed:
        return Failed(name, f"error processing PVC {ns}/{cname}: {why}", claim=True)
    claim = lookup("PersistentVolumeClaim", ns, cname) if cname else None
    if claim is None:
        return fail(f"failed to fetch PVC from API server: persistentvolumeclaims "
                    f'"{cname}" not found')
    cmeta = claim.get("metadata") or {}
    if vol.get("ephemeral") is not None:
        owners = cmeta.get("ownerReferences") or ()
        if not any(o.get("uid") == meta.get("uid") and o.get("controller") for o in owners):
            return fail(f"PVC {ns}/{cname} was not created for pod {ns}/{meta.get('name')} "
                        f"(pod is not owner)")
    if cmeta.get("deletionTimestamp"):
        return fail("PVC is being deleted")
    pv_name = (claim.get("spec") or {}).get("volumeName")
    if (claim.get("status") or {}).get("phase") != "Bound" or not pv_name:
        return fail("PVC is not bound")
    pv = lookup("PersistentVolume", "", pv_name)
    if pv is None:
        return fail(f"failed to fetch PV {pv_name} from API server: persistentvolumes "
                    f'"{pv_name}" not found')
    spec = pv.get("spec") or {}
    ref_uid = (spec.get("claimRef") or {}).get("uid")
    if ref_uid and ref_uid != cmeta.get("uid"):
        return fail(f"the PVC's UID {cmeta.get('uid')!r} does not match the PV claimRef UID "
                    f"{ref_uid!r}")
    modes = set(spec.get("accessModes") or ())
    read_only = pod_ro or (bool(modes) and modes <= {"ReadOnlyMany"})
    if (spec.get("volumeMode") or "Filesystem") == "Block":
        return Failed(name, setup_failed(pv_name, "block volumes are not supported on this "
                                                  f"node ({SUPPORTED_PV})"))
    options = tuple(spec.get("mountOptions") or ())
    ann = (pv.get("metadata") or {}).get("annotations") or {}
    if spec.get("local") is not None:
        path = (spec["local"] or {}).get("path") or ""
        if not path.startswith("/"):
            return Failed(name, setup_failed(pv_name, f"local path {path!r} is not absolute"))
        image = pv_name if ann.get(PROVISIONED_BY) == LOCAL_PROVISIONER else None
        return Bind(name, path, read_only, check="local", pv_image=image, mount_options=options,
                    label=pv_name)
    if spec.get("hostPath") is not None:
        hp = spec["hostPath"] or {}
        path, htype = hp.get("path") or "", hp.get("type") or ""
        if not path.startswith("/") or htype not in HOSTPATH_TYPES:
            return Failed(name, setup_failed(pv_name, f"invalid hostPath {path!r} type {htype!r}"))
        return Bind(name, path, read_only, check=htype, label=pv_name)
    sources = [k for k in spec if k not in PV_NON_SOURCE]
    kind = sources[0] if sources else "unknown"
    what = f"{kind} volumes"
    if kind == "csi":
        what = f'csi volumes (driver "{(spec["csi"] or {}).get("driver", "")}")'
    return Failed(name, setup_failed(pv_name, f"{what} are not supported on this node "
                                              f"({SUPPORTED_PV})"))


def _empty_dir(pod, name, src, allocatable) -> EmptyDir:
    medium = src.get("medium") or ""
    if medium not in ("", "Memory"):
        raise Invalid(f"emptyDir medium {medium!r} is not supported on this node")
    size = None
    if src.get("sizeLimit") not in (None, ""):
        size = _ceil(_q(src["sizeLimit"]))
        if size <= 0:
            size = None
    if medium == "Memory":
        # kubelet sizes a memory emptyDir by the pod's memory limit (the sum of its containers'
        # when every one has a limit, else the node's allocatable memory), capped by sizeLimit
        limits = [((c.get("resources") or {}).get("limits") or {}).get("memory")
                  for c in (pod.get("spec") or {}).get("containers") or ()]
        if limits and all(limits):
            pod_limit = sum(_ceil(_q(x)) for x in limits)
        else:
            pod_limit = _ceil(_q(allocatable.get("memory") or 0)) or None
        if pod_limit is not None:
            size = min(size, pod_limit) if size else pod_limit
    return EmptyDir(name, medium, size)


def _mode(m, default) -> int:
    m = DEFAULT_MODE if m is None and default is None else (default if m is None else m)
    if not isinstance(m, int) or isinstance(m, bool) or not 0 <= m <= 0o777:
        raise Invalid(f"invalid file mode {m!r}: must be a number between 0 and 0777 (octal)")
    return m


def _config_data(kind: str, obj: dict) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    if kind == "configMap":
        for k, v in (obj.get("data") or {}).items():
            out[k] = str(v).encode()
        for k, v in (obj.get("binaryData") or {}).items():
            out[k] = _b64(k, v)
    else:
        for k, v in (obj.get("data") or {}).items():
            out[k] = _b64(k, v)
    return out


def _b64(key: str, v) -> bytes:
    try:
        return base64.b64decode(str(v), validate=True)
    except ValueError:
        raise Invalid(f"value of key {key!r} is not valid base64") from None


def _config_files(pod, kind, src, lookup, default_mode) -> dict[str, FileEntry]:
    ns = (pod.get("metadata") or {}).get("namespace", "default")
    obj_name = src.get("name") if kind == "configMap" else \
        (src.get("secretName") or src.get("name"))
    optional = bool(src.get("optional"))
    word = "configmap" if kind == "configMap" else "secret"
    obj = lookup("ConfigMap" if kind == "configMap" else "Secret", ns, obj_name or "")
    if obj is None:
        if optional:
            return {}
        raise Invalid(f'{word} "{obj_name}" not found')
    data = _config_data(kind, obj)
    files: dict[str, FileEntry] = {}
    items = src.get("items")
    if items:
        for it in items:
            key, path = it.get("key", ""), it.get("path", "")
            check_path(path)
            if key not in data:
                if optional:
                    continue
                # kubelet's words: "configmap references ... config key", "references ...
                # secret key" (no prefix)
                if kind == "configMap":
                    raise Invalid(f"configmap references non-existent config key: {key}")
                raise Invalid(f"references non-existent secret key: {key}")
            files[path] = FileEntry(data[key], _mode(it.get("mode"), default_mode))
    else:
        for key, value in data.items():
            check_key(key)
            files[key] = FileEntry(value, _mode(None, default_mode))
    check_payload(files)
    return files


def _go_quote(s: str) -> str:
    return json.dumps(s, ensure_ascii=False)


def _format_map(m: Mapping[str, str]) -> str:
    return "\n".join(f"{k}={_go_quote(str(v))}" for k, v in sorted(m.items()))


_SUBSCRIPT = re.compile(r"^metadata\.(labels|annotations)\['([^']*)'\]$")


def field_value(pod: dict, field_path: str) -> str:
    """A downwardAPI volume fieldRef (volumes accept metadata fields only)."""
    meta = pod.get("metadata") or {}
    if field_path in ("metadata.name", "metadata.namespace", "metadata.uid"):
        return str(meta.get(field_path.split(".", 1)[1], ""))
    if field_path in ("metadata.labels", "metadata.annotations"):
        return _format_map(meta.get(field_path.split(".", 1)[1]) or {})
    m = _SUBSCRIPT.match(field_path)
    if m:
        return str((meta.get(m.group(1)) or {}).get(m.group(2), ""))
    raise Invalid(f"unsupported fieldPath {field_path!r} in a downwardAPI volume")


def resource_value(pod: dict, ref: dict, allocatable: Mapping[str, str]) -> str:
    containers = list((pod.get("spec") or {}).get("containers") or ()) + \
        list((pod.get("spec") or {}).get("initContainers") or ())
    cname = ref.get("containerName") or ""
    match = [c for c in containers if c.get("name") == cname]
    if not match:
        raise Invalid(f"container {cname!r} named by resourceFieldRef does not exist")
    res = match[0].get("resources") or {}
    resource = ref.get("resource") or ""
    kind, _, rname = resource.partition(".")
    if kind not in ("limits", "requests") or rname not in ("cpu", "memory", "ephemeral-storage"):
        raise Invalid(f"unsupported resource {resource!r} in resourceFieldRef")
    value = (res.get(kind) or {}).get(rname)
    if value is None and kind == "requests":
        value = (res.get("limits") or {}).get(rname)     # API defaulting copies limits
        if value is None:
            value = 0
    if value is None:                                    # no limit: the node's allocatable
        value = allocatable.get(rname, 0)
    divisor = _q(ref.get("divisor") or "1")
    if divisor <= 0:
        raise Invalid(f"invalid divisor {ref.get('divisor')!r}")
    return str(int(math.ceil(_q(value) / divisor)))


def _downward_files(pod, items, default_mode, allocatable) -> dict[str, FileEntry]:
    files: dict[str, FileEntry] = {}
    for it in items:
        path = check_path(it.get("path", ""))
        if it.get("fieldRef"):
            value = field_value(pod, (it["fieldRef"] or {}).get("fieldPath", ""))
        elif it.get("resourceFieldRef"):
            value = resource_value(pod, it["resourceFieldRef"], allocatable)
        else:
            raise Invalid(f"downwardAPI item {path!r} has neither fieldRef nor resourceFieldRef")
        files[path] = FileEntry(value.encode(), _mode(it.get("mode"), default_mode))
    check_payload(files)
    return files


def placeholder_token(pod: dict, audience: str, expiration: int, now: float) -> bytes:
    """NOT a real token: k1s has no authentication yet, so the service account token is an
    unsigned JWT (alg "none") carrying the claims kubelet's token would (issuer, subject
    system:serviceaccount:<ns>:<sa>, audience, pod binding, iat/exp). Nothing verifies it.
    Its times move in steps of 80% of the expiration (kubelet refreshes at 80%), so periodic
    setups do not rewrite it every time."""
    meta = pod.get("metadata") or {}
    ns = meta.get("namespace", "default")
    sa = (pod.get("spec") or {}).get("serviceAccountName") or "default"
    step = max(int(expiration * 0.8), 1)
    iat = int(now) // step * step
    claims = {"aud": [audience] if audience else ["https://kubernetes.default.svc.cluster.local"],
              "exp": iat + expiration, "iat": iat, "nbf": iat,
              "iss": "https://kubernetes.default.svc.cluster.local",
              "sub": f"system:serviceaccount:{ns}:{sa}",
              "kubernetes.io": {"namespace": ns,
                                "pod": {"name": meta.get("name", ""), "uid": meta.get("uid", "")},
                                "serviceaccount": {"name": sa}},
              "k1s.io/placeholder": "unsigned: k1s does not authenticate tokens yet"}

    def enc(obj) -> str:
        raw = json.dumps(obj, separators=(",", ":"), sort_keys=True).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    return f"{enc({'alg': 'none', 'typ': 'JWT'})}.{enc(claims)}.".encode()


def _projected(pod, name, src, lookup, allocatable, now) -> Files:
    default_mode = src.get("defaultMode")
    files: dict[str, FileEntry] = {}
    for s in src.get("sources") or ():
        if s.get("configMap") is not None:
            files.update(_config_files(pod, "configMap", s["configMap"] or {}, lookup,
                                       default_mode))
        elif s.get("secret") is not None:
            files.update(_config_files(pod, "secret", s["secret"] or {}, lookup, default_mode))
        elif s.get("downwardAPI") is not None:
            files.update(_downward_files(pod, (s["downwardAPI"] or {}).get("items") or (),
                                         default_mode, allocatable))
        elif s.get("serviceAccountToken") is not None:
            t = s["serviceAccountToken"] or {}
            path = check_path(t.get("path", ""))
            exp = int(t.get("expirationSeconds") or TOKEN_EXPIRATION)
            files[path] = FileEntry(placeholder_token(pod, t.get("audience") or "", exp, now),
                                    _mode(None, default_mode))
        else:
            kinds = [k for k in s] or ["unknown"]
            raise Invalid(f"projected source {kinds[0]} is not supported on this node")
    check_payload(files)
    return Files(name, PLUGIN_DIRS["projected"], files, tmpfs=True)


def event_messages(failures: list[Failed]) -> list[str]:
    """The FailedMount event messages for a setup's failures: claim problems in kubelet's
    aggregate "Unable to attach or mount volumes" form, every other one as is."""
    out = []
    claims = [f for f in failures if f.claim]
    if claims:
        names = " ".join(sorted(f.name for f in claims))
        out.append(f"Unable to attach or mount volumes: unmounted volumes=[{names}], unattached "
                   f"volumes=[{names}], failed to process volumes=[{names}]: "
                   f"{claims[0].message}")
    out += [f.message for f in failures if not f.claim]
    return out
