"""ObjectMeta validation: names, generateName, namespace, labels, annotations, ownerReferences,
finalizers, and the update rules (immutable identity fields, no new finalizers while deleting).

Mirrors apimachinery's `api/validation/objectmeta.go` plus core's extra finalizer-name rule.
Messages are upstream's, e.g. `metadata.name: Required value: name or generateName is
required`, `metadata.labels: Invalid value: "a b": a valid label must be ...`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Callable

from k1s.api import errors as E
from k1s.api.validation import formats as F
from k1s.api.validation.common import (Errs, child, d, index, lst, nonnegative, num,
                                       s, validate_labels)

NameFn = Callable[[str, bool], list[str]]

TOTAL_ANNOTATION_SIZE_LIMIT = 256 * 1024

# Finalizer names that need no domain prefix (helper.IsStandardFinalizerName).
STANDARD_FINALIZERS = frozenset({"kubernetes", "orphan", "foregroundDeletion"})
FINALIZER_ORPHAN = "orphan"
FINALIZER_DELETE_DEPENDENTS = "foregroundDeletion"

# Kinds that may never own anything (apimachinery BannedOwners).
_BANNED_OWNERS = {("", "v1", "Event")}


def validate_annotations(annotations: Any, path: str) -> Errs:
    errs: Errs = []
    total = 0
    for k, v in d(annotations).items():
        # Annotation keys are qualified names compared case-insensitively.
        errs += [E.invalid(path, k, m) for m in F.is_qualified_name(k.lower())]
        total += len(k.encode()) + len(v.encode() if isinstance(v, str) else b"")
    if total > TOTAL_ANNOTATION_SIZE_LIMIT:
        errs.append(E.too_long(path, TOTAL_ANNOTATION_SIZE_LIMIT))
    return errs


def validate_owner_references(refs: Any, path: str) -> Errs:
    errs: Errs = []
    first_controller = ""
    for ref in lst(refs):
        ref = d(ref)
        api_version = s(ref.get("apiVersion"))
        kind = s(ref.get("kind"))
        group, _, version = api_version.rpartition("/")
        if not version:
            errs.append(E.invalid(child(path, "apiVersion"), api_version,
                                  "version must not be empty"))
        if not kind:
            errs.append(E.invalid(child(path, "kind"), kind, "must not be empty"))
        if not s(ref.get("name")):
            errs.append(E.invalid(child(path, "name"), s(ref.get("name")), "must not be empty"))
        if not s(ref.get("uid")):
            errs.append(E.invalid(child(path, "uid"), s(ref.get("uid")), "must not be empty"))
        if (group, version, kind) in _BANNED_OWNERS:
            errs.append(E.invalid(path, ref, f"{group}/{version}, Kind={kind} is disallowed "
                                  "from being an owner"))
        if ref.get("controller") is True:
            cur = f"{kind}/{s(ref.get('name'))}"
            if first_controller:
                errs.append(E.invalid(path, refs, "Only one reference can have Controller set "
                                      f'to true. Found "true" in references for '
                                      f"{first_controller} and {cur}"))
            else:
                first_controller = cur
    return errs


def validate_finalizer_name(name: str, path: str) -> Errs:
    errs = [E.invalid(path, name, m) for m in F.is_qualified_name(name)]
    errs += validate_kube_finalizer_name(name, path)
    return errs


def validate_kube_finalizer_name(name: str, path: str) -> Errs:
    if "/" not in name and name not in STANDARD_FINALIZERS:
        return [E.invalid(path, name, "name is neither a standard finalizer name nor is it "
                          "fully qualified")]
    return []


def validate_finalizers(finalizers: Any, path: str) -> Errs:
    errs: Errs = []
    names = [f for f in lst(finalizers) if isinstance(f, str)]
    for f in names:
        errs += [E.invalid(path, f, m) for m in F.is_qualified_name(f)]
    if FINALIZER_ORPHAN in names and FINALIZER_DELETE_DEPENDENTS in names:
        errs.append(E.invalid(path, names, f"finalizer {FINALIZER_ORPHAN} and "
                              f"{FINALIZER_DELETE_DEPENDENTS} cannot be both set"))
    # core's extra rule, reported per index
    for i, f in enumerate(names):
        errs += validate_kube_finalizer_name(f, index(path, i))
    return errs


def _common(meta: dict, namespaced: bool, path: str) -> Errs:
    errs: Errs = []
    ns = s(meta.get("namespace"))
    if namespaced:
        if not ns:
            errs.append(E.required(child(path, "namespace")))
        else:
            errs += [E.invalid(child(path, "namespace"), ns, m) for m in F.name_is_dns_label(ns)]
    elif ns:
        errs.append(E.forbidden(child(path, "namespace"), "not allowed on this type"))
    errs += nonnegative(meta.get("generation", 0), child(path, "generation"))
    errs += validate_labels(meta.get("labels"), child(path, "labels"))
    errs += validate_annotations(meta.get("annotations"), child(path, "annotations"))
    errs += validate_owner_references(meta.get("ownerReferences"), child(path, "ownerReferences"))
    errs += validate_finalizers(meta.get("finalizers"), child(path, "finalizers"))
    return errs


def validate_object_meta(meta: Any, namespaced: bool, name_fn: NameFn,
                         path: str = "metadata") -> Errs:
    """ValidateObjectMeta on create (name generation has already happened, if any)."""
    meta = d(meta)
    errs: Errs = []
    gen = s(meta.get("generateName"))
    if gen:
        errs += [E.invalid(child(path, "generateName"), gen, m) for m in name_fn(gen, True)]
    name = s(meta.get("name"))
    if not name:
        errs.append(E.required(child(path, "name"), "name or generateName is required"))
    else:
        errs += [E.invalid(child(path, "name"), name, m) for m in name_fn(name, False)]
    return errs + _common(meta, namespaced, path)


def _go_time(value: Any) -> Any:
    """metav1.Time prints through Go's time.String(): `2024-01-02 03:04:05 +0000 UTC`."""
    if not isinstance(value, str) or not value:
        return None
    try:
        t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    return _Raw(t.strftime("%Y-%m-%d %H:%M:%S +0000 UTC"))


