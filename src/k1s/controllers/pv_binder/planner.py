"""The binder's decisions, as pure functions of observed objects (upstream's pv_controller.go
syncClaim / syncVolume / bind, §2.5-2.8, 2.12 of spec/k8s-semantics.md).

- `plan_claim(ClaimInputs)` and `plan_volume(pv, claim)` return lists of actions; they never
  write. The acting module (controller.py) carries them out.
- `next_bind_write(pv, claim, by_controller)` is the bind itself, one write at a time, in
  upstream's crash-safe order: PV claimRef, PV status, claim volumeName + annotations, claim
  status. Each call looks only at the objects as they are now and returns the first step not yet
  done, so a binder killed between any two writes finishes the job on restart.
- `mismatch()` / `find_best_match_linear()` are the matching rules as a plain scan: the oracle
  the index (index.py) is tested against, and the baseline of the benchmark.

Objects are plain dicts as served by the API; nothing here mutates its inputs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone

from k1s.api.quantity import quantity_to_int
from k1s.api.nodeselector import selector_terms_match
from k1s.api.selectors import SelectorError, selector_from_label_selector

from .explain import MatchCounts, explain_pending

# -- vocabulary (upstream's annotation keys and values) -------------------------------------------
ANN_BIND_COMPLETED = "pv.kubernetes.io/bind-completed"
ANN_BOUND_BY_CONTROLLER = "pv.kubernetes.io/bound-by-controller"
ANN_PROVISIONED_BY = "pv.kubernetes.io/provisioned-by"
ANN_STORAGE_PROVISIONER = "volume.kubernetes.io/storage-provisioner"
ANN_BETA_STORAGE_PROVISIONER = "volume.beta.kubernetes.io/storage-provisioner"
ANN_SELECTED_NODE = "volume.kubernetes.io/selected-node"
ANN_BETA_CLASS = "volume.beta.kubernetes.io/storage-class"
ANN_DEFAULT_CLASS = "storageclass.kubernetes.io/is-default-class"
ANN_BETA_DEFAULT_CLASS = "storageclass.beta.kubernetes.io/is-default-class"
YES = "yes"
NO_PROVISIONER = "kubernetes.io/no-provisioner"
WAIT_FOR_FIRST_CONSUMER = "WaitForFirstConsumer"

# The condition k1s adds to a Pending claim (upstream has no such condition; see
# docs/compatibility.md): status False with upstream's event reason and a one-line why.
CONDITION_BINDABLE = "Bindable"

# mismatch reasons, also the explanation's categories
CLAIMED = "claimed"
TOO_SMALL = "too small"
VOLUME_MODE = "wrong volume mode"
DELETING = "being deleted"
NOT_AVAILABLE = "not available"
SELECTOR = "not matching the selector"
OTHER_CLASS = "other class"
AFFINITY = "node affinity mismatch"
ACCESS_MODES = "wrong access modes"

MSG_NO_CLASS = "no persistent volumes available for this claim and no storage class is set"
MSG_WFFC = "waiting for first consumer to be created before binding"
MSG_LOST_REF = "Bound claim has lost reference to PersistentVolume. Data on the volume is lost!"
MSG_LOST_PV = "Bound claim has lost its PersistentVolume. Data on the volume is lost!"
MSG_MISBOUND = "Two claims are bound to the same volume, this one is bound incorrectly"


def external_provisioning_message(provisioner: str) -> str:
    return (f"Waiting for a volume to be created either by the external provisioner "
            f"'{provisioner}' or manually by the system administrator. If volume creation is "
            f"delayed, please verify that the provisioner is running and correctly registered.")


# -- reading objects -------------------------------------------------------------------------------

def meta(obj: dict) -> dict:
    return obj.get("metadata") or {}


def spec(obj: dict) -> dict:
    return obj.get("spec") or {}


def status(obj: dict) -> dict:
    return obj.get("status") or {}


def annotations(obj: dict) -> dict:
    return meta(obj).get("annotations") or {}


def claim_key(claim: dict) -> str:
    md = meta(claim)
    return f"{md.get('namespace') or 'default'}/{md.get('name')}"


def ref_key(ref: dict) -> str:
    return f"{ref.get('namespace') or 'default'}/{ref.get('name')}"


def is_deleting(obj: dict) -> bool:
    return bool(meta(obj).get("deletionTimestamp"))


def to_bytes(q) -> int:
    try:
        return quantity_to_int(q) if q is not None else 0
    except Exception:       # an unparsable quantity cannot satisfy (or ask for) anything
        return 0


def volume_capacity(pv: dict) -> int:
    return to_bytes((spec(pv).get("capacity") or {}).get("storage"))


def claim_request(claim: dict) -> int:
    return to_bytes(((spec(claim).get("resources") or {}).get("requests") or {}).get("storage"))


def volume_mode(obj: dict) -> str:
    return spec(obj).get("volumeMode") or "Filesystem"      # nil means Filesystem on both sides


def access_modes(obj: dict) -> frozenset:
    return frozenset(spec(obj).get("accessModes") or ())


def effective_class(obj: dict) -> str:
    """The legacy beta annotation wins over the field; nil and "" both mean "no class"."""
    ann = annotations(obj)
    if ANN_BETA_CLASS in ann:
        return ann[ANN_BETA_CLASS] or ""
    return spec(obj).get("storageClassName") or ""


def class_unset(claim: dict) -> bool:
    """spec.storageClassName nil (not "") and no legacy annotation: the default class applies."""
    return ANN_BETA_CLASS not in annotations(claim) and spec(claim).get("storageClassName") is None


def bound_to(pv: dict, claim: dict) -> bool:
    """upstream IsVolumeBoundToClaim: claimRef names the claim, with its uid or none."""
    ref = spec(pv).get("claimRef")
    if not ref:
        return False
    md = meta(claim)
    if ref.get("name") != md.get("name") or (ref.get("namespace") or "default") != (
            md.get("namespace") or "default"):
        return False
    return not ref.get("uid") or ref.get("uid") == md.get("uid")


def is_default_class(sc: dict) -> bool:
    ann = annotations(sc)
    return ann.get(ANN_DEFAULT_CLASS) == "true" or ann.get(ANN_BETA_DEFAULT_CLASS) == "true"


def newest_default_class(classes) -> str | None:
    """The default class for claims with no class: the most recently created default wins,
    ties broken by name (upstream's admission and retroactive assignment)."""
    best = None
    for sc in classes:
        if is_default_class(sc):
            k = (meta(sc).get("creationTimestamp") or "", meta(sc).get("name") or "")
            if best is None or k > best:
                best = k
    return best[1] if best else None


# -- node affinity ---------------------------------------------------------------------------------

def node_affinity_matches(pv: dict, node_name: str, node_labels: dict) -> bool:
    """pv.spec.nodeAffinity.required against a node: terms are ORed, expressions ANDed;
    matchFields knows metadata.name. No required affinity matches every node."""
    req = ((spec(pv).get("nodeAffinity") or {}).get("required") or {})
    if not req:
        return True
    return selector_terms_match(req.get("nodeSelectorTerms"), node_name, node_labels)


@dataclass(frozen=True)
class Node:
    """The node a WaitForFirstConsumer claim is bound for (its selected-node)."""
    name: str
    labels: dict = field(default_factory=dict, hash=False, compare=False)


def selector_matches(claim: dict, pv: dict) -> bool:
    sel = spec(claim).get("selector")
    if not sel:
        return True
    try:
        return selector_from_label_selector(sel).matches(meta(pv).get("labels") or {})
    except SelectorError:
        return False


# -- matching (upstream FindMatchingVolume), the plain scan ----------------------------------------

def mismatch(pv: dict, claim: dict, node: Node | None = None, delay: bool = False) -> str | None:
    """Why `pv` cannot be chosen for `claim` (None: it can). Checks in upstream's order, and
    the access-mode superset that upstream applies by grouping volumes."""
    if spec(pv).get("claimRef") and not bound_to(pv, claim):
        return CLAIMED
    if volume_capacity(pv) < claim_request(claim):
        return TOO_SMALL
    if volume_mode(pv) != volume_mode(claim):
        return VOLUME_MODE
    if is_deleting(pv):
        return DELETING
    if node is not None and not node_affinity_matches(pv, node.name, node.labels):
        return AFFINITY
    if bound_to(pv, claim):
        return None         # pre-bound: selector, class and phase are not checked
    if delay and node is None:
        return NOT_AVAILABLE
    if status(pv).get("phase") != "Available":
        return NOT_AVAILABLE
    if not selector_matches(claim, pv):
        return SELECTOR
    if effective_class(pv) != effective_class(claim):
        return OTHER_CLASS
    if not access_modes(pv) >= access_modes(claim):
        return ACCESS_MODES
    return None


def match_order(pv: dict) -> tuple:
    """Among fitting volumes: fewest access modes first (upstream's group order), then the
    smallest capacity, then the name (k1s's deterministic tie-break)."""
    return (len(access_modes(pv)), sorted(access_modes(pv)), volume_capacity(pv),
            meta(pv).get("name") or "")


def find_best_match_linear(claim: dict, pvs, node: Node | None = None,
                           delay: bool = False) -> dict | None:
    """The reference scan over every volume: a pre-bound volume wins at once, else the best
    fitting volume by match_order."""
    best = None
    prebound = None     # (name, decides-with-a-match): the first pre-bound volume by name that
    for pv in pvs:      # fits, or sits on the wrong node (upstream then ends with no match)
        why = mismatch(pv, claim, node, delay)
        if bound_to(pv, claim):
            if why in (None, AFFINITY):
                name = meta(pv).get("name") or ""
                if prebound is None or name < prebound[0]:
                    prebound = (name, pv if why is None else None)
            continue
        if why is None and (best is None or match_order(pv) < match_order(best)):
            best = pv
    return prebound[1] if prebound is not None else best


def requested_volume_mismatch(pv: dict, claim: dict) -> str | None:
    """The checks for a claim naming its volume (spec.volumeName) that the volume has no
    claimRef for: upstream's checkVolumeSatisfyClaim messages."""
    if is_deleting(pv):
        return f'the volume is marked for deletion "{meta(pv).get("name")}"'
    if volume_capacity(pv) < claim_request(claim):
        return "requested PV is too small"
    if effective_class(pv) != effective_class(claim):
        return "storageClassName does not match"
    if volume_mode(pv) != volume_mode(claim):
        return "incompatible volumeMode"
    if not access_modes(pv) >= access_modes(claim):
        return "incompatible accessMode"
    return None


# -- actions ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Bind:
    volume: str
    by_controller: bool


@dataclass(frozen=True)
class SetClaimClass:
    storage_class: str


@dataclass(frozen=True)
class SetProvisioner:
    provisioner: str


@dataclass(frozen=True)
class ClaimPending:
    """status.phase Pending (no accessModes/capacity) and the Bindable=False condition."""
    reason: str
    message: str


@dataclass(frozen=True)
class ClaimLost:
    pass


@dataclass(frozen=True)
class Event:
    type: str
    reason: str
    message: str
    on: str = "claim"       # "claim" or "volume"


@dataclass(frozen=True)
class SetVolumePhase:
    phase: str
    message: str = ""
    reason: str = ""


@dataclass(frozen=True)
class UnbindVolume:
    """Clear the whole claimRef (bound by a controller) or only its uid (user pre-bound)."""
    full: bool


@dataclass(frozen=True)
class EnqueueClaim:
    key: str


# -- claim sync ------------------------------------------------------------------------------------

@dataclass
class ClaimInputs:
    claim: dict
    volume: dict | None = None          # the PV named by spec.volumeName, when there is one
    match: dict | None = None           # best matching PV (index look-up), for volumeName ""
    storage_class: dict | None = None   # the claim's effective class, when it exists
    default_class: str | None = None    # the newest default class, when one exists
    counts: MatchCounts | None = None   # why no volume matched (for the explanation)
    waiting_pods: tuple = ()            # unscheduled pods that use the claim


def plan_claim(inp: ClaimInputs) -> list:
    claim = inp.claim
    if annotations(claim).get(ANN_BIND_COMPLETED):
        return _plan_bound_claim(inp)
    if spec(claim).get("volumeName"):
        return _plan_prebound_claim(inp)
    return _plan_unbound_claim(inp)


def _lost(claim: dict, message: str, reason: str = "ClaimLost") -> list:
    if status(claim).get("phase") == "Lost":
        return []           # events only on the transition into Lost
    return [ClaimLost(), Event("Warning", reason, message)]


def _plan_bound_claim(inp: ClaimInputs) -> list:
    claim, pv = inp.claim, inp.volume
    name = spec(claim).get("volumeName")
    if not name:
        return _lost(claim, MSG_LOST_REF)
    if pv is None:
        return _lost(claim, MSG_LOST_PV)
    ref = spec(pv).get("claimRef")
    if ref is None or (ref.get("uid") and ref.get("uid") == meta(claim).get("uid")):
        return [Bind(name, by_controller=False)]        # finish or repair the bind
    return _lost(claim, MSG_MISBOUND, "ClaimMisbound")


def _plan_prebound_claim(inp: ClaimInputs) -> list:
    claim, pv = inp.claim, inp.volume
    name = spec(claim).get("volumeName")
    if pv is None:
        return [ClaimPending("VolumeNotFound", f'the requested volume "{name}" does not exist')]
    if spec(pv).get("claimRef") is None:
        why = requested_volume_mismatch(pv, claim)
        if why:
            msg = f'Cannot bind to requested volume "{name}": {why}'
            return [Event("Warning", "VolumeMismatch", msg), ClaimPending("VolumeMismatch", msg)]
        return [Bind(name, by_controller=False)]
    if bound_to(pv, claim):
        return [Bind(name, by_controller=False)]
    msg = f'volume "{name}" already bound to a different claim.'
    return [Event("Warning", "FailedBinding", msg), ClaimPending("FailedBinding", msg)]


def _plan_unbound_claim(inp: ClaimInputs) -> list:
    claim, sc = inp.claim, inp.storage_class
    if inp.match is not None:
        return [Bind(meta(inp.match).get("name"), by_controller=True)]
    if class_unset(claim) and inp.default_class:
        return [SetClaimClass(inp.default_class)]       # retroactive default; next sync goes on
    cls = effective_class(claim)
    counts = inp.counts or MatchCounts()
    delay = sc is not None and sc.get("volumeBindingMode") == WAIT_FOR_FIRST_CONSUMER
    ann = annotations(claim)
    if delay and not ann.get(ANN_SELECTED_NODE):
        if inp.waiting_pods:
            pods = list(inp.waiting_pods)
            msg = (f"waiting for pod {pods[0]} to be scheduled" if len(pods) == 1
                   else f"waiting for pods {','.join(pods)} to be scheduled")
            return [Event("Normal", "WaitForPodScheduled", msg),
                    ClaimPending("WaitForPodScheduled", explain_pending(msg, counts))]
        return [Event("Normal", "WaitForFirstConsumer", MSG_WFFC),
                ClaimPending("WaitForFirstConsumer", explain_pending(MSG_WFFC, counts))]
    if cls:
        if sc is None:
            msg = f'storageclass.storage.k8s.io "{cls}" not found'
            return [Event("Warning", "ProvisioningFailed", msg),
                    ClaimPending("ProvisioningFailed", explain_pending(msg, counts))]
        prov = sc.get("provisioner") or ""
        if prov == NO_PROVISIONER:
            msg = f"no volume plugin matched name: {prov}"
            return [Event("Warning", "ProvisioningFailed", msg),
                    ClaimPending("ProvisioningFailed", explain_pending(msg, counts))]
        out: list = []
        if ann.get(ANN_STORAGE_PROVISIONER) != prov or ann.get(ANN_BETA_STORAGE_PROVISIONER) != prov:
            out.append(SetProvisioner(prov))
        msg = external_provisioning_message(prov)
        out += [Event("Normal", "ExternalProvisioning", msg),
                ClaimPending("ExternalProvisioning", explain_pending(
                    f"waiting for a volume to be created by the provisioner '{prov}'", counts))]
        return out
    event_msg = MSG_NO_CLASS if not counts.considered else f"{MSG_NO_CLASS}; {counts.sentence()}"
    return [Event("Normal", "FailedBinding", event_msg),
            ClaimPending("FailedBinding", explain_pending(MSG_NO_CLASS, counts))]


# -- volume sync -----------------------------------------------------------------------------------

def plan_volume(pv: dict, claim: dict | None) -> list:
    """`claim` is the claim named by pv.spec.claimRef with the same uid, or None when it is
    gone (the caller confirms absence with a live read first)."""
    ref = spec(pv).get("claimRef")
    phase = status(pv).get("phase")
    if not ref or not ref.get("uid"):
        return [] if phase == "Available" else [SetVolumePhase("Available")]
    if claim is None:
        out = [] if phase in ("Released", "Failed") else [SetVolumePhase("Released")]
        return out + _reclaim(pv)
    name = spec(claim).get("volumeName")
    if not name:
        if volume_mode(pv) != volume_mode(claim):
            cname = meta(claim).get("name")
            return [Event("Warning", "VolumeMismatch",
                          f'Cannot bind PersistentVolume to requested PersistentVolumeClaim '
                          f'"{cname}" due to incompatible volumeMode.', on="volume"),
                    Event("Warning", "VolumeMismatch",
                          f'Cannot bind PersistentVolume "{meta(pv).get("name")}" to requested '
                          f'PersistentVolumeClaim due to incompatible volumeMode.')]
        return [EnqueueClaim(claim_key(claim))]
    if name == meta(pv).get("name"):
        return [] if phase == "Bound" else [SetVolumePhase("Bound")]
    # the claim is bound to another volume
    ann = annotations(pv)
    if ann.get(ANN_PROVISIONED_BY) and spec(pv).get("persistentVolumeReclaimPolicy") == "Delete":
        return ([] if phase in ("Released", "Failed") else [SetVolumePhase("Released")])
    return [UnbindVolume(full=bool(ann.get(ANN_BOUND_BY_CONTROLLER)))]


def _reclaim(pv: dict) -> list:
    """What a Released volume's reclaim policy asks of the binder. Retain: nothing. Delete of a
    provisioned volume: its provisioner deletes it. Anything the binder cannot do ends Failed."""
    policy = spec(pv).get("persistentVolumeReclaimPolicy") or "Retain"
    failed = status(pv).get("phase") == "Failed"
    if policy == "Retain":
        return []
    if policy == "Delete":
        if annotations(pv).get(ANN_PROVISIONED_BY):
            return []
        msg = (f'error getting deleter volume plugin for volume "{meta(pv).get("name")}": '
               f"no deletable volume plugin matched")
        return [] if failed else [SetVolumePhase("Failed", msg),
                                  Event("Warning", "VolumeFailedDelete", msg, on="volume")]
    if policy == "Recycle":
        msg = "No recycler plugin found for the volume!"
        return [] if failed else [SetVolumePhase("Failed", msg),
                                  Event("Warning", "VolumeFailedRecycle", msg, on="volume")]
    msg = "Volume has unrecognized PersistentVolumeReclaimPolicy"
    return [] if failed else [SetVolumePhase("Failed", msg),
                              Event("Warning", "VolumeUnknownReclaimPolicy", msg, on="volume")]


# -- writes: the bind, one step at a time; phase, unbind, pending --------------------------------

def now_rfc3339() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def claim_reference(claim: dict) -> dict:
    md = meta(claim)
    return {"kind": "PersistentVolumeClaim", "namespace": md.get("namespace") or "default",
            "name": md.get("name"), "uid": md.get("uid"), "apiVersion": "v1",
            "resourceVersion": md.get("resourceVersion")}


# Writers copy only the levels they change (objects from caches are shared and read-only):
# a deep copy of every object written cost more than the matching itself.

def with_annotations(obj: dict, add: dict) -> dict:
    md = meta(obj)
    return {**obj, "metadata": {**md, "annotations": {**(md.get("annotations") or {}), **add}}}


def volume_with_claim_ref(pv: dict, claim: dict) -> dict | None:
    """Step 1: the PV points at the claim (uid included)."""
    ref = spec(pv).get("claimRef")
    if ref and bound_to(pv, claim) and ref.get("uid") == meta(claim).get("uid"):
        return None
    new = dict(pv)
    if not bound_to(pv, claim):       # not pre-bound by a user: the controller chose it
        new = with_annotations(new, {ANN_BOUND_BY_CONTROLLER: YES})
    new["spec"] = {**spec(pv), "claimRef": claim_reference(claim)}
    return new


def volume_with_phase(pv: dict, phase: str, message: str = "", reason: str = "") -> dict | None:
    st = status(pv)
    if st.get("phase") == phase and (st.get("message") or "") == message:
        return None
    new = dict(pv)
    nst = {"phase": phase}
    if message:
        nst["message"] = message
    if reason:
        nst["reason"] = reason
    nst["lastPhaseTransitionTime"] = (now_rfc3339() if st.get("phase") != phase
                                      else st.get("lastPhaseTransitionTime") or now_rfc3339())
    new["status"] = nst
    return new


def claim_with_volume(claim: dict, volume: str, by_controller: bool) -> dict | None:
    """Step 3: volumeName and the annotations; bound-by-controller only when we chose it."""
    ann = annotations(claim)
    add = {}
    if ann.get(ANN_BIND_COMPLETED) != YES:
        add[ANN_BIND_COMPLETED] = YES
    if by_controller and ann.get(ANN_BOUND_BY_CONTROLLER) != YES:
        add[ANN_BOUND_BY_CONTROLLER] = YES
    if spec(claim).get("volumeName") == volume and not add:
        return None
    new = with_annotations(claim, add) if add else dict(claim)
    new["spec"] = {**spec(claim), "volumeName": volume}
    return new


def claim_with_bound_status(claim: dict, pv: dict) -> dict | None:
    """Step 4: phase Bound, accessModes from the PV; capacity only on the way into Bound (an
    expansion later owns it); the Bindable condition goes."""
    st = status(claim)
    conds = [c for c in st.get("conditions") or () if c.get("type") != CONDITION_BINDABLE]
    modes = list(spec(pv).get("accessModes") or [])
    if st.get("phase") == "Bound" and st.get("accessModes") == modes and len(conds) == len(
            st.get("conditions") or ()) and st.get("capacity"):
        return None
    new = dict(claim)
    nst = dict(st)
    if st.get("phase") != "Bound" or not st.get("capacity"):
        nst["capacity"] = dict(spec(pv).get("capacity") or {})
    nst["phase"] = "Bound"
    nst["accessModes"] = modes
    if conds:
        nst["conditions"] = conds
    else:
        nst.pop("conditions", None)
    new["status"] = nst
    return new


def next_bind_write(pv: dict, claim: dict, by_controller: bool) -> tuple[str, str, dict] | None:
    """The first bind step not yet done: (object "volume"|"claim", "spec"|"status", new object).

    The order is upstream's and is what makes the bind crash-safe: until the PV names the claim
    nothing else is written, so no claim ever claims a PV that was not first reserved for it."""
    new = volume_with_claim_ref(pv, claim)
    if new is not None:
        return "volume", "spec", new
    new = volume_with_phase(pv, "Bound")
    if new is not None:
        return "volume", "status", new
    new = claim_with_volume(claim, meta(pv).get("name"), by_controller)
    if new is not None:
        return "claim", "spec", new
    new = claim_with_bound_status(claim, pv)
    if new is not None:
        return "claim", "status", new
    return None


def volume_unbound(pv: dict, full: bool) -> dict:
    new = dict(pv)
    new["spec"] = dict(spec(pv))
    if full:
        new["spec"].pop("claimRef", None)
        md = meta(pv)
        anns = {k: v for k, v in (md.get("annotations") or {}).items()
                if k != ANN_BOUND_BY_CONTROLLER}
        new["metadata"] = {**md, "annotations": anns}
    else:
        ref = dict(new["spec"]["claimRef"])
        ref.pop("uid", None)
        ref.pop("resourceVersion", None)
        new["spec"]["claimRef"] = ref
    return new


def claim_with_pending(claim: dict, reason: str, message: str) -> dict | None:
    st = status(claim)
    conds = list(st.get("conditions") or ())
    old = next((c for c in conds if c.get("type") == CONDITION_BINDABLE), None)
    if (st.get("phase") == "Pending" and not st.get("accessModes") and not st.get("capacity")
            and old and old.get("reason") == reason and old.get("message") == message):
        return None
    now = now_rfc3339()
    cond = {"type": CONDITION_BINDABLE, "status": "False", "reason": reason, "message": message,
            "lastProbeTime": now,
            "lastTransitionTime": (old.get("lastTransitionTime") if old and old.get("status") ==
                                   "False" else None) or now}
    new = dict(claim)
    nst = {k: v for k, v in st.items() if k not in ("accessModes", "capacity", "conditions")}
    nst["phase"] = "Pending"
    nst["conditions"] = [c for c in conds if c.get("type") != CONDITION_BINDABLE] + [cond]
    new["status"] = nst
    return new


def claim_with_lost(claim: dict) -> dict | None:
    if status(claim).get("phase") == "Lost":
        return None
    new = dict(claim)
    new["status"] = {**status(claim), "phase": "Lost"}
    return new


def with_spec(obj: dict, **fields) -> dict:
    return {**obj, "spec": {**spec(obj), **fields}}
