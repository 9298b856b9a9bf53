"""kubectl get (output formats, selectors, sorting, label columns, watch), the column headers
of the storage kinds, and describe, against `k1s up` (spec/kubectl-wire.md §3, §10)."""

from __future__ import annotations

import json

import pytest
import yaml

from e2e_util import Watch, header, lines, manifest, row, uniq, wait_until

POD_WIDE = ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE", "NOMINATED NODE",
            "READINESS GATES"]


@pytest.fixture
def pods(kubectl, namespace):
    """p1 (app=web,tier=fe,env=prod; 2 containers), p2 (app=db,env=dev), p3 (app=web)."""
    kubectl.ok("create", "-n", namespace, "-f", manifest("pods.yaml"))
    return namespace


def test_get_pods_table(anykubectl, pods):
    out = anykubectl.ok("get", "pods", "-n", pods)
    assert header(out) == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    r = row(out, "p1")
    assert (r["READY"], r["STATUS"], r["RESTARTS"]) == ("0/2", "Pending", "0")
    assert row(out, "p2")["READY"] == "0/1"


def test_get_wide(kubectl, pods):
    out = kubectl.ok("get", "pods", "-n", pods, "-o", "wide")
    assert header(out) == POD_WIDE
    r = row(out, "p1")
    assert [r[c] for c in POD_WIDE[5:]] == ["<none>"] * 4


def test_get_yaml_and_json(kubectl, pods):
    one = yaml.safe_load(kubectl.ok("get", "pod", "p2", "-n", pods, "-o", "yaml"))
    assert (one["kind"], one["apiVersion"], one["metadata"]["name"]) == ("Pod", "v1", "p2")
    assert one["metadata"]["namespace"] == pods
    # kubectl hides managedFields unless --show-managed-fields.
    assert "managedFields" not in one["metadata"]
    lst = json.loads(kubectl.ok("get", "pods", "-n", pods, "-o", "json"))
    assert (lst["kind"], lst["apiVersion"]) == ("List", "v1")
    assert sorted(i["metadata"]["name"] for i in lst["items"]) == ["p1", "p2", "p3"]
    assert all(i["kind"] == "Pod" for i in lst["items"])


def test_get_jsonpath_name_custom_columns(kubectl, pods):
    k = kubectl
    assert k.ok("get", "pods", "-n", pods, "-o", "jsonpath={.items[*].metadata.name}") == \
        "p1 p2 p3"
    assert k.ok("get", "pod", "p1", "-n", pods, "-o",
                "jsonpath={range .spec.containers[*]}{.name}={.image};{end}") == \
        "main=nginx;side=busybox;"
    assert lines(k.ok("get", "pods", "-n", pods, "-o", "name")) == \
        ["pod/p1", "pod/p2", "pod/p3"]
    out = k.ok("get", "pods", "-n", pods, "-o",
               "custom-columns=NAME:.metadata.name,APP:.metadata.labels.app,"
               "IMAGE:.spec.containers[0].image,TIER:.metadata.labels.tier")
    assert [ln.split() for ln in lines(out)] == [
        ["NAME", "APP", "IMAGE", "TIER"], ["p1", "web", "nginx", "fe"],
        ["p2", "db", "postgres", "<none>"], ["p3", "web", "nginx", "<none>"]]


SELECTORS = [
    ("app=web", {"p1", "p3"}),
    ("app==web", {"p1", "p3"}),
    ("app!=web", {"p2"}),
    ("app in (web,db)", {"p1", "p2", "p3"}),
    ("app notin (web)", {"p2"}),
    ("env in (prod)", {"p1"}),
    ("env notin (prod)", {"p2", "p3"}),     # notin matches pods without the key
    ("tier", {"p1"}),
    ("!tier", {"p2", "p3"}),
    ("env,app=web", {"p1"}),
    ("app=web,!env", {"p3"}),
    ("app=nope", set()),
]


