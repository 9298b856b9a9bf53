"""The node filters (upstream's Filter plugins), as pure predicates of (pod, node).

Each filter returns None when the node passes, or a `Reject` holding upstream's reason
strings (the words counted in the FailedScheduling message) and whether the rejection is
"unresolvable" (UnschedulableAndUnresolvable: preemption cannot help). `run_filters` applies
them in upstream's default plugin order and stops at the first rejection, as the framework
does. The volume filters live in volumes.py; the scheduler adds them after these.
"""

from __future__ import annotations

from dataclasses import dataclass

from k1s.api.nodeselector import selector_terms_match

from .model import CPU, EPHEMERAL, MEMORY, PODS, TAINT_UNSCHEDULABLE, NodeInfo, PodInfo, spec

# upstream's reason strings
ERR_UNSCHEDULABLE = "node(s) were unschedulable"
ERR_NODE_NAME = "node(s) didn't match the requested node name"
ERR_AFFINITY = "node(s) didn't match Pod's node affinity/selector"
# v1.32's wording (k1s reports v1.32): the first untolerated taint's key and value. Upstream
# dropped them from the message in later releases ("had untolerated taint(s)").
ERR_TAINT = "node(s) had untolerated taint {%s: %s}"
ERR_PORTS = "node(s) didn't have free ports for the requested pod ports"
ERR_TOO_MANY_PODS = "Too many pods"
ERR_NODE_NOT_FOUND = "node(s) not found"


@dataclass(frozen=True)
class Reject:
    reasons: tuple
    unresolvable: bool = True


# -- labels and node selector terms ---------------------------------------------------------------

# -- the filters, in upstream's order -------------------------------------------------------------

def tolerates(tolerations, taint: dict) -> bool:
    for t in tolerations or ():
        eff = t.get("effect") or ""
        if eff and eff != taint.get("effect"):
            continue
        key = t.get("key") or ""
        op = t.get("operator") or "Equal"
        if not key:
            if op == "Exists":
                return True
            continue
        if key != taint.get("key"):
            continue
        if op == "Exists" or (t.get("value") or "") == (taint.get("value") or ""):
            return True
    return False


def node_unschedulable(pi: PodInfo, ni: NodeInfo) -> Reject | None:
    if ni.unschedulable and not tolerates(spec(pi.pod).get("tolerations"), {
            "key": TAINT_UNSCHEDULABLE, "effect": "NoSchedule"}):
        return Reject((ERR_UNSCHEDULABLE,))
    return None


def node_name(pi: PodInfo, ni: NodeInfo) -> Reject | None:
    want = spec(pi.pod).get("nodeName")
    if want and want != ni.name:
        return Reject((ERR_NODE_NAME,))
    return None


def taint_toleration(pi: PodInfo, ni: NodeInfo) -> Reject | None:
    tols = spec(pi.pod).get("tolerations")
    for taint in ni.taints:
        if taint.get("effect") in ("NoSchedule", "NoExecute") and not tolerates(tols, taint):
            return Reject((ERR_TAINT % (taint.get("key", ""), taint.get("value", "")),))
    return None


def node_affinity(pi: PodInfo, ni: NodeInfo) -> Reject | None:
    s = spec(pi.pod)
    for k, v in (s.get("nodeSelector") or {}).items():
        if ni.labels.get(k) != v:
            return Reject((ERR_AFFINITY,))
    req = ((s.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution")
    if req is not None and not selector_terms_match(req.get("nodeSelectorTerms"), ni.name,
                                                    ni.labels):
        return Reject((ERR_AFFINITY,))
    return None


def _ports_conflict(want: tuple, used) -> bool:
    proto, ip, port = want
    for (p2, ip2, port2), n in used.items():
        if n > 0 and port2 == port and p2 == proto and (
                ip == ip2 or ip == "0.0.0.0" or ip2 == "0.0.0.0"):
            return True
    return False


def node_ports(pi: PodInfo, ni: NodeInfo) -> Reject | None:
    if pi.ports and ni.ports and any(_ports_conflict(p, ni.ports) for p in pi.ports):
        return Reject((ERR_PORTS,), unresolvable=False)
    return None


def insufficient(pi: PodInfo, ni: NodeInfo) -> list[str]:
    """NodeResourcesFit's reasons: the pod count first, then each resource that does not fit
    into allocatable minus what the node's pods already request."""
    out = []
    alloc, used = ni.allocatable, ni.requested
    if len(ni.pods) + 1 > alloc.get(PODS, 0):
        out.append(ERR_TOO_MANY_PODS)
    req = pi.requests
    if not req:
        return out
    for name in (CPU, MEMORY, EPHEMERAL):
        want = req.get(name, 0)
        if want and want > alloc.get(name, 0) - used.get(name, 0):
            out.append(f"Insufficient {name}")
    for name in sorted(req):
        if name in (CPU, MEMORY, EPHEMERAL, PODS):
            continue
        if req[name] > alloc.get(name, 0) - used.get(name, 0):
            out.append(f"Insufficient {name}")
    return out


def node_resources_fit(pi: PodInfo, ni: NodeInfo) -> Reject | None:
    why = insufficient(pi, ni)
    return Reject(tuple(why), unresolvable=False) if why else None


FILTERS = (node_unschedulable, node_name, taint_toleration, node_affinity, node_ports,
           node_resources_fit)


def run_filters(pi: PodInfo, ni: NodeInfo) -> Reject | None:
    if ni.node is None:
        return Reject((ERR_NODE_NOT_FOUND,))
    for f in FILTERS:
        r = f(pi, ni)
        if r is not None:
            return r
    return None
