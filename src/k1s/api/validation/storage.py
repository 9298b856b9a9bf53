"""PersistentVolume, PersistentVolumeClaim and StorageClass validation (create, update, status).

Follows core's ValidatePersistentVolume*/ValidatePersistentVolumeClaim* and storage's
ValidateStorageClass*, with upstream's messages: a PV without access modes gives exactly
`spec.accessModes: Required value`; a claim without them `spec.accessModes: Required value: at
least 1 access mode is required`; a spec change to a claim `spec: Forbidden: spec is immutable
after creation except resources.requests and volumeAttributesClassName for bound claims`
followed by a diff.
"""

from __future__ import annotations

from typing import Any

from k1s.api import errors as E
from k1s.api.validation import formats as F
from k1s.api.validation import meta as M
from k1s.api.validation.common import (Errs, child, d, immutable, index, key,
                                       lst, optional_one_of, qualified_name, quantity_or_error, s,
                                       selector_requirement, spec_diff,
                                       validate_label_selector, validate_nonnegative_quantity,
                                       validate_positive_quantity)
from k1s.api.validation.volumes import PV_SOURCE_FIELDS, clean_path_is_root, validate_pv_source

ACCESS_MODES = ("ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod")
RECLAIM_POLICIES = ("Delete", "Recycle", "Retain")
VOLUME_MODES = ("Block", "Filesystem")
SC_RECLAIM_POLICIES = ("Delete", "Retain")
BINDING_MODES = ("Immediate", "WaitForFirstConsumer")
PV_PHASES = ("Pending", "Available", "Bound", "Released", "Failed")
PVC_PHASES = ("Pending", "Bound", "Lost")
RESIZE_STATUSES = ("ControllerResizeInProgress", "ControllerResizeInfeasible",
                   "NodeResizeInProgress", "NodeResizeInfeasible", "NodeResizePending")
BETA_STORAGE_CLASS_ANNOTATION = "volume.beta.kubernetes.io/storage-class"


def _access_modes(modes: list, path: str) -> Errs:
    errs: Errs = []
    rwop = other = False
    for m in modes:
        if m not in ACCESS_MODES:
            errs.append(E.unsupported(path, m, ACCESS_MODES))
        if m == "ReadWriteOncePod":
            rwop = True
        elif m in ACCESS_MODES:
            other = True
    if rwop and other:
        errs.append(E.forbidden(path, "may not use ReadWriteOncePod with other access modes"))
    return errs


def _class_name(value: str, path: str) -> Errs:
    return [E.invalid(path, value, m) for m in F.name_is_dns_subdomain(value)]


# PersistentVolume ------------------------------------------------------------------------
def _node_field_requirement(req: dict, path: str) -> Errs:
    errs: Errs = []
    op, values = s(req.get("operator")), lst(req.get("values"))
    if op in ("In", "NotIn"):
        if len(values) != 1:
            errs.append(E.required(child(path, "values"), "must be only one value when "
                                   "`operator` is 'In' or 'NotIn' for node field selector"))
    else:
        errs.append(E.invalid(child(path, "operator"), op, "not a valid selector operator"))
    k = s(req.get("key"))
    if k != "metadata.name":
        errs.append(E.invalid(child(path, "key"), k, "not a valid field selector key"))
    else:
        for i, v in enumerate(values):
            errs += [E.invalid(index(child(path, "values"), i), v, m)
                     for m in F.name_is_dns_subdomain(s(v))]
    return errs


def validate_node_selector(sel: dict, path: str) -> Errs:
    terms = lst(sel.get("nodeSelectorTerms"))
    tp = child(path, "nodeSelectorTerms")
    if not terms:
        return [E.required(tp, "must have at least one node selector term")]
    errs: Errs = []
    for i, term in enumerate(terms):
        term = d(term)
        for j, req in enumerate(lst(term.get("matchExpressions"))):
            errs += selector_requirement(d(req), index(child(index(tp, i), "matchExpressions"), j),
                                         gt_lt=True)
        for j, req in enumerate(lst(term.get("matchFields"))):
            errs += _node_field_requirement(d(req), index(child(index(tp, i), "matchFields"), j))
    return errs


