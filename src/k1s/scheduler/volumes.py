"""Volume topology decisions (upstream's VolumeBinding and VolumeRestrictions plugins), pure.

- `classify(pod_info, claim, storage_class)`: PreFilter. Sorts the pod's claims into bound
  (spec.volumeName set and bind-completed) and unbound WaitForFirstConsumer ("delayed") ones;
  any other unbound claim (Immediate class, no class, or pre-bound by volumeName) makes the pod
  wait with "pod has unbound immediate PersistentVolumeClaims"; a missing claim fails with
  `persistentvolumeclaim "x" not found`. The answer is either a `PodVolumes` or the message.
- `candidates(...)`: per delayed claim, the Available static volumes that match it whatever
  the node (class, access modes, size, selector, volumeMode — the binder's own matching rules,
  pv_binder/planner.py), best first; computed once per pod, not once per node.
- `filter_node(...)`: Filter for one node. Bound claims: the PV must exist and its node
  affinity admit the node. Delayed claims: a claim with a selected-node is only for that node;
  otherwise the best candidate admitted by the node (claims in increasing request order, a
  volume chosen for one claim is not offered to the next, nor one another pod is being bound
  to), else dynamic provisioning: a class whose provisioner is set and not
  kubernetes.io/no-provisioner and whose allowedTopologies admit the node. Returns the
  rejection or the `Decision` (volumes to pre-bind, claims to provision) for that node.
  VolumeZone: a bound volume's zone/region labels must match the node's.
- `claim_fully_bound(...)`, `wait_state(...)`: PreBind's wait condition.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable

from k1s.controllers.pv_binder import planner as P

from .filters import Reject
from .model import PodInfo, meta, spec

ERR_UNBOUND_IMMEDIATE = "pod has unbound immediate PersistentVolumeClaims"
ERR_NODE_CONFLICT = "node(s) had volume node affinity conflict"
ERR_BIND_CONFLICT = "node(s) didn't find available persistent volumes to bind"
ERR_PV_NOT_EXIST = "node(s) unavailable due to one or more pvc(s) bound to non-existent pv(s)"
ERR_ZONE_CONFLICT = "node(s) had no available volume zone"
ERR_RWOP_CONFLICT = ("node has pod using PersistentVolumeClaim with the same name and "
                     "ReadWriteOncePod access mode")

ANN_SELECTED_NODE = P.ANN_SELECTED_NODE
ANN_BIND_COMPLETED = P.ANN_BIND_COMPLETED
ANN_BOUND_BY_CONTROLLER = P.ANN_BOUND_BY_CONTROLLER


# VolumeZone: a bound volume labelled with a zone or region only fits nodes labelled alike
# (a label may list several values joined by "__", upstream's multi-zone convention)
ZONE_LABELS = ("topology.kubernetes.io/zone", "topology.kubernetes.io/region",
               "failure-domain.beta.kubernetes.io/zone",
               "failure-domain.beta.kubernetes.io/region")


def zone_conflict(pv: dict, labels: dict) -> bool:
    for key, value in (meta(pv).get("labels") or {}).items():
        if key in ZONE_LABELS and labels.get(key) not in value.split("__"):
            return True
    return False


def not_found(name: str) -> str:
    return f'persistentvolumeclaim "{name}" not found'


@dataclass
class PodVolumes:
    bound: list = field(default_factory=list)       # (claim, volume name)
    delayed: list = field(default_factory=list)     # unbound WaitForFirstConsumer claims

    @property
    def empty(self) -> bool:
        return not self.bound and not self.delayed


@dataclass
class Decision:
    static: list = field(default_factory=list)      # (claim, pv) to pre-bind via claimRef
    provision: list = field(default_factory=list)   # claims to give selected-node


def is_delay_binding(claim: dict, get_class: Callable[[str], dict | None]) -> bool:
    cls = P.effective_class(claim)
    sc = get_class(cls) if cls else None
    return sc is not None and sc.get("volumeBindingMode") == P.WAIT_FOR_FIRST_CONSUMER


def claim_fully_bound(claim: dict) -> bool:
    return bool(spec(claim).get("volumeName")) and ANN_BIND_COMPLETED in P.annotations(claim)


def classify(pi: PodInfo, get_claim: Callable[[str, str], dict | None],
             get_class: Callable[[str], dict | None]) -> PodVolumes | str:
    out = PodVolumes()
    immediate = False
    ephemeral = {f"{pi.name}-{v.get('name')}" for v in spec(pi.pod).get("volumes") or ()
                 if v.get("ephemeral")}
    for name in pi.claims:
        claim = get_claim(pi.namespace, name)
        if claim is None:
            if name in ephemeral:
                return ("waiting for ephemeral volume controller to create the "
                        f'persistentvolumeclaim "{name}"')
            return not_found(name)
        if meta(claim).get("deletionTimestamp"):
            return f'persistentvolumeclaim "{name}" is being deleted'
        if claim_fully_bound(claim):
            out.bound.append((claim, spec(claim)["volumeName"]))
        elif is_delay_binding(claim, get_class) and not spec(claim).get("volumeName"):
            out.delayed.append(claim)
        else:
            immediate = True
    if immediate:
        return ERR_UNBOUND_IMMEDIATE
    return out


def rwop_conflict(pi: PodInfo, pv: PodVolumes, users: Callable[[str], Iterable[str]]) -> bool:
    """VolumeRestrictions: a ReadWriteOncePod claim of this pod is used by another pod that is
    bound (or being bound) to a node."""
    for claim, *_ in list(pv.bound) + [(c,) for c in pv.delayed]:
        if "ReadWriteOncePod" in (spec(claim).get("accessModes") or ()):
            key = P.claim_key(claim)
            if any(u != pi.key for u in users(key)):
                return True
    return False


def candidates(claim: dict, free: Iterable[dict]) -> list[dict]:
    """Volumes that fit the claim on some node, best first (the binder's match order)."""
    fit = [pv for pv in free if P.mismatch(pv, claim, None, False) is None]
    fit.sort(key=P.match_order)
    return fit


def allowed_topologies_match(sc: dict, labels: dict) -> bool:
    """StorageClass.allowedTopologies: terms ORed, each label expression's values ORed,
    expressions ANDed. None or empty admits every node."""
    terms = sc.get("allowedTopologies") or []
    if not terms:
        return True
    for t in terms:
        exprs = t.get("matchLabelExpressions") or []
        if all(labels.get(e.get("key")) in (e.get("values") or ()) for e in exprs):
            return True
    return False


def can_provision(claim: dict, get_class: Callable[[str], dict | None], labels: dict) -> bool:
    cls = P.effective_class(claim)
    sc = get_class(cls) if cls else None
    if sc is None:
        return False
    prov = sc.get("provisioner") or ""
    if not prov or prov == P.NO_PROVISIONER:
        return False
    return allowed_topologies_match(sc, labels)


def filter_node(pv_state: PodVolumes, node_name: str, labels: dict, *,
                get_pv: Callable[[str], dict | None],
                cands: dict[str, list[dict]],
                get_class: Callable[[str], dict | None],
                taken: Callable[[str, str], bool] = lambda pv, claim: False,
                selected: Callable[[dict], str | None] = lambda c: P.annotations(c).get(
                    ANN_SELECTED_NODE)) -> tuple[Reject | None, Decision | None]:
    """`cands`: claim key -> candidates(); `taken(pv name, claim key)`: the volume is being
    bound to another claim by a decision in flight; `selected(claim)`: its selected node
    (including one this scheduler has just written)."""
    reasons = []
    for claim, vname in pv_state.bound:
        pv = get_pv(vname)
        if pv is None:
            return Reject((ERR_PV_NOT_EXIST,)), None
        if not P.node_affinity_matches(pv, node_name, labels):
            reasons.append(ERR_NODE_CONFLICT)
            break
    if not reasons:
        for claim, vname in pv_state.bound:
            if zone_conflict(get_pv(vname), labels):
                return Reject((ERR_ZONE_CONFLICT,)), None
    decision = Decision()
    unbound_ok = True
    to_match = []
    for claim in pv_state.delayed:
        sel = selected(claim)
        if sel:
            if sel != node_name:
                unbound_ok = False
                break
            decision.provision.append(claim)
        else:
            to_match.append(claim)
    if unbound_ok:
        chosen: set[str] = set()
        for claim in (sorted(to_match, key=P.claim_request) if len(to_match) > 1 else to_match):
            key = P.claim_key(claim)
            pick = None
            for pv in cands.get(key, ()):
                name = meta(pv).get("name")
                if name in chosen or taken(name, key):
                    continue
                if P.node_affinity_matches(pv, node_name, labels):
                    pick = pv
                    break
            if pick is not None:
                chosen.add(meta(pick).get("name"))
                decision.static.append((claim, pick))
            else:
                decision.provision.append(claim)
        for claim in decision.provision:
            if not can_provision(claim, get_class, labels):
                unbound_ok = False
                break
    if not unbound_ok:
        reasons.append(ERR_BIND_CONFLICT)
    if reasons:
        return Reject(tuple(reasons)), None
    return None, decision


def claim_ref(claim: dict) -> dict:
    md = meta(claim)
    return {"kind": "PersistentVolumeClaim", "apiVersion": "v1",
            "namespace": md.get("namespace") or "default", "name": md.get("name"),
            "uid": md.get("uid"), "resourceVersion": md.get("resourceVersion")}


def volume_prebound(pv: dict, claim: dict) -> dict:
    """PreBind for a static match: the PV with claimRef -> claim and bound-by-controller; the
    binder completes the bind (upstream's scheduler writes only this)."""
    new = dict(pv)
    md = dict(meta(pv))
    ann = dict(md.get("annotations") or {})
    ann[ANN_BOUND_BY_CONTROLLER] = P.YES
    md["annotations"] = ann
    new["metadata"] = md
    s = dict(spec(pv))
    s["claimRef"] = claim_ref(claim)
    new["spec"] = s
    return new


def claim_selected(claim: dict, node: str) -> dict:
    new = dict(claim)
    md = dict(meta(claim))
    ann = dict(md.get("annotations") or {})
    ann[ANN_SELECTED_NODE] = node
    md["annotations"] = ann
    new["metadata"] = md
    return new


def wait_state(claim: dict | None, pv: dict | None, node_name: str, labels: dict,
               provisioned: bool) -> str:
    """One claim during PreBind: "bound" (fully bound to a volume that admits the node),
    "wait", or a failure message (the pod must be scheduled again)."""
    if claim is None:
        return "the claim was deleted"
    if meta(claim).get("deletionTimestamp"):
        return f'persistentvolumeclaim "{meta(claim).get("name")}" is being deleted'
    if not claim_fully_bound(claim):
        if provisioned and not spec(claim).get("volumeName") and \
                P.annotations(claim).get(ANN_SELECTED_NODE) != node_name:
            return "selectedNode annotation reset for PVC " + repr(meta(claim).get("name"))
        if not provisioned and pv is not None and not P.bound_to(pv, claim):
            return f"claimRef of PV {meta(pv).get('name')!r} was reset"
        return "wait"
    if pv is None:
        return "wait"
    if not P.node_affinity_matches(pv, node_name, labels):
        return (f"pv {meta(pv).get('name')!r} node affinity doesn't match node "
                f"{node_name!r}")
    return "bound"
