"""kubectl apply, client-side (three-way strategic merge, last-applied annotation) and
server-side (field managers, conflicts, --force-conflicts), against `k1s up`
(spec/kubectl-wire.md §4.3, §4.4)."""

from __future__ import annotations

import json

from e2e_util import lines, manifest

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def _last_applied(obj: dict) -> dict:
    return json.loads(obj["metadata"]["annotations"][LAST_APPLIED])


def test_apply_created_unchanged_configured(anykubectl, namespace):
    k = anykubectl
    v1, v2 = manifest("apply-v1.yaml"), manifest("apply-v2.yaml")
    assert lines(k.ok("apply", "-n", namespace, "-f", v1)) == \
        ["configmap/settings created", "statefulset.apps/demo created"]
    assert lines(k.ok("apply", "-n", namespace, "-f", v1)) == \
        ["configmap/settings unchanged", "statefulset.apps/demo unchanged"]
    assert lines(k.ok("apply", "-n", namespace, "-f", v2)) == \
        ["configmap/settings configured", "statefulset.apps/demo configured"]
    assert lines(k.ok("apply", "-n", namespace, "-f", v2)) == \
        ["configmap/settings unchanged", "statefulset.apps/demo unchanged"]


def test_apply_records_last_applied_and_removes_fields(kubectl, namespace):
    kubectl.ok("apply", "-n", namespace, "-f", manifest("apply-v1.yaml"))
    cm = kubectl.json("get", "-n", namespace, "cm", "settings")
    la = _last_applied(cm)
    assert la == {"apiVersion": "v1", "kind": "ConfigMap",
                  "metadata": {"annotations": {}, "labels": {"app": "demo"},
                               "name": "settings", "namespace": namespace},
                  "data": {"mode": "fast", "retries": "3"}}
    assert cm["metadata"]["annotations"][LAST_APPLIED].endswith("}\n")

    kubectl.ok("apply", "-n", namespace, "-f", manifest("apply-v2.yaml"))
    cm = kubectl.json("get", "-n", namespace, "cm", "settings")
    # A key dropped from the manifest is deleted from the live object.
    assert cm["data"] == {"mode": "safe"}
    assert _last_applied(cm)["data"] == {"mode": "safe"}

    sts = kubectl.json("get", "-n", namespace, "sts", "demo")
    assert sts["spec"]["replicas"] == 2
    cs = sts["spec"]["template"]["spec"]["containers"]
    # Containers merged by name: app updated, DEBUG dropped, sidecar kept, order kept.
    assert [c["name"] for c in cs] == ["app", "sidecar"]
    assert cs[0]["image"] == "nginx:1.27"
    assert cs[0]["env"] == [{"name": "MODE", "value": "fast"}]
    assert cs[1]["image"] == "busybox:1.36"
    assert sts["metadata"]["generation"] == 2


def test_apply_keeps_fields_set_by_others(kubectl, namespace):
    """Three-way merge: a label added with `kubectl label` is not in last-applied, so a
    re-apply leaves it alone."""
    kubectl.ok("apply", "-n", namespace, "-f", manifest("apply-v1.yaml"))
    kubectl.ok("label", "-n", namespace, "cm", "settings", "owner=ops")
    out = kubectl.ok("apply", "-n", namespace, "-f", manifest("apply-v2.yaml"))
    assert "configmap/settings configured" in lines(out)
    cm = kubectl.json("get", "-n", namespace, "cm", "settings")
    assert cm["metadata"]["labels"] == {"app": "demo", "owner": "ops"}


def test_apply_over_created_object_warns(kubectl, namespace):
    kubectl.ok("create", "-n", namespace, "-f", manifest("apply-v1.yaml"))
    p = kubectl("apply", "-n", namespace, "-f", manifest("apply-v2.yaml"))
    assert p.returncode == 0, p.stderr
    assert lines(p.stdout) == ["configmap/settings configured", "statefulset.apps/demo configured"]
    assert ("Warning: resource configmaps/settings is missing the "
            "kubectl.kubernetes.io/last-applied-configuration annotation") in p.stderr
    cm = kubectl.json("get", "-n", namespace, "cm", "settings")
    assert _last_applied(cm)["data"] == {"mode": "safe"}
    # Without a previous last-applied, kubectl cannot know `retries` was its own: it stays.
    assert cm["data"] == {"mode": "safe", "retries": "3"}


