"""The scheduler's view of the cluster, kept incrementally (upstream's scheduler cache).

Nodes with the pods counted on each: pods bound to a node (seen through the informer) and pods
*assumed* there — the scheduler decided and is binding them, and counts them at once so the
next decision never double-books the same resources. An assumed pod becomes a bound one when
the informer shows it with that node, and is forgotten if its bind fails. A pod shown on
another node than assumed simply moves. Every change is O(1) in the number of pods.

Besides: who uses each claim (for ReadWriteOncePod), the volumes promised to claims by binds in
flight, and the selected-node annotations written but maybe not yet seen. Pure: no I/O.
"""

from __future__ import annotations

from .model import NodeInfo, PodInfo


class Cache:
    def __init__(self):
        self.nodes: dict[str, NodeInfo] = {}
        self.pod_node: dict[str, str] = {}          # pod key -> node name it is counted on
        self.assumed: set[str] = set()               # pod keys counted but not yet seen bound
        self.claim_users: dict[str, set[str]] = {}  # claim key -> pod keys counted on nodes
        self.taken_volumes: dict[str, str] = {}      # pv name -> claim key (binds in flight)
        self.selected: dict[str, str] = {}           # claim key -> node written in flight

    # -- nodes -------------------------------------------------------------------------------------
    def _node(self, name: str) -> NodeInfo:
        ni = self.nodes.get(name)
        if ni is None:
            ni = self.nodes[name] = NodeInfo(name)
        return ni

    def set_node(self, node: dict) -> None:
        name = (node.get("metadata") or {}).get("name")
        self._node(name).set_node(node)

    def remove_node(self, name: str) -> None:
        ni = self.nodes.get(name)
        if ni is None:
            return
        if ni.pods:
            ni.set_node(None)       # keep counting its pods until they go (upstream does too)
        else:
            del self.nodes[name]

    def schedulable_nodes(self) -> list[NodeInfo]:
        return [n for n in self.nodes.values() if n.node is not None]

    # -- pods ------------------------------------------------------------------------------------
    def _place(self, pi: PodInfo, node: str) -> None:
        self._unplace(pi.key)
        self._node(node).add_pod(pi)
        self.pod_node[pi.key] = node
        for c in pi.claims:
            self.claim_users.setdefault(f"{pi.namespace}/{c}", set()).add(pi.key)

    def _unplace(self, key: str) -> PodInfo | None:
        node = self.pod_node.pop(key, None)
        if node is None:
            return None
        ni = self.nodes.get(node)
        pi = ni.remove_pod(key) if ni is not None else None
        if ni is not None and ni.node is None and not ni.pods:
            del self.nodes[node]
        if pi is not None:
            for c in pi.claims:
                users = self.claim_users.get(f"{pi.namespace}/{c}")
                if users is not None:
                    users.discard(key)
                    if not users:
                        del self.claim_users[f"{pi.namespace}/{c}"]
        return pi

    def assume(self, pi: PodInfo, node: str) -> None:
        self._place(pi, node)
        self.assumed.add(pi.key)

    def forget(self, key: str) -> None:
        """A bind that failed: stop counting the pod (unless the informer saw it bound)."""
        if key in self.assumed:
            self.assumed.discard(key)
            self._unplace(key)

    def is_assumed(self, key: str) -> bool:
        return key in self.assumed

    def pod_bound(self, pi: PodInfo, node: str) -> None:
        """The informer shows the pod bound to `node` (and not finished)."""
        self.assumed.discard(pi.key)
        self._place(pi, node)

    def pod_gone(self, key: str) -> None:
        """Deleted, or finished (Succeeded/Failed pods hold no resources)."""
        self.assumed.discard(key)
        self._unplace(key)

    def node_of(self, key: str) -> str | None:
        return self.pod_node.get(key)

    def users(self, claim_key: str) -> set[str]:
        return self.claim_users.get(claim_key, set())

    # -- volumes promised by binds in flight -------------------------------------------------------
    def take_volume(self, pv: str, claim_key: str) -> None:
        self.taken_volumes[pv] = claim_key

    def volume_taken(self, pv: str, claim_key: str) -> bool:
        owner = self.taken_volumes.get(pv)
        return owner is not None and owner != claim_key

    def release_volume(self, pv: str) -> None:
        self.taken_volumes.pop(pv, None)
