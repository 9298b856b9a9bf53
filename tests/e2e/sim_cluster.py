"""One `k1s up --simulated-nodes 3` for the StatefulSet end-to-end tests, and their helpers.

The StatefulSet tests need pods that go Running, so they cannot use the session `cluster`
(which has no nodes). Every test file that imports `sim_cluster`, `kubectl` and `ns` from here
shares one cluster process for the whole session; each test gets its own namespace.

The helpers only drive the pinned kubectl, so the tests see what a user of kubectl sees.
Manifests are built from the seed document's StatefulSet (shared/scenarios/seed), changed per
test in Python, and fed to `kubectl apply -f -` as JSON (kubectl reads JSON as YAML).
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import tempfile

import pytest
import yaml

from e2e_util import SEED, Watch, wait_until
from k1s_harness import Kubectl, pinned_kubectl, start_cluster, stop_cluster

# Both test files import the fixture below; pytest gives each its own session-scoped copy,
# so the process lives here and the second copy reuses it.
_RUNNING: dict = {}


@pytest.fixture(scope="session")
def sim_cluster():
    if "c" not in _RUNNING:
        workdir = tempfile.mkdtemp(prefix="k1s-sts-e2e-")
        # small delays: pods go Running 50 ms after their sandbox "starts", and a deleted pod's
        # grace period is cut to 0.2 s, so ordered rollouts take a fraction of a second per pod
        _RUNNING["c"] = start_cluster(workdir, "--simulated-nodes", "3",
                                      "--simulated-pod-delay", "0.05",
                                      "--simulated-delete-cap", "0.2", timeout=30)
        _RUNNING["dir"] = workdir
    yield _RUNNING["c"]
    c = _RUNNING.pop("c", None)
    if c is not None:
        stop_cluster(c)
        shutil.rmtree(_RUNNING.pop("dir"), ignore_errors=True)


@pytest.fixture
def kubectl(sim_cluster, tmp_path):
    return Kubectl(pinned_kubectl(), sim_cluster.kubeconfig, str(tmp_path / "kcache"))


@pytest.fixture
def ns(kubectl, request):
    """A fresh namespace for one test; deleted afterwards without waiting."""
    base = "sts-" + "".join(c if c.isalnum() else "-" for c in request.node.name.lower())
    name = f"{base[:54].strip('-')}-{os.urandom(2).hex()}"
    kubectl.ok("create", "namespace", name)
    yield name
    kubectl("delete", "namespace", name, "--wait=false")


# ---- manifests -----------------------------------------------------------------------------

def seed_docs() -> tuple[dict, dict]:
    """The seed's headless Service `nginx` and StatefulSet `web`, as parsed dicts."""
    with open(os.path.join(SEED, "statefulset.yaml")) as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    svc = next(d for d in docs if d["kind"] == "Service")
    sts = next(d for d in docs if d["kind"] == "StatefulSet")
    return svc, sts


def seed_sts(replicas: int | None = None, **spec) -> dict:
    """The seed StatefulSet with `replicas` and any other top-level spec fields replaced."""
    sts = copy.deepcopy(seed_docs()[1])
    if replicas is not None:
        sts["spec"]["replicas"] = replicas
    sts["spec"].update(spec)
    return sts


def apply(k, ns: str, *objs: dict) -> str:
    """`kubectl apply -f -` of the objects (a List-free multi-document stream)."""
    text = "\n---\n".join(json.dumps(o) for o in objs)
    return k.ok("apply", "-n", ns, "-f", "-", input=text)


def apply_seed(k, ns: str, sts: dict | None = None) -> None:
    """The seed's Service and StatefulSet (or a changed copy of the set)."""
    svc, seed = seed_docs()
    apply(k, ns, svc, sts or seed)


# ---- reading state -------------------------------------------------------------------------

def pods(k, ns: str, selector: str = "app=nginx") -> dict[str, dict]:
    return {p["metadata"]["name"]: p
            for p in k.json("get", "pods", "-n", ns, "-l", selector)["items"]}


def claims(k, ns: str, selector: str = "app=nginx") -> dict[str, dict]:
    return {c["metadata"]["name"]: c
            for c in k.json("get", "pvc", "-n", ns, "-l", selector)["items"]}


def sts_obj(k, ns: str, name: str = "web") -> dict:
    return k.json("get", "sts", name, "-n", ns)


def ready(p: dict) -> bool:
    st = p.get("status", {})
    return st.get("phase") == "Running" and not p["metadata"].get("deletionTimestamp") and any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in st.get("conditions", []))


def wait_pods_ready(k, ns: str, names: list[str], timeout: float = 40.0,
                    not_uids: dict[str, str] | None = None) -> dict[str, dict]:
    """Wait until exactly `names` exist (label app=nginx), all Running+Ready; return them.

    `not_uids` names pods whose old incarnation (uid) must have been replaced.
    """
    def check():
        ps = pods(k, ns)
        if sorted(ps) != sorted(names) or not all(ready(p) for p in ps.values()):
            return None
        if not_uids and any(ps[n]["metadata"]["uid"] == u for n, u in not_uids.items()):
            return None
        return ps
    got = wait_until(check, timeout=timeout, interval=0.2)
    assert got, (f"pods {names} not all Ready in {ns}:\n"
                 + k("get", "pods", "-n", ns, "-o", "wide").stdout
                 + k("get", "events", "-n", ns).stdout)
    return got


def wait_sts(k, ns: str, pred, name: str = "web", timeout: float = 40.0) -> dict:
    """Wait until the set's object satisfies `pred` and its status is for its generation."""
    def check():
        o = sts_obj(k, ns, name)
        st = o.get("status", {})
        if st.get("observedGeneration", 0) < o["metadata"].get("generation", 1):
            return None
        return o if pred(o) else None
    got = wait_until(check, timeout=timeout, interval=0.2)
    assert got, f"statefulset {name} never reached the state:\n" + json.dumps(
        sts_obj(k, ns, name).get("status"), indent=1)
    return got


def rollout_status(k, ns: str, name: str = "web", timeout: str = "60s"):
    return k("rollout", "status", f"sts/{name}", "-n", ns, f"--timeout={timeout}", timeout=90)


def revision_hash(p: dict) -> str:
    return p["metadata"]["labels"].get("controller-revision-hash", "")


def image(p: dict) -> str:
    return p["spec"]["containers"][0]["image"]


# ---- watching ------------------------------------------------------------------------------

WATCH_FORMAT = ('jsonpath={.type}|{.object.metadata.name}|{.object.metadata.uid}|'
                '{.object.status.phase}|{.object.status.conditions[?(@.type=="Ready")].status}|'
                '{.object.metadata.deletionTimestamp}{"\\n"}')


def watch_pods(k, ns: str) -> Watch:
    """`kubectl get pods -w --output-watch-events`, one `EVENT|name|uid|phase|ready|deleting`
    line per event; the lines for the initial list are ADDED."""
    return Watch(k, "get", "pods", "-n", ns, "-l", "app=nginx", "-w", "--output-watch-events",
                 "-o", WATCH_FORMAT)


def parse_watch(text: str) -> list[dict]:
    """The watch's lines as dicts: event, name, uid, phase, ready, deleting."""
    out = []
    for ln in text.splitlines():
        parts = ln.split("|")
        if len(parts) != 6:
            continue
        out.append({"event": parts[0], "name": parts[1], "uid": parts[2], "phase": parts[3],
                    "ready": parts[4] == "True", "deleting": bool(parts[5])})
    return out