def _volume_node_affinity(aff: dict, path: str) -> tuple[bool, Errs]:
    if aff.get("required") is None:
        return False, [E.required(child(path, "required"),
                                  "must specify required node constraints")]
    return True, validate_node_selector(d(aff.get("required")), child(path, "required"))


def validate_pv_spec(spec: dict, name: str, path: str = "spec") -> Errs:
    errs: Errs = []
    modes = lst(spec.get("accessModes"))
    if not modes:
        errs.append(E.required(child(path, "accessModes")))
    errs += _access_modes(modes, child(path, "accessModes"))

    cap = spec.get("capacity")
    cap_d = d(cap)
    cp = child(path, "capacity")
    if not cap_d:
        errs.append(E.required(cp))
    if "storage" not in cap_d or len(cap_d) > 1:
        errs.append(E.unsupported(cp, cap if cap_d else None, ["storage"]))
    for r, raw in cap_d.items():
        q = quantity_or_error(raw, key(cp, r), errs)
        if q is None:
            continue
        if q < 0:
            errs.append(E.invalid(key(cp, r), int(q), "must be a valid resource quantity"))
        errs += validate_positive_quantity(q, raw, key(cp, r))

    policy = s(spec.get("persistentVolumeReclaimPolicy"))
    if policy and policy not in RECLAIM_POLICIES:
        errs.append(E.unsupported(child(path, "persistentVolumeReclaimPolicy"), policy,
                                  RECLAIM_POLICIES))

    affinity_set = False
    if spec.get("nodeAffinity") is not None:
        affinity_set, aerrs = _volume_node_affinity(d(spec.get("nodeAffinity")),
                                                    child(path, "nodeAffinity"))
        errs += aerrs

    count, serrs = validate_pv_source(spec, name, path)
    errs += serrs
    if spec.get("local") is not None and not affinity_set and \
            all(spec.get(f) is None for f in PV_SOURCE_FIELDS[:PV_SOURCE_FIELDS.index("local")]):
        errs.append(E.required(child(path, "nodeAffinity"), "Local volume requires node affinity"))
    if count == 0:
        errs.append(E.required(path, "must specify a volume type"))

    hp = spec.get("hostPath")
    if hp is not None and clean_path_is_root(s(d(hp).get("path"))) and policy == "Recycle":
        errs.append(E.forbidden(child(path, "persistentVolumeReclaimPolicy"),
                                "may not be 'recycle' for a hostPath mount of '/'"))
    sc = s(spec.get("storageClassName"))
    if sc:
        errs += _class_name(sc, child(path, "storageClassName"))
    vm = spec.get("volumeMode")
    errs += optional_one_of(vm, VOLUME_MODES, child(path, "volumeMode"))
    vac = spec.get("volumeAttributesClassName")
    if vac is not None:
        if not s(vac):
            errs.append(E.required(child(path, "volumeAttributesClassName"),
                                   "an empty string is disallowed"))
        else:
            errs += _class_name(s(vac), child(path, "volumeAttributesClassName"))
        if spec.get("csi") is None:
            errs.append(E.required(child(path, "csi"),
                                   "has to be specified when using volumeAttributesClassName"))
    return errs


def validate_pv(obj: dict) -> Errs:
    meta = d(obj.get("metadata"))
    errs = M.validate_object_meta(meta, False, F.name_is_dns_subdomain)
    return errs + validate_pv_spec(d(obj.get("spec")), s(meta.get("name")))


def _pv_source_of(spec: dict) -> dict:
    return {f: spec.get(f) for f in PV_SOURCE_FIELDS if spec.get(f) is not None}