def _cm(name: str, **data: str) -> str:
    return json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name},
                       "data": data})


def test_server_side_apply_create_and_update(anykubectl, namespace):
    k = anykubectl
    out = k.ok("apply", "--server-side", "-n", namespace, "-f", "-", input=_cm("ssa", k="v1"))
    assert out.strip() == "configmap/ssa serverside-applied"
    out = k.ok("apply", "--server-side", "-n", namespace, "-f", "-",
               input=_cm("ssa", k="v2", extra="x"))
    assert out.strip() == "configmap/ssa serverside-applied"
    cm = k.json("get", "-n", namespace, "cm", "ssa", "--show-managed-fields")
    assert cm["data"] == {"k": "v2", "extra": "x"}
    assert LAST_APPLIED not in cm["metadata"].get("annotations", {})
    managers = {(m["manager"], m["operation"]) for m in cm["metadata"]["managedFields"]}
    assert managers == {("kubectl", "Apply")}
    # Applying without a field removes it: the applier owned it alone.
    k.ok("apply", "--server-side", "-n", namespace, "-f", "-", input=_cm("ssa", k="v2"))
    assert k.json("get", "-n", namespace, "cm", "ssa")["data"] == {"k": "v2"}


def test_server_side_apply_conflict_and_force(kubectl, namespace):
    ssa = ("apply", "--server-side", "-n", namespace, "-f", "-")
    kubectl.ok(*ssa, "--field-manager=alice", input=_cm("shared", k="a"))
    p = kubectl(*ssa, "--field-manager=bob", input=_cm("shared", k="b"))
    assert p.returncode == 1
    err = p.stderr.splitlines()
    assert err[0] == 'error: Apply failed with 1 conflict: conflict with "alice": .data.k'
    assert "--force-conflicts" in p.stderr
    assert kubectl.json("get", "-n", namespace, "cm", "shared")["data"] == {"k": "a"}

    # Applying the same value is no conflict: bob becomes a co-owner.
    kubectl.ok(*ssa, "--field-manager=bob", input=_cm("shared", k="a"))

    out = kubectl.ok(*ssa, "--field-manager=carol", "--force-conflicts",
                     input=_cm("shared", k="c"))
    assert out.strip() == "configmap/shared serverside-applied"
    cm = kubectl.json("get", "-n", namespace, "cm", "shared", "--show-managed-fields")
    assert cm["data"] == {"k": "c"}
    owners = [m["manager"] for m in cm["metadata"]["managedFields"]
              if "f:k" in json.dumps(m.get("fieldsV1", {}))]
    assert owners == ["carol"]


def test_server_side_apply_conflicts_with_update_manager(kubectl, namespace):
    kubectl.ok("create", "-n", namespace, "-f", "-", input=_cm("cm1", k="a"))
    p = kubectl("apply", "--server-side", "-n", namespace, "-f", "-", input=_cm("cm1", k="b"))
    assert p.returncode == 1
    assert p.stderr.splitlines()[0] == ('error: Apply failed with 1 conflict: conflict with '
                                        '"kubectl-create" using v1: .data.k')


def test_server_side_apply_statefulset_replicas(kubectl, namespace):
    """The seed's workflow: scale by apply. A second manager changing replicas conflicts."""
    out = kubectl.ok("apply", "--server-side", "-n", namespace, "-f",
                     manifest("statefulset.yaml"))
    assert lines(out) == ["service/db serverside-applied", "statefulset.apps/db serverside-applied"]
    kubectl.ok("scale", "-n", namespace, "sts", "db", "--replicas=3")
    p = kubectl("apply", "--server-side", "-n", namespace, "-f", manifest("statefulset.yaml"))
    assert p.returncode == 1
    # kubectl scale sends no fieldManager: the server names the manager after the user agent.
    assert p.stderr.splitlines()[0] == (
        'error: Apply failed with 1 conflict: conflict with "kubectl" with subresource "scale" '
        'using apps/v1: .spec.replicas')
