"""The namespace controller's decisions, as pure functions.

A namespace with deletionTimestamp and the `kubernetes` entry in spec.finalizers is emptied:
every namespaced object in it is deleted (Background propagation, as upstream's
namespaced-resources deleter does), and once nothing is left the `kubernetes` finalizer is
removed through the `finalize` subresource, after which the API server removes the namespace.

`plan_deletions(content)` says which objects to delete; `plan(namespace, remaining, errors, now)`
gives the status to write (phase Terminating and upstream's five deletion conditions, with
upstream's reasons and messages) and whether to finalize or to look again later.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Sequence, Union

FINALIZER_KUBERNETES = "kubernetes"
TERMINATING = "Terminating"

# Condition types the deleter maintains, in upstream's order, with the reason and message of
# their "all is well" (status False) form.
CONDITION_TYPES = (
    "NamespaceDeletionDiscoveryFailure",
    "NamespaceDeletionGroupVersionParsingFailure",
    "NamespaceDeletionContentFailure",
    "NamespaceContentRemaining",
    "NamespaceFinalizersRemaining",
)
OK_REASONS = {
    "NamespaceDeletionDiscoveryFailure": "ResourcesDiscovered",
    "NamespaceDeletionGroupVersionParsingFailure": "ParsedGroupVersions",
    "NamespaceDeletionContentFailure": "ContentDeleted",
    "NamespaceContentRemaining": "ContentRemoved",
    "NamespaceFinalizersRemaining": "ContentRemoved",
}
OK_MESSAGES = {
    "NamespaceDeletionDiscoveryFailure": "All resources successfully discovered",
    "NamespaceDeletionGroupVersionParsingFailure": "All legacy kube types successfully parsed",
    "NamespaceDeletionContentFailure":
        "All content successfully deleted, may be waiting on finalization",
    "NamespaceContentRemaining": "All content successfully removed",
    "NamespaceFinalizersRemaining": "All content successfully removed",
}

# How long to wait before looking again (upstream estimates pod grace periods and assumes 15 s
# for finalizers; we look sooner, as a local cluster's finalizers are quick, then back off).
RECHECK_TERMINATING = 0.5
RECHECK_FINALIZERS = 1.0


@dataclass(frozen=True, slots=True)
class Item:
    """One object found in the namespace."""
    group: str
    plural: str
    name: str
    deleting: bool = False
    finalizers: tuple[str, ...] = ()

    @classmethod
    def from_object(cls, group: str, plural: str, obj: dict) -> "Item":
        md = obj.get("metadata") or {}
        return cls(group, plural, md.get("name", ""), bool(md.get("deletionTimestamp")),
                   tuple(md.get("finalizers") or ()))


# -- actions ---------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class DeleteContent:
    group: str
    plural: str
    name: str


@dataclass(frozen=True, slots=True)
class UpdateStatus:
    status: dict


@dataclass(frozen=True, slots=True)
class Finalize:
    finalizers: tuple[str, ...]     # spec.finalizers to keep


@dataclass(frozen=True, slots=True)
class Requeue:
    after: float
    reason: str


Action = Union[DeleteContent, UpdateStatus, Finalize, Requeue]


def needs_cleanup(ns: dict) -> bool:
    """The namespace is being deleted and still carries our finalizer."""
    return bool((ns.get("metadata") or {}).get("deletionTimestamp")) and \
        FINALIZER_KUBERNETES in ((ns.get("spec") or {}).get("finalizers") or ())


def plan_deletions(content: Sequence[Item]) -> list[DeleteContent]:
    """Delete everything not already on its way out (a second DELETE would change nothing)."""
    return [DeleteContent(i.group, i.plural, i.name) for i in content if not i.deleting]


def conditions_for(remaining: Sequence[Item], errors: Sequence[str]) -> list[dict]:
    """The deletion conditions, without transition times (see merge_conditions)."""
    new: dict[str, dict] = {}
    if errors:
        msgs = sorted(errors)
        new["NamespaceDeletionContentFailure"] = {
            "reason": "ContentDeletionFailed",
            "message": f"Failed to delete all resource types, {len(msgs)} remaining: "
                       + ", ".join(msgs)}
    if remaining:
        per_resource = Counter((i.plural, i.group) for i in remaining)
        # upstream prints "<resource>.<group>", so core resources end in a dot ("pods.")
        parts = sorted(f"{p}.{g} has {n} resource instances" for (p, g), n in per_resource.items())
        new["NamespaceContentRemaining"] = {
            "reason": "SomeResourcesRemain",
            "message": "Some resources are remaining: " + ", ".join(parts)}
        per_finalizer = Counter(f for i in remaining for f in i.finalizers)
        if per_finalizer:
            parts = sorted(f"{f} in {n} resource instances" for f, n in per_finalizer.items())
            new["NamespaceFinalizersRemaining"] = {
                "reason": "SomeFinalizerRemain",
                "message": "Some finalizers are remaining: " + ", ".join(parts)}
    out = []
    for t in CONDITION_TYPES:
        if t in new:
            out.append({"type": t, "status": "True", **new[t]})
        else:
            out.append({"type": t, "status": "False", "reason": OK_REASONS[t],
                        "message": OK_MESSAGES[t]})
    return out


def merge_conditions(old: Sequence[dict], new: Sequence[dict], now: str) -> list[dict]:
    """Upstream's updateConditions: keep conditions of other types, update ours in place, and
    move lastTransitionTime only when a condition's status flips."""
    by_type = {c.get("type"): c for c in new}
    out: list[dict] = []
    seen: set[str] = set()
    for c in old:
        t = c.get("type")
        if t in by_type:
            n = by_type[t]
            merged = dict(c, **{k: n[k] for k in ("status", "reason", "message")})
            if c.get("status") != n["status"] or not c.get("lastTransitionTime"):
                merged["lastTransitionTime"] = now
            out.append(merged)
            seen.add(t)
        else:
            out.append(c)
    for n in new:
        if n["type"] not in seen:
            out.append({**n, "lastTransitionTime": now})
    return out


def desired_status(ns: dict, remaining: Sequence[Item], errors: Sequence[str],
                   now: str) -> dict | None:
    """The namespace status to write, or None when it is already right."""
    status = ns.get("status") or {}
    old = status.get("conditions") or []
    merged = merge_conditions(old, conditions_for(remaining, errors), now)
    if status.get("phase") == TERMINATING and merged == old:
        return None
    return {**status, "phase": TERMINATING, "conditions": merged}


def plan(ns: dict, remaining: Sequence[Item], errors: Sequence[str], now: str) -> list[Action]:
    """After a deletion pass: the status to record, then finalize or look again later."""
    if not needs_cleanup(ns):
        return []
    actions: list[Action] = []
    status = desired_status(ns, remaining, errors, now)
    if status is not None:
        actions.append(UpdateStatus(status))
    if errors:
        actions.append(Requeue(RECHECK_FINALIZERS, "some content could not be deleted"))
    elif remaining:
        with_finalizers = any(i.finalizers for i in remaining)
        actions.append(Requeue(RECHECK_FINALIZERS if with_finalizers else RECHECK_TERMINATING,
                               "some content remains"))
    else:
        keep = tuple(f for f in (ns.get("spec") or {}).get("finalizers") or ()
                     if f != FINALIZER_KUBERNETES)
        actions.append(Finalize(keep))
    return actions