@pytest.mark.parametrize("selector,want", SELECTORS, ids=[s for s, _ in SELECTORS])
def test_label_selectors(kubectl, pods, selector, want):
    p = kubectl("get", "pods", "-n", pods, "-l", selector, "-o", "name")
    assert p.returncode == 0, p.stderr
    assert set(lines(p.stdout)) == {f"pod/{n}" for n in want}


def test_bad_label_selector(kubectl, pods):
    p = kubectl("get", "pods", "-n", pods, "-l", "app in web")
    assert p.returncode == 1
    assert "unable to parse requirement" in p.stderr


FIELD_SELECTORS = [
    ("metadata.name=p2", {"p2"}),
    ("metadata.name!=p1", {"p2", "p3"}),
    ("status.phase=Pending", {"p1", "p2", "p3"}),
    ("status.phase!=Pending", set()),
    ("status.phase!=Running", {"p1", "p2", "p3"}),
    ("status.phase!=Succeeded,status.phase!=Failed", {"p1", "p2", "p3"}),
    ("metadata.name!=p1,status.phase=Pending", {"p2", "p3"}),
    ("spec.schedulerName=e2e-no-scheduler", {"p1", "p2", "p3"}),
]


@pytest.mark.parametrize("selector,want", FIELD_SELECTORS, ids=[s for s, _ in FIELD_SELECTORS])
def test_field_selectors(kubectl, pods, selector, want):
    p = kubectl("get", "pods", "-n", pods, "--field-selector", selector, "-o", "name")
    assert p.returncode == 0, p.stderr
    assert set(lines(p.stdout)) == {f"pod/{n}" for n in want}


def test_unsupported_field_selector(kubectl, pods):
    p = kubectl("get", "pods", "-n", pods, "--field-selector", "spec.foo=bar")
    assert p.returncode == 1
    assert p.stderr.strip() == (
        'Error from server (BadRequest): Unable to find "/v1, Resource=pods" that match label '
        'selector "", field selector "spec.foo=bar": field label not supported: spec.foo')


def test_all_namespaces(kubectl, pods):
    out = kubectl.ok("get", "pods", "-A")
    assert header(out) == ["NAMESPACE", "NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    mine = [ln.split()[:2] for ln in lines(out)[1:] if ln.split()[0] == pods]
    assert mine == [[pods, "p1"], [pods, "p2"], [pods, "p3"]]
    out = kubectl.ok("get", "cm", "-A", "-o", "name", "--field-selector",
                     f"metadata.namespace={pods}")
    assert "pod/" not in out


def test_show_labels_and_label_columns(kubectl, pods):
    out = kubectl.ok("get", "pods", "-n", pods, "--show-labels")
    assert header(out) == ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "LABELS"]
    assert row(out, "p1")["LABELS"] == "app=web,env=prod,tier=fe"
    assert row(out, "p3")["LABELS"] == "app=web"
    out = kubectl.ok("get", "pods", "-n", pods, "-L", "app", "-L", "env")
    assert header(out) == ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "APP", "ENV"]
    assert (row(out, "p2")["APP"], row(out, "p2")["ENV"]) == ("db", "dev")
    assert (row(out, "p3")["APP"], row(out, "p3")["ENV"]) == ("web", "")


def test_sort_by(kubectl, pods):
    def names(*args):
        return [ln.split()[0] for ln in lines(kubectl.ok("get", "pods", "-n", pods, *args))[1:]]
    assert names("--sort-by=.metadata.name") == ["p1", "p2", "p3"]
    assert names("--sort-by=.metadata.labels.app") == ["p2", "p1", "p3"]
    assert names("--sort-by={.spec.containers[0].image}") == ["p1", "p3", "p2"]
    out = kubectl.ok("get", "pods", "-n", pods, "--sort-by=.metadata.labels.app", "-o", "name")
    assert lines(out) == ["pod/p2", "pod/p1", "pod/p3"]


def test_empty_list_message(anykubectl, namespace):
    p = anykubectl("get", "pvc", "-n", namespace)
    assert p.returncode == 0
    assert p.stdout == ""
    assert p.stderr.strip() == f"No resources found in {namespace} namespace."