def validate_pv_update(new: dict, old: dict) -> Errs:
    errs = M.validate_object_meta_update(new.get("metadata"), old.get("metadata"))
    errs += validate_pv(new)
    ns, os_ = d(new.get("spec")), d(old.get("spec"))
    new_src, old_src = _pv_source_of(ns), _pv_source_of(os_)
    # A CSI PV may gain a controllerExpandSecretRef after creation.
    if "csi" in new_src and "csi" in old_src and \
            d(old_src["csi"]).get("controllerExpandSecretRef") is None:
        new_src = dict(new_src, csi={k: v for k, v in d(new_src["csi"]).items()
                                     if k != "controllerExpandSecretRef"})
    if new_src != old_src:
        diff = "\n".join(spec_diff(old_src, new_src))
        errs.append(E.forbidden(child("spec", "persistentvolumesource"),
                                "spec.persistentvolumesource is immutable after creation\n"
                                + diff))
    errs += immutable(ns.get("volumeMode"), os_.get("volumeMode"), "volumeMode")
    if os_.get("nodeAffinity") is not None and ns.get("nodeAffinity") != os_.get("nodeAffinity"):
        errs.append(E.invalid("nodeAffinity", ns.get("nodeAffinity"), "field is immutable"))
    if os_.get("volumeAttributesClassName") is not None and \
            ns.get("volumeAttributesClassName") is None:
        errs.append(E.forbidden(child("spec", "volumeAttributesClassName"),
                                "update from non-nil value to nil is forbidden"))
    return errs


def validate_pv_status_update(new: dict, old: dict) -> Errs:
    errs = M.validate_object_meta_update(new.get("metadata"), old.get("metadata"))
    if not s(d(new.get("metadata")).get("resourceVersion")):
        errs.append(E.required("resourceVersion"))
    phase = d(new.get("status")).get("phase")
    if phase is not None and phase != "" and phase not in PV_PHASES:
        errs.append(E.unsupported(child("status", "phase"), phase, PV_PHASES))
    return errs


# PersistentVolumeClaim -------------------------------------------------------------------
def _data_source(ds: dict, path: str, ref: bool) -> Errs:
    errs: Errs = []
    if not s(ds.get("name")):
        errs.append(E.required(child(path, "name")))
    if not s(ds.get("kind")):
        errs.append(E.required(child(path, "kind")))
    group = s(ds.get("apiGroup"))
    if not group and s(ds.get("kind")) != "PersistentVolumeClaim":
        errs.append(E.invalid(path, s(ds.get("kind")),
                              "must be 'PersistentVolumeClaim' when referencing the default "
                              "apiGroup"))
    if group:
        errs += [E.invalid(child(path, "apiGroup"), group, m) for m in F.is_dns1123_subdomain(group)]
    if ref and s(ds.get("namespace")):
        ns = s(ds.get("namespace"))
        errs += [E.invalid(child(path, "namespace"), ns, m) for m in F.name_is_dns_label(ns)]
    return errs


def validate_pvc_spec(spec: dict, path: str = "spec") -> Errs:
    errs: Errs = []
    modes = lst(spec.get("accessModes"))
    if not modes:
        errs.append(E.required(child(path, "accessModes"), "at least 1 access mode is required"))
    if spec.get("selector") is not None:
        errs += validate_label_selector(spec.get("selector"), child(path, "selector"))
    errs += _access_modes(modes, child(path, "accessModes"))

    rp = key(child(path, "resources"), "storage")
    requests = d(d(spec.get("resources")).get("requests"))
    if "storage" not in requests:
        errs.append(E.required(rp))
    else:
        raw = requests["storage"]
        q = quantity_or_error(raw, rp, errs)
        if q is not None:
            perr = validate_positive_quantity(q, raw, rp)
            errs += perr or validate_nonnegative_quantity(q, raw, rp)
    sc = spec.get("storageClassName")
    if isinstance(sc, str) and sc:
        errs += _class_name(sc, child(path, "storageClassName"))
    vm = spec.get("volumeMode")
    errs += optional_one_of(vm, VOLUME_MODES, child(path, "volumeMode"))
    ds, dsr = spec.get("dataSource"), spec.get("dataSourceRef")
    if ds is not None:
        errs += _data_source(d(ds), child(path, "dataSource"), False)
    if dsr is not None:
        errs += _data_source(d(dsr), child(path, "dataSourceRef"), True)
    if dsr is not None and s(d(dsr).get("namespace")):
        if ds is not None:
            errs.append(E.invalid(path, child(path, "dataSource"),
                                  "may not be specified when dataSourceRef.namespace is specified"))
    elif ds is not None and dsr is not None:
        a, b = d(ds), d(dsr)
        if (a.get("apiGroup"), a.get("kind"), a.get("name")) != \
                (b.get("apiGroup"), b.get("kind"), b.get("name")):
            errs.append(E.invalid(path, child(path, "dataSource"), "must match dataSourceRef"))
    vac = spec.get("volumeAttributesClassName")
    if isinstance(vac, str) and vac:
        errs += _class_name(vac, child(path, "volumeAttributesClassName"))
    return errs


