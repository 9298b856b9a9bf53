"""The garbage collector's dependency graph: owner UID -> dependents, built from informer events.

Pure data, no I/O. The graph holds one `Node` per object the informers have shown us (keyed by
UID) and, for every UID named in some ownerReference, the set of dependents naming it -- also for
owners never observed ("virtual" owners in upstream's words), because those are exactly the
references that may dangle.

`observe(node)` and `forget(uid)` return the UIDs whose garbage-collection decision may have
changed; the controller puts them on its work queue. The rules for what to re-check follow
upstream's graph builder:
- a new object, or one whose owner set changed, is checked when one of its owners is not known to
  be alive and valid here (unobserved, being deleted, or in another namespace);
- an object being deleted with the `orphan` or `foregroundDeletion` finalizer is checked (it has
  work for the collector);
- a removed object wakes its dependents (their owner may now be gone) and its owners that wait in
  foreground deletion (they may be unblocked); an object whose references change wakes the same
  kind of owners.
"""

from __future__ import annotations

from dataclasses import dataclass

from k1s.api import registry

# The finalizers the API server adds for DeleteOptions.propagationPolicy (metav1 names).
FOREGROUND = "foregroundDeletion"
ORPHAN = "orphan"


@dataclass(frozen=True, slots=True)
class ObjectRef:
    """Who an object is: enough to GET or DELETE it and to check it is the same incarnation."""
    api_version: str
    kind: str
    namespace: str      # "" for cluster-scoped objects
    name: str
    uid: str

    def __str__(self) -> str:
        # upstream's objectReference.String(), which appears in event messages
        return (f"[{self.api_version}/{self.kind}, namespace: {self.namespace}, "
                f"name: {self.name}, uid: {self.uid}]")

    @property
    def resource(self) -> registry.Resource | None:
        return registry.by_api_version(self.api_version, self.kind)


@dataclass(frozen=True, slots=True)
class OwnerRef:
    """One metadata.ownerReferences entry."""
    api_version: str
    kind: str
    name: str
    uid: str
    controller: bool = False
    block_owner_deletion: bool = False

    @classmethod
    def from_dict(cls, d: dict) -> "OwnerRef":
        return cls(d.get("apiVersion", ""), d.get("kind", ""), d.get("name", ""),
                   d.get("uid", ""), bool(d.get("controller")),
                   bool(d.get("blockOwnerDeletion")))

    @property
    def resource(self) -> registry.Resource | None:
        return registry.by_api_version(self.api_version, self.kind)


@dataclass(frozen=True, slots=True)
class Node:
    """What the collector needs to know about one object."""
    ref: ObjectRef
    owners: tuple[OwnerRef, ...] = ()
    deleting: bool = False              # metadata.deletionTimestamp is set
    finalizers: tuple[str, ...] = ()

    @property
    def uid(self) -> str:
        return self.ref.uid

    @property
    def deleting_dependents(self) -> bool:
        """Foreground deletion in progress: the object waits for its blocking dependents."""
        return self.deleting and FOREGROUND in self.finalizers

    @property
    def orphaning(self) -> bool:
        return self.deleting and ORPHAN in self.finalizers

    def owner(self, uid: str) -> OwnerRef | None:
        for o in self.owners:
            if o.uid == uid:
                return o
        return None

    def blocks(self, owner_uid: str) -> bool:
        """Whether this object's reference to owner_uid has blockOwnerDeletion=true."""
        o = self.owner(owner_uid)
        return o is not None and o.block_owner_deletion


def node_from_object(obj: dict, api_version: str | None = None, kind: str | None = None) -> Node:
    """Build a Node from an API object. List items carry no apiVersion/kind, so the caller
    (who knows which resource it listed) passes them."""
    meta = obj.get("metadata") or {}
    ref = ObjectRef(api_version or obj.get("apiVersion", ""), kind or obj.get("kind", ""),
                    meta.get("namespace") or "", meta.get("name", ""), meta.get("uid", ""))
    owners = tuple(OwnerRef.from_dict(o) for o in meta.get("ownerReferences") or ())
    return Node(ref, owners, bool(meta.get("deletionTimestamp")),
                tuple(meta.get("finalizers") or ()))


