"""What the local provisioner should do with a claim or a volume: pure functions, no I/O.

Vocabulary (upstream's external-provisioner handshake, sig-storage-lib-external-provisioner):
- a claim is ours when it is unbound (no spec.volumeName), not being deleted, annotated
  `volume.kubernetes.io/storage-provisioner` (or the beta key) = `k1s.io/local`, and its class
  names that provisioner. WaitForFirstConsumer claims also need
  `volume.kubernetes.io/selected-node` = this node; Immediate claims are provisioned here
  unless another node was selected.
- a volume is ours when it says `pv.kubernetes.io/provisioned-by: k1s.io/local` and its node
  affinity names this node. A Released one with reclaim policy Delete is deleted (data first,
  then the object); any other is kept mounted.

Class parameters accepted (anything else fails with `invalid parameter ...`):
- `fsType`: ext4 (default), ext3 or ext2 — the filesystem made in the image;
- `mode`: `auto` (default: an image where loop devices work, else a directory), `image`
  (fail where loop devices do not work), `directory` (capacity not enforced).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, ROUND_CEILING

from k1s.api.quantity import parse_quantity

PROVISIONER = "k1s.io/local"
ANN_STORAGE_PROVISIONER = "volume.kubernetes.io/storage-provisioner"
ANN_BETA_STORAGE_PROVISIONER = "volume.beta.kubernetes.io/storage-provisioner"
ANN_SELECTED_NODE = "volume.kubernetes.io/selected-node"
ANN_PROVISIONED_BY = "pv.kubernetes.io/provisioned-by"
ANN_BETA_CLASS = "volume.beta.kubernetes.io/storage-class"
ANN_USAGE = "k1s.io/usage-bytes"
ANN_AVAILABLE = "k1s.io/available-bytes"
HOSTNAME_LABEL = "kubernetes.io/hostname"
FS_TYPES = ("ext4", "ext3", "ext2")
MODES = ("auto", "image", "directory")
WFFC = "WaitForFirstConsumer"


@dataclass(frozen=True)
class Params:
    fs_type: str = "ext4"
    mode: str = "auto"


@dataclass(frozen=True)
class Skip:
    reason: str


@dataclass(frozen=True)
class Fail:
    """Provisioning cannot succeed as asked: a ProvisioningFailed event with this message."""
    message: str


@dataclass(frozen=True)
class Provision:
    pv_name: str
    size_bytes: int
    params: Params
    mount_options: tuple[str, ...]


def parse_parameters(parameters: dict | None) -> Params | str:
    """The class parameters as Params, or the error message (upstream style)."""
    params = dict(parameters or {})
    fs_type = params.pop("fsType", params.pop("csi.storage.k8s.io/fstype", "ext4")) or "ext4"
    mode = params.pop("mode", "auto") or "auto"
    if params:
        bad = sorted(params)[0]
        return f'invalid parameter "{bad}" for provisioner {PROVISIONER}'
    if fs_type.lower() not in FS_TYPES:
        return f'invalid fsType "{fs_type}": supported are {", ".join(FS_TYPES)}'
    if mode not in MODES:
        return f'invalid mode "{mode}": supported are {", ".join(MODES)}'
    return Params(fs_type.lower(), mode)


def claim_class(claim: dict) -> str | None:
    """The claim's effective class name: the beta annotation wins over spec.storageClassName."""
    ann = (claim.get("metadata") or {}).get("annotations") or {}
    if ANN_BETA_CLASS in ann:
        return ann[ANN_BETA_CLASS]
    return (claim.get("spec") or {}).get("storageClassName")


def requested_bytes(claim: dict) -> int | None:
    req = (((claim.get("spec") or {}).get("resources") or {}).get("requests") or {}).get("storage")
    if req is None:
        return None
    try:
        return int(Decimal(parse_quantity(req)).to_integral_value(ROUND_CEILING))
    except Exception:
        return None


def is_ours(claim: dict) -> bool:
    ann = (claim.get("metadata") or {}).get("annotations") or {}
    return PROVISIONER in (ann.get(ANN_STORAGE_PROVISIONER), ann.get(ANN_BETA_STORAGE_PROVISIONER))