def test_watch_prints_changes(kubectl, namespace):
    kubectl.ok("create", "-n", namespace, "-f", "-",
               input=json.dumps({"apiVersion": "v1", "kind": "ConfigMap",
                                 "metadata": {"name": "w1"}, "data": {"a": "1"}}))
    w = Watch(kubectl, "get", "cm", "-n", namespace, "-w")
    try:
        assert w.read_until(lambda ln: ln.startswith("w1 ")), w.out
        assert w.out[0].split() == ["NAME", "DATA", "AGE"]
        kubectl.ok("create", "-n", namespace, "-f", "-",
                   input=json.dumps({"apiVersion": "v1", "kind": "ConfigMap",
                                     "metadata": {"name": "w2"}}))
        assert w.read_until(lambda ln: ln.startswith("w2 ")), w.out
        assert w.out[-1].split()[:2] == ["w2", "0"]
        kubectl.ok("patch", "cm", "w1", "-n", namespace, "--type=merge",
                   "-p", '{"data":{"b":"2"}}')
        assert w.read_until(lambda ln: ln.startswith("w1 ")), w.out
        assert w.out[-1].split()[:2] == ["w1", "2"]
    finally:
        w.stop()


def test_watch_events_column(kubectl, namespace):
    kubectl.ok("create", "-n", namespace, "-f", "-",
               input=json.dumps({"apiVersion": "v1", "kind": "ConfigMap",
                                 "metadata": {"name": "w1"}}))
    w = Watch(kubectl, "get", "cm", "w1", "-n", namespace, "-w", "--output-watch-events")
    try:
        assert w.read_until(lambda ln: ln.split()[:2] == ["ADDED", "w1"]), w.out
        assert w.out[0].split() == ["EVENT", "NAME", "DATA", "AGE"]
        kubectl.ok("label", "cm", "w1", "-n", namespace, "x=y")
        assert w.read_until(lambda ln: ln.split()[:2] == ["MODIFIED", "w1"]), w.out
        kubectl.ok("delete", "cm", "w1", "-n", namespace)
        assert w.read_until(lambda ln: ln.split()[:2] == ["DELETED", "w1"]), w.out
    finally:
        w.stop()


def test_watch_ends_at_request_timeout(kubectl, namespace):
    kubectl.ok("create", "-n", namespace, "-f", "-",
               input=json.dumps({"apiVersion": "v1", "kind": "ConfigMap",
                                 "metadata": {"name": "w1"}}))
    p = kubectl("get", "cm", "w1", "-n", namespace, "-w", "--request-timeout=1s", timeout=20)
    assert p.returncode == 0, p.stderr
    assert [ln.split()[0] for ln in lines(p.stdout)] == ["NAME", "w1"]


@pytest.fixture
def storage(kubectl, namespace):
    """A StorageClass, a PV and a PVC in it (no provisioner: the claim stays Pending)."""
    sc, pv = uniq("e2e-sc"), uniq("e2e-pv")
    docs = [
        {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": sc},
         "provisioner": "example.com/none", "reclaimPolicy": "Retain",
         "volumeBindingMode": "WaitForFirstConsumer"},
        {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": pv},
         "spec": {"capacity": {"storage": "5Gi"}, "accessModes": ["ReadWriteOnce"],
                  "storageClassName": sc, "hostPath": {"path": "/tmp/" + pv}}},
        {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "claim1"},
         "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": sc,
                  "resources": {"requests": {"storage": "1Gi"}}}},
    ]
    out = kubectl.ok("create", "-n", namespace, "-f", "-",
                     input="\n---\n".join(json.dumps(d) for d in docs))
    assert lines(out) == [f"storageclass.storage.k8s.io/{sc} created",
                          f"persistentvolume/{pv} created",
                          "persistentvolumeclaim/claim1 created"]
    yield namespace, sc, pv
    kubectl("delete", "pv", pv, "--wait=false")
    kubectl("delete", "sc", sc, "--wait=false")


