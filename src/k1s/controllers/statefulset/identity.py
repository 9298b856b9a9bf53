"""Who a StatefulSet's pods and claims are: names, ordinals, and the objects the controller makes.

Pure functions over plain dicts (upstream pkg/controller/statefulset/stateful_set_utils.go):

- a pod belongs to a set by name: `<set>-<ordinal>` (regex `^(.*)-([0-9]+)$`, ordinal an
  int32; anything else has ordinal -1 and is never created, deleted or renamed by us);
- ordinals in range are `[start, start + replicas)`, `start` = `spec.ordinals.start` (0);
- a claim for template `T` and ordinal `i` is `<T>-<set>-<i>`;
- a new pod is the template's pod with identity labels, hostname/subdomain, a controller
  ownerReference and one volume per claim template (the claim wins over a template volume of
  the same name).
"""

from __future__ import annotations

import copy
import functools
import re

SET_API_VERSION = "apps/v1"
SET_KIND = "StatefulSet"
POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"
POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"
REVISION_LABEL = "controller-revision-hash"     # holds the ControllerRevision's full name

_NAME_RE = re.compile(r"^(.*)-([0-9]+)$")
_INT32_MAX = 2 ** 31 - 1


def meta(obj: dict | None) -> dict:
    return (obj or {}).get("metadata") or {}


def spec(obj: dict | None) -> dict:
    return (obj or {}).get("spec") or {}


@functools.lru_cache(maxsize=1 << 16)   # names repeat every sync; parsing dominated no-op syncs
def parent_and_ordinal(name: str) -> tuple[str, int]:
    """(`web`, 3) for `web-3`; ("", -1) when the name is not `<parent>-<int32>`."""
    m = _NAME_RE.match(name or "")
    if not m:
        return "", -1
    n = int(m.group(2))
    if n > _INT32_MAX:
        return "", -1
    return m.group(1), n


def ordinal_of(pod: dict) -> int:
    return parent_and_ordinal(meta(pod).get("name", ""))[1]


def parent_of(pod: dict) -> str:
    return parent_and_ordinal(meta(pod).get("name", ""))[0]


def is_member_of(sts: dict, pod: dict) -> bool:
    return parent_of(pod) == meta(sts).get("name")


def start_ordinal(sts: dict) -> int:
    return int((spec(sts).get("ordinals") or {}).get("start") or 0)


def replicas_of(sts: dict) -> int:
    r = spec(sts).get("replicas")
    return 1 if r is None else int(r)


def end_ordinal(sts: dict) -> int:
    """One past the highest ordinal in range."""
    return start_ordinal(sts) + replicas_of(sts)


def in_range(sts: dict, ordinal: int) -> bool:
    return start_ordinal(sts) <= ordinal < end_ordinal(sts)


def pod_name(sts: dict, ordinal: int) -> str:
    return f"{meta(sts).get('name', '')}-{ordinal}"


def claim_templates(sts: dict) -> list[dict]:
    return [t for t in spec(sts).get("volumeClaimTemplates") or [] if isinstance(t, dict)]


def claim_name(sts: dict, template: dict, ordinal: int) -> str:
    return f"{meta(template).get('name', '')}-{meta(sts).get('name', '')}-{ordinal}"


def controller_ref(owner: dict, api_version: str, kind: str) -> dict:
    m = meta(owner)
    return {"apiVersion": api_version, "kind": kind, "name": m.get("name", ""),
            "uid": m.get("uid", ""), "controller": True, "blockOwnerDeletion": True}


def set_ref(sts: dict) -> dict:
    return controller_ref(sts, SET_API_VERSION, SET_KIND)


def controller_of(obj: dict) -> dict | None:
    for ref in meta(obj).get("ownerReferences") or []:
        if ref.get("controller"):
            return ref
    return None


def selector_match_labels(sts: dict) -> dict:
    return dict((spec(sts).get("selector") or {}).get("matchLabels") or {})


# -- claims ----------------------------------------------------------------------------------------

