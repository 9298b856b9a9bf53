"""An in-memory cluster for the StatefulSet planner's tests: the set, its pods, claims and
revisions as dicts, one `sync()` doing what controller.sync does (choose revisions, plan,
carry out the ops, possibly failing some writes at random), and the kubelet / garbage
collector / user steps the property tests interleave with syncs."""

from __future__ import annotations

import copy
import itertools
import random

from k1s.controllers.statefulset import planner as P
from k1s.controllers.statefulset import revisions as RV
from k1s.controllers.statefulset import status as ST
from k1s.controllers.statefulset.identity import meta, ordinal_of

NOW = 1_800_000_000.0
_uids = itertools.count(1)


def make_set(replicas=2, policy="OrderedReady", start=None, when_scaled="Retain",
             when_deleted="Retain", strategy="RollingUpdate", partition=0,
             max_unavailable=None, image="nginx:1.9.1", templates=("www",), min_ready=0):
    us: dict = {"type": strategy}
    if strategy == "RollingUpdate":
        us["rollingUpdate"] = {"partition": partition}
        if max_unavailable is not None:
            us["rollingUpdate"]["maxUnavailable"] = max_unavailable
    spec = {
        "replicas": replicas, "serviceName": "nginx", "podManagementPolicy": policy,
        "selector": {"matchLabels": {"app": "nginx"}},
        "template": {"metadata": {"labels": {"app": "nginx"}},
                     "spec": {"containers": [{"name": "nginx", "image": image}],
                              "restartPolicy": "Always"}},
        "updateStrategy": us, "revisionHistoryLimit": 10, "minReadySeconds": min_ready,
        "persistentVolumeClaimRetentionPolicy": {"whenScaled": when_scaled,
                                                 "whenDeleted": when_deleted},
        "volumeClaimTemplates": [
            {"metadata": {"name": t}, "spec": {"accessModes": ["ReadWriteOnce"],
                                               "resources": {"requests": {"storage": "1Gi"}}}}
            for t in templates],
    }
    if start is not None:
        spec["ordinals"] = {"start": start}
    return {"apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": "web", "namespace": "default", "uid": "set-uid",
                         "generation": 1, "resourceVersion": "1"},
            "spec": spec, "status": {"replicas": 0}}


def selector_of(sts):
    from k1s.api.selectors import selector_from_label_selector
    return selector_from_label_selector(sts["spec"]["selector"])


class WriteFailed(Exception):
    pass


