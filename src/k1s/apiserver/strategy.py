"""Per-resource strategies: what a create, an update and a status write may change.

Upstream gives every resource a strategy (PrepareForCreate, PrepareForUpdate, the status
strategy, whether metadata.generation is tracked). The rules that matter here:

- a write to the main resource cannot change status (status is copied from the stored object);
  a write to `/status` can change only status;
- on create, status starts from what upstream's PrepareForCreate leaves (pods Pending with their
  QoS class, claims and volumes Pending, namespaces Active, ...);
- `metadata.generation` starts at 1 and is bumped only when the spec changes, for the kinds
  upstream tracks it on;
- the system-owned metadata (uid, creationTimestamp, deletion fields) never changes on update.
"""

from __future__ import annotations

from ..api.qos import pod_qos_class
from ..api.registry import Resource
from .meta import now_rfc3339

# Kinds whose metadata.generation upstream maintains.
GENERATION_TRACKED = {("apps", "statefulsets")}

# Resources whose DELETE answers with the deleted object rather than a Status (upstream's
# ReturnDeletedObject).
RETURNS_DELETED_OBJECT = {("", "pods"), ("", "services"), ("", "namespaces")}

# Metadata the server owns: an update cannot change it.
SYSTEM_METADATA = ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds",
                   "generation", "selfLink")


def _id(r: Resource) -> tuple[str, str]:
    return (r.group, r.plural)


def tracks_generation(r: Resource) -> bool:
    return _id(r) in GENERATION_TRACKED


def prepare_for_create(r: Resource, obj: dict) -> None:
    """Reset what a client cannot set on create (upstream PrepareForCreate)."""
    key = _id(r)
    md = obj.setdefault("metadata", {})
    if tracks_generation(r):
        md["generation"] = 1
    else:
        md.pop("generation", None)
    if key == ("", "pods"):
        obj["status"] = {"phase": "Pending", "qosClass": pod_qos_class(obj)}
    elif key == ("", "persistentvolumeclaims"):
        obj["status"] = {"phase": "Pending"}
    elif key == ("", "persistentvolumes"):
        obj["status"] = {"phase": "Pending", "lastPhaseTransitionTime": now_rfc3339()}
    elif key == ("", "namespaces"):
        obj["status"] = {"phase": "Active"}
        spec = obj.setdefault("spec", {})
        if not spec.get("finalizers"):
            spec["finalizers"] = ["kubernetes"]
    elif key == ("apps", "statefulsets"):
        obj["status"] = {"replicas": 0, "availableReplicas": 0}
    elif key == ("", "services"):
        obj["status"] = {"loadBalancer": {}}
    elif key == ("", "nodes"):
        pass  # a node registers with its status, as the kubelet does
    elif r.has_status:
        obj.pop("status", None)


def prepare_for_update(r: Resource, new: dict, old: dict) -> None:
    """A write to the main resource: keep status and system metadata from the stored object."""
    copy_system_metadata(new, old)
    if r.has_status:
        if "status" in old:
            new["status"] = old["status"]
        else:
            new.pop("status", None)
    if _id(r) == ("", "namespaces"):
        # spec.finalizers changes only through /finalize
        if "spec" in old:
            new["spec"] = old["spec"]
        else:
            new.pop("spec", None)
    bump_generation(r, new, old)


def prepare_for_status_update(r: Resource, new: dict, old: dict) -> None:
    """A write to `/status`: everything but status comes from the stored object."""
    status = new.get("status")
    md_new = new.get("metadata") or {}
    new.clear()
    new.update({k: v for k, v in old.items() if k != "status"})
    new["metadata"] = dict(old.get("metadata") or {})
    if "managedFields" in md_new:
        new["metadata"]["managedFields"] = md_new["managedFields"]
    if status is not None:
        new["status"] = status


def prepare_for_finalize(new: dict, old: dict) -> None:
    """`namespaces/{name}/finalize`: only spec.finalizers may change."""
    finalizers = (new.get("spec") or {}).get("finalizers")
    new.clear()
    new.update(old)
    new["metadata"] = dict(old.get("metadata") or {})
    spec = dict(old.get("spec") or {})
    if finalizers:
        spec["finalizers"] = finalizers
    else:
        spec.pop("finalizers", None)
    new["spec"] = spec


def copy_system_metadata(new: dict, old: dict) -> None:
    md = new.setdefault("metadata", {})
    omd = old.get("metadata") or {}
    for k in SYSTEM_METADATA:
        if k in omd:
            md[k] = omd[k]
        else:
            md.pop(k, None)


def bump_generation(r: Resource, new: dict, old: dict) -> None:
    if not tracks_generation(r):
        return
    gen = (old.get("metadata") or {}).get("generation") or 1
    if new.get("spec") != old.get("spec"):
        gen += 1
    new["metadata"]["generation"] = gen
