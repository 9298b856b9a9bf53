"""What the scheduler reads from a pod and from a node, computed once per object.

`PodInfo.of(pod)` holds a pod's resource requests (upstream's resource helpers: the sum over
containers and sidecars, at least each init container's request, plus overhead), its host
ports, the claims it uses and its controlling owner. `NodeInfo` holds a node's allocatable
resources, labels and effective taints, and — kept up to date incrementally by cache.py — the
sum of what the pods on it request, the host ports they hold and how many pods of each owner
it runs: a decision reads these instead of scanning the pods.

Units: cpu in millicores, every other resource in whole units (bytes for memory and
ephemeral-storage); `pods` is the pod count. Pure: no I/O.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from k1s.api.quantity import quantity_to_int, quantity_to_milli

CPU = "cpu"
MEMORY = "memory"
EPHEMERAL = "ephemeral-storage"
PODS = "pods"

# Upstream's non-zero defaults used when *scoring* a pod that requests nothing, so that
# request-less pods still spread (pkg/scheduler/util: 100 millicores, 200 MB).
DEFAULT_MILLI_CPU = 100
DEFAULT_MEMORY = 200 * 1024 * 1024

DEFAULT_SCHEDULER = "default-scheduler"
TERMINAL_PHASES = ("Succeeded", "Failed")

# Taints the node lifecycle controller puts on nodes that are not Ready (TaintNodesByCondition);
# the scheduler implies them when they are missing, so a NotReady node is refused the same way.
TAINT_NOT_READY = "node.kubernetes.io/not-ready"
TAINT_UNREACHABLE = "node.kubernetes.io/unreachable"
TAINT_UNSCHEDULABLE = "node.kubernetes.io/unschedulable"


def meta(obj: dict) -> dict:
    return obj.get("metadata") or {}


def spec(obj: dict) -> dict:
    return obj.get("spec") or {}


def status(obj: dict) -> dict:
    return obj.get("status") or {}


def pod_key(pod: dict) -> str:
    md = meta(pod)
    return f"{md.get('namespace') or 'default'}/{md.get('name')}"


def _quantity(name: str, value) -> int:
    try:
        return quantity_to_milli(value) if name == CPU else quantity_to_int(value)
    except Exception:           # validation refuses bad quantities; never crash on one
        return 0


def _requests(container: dict) -> dict[str, int]:
    res = container.get("resources") or {}
    # requests default to limits when only limits are given (upstream defaulting)
    raw = dict(res.get("limits") or {})
    raw.update(res.get("requests") or {})
    return {k: _quantity(k, v) for k, v in raw.items()}


def _add(into: dict[str, int], more: dict[str, int]) -> None:
    for k, v in more.items():
        into[k] = into.get(k, 0) + v


def pod_requests(pod: dict) -> dict[str, int]:
    """Upstream's effective request: max(sum of containers and sidecars, each init container
    plus the sidecars started before it) + overhead."""
    s = spec(pod)
    total: dict[str, int] = {}
    for c in s.get("containers") or ():
        _add(total, _requests(c))
    sidecars: dict[str, int] = {}
    init_peak: dict[str, int] = {}
    for c in s.get("initContainers") or ():
        r = _requests(c)
        if c.get("restartPolicy") == "Always":
            _add(sidecars, r)
            _add(total, r)
            cur = dict(sidecars)
        else:
            cur = dict(sidecars)
            _add(cur, r)
        for k, v in cur.items():
            init_peak[k] = max(init_peak.get(k, 0), v)
    for k, v in init_peak.items():
        total[k] = max(total.get(k, 0), v)
    for k, v in (s.get("overhead") or {}).items():
        total[k] = total.get(k, 0) + _quantity(k, v)
    return {k: v for k, v in total.items() if v}


def claim_names(pod: dict) -> tuple[str, ...]:
    """The claims a pod's volumes use: persistentVolumeClaim sources and generic ephemeral
    volumes (whose claim is named <pod>-<volume>)."""
    out = []
    name = meta(pod).get("name") or ""
    for v in spec(pod).get("volumes") or ():
        pvc = v.get("persistentVolumeClaim")
        if pvc and pvc.get("claimName"):
            out.append(pvc["claimName"])
        elif v.get("ephemeral"):
            out.append(f"{name}-{v.get('name')}")
    return tuple(out)


def host_ports(pod: dict) -> tuple[tuple[str, str, int], ...]:
    out = []
    for c in spec(pod).get("containers") or ():
        for p in c.get("ports") or ():
            hp = p.get("hostPort") or 0
            if hp > 0:
                out.append((p.get("protocol") or "TCP", p.get("hostIP") or "0.0.0.0", hp))
    return tuple(out)


def controller_uid(pod: dict) -> str | None:
    for ref in meta(pod).get("ownerReferences") or ():
        if ref.get("controller"):
            return ref.get("uid")
    return None


def is_terminal(pod: dict) -> bool:
    return status(pod).get("phase") in TERMINAL_PHASES


def wants_scheduling(pod: dict, scheduler_name: str = DEFAULT_SCHEDULER) -> bool:
    """A pod for this scheduler with no node yet, not terminating, not finished and not held
    back by schedulingGates."""
    s = spec(pod)
    return (not s.get("nodeName") and not s.get("schedulingGates") and (s.get("schedulerName") or DEFAULT_SCHEDULER)
            == scheduler_name and not meta(pod).get("deletionTimestamp")
            and not is_terminal(pod))


@dataclass
class PodInfo:
    key: str
    namespace: str
    name: str
    uid: str
    requests: dict
    ports: tuple
    claims: tuple
    owner: str | None
    pod: dict = field(repr=False, compare=False)

    @classmethod
    def of(cls, pod: dict) -> "PodInfo":
        md = meta(pod)
        return cls(key=pod_key(pod), namespace=md.get("namespace") or "default",
                   name=md.get("name") or "", uid=md.get("uid") or "",
                   requests=pod_requests(pod), ports=host_ports(pod), claims=claim_names(pod),
                   owner=controller_uid(pod), pod=pod)

    @property
    def nonzero_cpu(self) -> int:
        return self.requests.get(CPU) or DEFAULT_MILLI_CPU

    @property
    def nonzero_memory(self) -> int:
        return self.requests.get(MEMORY) or DEFAULT_MEMORY


def ready_status(node: dict) -> str:
    for c in status(node).get("conditions") or ():
        if c.get("type") == "Ready":
            return c.get("status") or "Unknown"
    return "Unknown"


def effective_taints(node: dict) -> tuple[dict, ...]:
    """The node's taints, plus the not-ready/unreachable NoSchedule taint when the Ready
    condition is not True and no controller has put one there yet."""
    taints = [t for t in spec(node).get("taints") or () if isinstance(t, dict)]
    ready = ready_status(node)
    if ready != "True":
        key = TAINT_NOT_READY if ready == "False" else TAINT_UNREACHABLE
        if not any(t.get("key") in (TAINT_NOT_READY, TAINT_UNREACHABLE)
                   and t.get("effect") in ("NoSchedule", "NoExecute") for t in taints):
            taints.append({"key": key, "effect": "NoSchedule"})
    return tuple(taints)


def allocatable(node: dict) -> dict[str, int]:
    st = status(node)
    raw = st.get("allocatable") or st.get("capacity") or {}
    return {k: _quantity(k, v) for k, v in raw.items()}


class NodeInfo:
    """One node and the pods the scheduler counts on it (bound or assumed)."""

    __slots__ = ("name", "node", "labels", "allocatable", "taints", "unschedulable",
                 "requested", "nonzero_cpu", "nonzero_memory", "pods", "ports", "owners")

    def __init__(self, name: str):
        self.name = name
        self.node: dict | None = None       # None: pods point at a node we have not seen
        self.labels: dict = {}
        self.allocatable: dict[str, int] = {}
        self.taints: tuple = ()
        self.unschedulable = False
        self.requested: dict[str, int] = {}
        self.nonzero_cpu = 0
        self.nonzero_memory = 0
        self.pods: dict[str, PodInfo] = {}
        self.ports: Counter = Counter()
        self.owners: Counter = Counter()

    def set_node(self, node: dict | None) -> None:
        self.node = node
        if node is None:
            self.labels, self.allocatable, self.taints, self.unschedulable = {}, {}, (), False
            return
        self.labels = dict(meta(node).get("labels") or {})
        self.allocatable = allocatable(node)
        self.taints = effective_taints(node)
        self.unschedulable = bool(spec(node).get("unschedulable"))

    def add_pod(self, pi: PodInfo) -> None:
        if pi.key in self.pods:
            self.remove_pod(pi.key)
        self.pods[pi.key] = pi
        for k, v in pi.requests.items():
            self.requested[k] = self.requested.get(k, 0) + v
        self.nonzero_cpu += pi.nonzero_cpu
        self.nonzero_memory += pi.nonzero_memory
        self.ports.update(pi.ports)
        if pi.owner:
            self.owners[pi.owner] += 1

    def remove_pod(self, key: str) -> PodInfo | None:
        pi = self.pods.pop(key, None)
        if pi is None:
            return None
        for k, v in pi.requests.items():
            left = self.requested.get(k, 0) - v
            if left:
                self.requested[k] = left
            else:
                self.requested.pop(k, None)
        self.nonzero_cpu -= pi.nonzero_cpu
        self.nonzero_memory -= pi.nonzero_memory
        self.ports.subtract(pi.ports)
        self.ports = +self.ports
        if pi.owner:
            self.owners[pi.owner] -= 1
            if self.owners[pi.owner] <= 0:
                del self.owners[pi.owner]
        return pi
