"""Writing a protection finalizer onto, or off, one object -- shared by pvc- and pv-protection.

The change is a JSON merge patch of metadata.finalizers carrying the resourceVersion the
decision was made from, the optimistic concurrency upstream gets from Update: if anything
changed since (another finalizer, a pod appeared, a status moved), the write conflicts and the
key is synced again from fresh state rather than overwriting someone else's change.
"""

from __future__ import annotations

import logging

from k1s.client.errors import ApiError

from .planner import with_finalizer

log = logging.getLogger(__name__)


async def set_finalizer(client, resource, obj: dict, finalizer: str, present: bool) -> bool:
    """Add (present=True) or remove `finalizer` on `obj`. Returns False when the object is
    already gone; raises ApiError (a conflict included) so the caller's queue retries."""
    md = obj.get("metadata") or {}
    patch = {"metadata": {"finalizers": with_finalizer(md.get("finalizers"), present, finalizer),
                          "resourceVersion": md.get("resourceVersion")}}
    try:
        await client.patch(resource, md.get("name"), patch, md.get("namespace") or None)
    except ApiError as e:
        if e.is_not_found():
            return False
        raise
    log.debug("%s finalizer %s on %s %s/%s", "added" if present else "removed", finalizer,
              resource.kind, md.get("namespace", ""), md.get("name"))
    return True