def plan_claim(claim: dict, sc: dict | None, node: str, pv_exists: bool) -> Skip | Fail | Provision:
    """Provision, fail, or leave alone this claim (see the module docstring for the rules)."""
    meta = claim.get("metadata") or {}
    spec = claim.get("spec") or {}
    if not is_ours(claim):
        return Skip("not annotated for this provisioner")
    if meta.get("deletionTimestamp"):
        return Skip("claim is being deleted")
    if spec.get("volumeName"):
        return Skip("claim already names a volume")
    if (claim.get("status") or {}).get("phase") in ("Bound", "Lost"):
        return Skip("claim is bound")
    if sc is None:
        return Skip("storage class not found")
    if sc.get("provisioner") != PROVISIONER:
        return Skip("class has another provisioner")
    selected = (meta.get("annotations") or {}).get(ANN_SELECTED_NODE)
    if sc.get("volumeBindingMode") == WFFC and not selected:
        return Skip("waiting for a selected node")
    if selected and selected != node:
        return Skip(f"selected node is {selected}")
    uid = meta.get("uid") or ""
    pv_name = f"pvc-{uid}"
    if pv_exists:
        return Skip("volume already exists")
    if spec.get("selector"):
        return Fail("claim Selector is not supported")
    if spec.get("dataSource") or spec.get("dataSourceRef"):
        return Fail("claim dataSource is not supported")
    if spec.get("volumeMode") == "Block":
        return Fail("volumeMode Block is not supported")
    size = requested_bytes(claim)
    if size is None or size <= 0:
        return Fail("claim has no valid storage request")
    params = parse_parameters(sc.get("parameters"))
    if isinstance(params, str):
        return Fail(params)
    return Provision(pv_name, size, params, tuple(sc.get("mountOptions") or ()))


def build_pv(claim: dict, sc: dict, node: str, path: str, fs_type: str | None) -> dict:
    """The PersistentVolume for a provisioned claim: pre-bound by claimRef, pinned to node."""
    meta = claim["metadata"]
    spec = claim.get("spec") or {}
    local: dict = {"path": path}
    if fs_type:
        local["fsType"] = fs_type
    pv_spec: dict = {
        "capacity": {"storage": spec["resources"]["requests"]["storage"]},
        "accessModes": list(spec.get("accessModes") or ["ReadWriteOnce"]),
        "volumeMode": spec.get("volumeMode") or "Filesystem",
        "persistentVolumeReclaimPolicy": sc.get("reclaimPolicy") or "Delete",
        "storageClassName": sc["metadata"]["name"],
        "claimRef": {"kind": "PersistentVolumeClaim", "apiVersion": "v1",
                     "namespace": meta["namespace"], "name": meta["name"], "uid": meta["uid"],
                     "resourceVersion": meta.get("resourceVersion", "")},
        "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
            {"key": HOSTNAME_LABEL, "operator": "In", "values": [node]}]}]}},
        "local": local,
    }
    if not pv_spec["claimRef"]["resourceVersion"]:
        del pv_spec["claimRef"]["resourceVersion"]
    if sc.get("mountOptions"):
        pv_spec["mountOptions"] = list(sc["mountOptions"])
    return {"apiVersion": "v1", "kind": "PersistentVolume",
            "metadata": {"name": f"pvc-{meta['uid']}",
                         "annotations": {ANN_PROVISIONED_BY: PROVISIONER}},
            "spec": pv_spec}


def pv_node(pv: dict) -> str | None:
    """The single hostname a volume's required node affinity names, if that is its shape."""
    terms = ((((pv.get("spec") or {}).get("nodeAffinity") or {}).get("required") or {})
             .get("nodeSelectorTerms") or [])
    for term in terms:
        for expr in term.get("matchExpressions") or ():
            if expr.get("key") == HOSTNAME_LABEL and expr.get("operator") == "In" \
                    and len(expr.get("values") or ()) == 1:
                return expr["values"][0]
    return None


def volume_is_ours(pv: dict, node: str) -> bool:
    ann = (pv.get("metadata") or {}).get("annotations") or {}
    return ann.get(ANN_PROVISIONED_BY) == PROVISIONER and pv_node(pv) == node


def plan_volume(pv: dict, node: str) -> str | None:
    """"delete" (Released + Delete), "keep" (mounted and reported), or None (not ours)."""
    if not volume_is_ours(pv, node):
        return None
    spec = pv.get("spec") or {}
    phase = (pv.get("status") or {}).get("phase")
    if phase == "Released" and spec.get("persistentVolumeReclaimPolicy") == "Delete":
        return "delete"
    return "keep"


def usage_patch(pv: dict, used: int, available: int) -> dict | None:
    """The annotation patch reporting usage, or None when the PV already says so."""
    ann = (pv.get("metadata") or {}).get("annotations") or {}
    want = {ANN_USAGE: str(used), ANN_AVAILABLE: str(available)}
    if all(ann.get(k) == v for k, v in want.items()):
        return None
    return {"metadata": {"annotations": want}}