def validate_pvc(obj: dict) -> Errs:
    errs = M.validate_object_meta(obj.get("metadata"), True, F.name_is_dns_subdomain)
    return errs + validate_pvc_spec(d(obj.get("spec")))


def _storage_request(spec: dict) -> Any:
    return d(d(spec.get("resources")).get("requests")).get("storage")


def _cmp_qty(a: Any, b: Any) -> int | None:
    """Compare two quantities (missing counts as zero); None when either does not parse."""
    from k1s.api.validation.common import parse_quantity
    try:
        qa = parse_quantity(a) if a is not None else 0
        qb = parse_quantity(b) if b is not None else 0
    except (ValueError, TypeError, ArithmeticError):
        return None
    return (qa > qb) - (qa < qb)


def validate_pvc_update(new: dict, old: dict) -> Errs:
    nm, om = d(new.get("metadata")), d(old.get("metadata"))
    errs = M.validate_object_meta_update(nm, om)
    errs += validate_pvc(new)
    ns, os_ = dict(d(new.get("spec"))), dict(d(old.get("spec")))
    new_ann, old_ann = d(nm.get("annotations")), d(om.get("annotations"))

    # The binder sets volumeName once.
    if not s(os_.get("volumeName")):
        if "volumeName" in ns:
            os_["volumeName"] = ns["volumeName"]
        else:
            os_.pop("volumeName", None)

    old_sc_in_ann = old_ann.get(BETA_STORAGE_CLASS_ANNOTATION)
    upgrade_from_annotation = (
        BETA_STORAGE_CLASS_ANNOTATION in old_ann and os_.get("storageClassName") is None
        and ns.get("storageClassName") is not None and ns.get("storageClassName") == old_sc_in_ann
        and (BETA_STORAGE_CLASS_ANNOTATION not in new_ann
             or new_ann.get(BETA_STORAGE_CLASS_ANNOTATION) == old_sc_in_ann))
    if upgrade_from_annotation:
        ns.pop("storageClassName", None)
    else:
        if new_ann.get(BETA_STORAGE_CLASS_ANNOTATION, "") != old_ann.get(
                BETA_STORAGE_CLASS_ANNOTATION, ""):
            errs.append(E.invalid(child("metadata", "annotations",
                                        BETA_STORAGE_CLASS_ANNOTATION),
                                  new_ann.get(BETA_STORAGE_CLASS_ANNOTATION, ""),
                                  "field is immutable"))
        # A nil class may be set once (retroactive default class assignment).
        if ns.get("storageClassName") is not None and os_.get("storageClassName") is None and (
                BETA_STORAGE_CLASS_ANNOTATION not in old_ann
                or ns.get("storageClassName") == old_sc_in_ann):
            ns.pop("storageClassName", None)

    bound = s(d(new.get("status")).get("phase")) == "Bound"
    if bound:
        nres = dict(d(ns.get("resources")))
        nreq = dict(d(nres.get("requests")))
        if "requests" in nres and nres.get("requests") is not None:
            old_storage = _storage_request(os_)
            if old_storage is None:
                nreq.pop("storage", None)
            else:
                nreq["storage"] = old_storage
            nres["requests"] = nreq
            ns["resources"] = nres
        if ns.get("volumeAttributesClassName") is not None:
            if "volumeAttributesClassName" in os_:
                ns["volumeAttributesClassName"] = os_["volumeAttributesClassName"]
            else:
                ns.pop("volumeAttributesClassName")

    if _normalize(ns) != _normalize(os_):
        diff = "\n".join(spec_diff(_normalize(os_), _normalize(ns)))
        errs.append(E.forbidden("spec", "spec is immutable after creation except "
                                "resources.requests and volumeAttributesClassName for bound "
                                "claims\n" + diff))

    old_size, new_size = _storage_request(d(old.get("spec"))), _storage_request(d(new.get("spec")))
    status_size = d(d(old.get("status")).get("capacity")).get("storage")
    if _cmp_qty(new_size, old_size) == -1:
        # RecoverVolumeExpansionFailure (GA): shrinking is allowed down to, not to or below,
        # the capacity the volume actually has.
        if _cmp_qty(new_size, status_size) in (-1, 0):
            errs.append(E.forbidden(child("spec", "resources", "requests", "storage"),
                                    "field can not be less than status.capacity"))
    errs += immutable(d(new.get("spec")).get("volumeMode"), d(old.get("spec")).get("volumeMode"),
                      "volumeMode")
    ovac = d(old.get("spec")).get("volumeAttributesClassName")
    nvac = d(new.get("spec")).get("volumeAttributesClassName")
    if ovac is not None and ovac != nvac:
        if nvac is None:
            errs.append(E.forbidden(child("spec", "volumeAttributesClassName"),
                                    "update from non-nil value to nil is forbidden"))
        elif nvac == "":
            errs.append(E.forbidden(child("spec", "volumeAttributesClassName"),
                                    "update from non-nil value to an empty string is forbidden"))
    return errs