def test_pvc_columns(anykubectl, storage):
    ns, sc, _ = storage
    out = anykubectl.ok("get", "pvc", "-n", ns)
    assert header(out) == ["NAME", "STATUS", "VOLUME", "CAPACITY", "ACCESS MODES",
                           "STORAGECLASS", "VOLUMEATTRIBUTESCLASS", "AGE"]
    r = row(out, "claim1")
    assert (r["STATUS"], r["VOLUME"], r["CAPACITY"], r["ACCESS MODES"], r["STORAGECLASS"],
            r["VOLUMEATTRIBUTESCLASS"]) == ("Pending", "", "", "", sc, "<unset>")
    out = anykubectl.ok("get", "pvc", "-n", ns, "-o", "wide")
    assert header(out)[-1] == "VOLUMEMODE"
    assert row(out, "claim1")["VOLUMEMODE"] == "Filesystem"


def test_pv_and_storageclass_columns(kubectl, storage):
    _, sc, pv = storage
    out = kubectl.ok("get", "pv", pv)
    assert header(out) == ["NAME", "CAPACITY", "ACCESS MODES", "RECLAIM POLICY", "STATUS",
                           "CLAIM", "STORAGECLASS", "VOLUMEATTRIBUTESCLASS", "REASON", "AGE"]
    r = row(out, pv)
    assert (r["CAPACITY"], r["ACCESS MODES"], r["RECLAIM POLICY"], r["CLAIM"],
            r["STORAGECLASS"], r["VOLUMEATTRIBUTESCLASS"]) == \
        ("5Gi", "RWO", "Retain", "", sc, "<unset>")
    # A new PV is Pending until the binder looks at it; then Available (nothing claims it:
    # the class binds on first consumer).
    assert r["STATUS"] in ("Pending", "Available")
    assert header(kubectl.ok("get", "pv", pv, "-o", "wide"))[-1] == "VOLUMEMODE"
    out = kubectl.ok("get", "sc", sc)
    assert header(out) == ["NAME", "PROVISIONER", "RECLAIMPOLICY", "VOLUMEBINDINGMODE",
                           "ALLOWVOLUMEEXPANSION", "AGE"]
    r = row(out, sc)
    assert (r["PROVISIONER"], r["RECLAIMPOLICY"], r["VOLUMEBINDINGMODE"],
            r["ALLOWVOLUMEEXPANSION"]) == ("example.com/none", "Retain",
                                            "WaitForFirstConsumer", "false")


def test_service_namespace_statefulset_columns(kubectl, namespace):
    kubectl.ok("create", "-n", namespace, "-f", manifest("statefulset.yaml"))
    out = kubectl.ok("get", "svc", "-n", namespace)
    assert header(out) == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"]
    r = row(out, "db")
    assert (r["TYPE"], r["CLUSTER-IP"], r["EXTERNAL-IP"], r["PORT(S)"]) == \
        ("ClusterIP", "None", "<none>", "5432/TCP")
    out = kubectl.ok("get", "svc", "-n", namespace, "-o", "wide")
    assert header(out)[-1] == "SELECTOR" and row(out, "db")["SELECTOR"] == "app=db"
    out = kubectl.ok("get", "ns", namespace)
    assert header(out) == ["NAME", "STATUS", "AGE"]
    assert row(out, namespace)["STATUS"] == "Active"
    out = kubectl.ok("get", "sts", "-n", namespace, "-o", "wide")
    assert header(out) == ["NAME", "READY", "AGE", "CONTAINERS", "IMAGES"]
    r = row(out, "db")
    assert (r["READY"], r["CONTAINERS"], r["IMAGES"]) == ("0/1", "pg", "postgres:16")


