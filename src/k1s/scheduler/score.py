"""Ranking the nodes that passed every filter (upstream's Score plugins, default weights).

- NodeResourcesFit, LeastAllocated (weight 1): the free share of cpu and memory after
  placing the pod, 0-100.
- NodeResourcesBalancedAllocation (weight 1): 100 minus the spread between the cpu and memory
  shares used, so nodes are not filled on one resource only.
- Pod spreading (upstream's default PodTopologySpread over hostnames, weight 2): fewer pods
  of the same controller (ownerReference) on a node score higher.
- TaintToleration (weight 3): fewer untolerated PreferNoSchedule taints score higher.
- NodeAffinity (weight 2): the preferred terms' weights that match, normalised to 0-100.

Request-less pods count as 100 millicores and 200 MB here (upstream's non-zero defaults), so
they spread too. Ties go to the smallest node name: a deterministic choice (upstream picks at
random among the best).
"""

from __future__ import annotations

from k1s.api.nodeselector import term_matches

from .filters import tolerates
from .model import CPU, MEMORY, NodeInfo, PodInfo, spec

W_LEAST, W_BALANCED, W_SPREAD, W_TAINT, W_AFFINITY = 1, 1, 2, 3, 2
MAX_SCORE = 100


def least_allocated(pi: PodInfo, ni: NodeInfo) -> float:
    total = 0.0
    for alloc, used in ((ni.allocatable.get(CPU, 0), ni.nonzero_cpu + pi.nonzero_cpu),
                        (ni.allocatable.get(MEMORY, 0), ni.nonzero_memory + pi.nonzero_memory)):
        if alloc > 0 and used <= alloc:
            total += (alloc - used) * MAX_SCORE / alloc
    return total / 2


def balanced(pi: PodInfo, ni: NodeInfo) -> float:
    fr = []
    for alloc, used in ((ni.allocatable.get(CPU, 0), ni.nonzero_cpu + pi.nonzero_cpu),
                        (ni.allocatable.get(MEMORY, 0), ni.nonzero_memory + pi.nonzero_memory)):
        fr.append(min(used / alloc, 1.0) if alloc > 0 else 1.0)
    std = abs(fr[0] - fr[1]) / 2
    return (1 - std) * MAX_SCORE


def prefer_no_schedule(pi: PodInfo, ni: NodeInfo) -> int:
    tols = [t for t in spec(pi.pod).get("tolerations") or ()
            if not t.get("effect") or t.get("effect") == "PreferNoSchedule"]
    return sum(1 for t in ni.taints if t.get("effect") == "PreferNoSchedule"
               and not tolerates(tols, t))


def preferred_affinity(pi: PodInfo, ni: NodeInfo) -> int:
    terms = ((spec(pi.pod).get("affinity") or {}).get("nodeAffinity") or {}).get(
        "preferredDuringSchedulingIgnoredDuringExecution") or ()
    return sum(int(t.get("weight") or 0) for t in terms
               if term_matches(t.get("preference") or {}, ni.name, ni.labels))


def scores(pi: PodInfo, nodes: list[NodeInfo]) -> dict[str, float]:
    """Total score per node name (higher is better)."""
    same = {n.name: (n.owners.get(pi.owner, 0) if pi.owner else 0) for n in nodes}
    most = max(same.values(), default=0)
    taints = {n.name: prefer_no_schedule(pi, n) for n in nodes}
    most_taints = max(taints.values(), default=0)
    aff = {n.name: preferred_affinity(pi, n) for n in nodes}
    most_aff = max(aff.values(), default=0)
    out = {}
    for n in nodes:
        s = W_LEAST * least_allocated(pi, n) + W_BALANCED * balanced(pi, n)
        s += W_SPREAD * (MAX_SCORE * (most - same[n.name]) / most if most else MAX_SCORE)
        s += W_TAINT * (MAX_SCORE * (most_taints - taints[n.name]) / most_taints
                        if most_taints else MAX_SCORE)
        s += W_AFFINITY * (MAX_SCORE * aff[n.name] / most_aff if most_aff else 0)
        out[n.name] = s
    return out


def pick(pi: PodInfo, nodes: list[NodeInfo]) -> str | None:
    """The best node; ties broken by the smallest name."""
    if not nodes:
        return None
    if len(nodes) == 1:
        return nodes[0].name
    sc = scores(pi, nodes)
    return min(sc, key=lambda name: (-sc[name], name))