def _normalize(spec: dict) -> dict:
    """Drop empty values so `{}` and absent compare equal, as Go's zero values do."""
    def clean(v: Any) -> Any:
        if isinstance(v, dict):
            out = {k: clean(x) for k, x in v.items()}
            return {k: x for k, x in out.items() if x not in (None, {}, [])}
        if isinstance(v, list):
            return [clean(x) for x in v]
        return v
    return clean(spec)


def validate_pvc_status_update(new: dict, old: dict) -> Errs:
    errs = M.validate_object_meta_update(new.get("metadata"), old.get("metadata"))
    if not s(d(new.get("metadata")).get("resourceVersion")):
        errs.append(E.required("resourceVersion"))
    if not lst(d(new.get("spec")).get("accessModes")):
        errs.append(E.required(child("Spec", "accessModes")))
    status = d(new.get("status"))
    phase = status.get("phase")
    if phase is not None and phase != "" and phase not in PVC_PHASES:
        errs.append(E.unsupported(child("status", "phase"), phase, PVC_PHASES))
    cp = child("status", "capacity")
    for r, raw in d(status.get("capacity")).items():
        q = quantity_or_error(raw, key(cp, r), errs)
        if q is not None and q < 0:
            errs.append(E.invalid(key(cp, r), int(q), "must be a valid resource quantity"))
    rsp = child("status", "allocatedResourceStatus")
    for k, v in d(status.get("allocatedResourceStatuses")).items():
        errs += _pvc_resource_key(k, rsp)
        if v not in RESIZE_STATUSES:
            errs.append(E.unsupported(rsp, k, RESIZE_STATUSES))
    ap = child("status", "allocatedResources")
    for k, raw in d(status.get("allocatedResources")).items():
        kerrs = _pvc_resource_key(k, ap)
        if kerrs:
            errs += kerrs
            continue
        q = quantity_or_error(raw, key(ap, k), errs)
        if q is not None:
            if q < 0:
                errs.append(E.invalid(key(ap, k), int(q), "must be a valid resource quantity"))
            else:
                errs += validate_nonnegative_quantity(q, raw, key(ap, k))
    return errs


def _pvc_resource_key(value: str, path: str) -> Errs:
    errs = [E.invalid(path, value, m) for m in F.is_qualified_name(value)]
    if errs:
        return errs
    native = "/" not in value or value.split("/")[0].endswith("kubernetes.io")
    if native and value != "storage":
        return [E.unsupported(path, value, ["storage"])]
    return []