class World:
    def __init__(self, sts: dict, fail_rate: float = 0.0, seed: int = 0):
        self.sts = sts
        self.pods: dict[str, dict] = {}
        self.claims: dict[str, dict] = {}
        self.revisions: dict[str, dict] = {}
        self.fail_rate = fail_rate
        self.rng = random.Random(seed)
        self.plans: list[tuple[P.Observed, P.Plan]] = []
        self.log: list[tuple[str, str]] = []       # (op kind, object name) carried out

    # -- the controller, as controller.sync does it -------------------------------------------
    def _maybe_fail(self):
        if self.fail_rate and self.rng.random() < self.fail_rate:
            raise WriteFailed()

    def observed(self) -> P.Observed:
        sts = self.sts
        revs = list(self.revisions.values())
        choice = RV.choose(sts, revs)
        if choice.action == "create":
            self._maybe_fail()
            cr = copy.deepcopy(choice.update)
            cr["metadata"]["uid"] = f"cr-{next(_uids)}"
            self.revisions[cr["metadata"]["name"]] = cr
            update = cr
        elif choice.action == "rollback":
            self._maybe_fail()
            self.revisions[meta(choice.update)["name"]] = choice.update
            update = choice.update
        else:
            update = choice.update
        current = choice.current or update
        if meta(current)["name"] == meta(update)["name"]:
            current = update
        owned = P.claim_pods(sts, list(self.pods.values()), selector_of(sts)).owned
        return P.Observed(sts, owned, dict(self.claims), meta(current)["name"],
                          meta(update)["name"], RV.template_of(current),
                          RV.template_of(update), choice.collision_count, NOW)

    def sync(self) -> P.Plan | None:
        try:
            obs = self.observed()
        except WriteFailed:
            return None
        plan = P.plan(obs)
        self.plans.append((obs, plan))
        failed = False
        for batch in plan.batches:
            for work in batch:
                for op in work.ops:
                    try:
                        self._do(op)
                    except WriteFailed:
                        failed = True
                        break
            if failed:
                break
        st = ST.complete_rolling_update(self.sts, plan.status)
        if ST.needs_write(self.sts.get("status"), st) and not (
                self.fail_rate and self.rng.random() < self.fail_rate):
            self.sts["status"] = st.to_json()
        if not failed:
            limit = self.sts["spec"].get("revisionHistoryLimit")
            for r in RV.history_to_delete(list(self.revisions.values()),
                                          list(self.pods.values()), st.currentRevision,
                                          st.updateRevision, limit):
                self.revisions.pop(meta(r)["name"], None)
        return plan

    def _do(self, op: P.Op) -> None:
        name = meta(op.obj)["name"]
        if op.kind == "claim-terminating":
            raise WriteFailed()
        self._maybe_fail()
        if op.kind == "create-claim":
            if name not in self.claims:
                c = copy.deepcopy(op.obj)
                c["metadata"]["uid"] = f"pvc-{next(_uids)}"
                self.claims[name] = c
        elif op.kind == "create-pod":
            assert name not in self.pods, f"created {name} twice"
            for cname in (v["persistentVolumeClaim"]["claimName"]
                          for v in op.obj["spec"].get("volumes", [])
                          if "persistentVolumeClaim" in v):
                assert cname in self.claims, f"pod {name} created before its claim {cname}"
            p = copy.deepcopy(op.obj)
            p["metadata"]["uid"] = f"pod-{next(_uids)}"
            p["status"] = {"phase": "Pending"}
            self.pods[name] = p
        elif op.kind == "update-pod":
            self.pods[name] = copy.deepcopy(op.obj)
        elif op.kind == "update-claim":
            if name in self.claims:
                self.claims[name] = copy.deepcopy(op.obj)
        elif op.kind == "delete-pod":
            p = self.pods.get(name)
            if p is not None and meta(p).get("uid") == meta(op.obj).get("uid"):
                p["metadata"]["deletionTimestamp"] = "2027-01-01T00:00:00Z"
        self.log.append((op.kind, name))

    # -- the rest of the cluster ---------------------------------------------------------------
    def make_ready(self, name: str) -> None:
        p = self.pods.get(name)
        if p is not None and not meta(p).get("deletionTimestamp"):
            p["status"] = {"phase": "Running", "conditions": [
                {"type": "Ready", "status": "True", "lastTransitionTime": "2020-01-01T00:00:00Z"}]}

    def fail(self, name: str) -> None:
        p = self.pods.get(name)
        if p is not None:
            p["status"] = {"phase": "Failed"}

    def finish_termination(self, name: str) -> None:
        p = self.pods.get(name)
        if p is not None and meta(p).get("deletionTimestamp"):
            del self.pods[name]
            self.collect_garbage()

    def collect_garbage(self) -> None:
        """Claims whose every owner is gone are deleted (the garbage collector)."""
        live = {meta(p)["uid"] for p in self.pods.values()} | {self.sts["metadata"]["uid"]}
        for name, c in list(self.claims.items()):
            refs = meta(c).get("ownerReferences") or []
            if refs and not any(r.get("uid") in live for r in refs):
                del self.claims[name]

    def scale(self, n: int) -> None:
        self.sts["spec"]["replicas"] = n
        self.sts["metadata"]["generation"] += 1

    def set_image(self, image: str) -> None:
        self.sts["spec"]["template"]["spec"]["containers"][0]["image"] = image
        self.sts["metadata"]["generation"] += 1

    def kubelet_round(self) -> None:
        """Every pod becomes ready, every terminating pod finishes."""
        for name in list(self.pods):
            if meta(self.pods[name]).get("deletionTimestamp"):
                self.finish_termination(name)
            else:
                self.make_ready(name)

    def converge(self, rounds: int = 400) -> None:
        for _ in range(rounds):
            self.sync()
            self.kubelet_round()

    def ordinals(self) -> list[int]:
        return sorted(ordinal_of(p) for p in self.pods.values())