def new_claim(sts: dict, template: dict, ordinal: int) -> dict:
    """The claim for `template` and `ordinal` (labels: the template's, then matchLabels)."""
    tm = meta(template)
    labels = dict(tm.get("labels") or {})
    labels.update(selector_match_labels(sts))
    m: dict = {"name": claim_name(sts, template, ordinal),
               "namespace": meta(sts).get("namespace", "")}
    if labels:
        m["labels"] = labels
    if tm.get("annotations"):
        m["annotations"] = dict(tm["annotations"])
    if tm.get("finalizers"):
        m["finalizers"] = list(tm["finalizers"])
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": m,
            "spec": copy.deepcopy(spec(template))}


def new_claims(sts: dict, ordinal: int) -> list[dict]:
    """The claims pod `ordinal` needs, in template order."""
    return [new_claim(sts, t, ordinal) for t in claim_templates(sts)]


def claim_names(sts: dict, ordinal: int) -> list[str]:
    return [claim_name(sts, t, ordinal) for t in claim_templates(sts)]


# -- pods ------------------------------------------------------------------------------------------

def new_pod(sts: dict, template: dict, ordinal: int, revision: str) -> dict:
    """The pod for `ordinal` built from `template` (a revision's pod template)."""
    tm = meta(template)
    name = pod_name(sts, ordinal)
    m: dict = {"name": name, "namespace": meta(sts).get("namespace", ""),
               "labels": dict(tm.get("labels") or {}),
               "ownerReferences": [set_ref(sts)]}
    if tm.get("annotations"):
        m["annotations"] = dict(tm["annotations"])
    if tm.get("finalizers"):
        m["finalizers"] = list(tm["finalizers"])
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": m,
           "spec": copy.deepcopy(spec(template))}
    set_identity(sts, pod)
    pod["spec"]["hostname"] = name
    if spec(sts).get("serviceName"):
        pod["spec"]["subdomain"] = spec(sts)["serviceName"]
    set_storage(sts, pod)
    m["labels"][REVISION_LABEL] = revision
    return pod


def set_identity(sts: dict, pod: dict) -> None:
    """Name, namespace and the two identity labels (upstream updateIdentity)."""
    m = pod.setdefault("metadata", {})
    ordinal = ordinal_of(pod)
    m["name"] = pod_name(sts, ordinal)
    m["namespace"] = meta(sts).get("namespace", "")
    labels = m.setdefault("labels", {})
    labels[POD_NAME_LABEL] = m["name"]
    labels[POD_INDEX_LABEL] = str(ordinal)


def set_storage(sts: dict, pod: dict) -> None:
    """One PVC volume per claim template, replacing a template volume of the same name."""
    ordinal = ordinal_of(pod)
    templates = claim_templates(sts)
    if not templates:
        return
    ps = pod.setdefault("spec", {})
    wanted = {meta(t).get("name", ""): claim_name(sts, t, ordinal) for t in templates}
    volumes = [v for v in ps.get("volumes") or [] if v.get("name") not in wanted]
    for vname, cname in wanted.items():
        volumes.append({"name": vname, "persistentVolumeClaim": {"claimName": cname}})
    ps["volumes"] = volumes


def identity_matches(sts: dict, pod: dict) -> bool:
    parent, ordinal = parent_and_ordinal(meta(pod).get("name", ""))
    m = meta(pod)
    labels = m.get("labels") or {}
    return (ordinal >= 0 and parent == meta(sts).get("name")
            and m.get("namespace") == meta(sts).get("namespace")
            and labels.get(POD_NAME_LABEL) == m.get("name")
            and labels.get(POD_INDEX_LABEL) == str(ordinal))


def storage_matches(sts: dict, pod: dict) -> bool:
    ordinal = ordinal_of(pod)
    if ordinal < 0:
        return False
    volumes = {v.get("name"): v for v in spec(pod).get("volumes") or []}
    for t in claim_templates(sts):
        v = volumes.get(meta(t).get("name"))
        if v is None:
            return False
        if ((v.get("persistentVolumeClaim") or {}).get("claimName")
                != claim_name(sts, t, ordinal)):
            return False
    return True


def revision_of(pod: dict) -> str:
    return (meta(pod).get("labels") or {}).get(REVISION_LABEL, "")