# StorageClass ----------------------------------------------------------------------------
MAX_PARAMETERS = 512
MAX_PARAMETERS_SIZE = 256 * 1024


def validate_storage_class(obj: dict) -> Errs:
    errs = M.validate_object_meta(obj.get("metadata"), False, F.name_is_dns_subdomain)
    prov = s(obj.get("provisioner"))
    if not prov:
        errs.append(E.required("provisioner"))
    else:
        errs += [E.invalid("provisioner", prov, m) for m in F.is_qualified_name(prov.lower())]
    params = d(obj.get("parameters"))
    if len(params) > MAX_PARAMETERS:
        errs.append(E.too_long("parameters", MAX_PARAMETERS))
    else:
        size = 0
        for k, v in params.items():
            if not k:
                errs.append(E.invalid("parameters", k, "field can not be empty."))
            size += len(k.encode()) + len(s(v).encode())
        if size > MAX_PARAMETERS_SIZE:
            errs.append(E.too_long("parameters", MAX_PARAMETERS_SIZE))
    rp = obj.get("reclaimPolicy")
    if isinstance(rp, str) and rp and rp not in SC_RECLAIM_POLICIES:
        errs.append(E.unsupported("reclaimPolicy", rp, SC_RECLAIM_POLICIES))
    mode = obj.get("volumeBindingMode")
    if mode is None:
        errs.append(E.required("volumeBindingMode"))
    elif mode not in BINDING_MODES:
        errs.append(E.unsupported("volumeBindingMode", mode, BINDING_MODES))
    errs += _allowed_topologies(lst(obj.get("allowedTopologies")), "allowedTopologies")
    return errs


def _allowed_topologies(terms: list, path: str) -> Errs:
    errs: Errs = []
    seen: list[dict] = []
    for i, term in enumerate(terms):
        ip = index(path, i)
        exprs = lst(d(term).get("matchLabelExpressions"))
        keys: dict[str, frozenset] = {}
        for j, req in enumerate(exprs):
            req = d(req)
            jp = index(child(ip, "matchLabelExpressions"), j)
            values = lst(req.get("values"))
            if not values:
                errs.append(E.required(child(jp, "values")))
            vs: set = set()
            for k, v in enumerate(values):
                v = v if isinstance(v, str) else repr(v)
                if v in vs:
                    errs.append(E.duplicate(index(child(jp, "values"), k), v))
                vs.add(v)
            errs += qualified_name(s(req.get("key")), child(jp, "key"))
            if s(req.get("key")) in keys:
                errs.append(E.duplicate(child(jp, "key"), s(req.get("key"))))
            keys[s(req.get("key"))] = frozenset(vs)
        if not keys:
            errs.append(E.required(ip, "must have at least one label expression"))
            continue
        if keys in seen:
            errs.append(E.duplicate(ip, term))
        seen.append(keys)
    return errs


def validate_storage_class_update(new: dict, old: dict) -> Errs:
    errs = M.validate_object_meta_update(new.get("metadata"), old.get("metadata"))
    errs += validate_storage_class(new)
    if d(new.get("parameters")) != d(old.get("parameters")):
        errs.append(E.forbidden("parameters", "updates to parameters are forbidden."))
    if s(new.get("provisioner")) != s(old.get("provisioner")):
        errs.append(E.forbidden("provisioner", "updates to provisioner are forbidden."))
    if new.get("reclaimPolicy") != old.get("reclaimPolicy"):
        errs.append(E.forbidden("reclaimPolicy", "updates to reclaimPolicy are forbidden."))
    errs += immutable(new.get("volumeBindingMode"), old.get("volumeBindingMode"),
                      "volumeBindingMode")
    return errs


__all__ = ["validate_pv", "validate_pv_update", "validate_pv_status_update", "validate_pvc",
           "validate_pvc_update", "validate_pvc_status_update", "validate_pvc_spec",
           "validate_storage_class", "validate_storage_class_update", "validate_node_selector"]
