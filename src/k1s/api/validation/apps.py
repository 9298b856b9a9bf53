"""StatefulSet and ControllerRevision validation (apps/v1).

StatefulSet create follows ValidateStatefulSetSpec (policies, update strategy, selector that
must match the template labels, restartPolicy Always, no activeDeadlineSeconds, retention
policy values, non-negative counters); the pod template's labels and annotations are checked
but its pod spec is not, as upstream (pod errors surface when the controller creates pods).
Update refuses changes outside the mutable set with upstream's one-line Forbidden message.
"""

from __future__ import annotations

import copy
from typing import Any

from k1s.api import errors as E
from k1s.api.validation import formats as F
from k1s.api.validation import meta as M
from k1s.api.validation.common import (Errs, child, d, lst, nonnegative, num, s,
                                       selector_matches, validate_label_selector,
                                       validate_labels)

STS_MUTABLE = ("replicas", "ordinals", "template", "updateStrategy", "revisionHistoryLimit",
               "persistentVolumeClaimRetentionPolicy", "minReadySeconds")
STS_UPDATE_FORBIDDEN = (
    "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', "
    "'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and "
    "'minReadySeconds' are forbidden")
RETENTION_VALUES = ("Retain", "Delete")


def _strategy(spec: dict, path: str) -> Errs:
    errs: Errs = []
    us = d(spec.get("updateStrategy"))
    t = s(us.get("type"))
    up = child(path, "updateStrategy")
    if not t:
        errs.append(E.required(up))
    elif t == "OnDelete":
        if us.get("rollingUpdate") is not None:
            errs.append(E.invalid(child(up, "rollingUpdate"), us.get("rollingUpdate"),
                                  "only allowed for updateStrategy 'RollingUpdate'"))
    elif t == "RollingUpdate":
        ru = us.get("rollingUpdate")
        if ru is not None:
            ru = d(ru)
            rp = child(up, "rollingUpdate")
            errs += nonnegative(ru.get("partition", 0), child(rp, "partition"))
            mu = ru.get("maxUnavailable")
            if mu is not None:
                errs += _max_unavailable(mu, child(rp, "maxUnavailable"))
    else:
        errs.append(E.invalid(up, us, "must be 'RollingUpdate' or 'OnDelete'"))
    return errs


class _StringerInvalid(E.FieldError):
    """Invalid with the value printed unquoted: Go prints an IntOrString through String()."""

    def body(self) -> str:
        return f"{self.kind[1]}: {self.value}: {self.detail}"


def _atoi(v: str) -> int:
    try:
        return int(v)
    except ValueError:
        return 0


def _max_unavailable(mu: Any, path: str) -> Errs:
    """Upstream validateRollingUpdateStatefulSet: ValidatePositiveIntOrPercent, then
    "cannot be 0" (IntValue of a non-percent string is its Atoi, so "abc" gets both), then
    IsNotMoreThan100Percent."""
    errs: Errs = []
    if isinstance(mu, str):
        is_percent = mu.endswith("%") and mu[:-1].isdigit() and mu[:-1].isascii()
        if not is_percent:
            errs.append(_StringerInvalid(E.INVALID, path, mu, F.regex_error(
                "a valid percent string must be a numeric string followed by an ending '%'",
                "[0-9]+%", "1%", "93%")))
        value = int(mu[:-1]) if is_percent else _atoi(mu)
        if value == 0:
            errs.append(_StringerInvalid(E.INVALID, path, mu, "cannot be 0"))
        if is_percent and value > 100:
            errs.append(_StringerInvalid(E.INVALID, path, mu, "must not be greater than 100%"))
        return errs
    v = num(mu)
    if v < 0:
        errs.append(E.invalid(path, v, "must be greater than or equal to 0"))
    if v == 0:
        errs.append(_StringerInvalid(E.INVALID, path, v, "cannot be 0"))
    return errs


