"""The garbage collector's decisions for one object, as a pure function.

`plan(item, dependents, owners)` takes what the collector knows about one object -- its live
state, its dependents from the graph, and the verified status of each of its owners -- and
returns the actions to take. The controller performs them; nothing here does I/O.

Rules (upstream pkg/controller/garbagecollector, attemptToDeleteItem / processDeletingDependents /
attemptToOrphan):

An object being deleted (deletionTimestamp set)
  O1  with the `orphan` finalizer: remove its entry from every dependent's ownerReferences, then
      remove the finalizer.
  F1  with `foregroundDeletion` and no dependent whose reference has blockOwnerDeletion=true:
      remove the finalizer (non-blocking dependents do not hold it back).
  F2  with `foregroundDeletion` and blocking dependents: wait; re-check the dependents that are
      not yet being deleted (each decides its own fate from its other owners).
  D0  otherwise: a one-way trip to removal; nothing to do.
An object not being deleted, with ownerReferences, each owner classified as
  solid (exists, not waiting for dependents), dangling (absent: not found, other UID, or a
  cross-namespace reference), waiting (exists, deleting in foreground):
  N0  no ownerReferences: nothing to do.
  N1  an owner it cannot resolve (unknown kind; namespaced owner of a cluster-scoped object):
      never collected; the invalid-scope case is reported as OwnerRefInvalidNamespace.
  N2  some solid owner: keep it, but remove the references to dangling and waiting owners (a
      waiting owner would otherwise wait for it forever).
  N3  no solid owner, some waiting owner, and dependents of its own: delete it in Foreground
      (first making its own references non-blocking when one of its dependents -- any, blocking
      or not -- is itself deleting in foreground, which breaks ownership cycles; like upstream's
      guard this has false positives, and the waiting owner is then released before it is gone).
  N4  otherwise all owners are gone: delete it, honouring a propagation finalizer already on it
      (orphan -> Orphan, foregroundDeletion -> Foreground), else Background.
Cross-namespace references also produce an OwnerRefInvalidNamespace warning (N2, N4).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Mapping, Sequence, Union

from .graph import FOREGROUND, ORPHAN, Node, ObjectRef


class OwnerStatus(enum.Enum):
    PRESENT = "present"                    # exists with the referenced UID
    ABSENT = "absent"                      # verified not found, or another UID under that name
    WAITING = "waiting"                    # exists, deletionTimestamp + foregroundDeletion
    INVALID_NAMESPACE = "invalid-namespace"  # namespaced owner seen in another namespace
    INVALID_SCOPE = "invalid-scope"        # cluster-scoped dependent names a namespaced kind
    UNKNOWN_KIND = "unknown-kind"          # apiVersion/kind this server does not serve


@dataclass(frozen=True, slots=True)
class DependentView:
    """A dependent of the planned object, as the graph sees it."""
    ref: ObjectRef
    blocks_owner: bool          # its reference to the planned object has blockOwnerDeletion
    deleting: bool = False
    deleting_dependents: bool = False

    @classmethod
    def of(cls, dependent: Node, owner_uid: str) -> "DependentView":
        return cls(dependent.ref, dependent.blocks(owner_uid), dependent.deleting,
                   dependent.deleting_dependents)


# -- actions ---------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class DeleteObject:
    ref: ObjectRef
    propagation: str            # "Background" | "Foreground" | "Orphan"


@dataclass(frozen=True, slots=True)
class RemoveOwnerRef:
    dependent: ObjectRef
    owner_uid: str


@dataclass(frozen=True, slots=True)
class UnblockOwnerRefs:
    """Set blockOwnerDeletion=false on every ownerReference of ref."""
    ref: ObjectRef


@dataclass(frozen=True, slots=True)
class RemoveFinalizer:
    owner: ObjectRef
    finalizer: str


@dataclass(frozen=True, slots=True)
class Wait:
    reason: str
    recheck: tuple[ObjectRef, ...] = ()   # objects whose own decision should be (re)made now


@dataclass(frozen=True, slots=True)
class Warn:
    ref: ObjectRef
    reason: str
    message: str


Action = Union[DeleteObject, RemoveOwnerRef, UnblockOwnerRefs, RemoveFinalizer, Wait, Warn]

BACKGROUND_POLICY, FOREGROUND_POLICY, ORPHAN_POLICY = "Background", "Foreground", "Orphan"


def invalid_namespace_warning(item: Node, owner_uid: str) -> Warn:
    o = item.owner(owner_uid)
    assert o is not None
    owner_id = ObjectRef(o.api_version, o.kind, item.ref.namespace, o.name, o.uid)
    return Warn(item.ref, "OwnerRefInvalidNamespace",
                f'ownerRef {owner_id} does not exist in namespace "{item.ref.namespace}"')


def plan(item: Node, dependents: Sequence[DependentView],
         owners: Mapping[str, OwnerStatus]) -> list[Action]:
    """The actions for one object. `owners` maps each ownerReference UID of item to its status
    (only consulted when item is not being deleted)."""
    if item.deleting:
        return _plan_deleting(item, dependents)
    return _plan_live(item, dependents, owners)


def _plan_deleting(item: Node, dependents: Sequence[DependentView]) -> list[Action]:
    if ORPHAN in item.finalizers:                                              # O1
        actions: list[Action] = [RemoveOwnerRef(d.ref, item.uid) for d in dependents]
        actions.append(RemoveFinalizer(item.ref, ORPHAN))
        return actions
    if FOREGROUND in item.finalizers:
        if not any(d.blocks_owner for d in dependents):                        # F1
            return [RemoveFinalizer(item.ref, FOREGROUND)]
        return [Wait("waiting for dependents to be deleted",                   # F2
                     tuple(d.ref for d in dependents if not d.deleting))]
    return []                                                                  # D0


def _plan_live(item: Node, dependents: Sequence[DependentView],
               owners: Mapping[str, OwnerStatus]) -> list[Action]:
    if not item.owners:                                                        # N0
        return []
    statuses = [(o.uid, owners.get(o.uid, OwnerStatus.PRESENT)) for o in item.owners]
    if any(s is OwnerStatus.INVALID_SCOPE or s is OwnerStatus.UNKNOWN_KIND for _, s in statuses):
        return [invalid_namespace_warning(item, u)                             # N1
                for u, s in statuses if s is OwnerStatus.INVALID_SCOPE]
    solid = [u for u, s in statuses if s is OwnerStatus.PRESENT]
    dangling = [u for u, s in statuses
                if s is OwnerStatus.ABSENT or s is OwnerStatus.INVALID_NAMESPACE]
    waiting = [u for u, s in statuses if s is OwnerStatus.WAITING]
    warnings: list[Action] = [invalid_namespace_warning(item, u) for u, s in statuses
                              if s is OwnerStatus.INVALID_NAMESPACE]
    if solid:                                                                  # N2
        return warnings + [RemoveOwnerRef(item.ref, u) for u in dangling + waiting]
    if waiting and dependents:                                                 # N3
        actions: list[Action] = []
        if any(d.deleting_dependents for d in dependents):
            actions.append(UnblockOwnerRefs(item.ref))
        actions.append(DeleteObject(item.ref, FOREGROUND_POLICY))
        return actions
    if ORPHAN in item.finalizers:                                              # N4
        policy = ORPHAN_POLICY
    elif FOREGROUND in item.finalizers:
        policy = FOREGROUND_POLICY
    else:
        policy = BACKGROUND_POLICY
    return warnings + [DeleteObject(item.ref, policy)]