class _Raw(str):
    """A value rendered without quotes in an error message (Go's Stringer output)."""


def validate_object_meta_update(new: Any, old: Any, path: str = "metadata") -> Errs:
    new, old = d(new), d(old)
    errs: Errs = []
    if old.get("deletionTimestamp"):
        extra = sorted(set(x for x in lst(new.get("finalizers")) if isinstance(x, str))
                       - set(x for x in lst(old.get("finalizers")) if isinstance(x, str)))
        if extra:
            shown = "[]string{" + ", ".join(f'"{x}"' for x in extra) + "}"
            errs.append(E.forbidden(child(path, "finalizers"), "no new finalizers can be added "
                                    f"if the object is being deleted, found new finalizers {shown}"))
    if not s(new.get("resourceVersion")):
        errs.append(E.invalid(child(path, "resourceVersion"), s(new.get("resourceVersion")),
                              "must be specified for an update"))
    if num(new.get("generation", 0)) < num(old.get("generation", 0)):
        errs.append(E.invalid(child(path, "generation"), num(new.get("generation", 0)),
                              "must not be decremented"))
    for f in ("name", "namespace", "uid"):
        if s(new.get(f)) != s(old.get(f)):
            errs.append(E.invalid(child(path, f), s(new.get(f)), "field is immutable"))
    for f in ("creationTimestamp", "deletionTimestamp"):
        if (new.get(f) or None) != (old.get(f) or None):
            errs.append(_time_immutable(child(path, f), new.get(f)))
    if new.get("deletionGracePeriodSeconds") != old.get("deletionGracePeriodSeconds"):
        errs.append(E.invalid(child(path, "deletionGracePeriodSeconds"),
                              new.get("deletionGracePeriodSeconds"), "field is immutable"))
    errs += validate_labels(new.get("labels"), child(path, "labels"))
    errs += validate_annotations(new.get("annotations"), child(path, "annotations"))
    errs += validate_owner_references(new.get("ownerReferences"), child(path, "ownerReferences"))
    errs += validate_finalizers(new.get("finalizers"), child(path, "finalizers"))
    return errs


def _time_immutable(path: str, value: Any) -> E.FieldError:
    shown = _go_time(value)
    err = E.invalid(path, shown, "field is immutable")
    if isinstance(shown, _Raw):
        # Go prints a Stringer unquoted; keep the error's body identical.
        err = _RawInvalid(E.INVALID, path, str(shown), "field is immutable")
    return err


class _RawInvalid(E.FieldError):
    def body(self) -> str:
        return f"{self.kind[1]}: {self.value}: {self.detail}"


def validate_template_object_meta(meta: Any, path: str) -> Errs:
    """Embedded templates (PVC templates): only labels and annotations may be set."""
    meta = d(meta)
    errs = validate_annotations(meta.get("annotations"), child(path, "annotations"))
    errs += validate_labels(meta.get("labels"), child(path, "labels"))
    for k in meta:
        if k not in ("labels", "annotations") and meta[k] not in (None, "", {}, [], 0):
            errs.append(E.forbidden(child(path, k), "cannot be set"))
    return errs