def validate_statefulset_spec(spec: dict, path: str = "spec") -> Errs:
    errs: Errs = []
    pmp = s(spec.get("podManagementPolicy"))
    if not pmp:
        errs.append(E.required(child(path, "podManagementPolicy")))
    elif pmp not in ("OrderedReady", "Parallel"):
        errs.append(E.invalid(child(path, "podManagementPolicy"), pmp,
                              "must be 'OrderedReady' or 'Parallel'"))
    errs += _strategy(spec, path)
    if spec.get("persistentVolumeClaimRetentionPolicy") is not None:
        pol = d(spec.get("persistentVolumeClaimRetentionPolicy"))
        pp = child(path, "persistentVolumeClaimRetentionPolicy")
        for f in ("whenDeleted", "whenScaled"):
            v = s(pol.get(f))
            if v not in RETENTION_VALUES:
                errs.append(E.unsupported(child(pp, f), v, RETENTION_VALUES))
    if spec.get("ordinals") is not None:
        errs += nonnegative(d(spec.get("ordinals")).get("start", 0),
                            child(path, "ordinals", "start"))
    errs += nonnegative(spec.get("replicas", 0), child(path, "replicas"))
    errs += nonnegative(spec.get("minReadySeconds", 0), child(path, "minReadySeconds"))

    sel = spec.get("selector")
    tmpl = d(spec.get("template"))
    tmeta = d(tmpl.get("metadata"))
    tp = child(path, "template")
    if sel is None:
        errs.append(E.required(child(path, "selector")))
    else:
        sel_errs = validate_label_selector(sel, child(path, "selector"))
        errs += sel_errs
        sd = d(sel)
        if not d(sd.get("matchLabels")) and not lst(sd.get("matchExpressions")):
            errs.append(E.invalid(child(path, "selector"), sel,
                                  "empty selector is invalid for statefulset"))
        elif not sel_errs and not selector_matches(sel, {k: v for k, v in
                                                         d(tmeta.get("labels")).items()}):
            errs.append(E.invalid(child(tp, "metadata", "labels"), tmeta.get("labels"),
                                  "`selector` does not match template `labels`"))
    errs += validate_labels(tmeta.get("labels"), child(tp, "labels"))
    errs += M.validate_annotations(tmeta.get("annotations"), child(tp, "annotations"))
    tspec = d(tmpl.get("spec"))
    rp = s(tspec.get("restartPolicy"))
    if rp != "Always":
        errs.append(E.unsupported(child(tp, "spec", "restartPolicy"), rp, ["Always"]))
    if tspec.get("activeDeadlineSeconds") is not None:
        errs.append(E.forbidden(child(tp, "spec", "activeDeadlineSeconds"),
                                "activeDeadlineSeconds in StatefulSet is not Supported"))
    return errs


def validate_statefulset(obj: dict) -> Errs:
    errs = M.validate_object_meta(obj.get("metadata"), True, F.name_is_dns_label)
    return errs + validate_statefulset_spec(d(obj.get("spec")))


def validate_statefulset_update(new: dict, old: dict) -> Errs:
    errs = M.validate_object_meta_update(new.get("metadata"), old.get("metadata"))
    # The name is not re-checked on update: older releases accepted subdomain names.
    errs += validate_statefulset_spec(d(new.get("spec")))
    ns, os_ = copy.copy(d(new.get("spec"))), d(old.get("spec"))
    for f in STS_MUTABLE:
        if f in os_:
            ns[f] = os_[f]
        else:
            ns.pop(f, None)
    if _strip(ns) != _strip(os_):
        errs.append(E.forbidden("spec", STS_UPDATE_FORBIDDEN))
    return errs


def _strip(v: Any) -> Any:
    if isinstance(v, dict):
        out = {k: _strip(x) for k, x in v.items()}
        return {k: x for k, x in out.items() if x not in (None, {}, [])}
    if isinstance(v, list):
        return [_strip(x) for x in v]
    return v


def validate_statefulset_status_update(new: dict, old: dict) -> Errs:
    st = d(new.get("status"))
    p = "status"
    errs: Errs = []
    for f in ("replicas", "readyReplicas", "currentReplicas", "updatedReplicas",
              "availableReplicas"):
        errs += nonnegative(st.get(f, 0), child(p, f))
    for f in ("observedGeneration", "collisionCount"):
        if st.get(f) is not None:
            errs += nonnegative(st.get(f), child(p, f))
    replicas = num(st.get("replicas"))
    for f in ("readyReplicas", "currentReplicas", "updatedReplicas", "availableReplicas"):
        if num(st.get(f)) > replicas:
            errs.append(E.invalid(child(p, f), num(st.get(f)),
                                  "cannot be greater than status.replicas"))
    if num(st.get("availableReplicas")) > num(st.get("readyReplicas")):
        errs.append(E.invalid(child(p, "availableReplicas"), num(st.get("availableReplicas")),
                              "cannot be greater than status.readyReplicas"))
    errs += M.validate_object_meta_update(new.get("metadata"), old.get("metadata"))
    old_cc = d(old.get("status")).get("collisionCount")
    new_cc = st.get("collisionCount")
    if old_cc is not None and (new_cc is None or num(new_cc) < num(old_cc)):
        errs.append(E.invalid(child(p, "collisionCount"), num(new_cc),
                              "cannot be decremented"))
    return errs


def validate_controller_revision(obj: dict) -> Errs:
    errs = M.validate_object_meta(obj.get("metadata"), True, F.name_is_dns_subdomain)
    if obj.get("data") is None:
        errs.append(E.required("data", "data is mandatory"))
    errs += nonnegative(obj.get("revision", 0), "revision")
    return errs


def validate_controller_revision_update(new: dict, old: dict) -> Errs:
    errs = M.validate_object_meta_update(new.get("metadata"), old.get("metadata"))
    errs += validate_controller_revision(new)
    if new.get("data") != old.get("data"):
        errs.append(E.invalid("data", new.get("data"), "field is immutable"))
    return errs
