"""ControllerRevisions of a StatefulSet: data, hash, naming, choosing, history (pure).

A revision snapshots only the pod template, stored the way upstream stores it and kubectl's
`rollout history|undo` reads it: `data` = `{"spec":{"template":{...,"$patch":"replace"}}}`.
Its name is `<set>-<hash>`, where hash = FNV-1 (32 bit) over the data's JSON bytes (sorted
keys, compact, as Go's json.Marshal of a map) followed by the decimal collision count, the
decimal of that uint32 mapped through upstream's safe alphabet. Labels: the template's plus
`controller.kubernetes.io/hash`; annotations: the set's; a controller ref to the set.

Choosing (upstream getStatefulSetRevisions): if the newest revision equals the current
template it is the update revision; if an older one does, it is reused and renumbered to the
next revision number (rollback); otherwise a new revision is created. The current revision is
the one `status.currentRevision` names, else the update revision.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import orjson

from .identity import meta, revision_of, set_ref, spec

HASH_LABEL = "controller.kubernetes.io/hash"
SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
NAME_PREFIX_MAX = 223           # upstream truncates the parent name so the result is <= 253


def template_data(sts: dict) -> dict:
    """The revision's data, shaped as Go encodes a PodTemplateSpec, keys sorted.

    kubectl's `rollout undo` re-encodes the live set's template through the Go types and
    compares bytes with a revision's data to print "skipped rollback (current template
    already matches revision N)"; the Go encoding (1.37: measured against kubectl) always
    carries each container's `resources` ({}) and omits a zero `creationTimestamp`, so the
    stored data does the same."""
    tmpl = copy.deepcopy(spec(sts).get("template") or {})
    tmeta = tmpl.get("metadata")
    if not isinstance(tmeta, dict):
        tmeta = tmpl["metadata"] = {}
    if tmeta.get("creationTimestamp", "") is None:
        del tmeta["creationTimestamp"]
    tspec = tmpl.get("spec") or {}
    for key in ("containers", "initContainers"):
        for c in tspec.get(key) or []:
            if isinstance(c, dict):
                c.setdefault("resources", {})
    tmpl["$patch"] = "replace"
    return orjson.loads(data_bytes({"spec": {"template": tmpl}}))


def data_bytes(data: dict) -> bytes:
    return orjson.dumps(data, option=orjson.OPT_SORT_KEYS)


def fnv1_32(data: bytes) -> int:
    h = 0x811C9DC5
    for b in data:
        h = (h * 0x01000193) & 0xFFFFFFFF
        h ^= b
    return h


def hash_revision(raw: bytes, collision_count: int | None) -> str:
    probe = raw + (str(collision_count).encode() if collision_count is not None else b"")
    return "".join(SAFE_ALPHABET[b % len(SAFE_ALPHABET)] for b in str(fnv1_32(probe)).encode())


def revision_name(sts: dict, hash_: str) -> str:
    return f"{meta(sts).get('name', '')[:NAME_PREFIX_MAX]}-{hash_}"


def new_revision(sts: dict, revision: int, collision_count: int) -> dict:
    """The ControllerRevision object for the set's current template."""
    data = template_data(sts)
    h = hash_revision(data_bytes(data), collision_count)
    labels = dict(meta(spec(sts).get("template")).get("labels") or {})
    labels[HASH_LABEL] = h
    m: dict = {"name": revision_name(sts, h), "namespace": meta(sts).get("namespace", ""),
               "labels": labels, "ownerReferences": [set_ref(sts)]}
    if meta(sts).get("annotations"):
        m["annotations"] = dict(meta(sts)["annotations"])
    return {"apiVersion": "apps/v1", "kind": "ControllerRevision", "metadata": m,
            "data": data, "revision": revision}


def revision_number(cr: dict) -> int:
    return int(cr.get("revision") or 0)


def sort_revisions(revisions: list[dict]) -> list[dict]:
    """Oldest first: by revision, then creationTimestamp, then name (upstream's order)."""
    return sorted(revisions, key=lambda r: (revision_number(r),
                                            meta(r).get("creationTimestamp") or "",
                                            meta(r).get("name") or ""))


def next_revision(revisions: list[dict]) -> int:
    return max((revision_number(r) for r in revisions), default=0) + 1


def equal_revision(a: dict, b: dict) -> bool:
    ha = (meta(a).get("labels") or {}).get(HASH_LABEL)
    hb = (meta(b).get("labels") or {}).get(HASH_LABEL)
    if ha != hb or ha is None:
        return False
    return data_bytes(a.get("data") or {}) == data_bytes(b.get("data") or {})


def template_of(cr: dict) -> dict:
    """The pod template a revision holds (its data with the `$patch` directive removed)."""
    tmpl = copy.deepcopy(((cr.get("data") or {}).get("spec") or {}).get("template") or {})
    tmpl.pop("$patch", None)
    return tmpl


@dataclass
class RevisionChoice:
    """What getStatefulSetRevisions decided: `action` is "reuse", "rollback" or "create";
    `update` is the update revision (for "rollback", with its new revision number; for
    "create", the object to create); `current` is None when it must be the update revision."""
    action: str
    update: dict
    current: dict | None
    collision_count: int


def choose(sts: dict, revisions: list[dict]) -> RevisionChoice:
    revisions = sort_revisions(revisions)
    collision = int((sts.get("status") or {}).get("collisionCount") or 0)
    candidate = new_revision(sts, next_revision(revisions), collision)
    equal = [r for r in revisions if equal_revision(r, candidate)]
    status_current = (sts.get("status") or {}).get("currentRevision")
    current = next((r for r in revisions if meta(r).get("name") == status_current), None)
    if equal and revisions and meta(revisions[-1]).get("name") == meta(equal[-1]).get("name"):
        return RevisionChoice("reuse", revisions[-1], current, collision)
    if equal:
        bumped = copy.deepcopy(equal[-1])
        bumped["revision"] = candidate["revision"]
        if current is not None and meta(current).get("name") == meta(bumped).get("name"):
            current = bumped
        return RevisionChoice("rollback", bumped, current, collision)
    return RevisionChoice("create", candidate, current, collision)


def history_to_delete(revisions: list[dict], pods: list[dict], current: str, update: str,
                      limit: int | None) -> list[dict]:
    """Revisions to delete so at most `limit` non-live ones remain, oldest first.

    Live: the current and update revisions and any revision a pod's label names. A negative
    limit keeps everything."""
    if limit is None:
        limit = 10
    if limit < 0:
        return []
    live = {current, update} | {revision_of(p) for p in pods}
    history = [r for r in sort_revisions(revisions) if meta(r).get("name") not in live]
    if len(history) <= limit:
        return []
    return history[:len(history) - limit]