def test_node_columns(kubectl):
    name = uniq("e2e-node")
    # Unschedulable, so no scheduler ever places a pod on this node, which has no agent.
    kubectl.ok("create", "-f", "-", input=json.dumps(
        {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name},
         "spec": {"unschedulable": True}}))
    try:
        out = kubectl.ok("get", "node", name)
        assert header(out) == ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
        r = row(out, name)
        assert r["STATUS"] in ("Unknown,SchedulingDisabled", "NotReady,SchedulingDisabled")
        assert r["ROLES"] == "<none>"
        out = kubectl.ok("get", "node", name, "-o", "wide")
        assert header(out) == ["NAME", "STATUS", "ROLES", "AGE", "VERSION", "INTERNAL-IP",
                               "EXTERNAL-IP", "OS-IMAGE", "KERNEL-VERSION", "CONTAINER-RUNTIME"]
        r = row(out, name)
        assert (r["INTERNAL-IP"], r["EXTERNAL-IP"], r["OS-IMAGE"], r["KERNEL-VERSION"],
                r["CONTAINER-RUNTIME"]) == ("<none>", "<none>", "<unknown>", "<unknown>",
                                            "<unknown>")
    finally:
        kubectl("delete", "node", name, "--wait=false")


def test_get_several_types_prefixes_names(kubectl, namespace):
    kubectl.ok("create", "-n", namespace, "-f", manifest("statefulset.yaml"))
    out = kubectl.ok("get", "sts,svc", "-n", namespace)
    names = [ln.split()[0] for ln in lines(out) if not ln.startswith("NAME")]
    assert names == ["statefulset.apps/db", "service/db"]
    out = kubectl.ok("get", "all", "-n", namespace, "-o", "name")
    assert {"service/db", "statefulset.apps/db"} <= set(lines(out))


def _field(out: str, label: str) -> str:
    """The value describe prints after `label:` on its line."""
    for ln in out.splitlines():
        if ln.startswith(label + ":"):
            return ln[len(label) + 1:].strip()
    raise AssertionError(f"{label} not in describe output:\n{out}")


def test_describe_pod(kubectl, pods):
    out = kubectl.ok("describe", "pod", "p1", "-n", pods)
    assert _field(out, "Name") == "p1"
    assert _field(out, "Namespace") == pods
    assert _field(out, "Status") == "Pending"
    assert _field(out, "Node") == "<none>"
    assert _field(out, "Labels") == "app=web"     # the others follow on their own lines
    assert _field(out, "QoS Class") == "BestEffort"
    assert "Containers:\n  main:\n    Image:        nginx" in out
    assert "  side:\n    Image:        busybox" in out
    assert _field(out, "Events") == "<none>"


def test_describe_configmap(kubectl, namespace):
    kubectl.ok("create", "-n", namespace, "-f", "-", input=json.dumps(
        {"apiVersion": "v1", "kind": "ConfigMap",
         "metadata": {"name": "conf", "labels": {"app": "x"}}, "data": {"key": "value"}}))
    out = kubectl.ok("describe", "cm", "conf", "-n", namespace)
    assert _field(out, "Name") == "conf"
    assert _field(out, "Labels") == "app=x"
    assert "Data\n====\nkey:\n----\nvalue\n" in out
    assert _field(out, "Events") == "<none>"


def test_describe_pvc(kubectl, storage):
    ns, sc, _ = storage
    kubectl.ok("create", "-n", ns, "-f", "-", input=json.dumps(
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "user"},
         "spec": {"schedulerName": "e2e-no-scheduler",
                  "containers": [{"name": "c", "image": "busybox"}],
                  "volumes": [{"name": "v", "persistentVolumeClaim": {"claimName": "claim1"}}]}}))
    out = kubectl.ok("describe", "pvc", "claim1", "-n", ns)
    assert _field(out, "Name") == "claim1"
    assert _field(out, "Namespace") == ns
    assert _field(out, "StorageClass") == sc
    assert _field(out, "Status") == "Pending"
    assert _field(out, "VolumeMode") == "Filesystem"
    assert _field(out, "Used By") == "user"


def test_pending_claim_stays_pending(kubectl, storage):
    """Nothing binds a WaitForFirstConsumer claim that no scheduled pod uses."""
    ns, _, _ = storage
    phase = wait_until(lambda: kubectl.ok("get", "pvc", "claim1", "-n", ns, "-o",
                                          "jsonpath={.status.phase}"), timeout=3)
    assert phase == "Pending"
