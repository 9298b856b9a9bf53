"""The pv-protection decisions, as pure functions over a PersistentVolume.

Rules (upstream pkg/controller/volume/pvprotection):
  V0  a volume not being deleted that lacks the finalizer gets it (volumes made before the
      admission plugin existed); one that has it needs nothing.
  V1  a volume being deleted without the finalizer is not ours: nothing to do.
  V2  a volume being deleted with the finalizer is kept while status.phase is Bound -- the
      phase alone decides, as upstream (the binder moves it to Released when its claim goes).
  V3  otherwise the finalizer is removed.
"""

from __future__ import annotations

import enum

from k1s.controllers.pvc_protection.planner import is_deletion_candidate, needs_finalizer

FINALIZER = "kubernetes.io/pv-protection"


class Decision(enum.Enum):
    NOTHING = "nothing"
    ADD_FINALIZER = "add-finalizer"
    KEEP = "keep"
    REMOVE_FINALIZER = "remove-finalizer"


def is_in_use(pv: dict) -> bool:
    return (pv.get("status") or {}).get("phase") == "Bound"


def plan(pv: dict) -> Decision:
    if is_deletion_candidate(pv, FINALIZER):
        return Decision.KEEP if is_in_use(pv) else Decision.REMOVE_FINALIZER
    if needs_finalizer(pv, FINALIZER):
        return Decision.ADD_FINALIZER
    return Decision.NOTHING


def wants_sync(pv: dict) -> bool:
    """Whether an informer event on `pv` is worth queuing (upstream pvAddedUpdated)."""
    return needs_finalizer(pv, FINALIZER) or is_deletion_candidate(pv, FINALIZER)
