"""What the volume-expansion controller should do for a claim: pure functions, no I/O.

Upstream (1.32, RecoverVolumeExpansionFailure on) splits growth into a controller step
(external-resizer: ControllerExpandVolume, then PV spec.capacity) and a node step (kubelet:
NodeExpandVolume, then claim status.capacity). k1s does both on the one node but shows the same
claim status sequence:

  start      conditions [Resizing], allocatedResources {storage: new},
             allocatedResourceStatuses {storage: ControllerResizeInProgress}
  controller image grown, PV capacity = new; conditions [FileSystemResizePending],
             allocatedResourceStatuses {storage: NodeResizePending}
  node       filesystem grown; status.capacity = new, conditions cleared, the storage key
             removed from allocatedResourceStatuses (allocatedResources stays)

Each stage is derived from what the objects say now, so a crash anywhere converges.
"""

from __future__ import annotations

import copy
from decimal import Decimal

from k1s.api.quantity import parse_quantity
from k1s.controllers.local_provisioner import planner as prov

RESIZING = "Resizing"
FS_RESIZE_PENDING = "FileSystemResizePending"
CONTROLLER_RESIZE_ERROR = "ControllerResizeError"
CONTROLLER_IN_PROGRESS = "ControllerResizeInProgress"
NODE_PENDING = "NodeResizePending"
FS_PENDING_MESSAGE = ("Waiting for user to (re-)start a pod to finish file system resize of "
                      "volume on node.")


def _q(value) -> Decimal | None:
    try:
        return parse_quantity(value) if value is not None else None
    except Exception:
        return None


def requested(claim: dict) -> str | None:
    return (((claim.get("spec") or {}).get("resources") or {}).get("requests") or {}).get("storage")


def stage(claim: dict, pv: dict | None, sc: dict | None, node: str) -> str | None:
    """"controller" (the volume must grow), "node" (the volume grew, the claim does not show
    it yet), or None (nothing to do here)."""
    if pv is None or sc is None or not sc.get("allowVolumeExpansion"):
        return None
    if (claim.get("status") or {}).get("phase") != "Bound":
        return None
    if not prov.volume_is_ours(pv, node):
        return None
    if (claim.get("spec") or {}).get("volumeName") != pv["metadata"]["name"]:
        return None
    want = _q(requested(claim))
    have = _q(((claim.get("status") or {}).get("capacity") or {}).get("storage"))
    pv_cap = _q(((pv.get("spec") or {}).get("capacity") or {}).get("storage"))
    if want is None or have is None or want <= have:
        return None
    if pv_cap is None or pv_cap < want:
        return "controller"
    return "node"


def _set_condition(conds: list[dict], type_: str, now: str, message: str = "") -> list[dict]:
    out = [c for c in conds if c.get("type") != type_]
    cond = {"type": type_, "status": "True", "lastProbeTime": None, "lastTransitionTime": now}
    if message:
        cond["message"] = message
    return out + [cond]


def start_status(status: dict, new_size: str, now: str) -> dict:
    """Resizing condition, allocatedResources and ControllerResizeInProgress."""
    s = copy.deepcopy(status or {})
    conds = [c for c in s.get("conditions") or () if c.get("type") not in
             (FS_RESIZE_PENDING, CONTROLLER_RESIZE_ERROR)]
    if not any(c.get("type") == RESIZING for c in conds):
        conds = _set_condition(conds, RESIZING, now)
    s["conditions"] = conds
    s["allocatedResources"] = dict(s.get("allocatedResources") or {}, storage=new_size)
    s["allocatedResourceStatuses"] = dict(s.get("allocatedResourceStatuses") or {},
                                          storage=CONTROLLER_IN_PROGRESS)
    return s


def failed_status(status: dict, message: str, now: str) -> dict:
    s = copy.deepcopy(status or {})
    s["conditions"] = _set_condition([c for c in s.get("conditions") or ()
                                      if c.get("type") != RESIZING],
                                     CONTROLLER_RESIZE_ERROR, now, message)
    return s


def node_pending_status(status: dict, now: str) -> dict:
    """After the controller step: FileSystemResizePending and NodeResizePending."""
    s = copy.deepcopy(status or {})
    conds = [c for c in s.get("conditions") or () if c.get("type") not in
             (RESIZING, CONTROLLER_RESIZE_ERROR)]
    s["conditions"] = _set_condition(conds, FS_RESIZE_PENDING, now, FS_PENDING_MESSAGE)
    s["allocatedResourceStatuses"] = dict(s.get("allocatedResourceStatuses") or {},
                                          storage=NODE_PENDING)
    return s


def finished_status(status: dict, new_size: str) -> dict:
    """After the node step: capacity is the new size, the resize conditions and status go."""
    s = copy.deepcopy(status or {})
    s["capacity"] = dict(s.get("capacity") or {}, storage=new_size)
    conds = [c for c in s.get("conditions") or () if c.get("type") not in
             (RESIZING, FS_RESIZE_PENDING, CONTROLLER_RESIZE_ERROR)]
    if conds:
        s["conditions"] = conds
    else:
        s.pop("conditions", None)
    statuses = {k: v for k, v in (s.get("allocatedResourceStatuses") or {}).items()
                if k != "storage"}
    if statuses:
        s["allocatedResourceStatuses"] = statuses
    else:
        s.pop("allocatedResourceStatuses", None)
    return s
