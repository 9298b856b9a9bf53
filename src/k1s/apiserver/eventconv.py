"""events.k8s.io/v1 Events are core/v1 Events seen through another schema.

Upstream stores one object and converts between the two versions; so does k1s. The field
correspondence is upstream's (pkg/apis/events/v1 conversion).
"""

from __future__ import annotations

from ..api.registry import Resource

# events.k8s.io/v1 name -> core/v1 name
_RENAMES = {
    "regarding": "involvedObject",
    "note": "message",
    "deprecatedSource": "source",
    "deprecatedFirstTimestamp": "firstTimestamp",
    "deprecatedLastTimestamp": "lastTimestamp",
    "deprecatedCount": "count",
    "reportingController": "reportingComponent",
}
_BACK = {v: k for k, v in _RENAMES.items()}


def _is_events_view(r: Resource) -> bool:
    return r.group == "events.k8s.io" and r.kind == "Event"


def _convert(obj: dict, api_version: str, names: dict[str, str]) -> dict:
    # The same Event under another apiVersion, its fields renamed per `names`.
    out = {"kind": "Event", "apiVersion": api_version}
    for k, v in obj.items():
        if k not in ("kind", "apiVersion"):
            out[names.get(k, k)] = v
    return out


def to_view(view: Resource, core_obj: dict) -> dict:
    """A stored core/v1 object as the requested resource shows it."""
    if not _is_events_view(view):
        return core_obj
    return _convert(core_obj, "events.k8s.io/v1", _BACK)


def from_view(view: Resource, obj: dict) -> dict:
    """A written object of the view resource as the core/v1 object that is stored."""
    if not _is_events_view(view):
        return obj
    return _convert(obj, "v1", _RENAMES)