class Graph:
    """UID -> Node for observed objects, and owner UID -> dependent UIDs for every reference."""

    def __init__(self) -> None:
        self._nodes: dict[str, Node] = {}
        self._dependents: dict[str, set[str]] = {}

    # -- queries ------------------------------------------------------------------------------
    def node(self, uid: str) -> Node | None:
        return self._nodes.get(uid)

    def __contains__(self, uid: str) -> bool:
        return uid in self._nodes

    def __len__(self) -> int:
        return len(self._nodes)

    def dependents(self, uid: str) -> list[Node]:
        """The observed objects naming uid in their ownerReferences (sorted for determinism)."""
        return [self._nodes[d] for d in sorted(self._dependents.get(uid, ())) if d in self._nodes]

    def dependent_uids(self, uid: str) -> set[str]:
        return set(self._dependents.get(uid, ()))

    def cross_namespace(self, node: Node, owner: OwnerRef) -> bool:
        """A namespaced object naming a namespaced owner that we have seen in another namespace.

        Such a reference never resolves (owners are looked up in the dependent's namespace), so
        upstream treats the owner as absent and reports OwnerRefInvalidNamespace."""
        if not node.ref.namespace:
            return False
        owner_node = self._nodes.get(owner.uid)
        return (owner_node is not None and owner_node.ref.namespace != ""
                and owner_node.ref.namespace != node.ref.namespace)

    def _owner_needs_check(self, node: Node, owner: OwnerRef) -> bool:
        owner_node = self._nodes.get(owner.uid)
        if owner_node is None or owner_node.deleting:
            return True
        if not node.ref.namespace and owner_node.ref.namespace:
            return True          # cluster-scoped dependent, namespaced owner: invalid
        return self.cross_namespace(node, owner)

    # -- changes ------------------------------------------------------------------------------
    def observe(self, node: Node) -> set[str]:
        """Record an added or updated object; return the UIDs to re-check."""
        uid = node.uid
        old = self._nodes.get(uid)
        self._nodes[uid] = node
        old_owner_uids = {o.uid for o in old.owners} if old else set()
        new_owner_uids = {o.uid for o in node.owners}
        for gone in old_owner_uids - new_owner_uids:
            self._unlink(gone, uid)
        for added in new_owner_uids - old_owner_uids:
            self._dependents.setdefault(added, set()).add(uid)

        wake: set[str] = set()
        if node.owners and (old is None or old.owners != node.owners):
            if any(self._owner_needs_check(node, o) for o in node.owners):
                wake.add(uid)
        if node.deleting_dependents or node.orphaning:
            wake.add(uid)
        if old is not None and (old.owners != node.owners or old.deleting != node.deleting):
            # owners waiting for this object in foreground deletion may be unblocked now
            wake |= self._waiting_owners(old_owner_uids | new_owner_uids)
        return wake

    def forget(self, uid: str) -> set[str]:
        """Record that an object is gone; return the UIDs to re-check."""
        node = self._nodes.pop(uid, None)
        if node is None:
            return set()
        owner_uids = {o.uid for o in node.owners}
        for o in owner_uids:
            self._unlink(o, uid)
        # dependents keep their (now dangling) references, so the reverse entry stays
        return self.dependent_uids(uid) | self._waiting_owners(owner_uids)

    def _unlink(self, owner_uid: str, dependent_uid: str) -> None:
        deps = self._dependents.get(owner_uid)
        if deps is not None:
            deps.discard(dependent_uid)
            if not deps:
                del self._dependents[owner_uid]

    def _waiting_owners(self, uids: set[str]) -> set[str]:
        return {u for u in uids if (n := self._nodes.get(u)) is not None and n.deleting_dependents}
