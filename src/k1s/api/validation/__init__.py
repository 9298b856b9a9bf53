"""Validation of every served kind: `validate_create`, `validate_update`, `validate_status_update`.

Pure functions over objects in their v1 wire form (after defaulting). Each returns a list of
`FieldError`s worded as upstream's field.Error (`spec.accessModes: Required value`); an empty
list means the object is valid. The API server turns a non-empty list into a 422 Invalid.

Like upstream's generic registry, update validation runs the metadata update rules first, then
the kind's rules; identical messages are reported once (field.ErrorList.ToAggregate dedupes).
After a kind's own rules pass, the name must also be a valid path segment.
"""

from __future__ import annotations

from typing import Any, Callable

from k1s.api import errors as E
from k1s.api.errors import FieldError
from k1s.api.validation import apps, core, core_pod, misc, storage
from k1s.api.validation import meta as M
from k1s.api.validation.common import d, s

Create = Callable[[dict], list[FieldError]]
Update = Callable[[dict, dict], list[FieldError]]

# (group, plural) -> (create, update, status update); None = upstream has no status rules
# beyond metadata.
_RULES: dict[tuple[str, str], tuple[Create, Update, Update | None]] = {
    ("", "namespaces"): (core.validate_namespace, core.validate_namespace_update,
                         core.validate_namespace_status_update),
    ("", "pods"): (core_pod.validate_pod, core_pod.validate_pod_update,
                   core_pod.validate_pod_status_update),
    ("", "services"): (core.validate_service, core.validate_service_update,
                       core.validate_service_status_update),
    ("", "endpoints"): (core.validate_endpoints, core.validate_endpoints_update, None),
    ("", "events"): (core.validate_event, core.validate_event_update, None),
    ("", "nodes"): (core.validate_node, core.validate_node_update, core.validate_node_update),
    ("", "persistentvolumes"): (storage.validate_pv, storage.validate_pv_update,
                                storage.validate_pv_status_update),
    ("", "persistentvolumeclaims"): (storage.validate_pvc, storage.validate_pvc_update,
                                     storage.validate_pvc_status_update),
    ("", "configmaps"): (core.validate_config_map, core.validate_config_map_update, None),
    ("", "secrets"): (core.validate_secret, core.validate_secret_update, None),
    ("", "serviceaccounts"): (core.validate_service_account,
                              core.validate_service_account_update, None),
    ("apps", "statefulsets"): (apps.validate_statefulset, apps.validate_statefulset_update,
                               apps.validate_statefulset_status_update),
    ("apps", "controllerrevisions"): (apps.validate_controller_revision,
                                      apps.validate_controller_revision_update, None),
    ("storage.k8s.io", "storageclasses"): (storage.validate_storage_class,
                                           storage.validate_storage_class_update, None),
    ("discovery.k8s.io", "endpointslices"): (misc.validate_endpoint_slice,
                                             misc.validate_endpoint_slice_update, None),
    ("coordination.k8s.io", "leases"): (misc.validate_lease, misc.validate_lease_update, None),
    ("events.k8s.io", "events"): (misc.validate_events_v1_event,
                                  misc.validate_events_v1_event_update, None),
}


def _rules(resource: Any) -> tuple[Create, Update, Update | None] | None:
    return _RULES.get((resource.group, resource.plural))


def _dedupe(errs: list[FieldError]) -> list[FieldError]:
    seen: set[str] = set()
    out = []
    for e in errs:
        k = str(e)
        if k not in seen:
            seen.add(k)
            out.append(e)
    return out


def _path_segment(obj: dict) -> list[FieldError]:
    """Names end up in URL paths: '.', '..', '/' and '%' are refused (ValidatePathSegmentName)."""
    name = s(d(obj.get("metadata")).get("name"))
    if name in (".", ".."):
        return [E.invalid("metadata.name", name, f"may not be '{name}'")]
    for bad in ("/", "%"):
        if bad in name:
            return [E.invalid("metadata.name", name, f"may not contain '{bad}'")]
    return []


def validate_create(resource: Any, obj: dict) -> list[FieldError]:
    rules = _rules(resource)
    if rules is None:
        errs = M.validate_object_meta(d(obj).get("metadata"), resource.namespaced,
                                      lambda n, p: [])
    else:
        errs = rules[0](d(obj))
    errs = _dedupe(errs)
    return errs or _path_segment(d(obj))


def validate_update(resource: Any, new: dict, old: dict) -> list[FieldError]:
    new, old = d(new), d(old)
    errs = M.validate_object_meta_update(new.get("metadata"), old.get("metadata"))
    rules = _rules(resource)
    if rules is not None:
        errs += rules[1](new, old)
    return _dedupe(errs)


def validate_status_update(resource: Any, new: dict, old: dict) -> list[FieldError]:
    new, old = d(new), d(old)
    errs = M.validate_object_meta_update(new.get("metadata"), old.get("metadata"))
    rules = _rules(resource)
    if rules is not None and rules[2] is not None:
        errs += rules[2](new, old)
    return _dedupe(errs)


__all__ = ["validate_create", "validate_update", "validate_status_update"]
