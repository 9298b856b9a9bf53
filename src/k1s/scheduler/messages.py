"""The words the scheduler writes: upstream's FitError message, events and condition reasons.

The FailedScheduling message (PodScheduled condition and event) is built as upstream's
FitError.Error() builds it:

    0/<N> nodes are available: <why>. <post-filter>

<why> is either the one PreFilter message (no counts: it applies to the pod, not to a node), or
the histogram of per-node filter reasons, each "<count> <reason>", sorted as strings and joined
with ", ". The post-filter part is what upstream's PostFilter plugins say when they could not
help (as in v1.32's default profile, which runs no dynamic-resource-allocation PostFilter):
preemption's own histogram, "Preemption is not helpful for scheduling" for nodes rejected as
unresolvable and "No preemption victims found for incoming pod" for the others (k1s does not
preempt; upstream answers that too when no lower-priority pod can be evicted).
"""

from __future__ import annotations

from collections import Counter

from .filters import Reject

COMPONENT = "default-scheduler"
REASON_UNSCHEDULABLE = "Unschedulable"
REASON_SCHEDULER_ERROR = "SchedulerError"
EVENT_FAILED = "FailedScheduling"
EVENT_SCHEDULED = "Scheduled"

NO_NODES = "no nodes available to schedule pods"
NOT_HELPFUL = "Preemption is not helpful for scheduling"
NO_VICTIMS = "No preemption victims found for incoming pod"


def histogram(items) -> str:
    """ "<count> <reason>" per distinct reason, sorted as strings, comma separated."""
    c = Counter(items)
    return ", ".join(sorted(f"{n} {r}" for r, n in c.items()))


def _preemption(num_nodes: int, rejects) -> str:
    helps = [NOT_HELPFUL if r.unresolvable else NO_VICTIMS for r in rejects]
    return f"preemption: 0/{num_nodes} nodes are available: {histogram(helps)}."


def fit_error(num_nodes: int, *, prefilter: str | None = None,
              prefilter_unresolvable: bool = True,
              rejects: dict[str, Reject] | None = None) -> str:
    """The message for a pod no node could take. `prefilter`: a PreFilter failure (it then
    stands for every node); otherwise `rejects` maps node name -> its Reject."""
    if num_nodes == 0:
        return NO_NODES
    msg = f"0/{num_nodes} nodes are available:"
    if prefilter is not None:
        msg += f" {prefilter}."
        all_rejects = [Reject((prefilter,), prefilter_unresolvable)] * num_nodes
        return f"{msg} {_preemption(num_nodes, all_rejects)}"
    rejects = rejects or {}
    reasons = [r for rej in rejects.values() for r in rej.reasons]
    if reasons:
        msg += f" {histogram(reasons)}."
    # v1.32 runs no DynamicResources PostFilter by default, so its "no new claims to
    # deallocate, " does not appear before the preemption part (it does in later releases)
    return f"{msg} {_preemption(num_nodes, list(rejects.values()))}"


def scheduled(namespace: str, name: str, node: str) -> str:
    return f"Successfully assigned {namespace}/{name} to {node}"
