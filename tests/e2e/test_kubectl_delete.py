"""kubectl delete (by name, -l, -f, cascade policies), wait --for=delete and namespace
deletion, against `k1s up` (spec/kubectl-wire.md §5, §11).

Cascade: what the API server does is asserted unconditionally (Foreground keeps the owner with
deletionTimestamp and the foregroundDeletion finalizer, Orphan adds the orphan finalizer); what
the garbage collector then does is asserted when it runs, and skipped, saying so, when not.
"""

from __future__ import annotations

import json

import time

import pytest

from e2e_util import Watch, configmap, deleted_line, lines, manifest, uniq, wait_until

HOLD = "e2e.k1s.io/hold"


def need_gc(gc_running: bool) -> None:
    if not gc_running:
        pytest.skip("the garbage-collector controller is not running in `k1s up`")


def _owner_with_dependents(k, ns: str, owner: str, deps: list[str], *, owner_hold=False,
                           dep_hold=False, block=False) -> str:
    k.ok("create", "-n", ns, "-f", "-",
         input=configmap(owner, finalizers=[HOLD] if owner_hold else None))
    uid = k.ok("get", "cm", owner, "-n", ns, "-o", "jsonpath={.metadata.uid}")
    for d in deps:
        k.ok("create", "-n", ns, "-f", "-",
             input=configmap(d, owner=(owner, uid), block=block,
                             finalizers=[HOLD] if dep_hold else None))
    return uid


def _meta(k, ns: str, name: str) -> dict | None:
    p = k("get", "cm", name, "-n", ns, "-o", "json")
    return json.loads(p.stdout)["metadata"] if p.returncode == 0 else None


def _release(k, ns: str, name: str) -> None:
    k.ok("patch", "cm", name, "-n", ns, "--type=json",
         "-p", '[{"op":"remove","path":"/metadata/finalizers"}]')


def test_delete_by_name(anykubectl, namespace):
    k = anykubectl
    k.ok("create", "-n", namespace, "-f", manifest("multi.yaml"))
    out = k.ok("delete", "pod", "multi-pod", "-n", namespace)
    assert out.strip() == deleted_line(k.minor, "pod", "multi-pod", namespace)
    assert k("get", "pod", "multi-pod", "-n", namespace).returncode == 1
    out = k.ok("delete", "configmap/multi-cm", "secret/multi-secret", "-n", namespace)
    assert lines(out) == [deleted_line(k.minor, "configmap", "multi-cm", namespace),
                          deleted_line(k.minor, "secret", "multi-secret", namespace)]
    p = k("delete", "cm", "nope", "-n", namespace)
    assert p.returncode == 1
    assert p.stderr.strip() == 'Error from server (NotFound): configmaps "nope" not found'


def test_delete_by_label(anykubectl, namespace):
    k = anykubectl
    k.ok("create", "-n", namespace, "-f", manifest("pods.yaml"))
    out = k.ok("delete", "pods", "-l", "app=web", "-n", namespace)
    assert lines(out) == [deleted_line(k.minor, "pod", "p1", namespace),
                          deleted_line(k.minor, "pod", "p3", namespace)]
    assert lines(k.ok("get", "pods", "-n", namespace, "-o", "name")) == ["pod/p2"]
    p = k("delete", "pods", "-l", "app=web", "-n", namespace)
    assert p.returncode == 0
    assert "No resources found" in p.stdout + p.stderr


def test_delete_from_file(kubectl, namespace, minor):
    path = manifest("multi.yaml")
    kubectl.ok("create", "-n", namespace, "-f", path)
    out = kubectl.ok("delete", "-n", namespace, "-f", path)
    assert lines(out) == [deleted_line(minor, "configmap", "multi-cm", namespace),
                          deleted_line(minor, "secret", "multi-secret", namespace),
                          deleted_line(minor, "service", "multi-svc", namespace),
                          deleted_line(minor, "pod", "multi-pod", namespace)]
    p = kubectl("get", "-n", namespace, "-f", path)
    assert p.returncode == 1
    assert len(lines(p.stderr)) == 4 and "NotFound" in p.stderr


def test_delete_waits_for_finalizers(kubectl, namespace, minor):
    kubectl.ok("create", "-n", namespace, "-f", "-", input=configmap("held", finalizers=[HOLD]))
    p = kubectl("delete", "cm", "held", "-n", namespace, "--timeout=1s")
    assert p.returncode == 1
    assert p.stdout.strip() == deleted_line(minor, "configmap", "held", namespace)
    assert "timed out waiting for the condition" in p.stderr
    meta = _meta(kubectl, namespace, "held")
    assert meta["deletionTimestamp"] and meta["finalizers"] == [HOLD]
    assert meta["deletionGracePeriodSeconds"] == 0
    w = Watch(kubectl, "wait", "--for=delete", "cm/held", "-n", namespace, "--timeout=20s")
    try:
        # let `kubectl wait` find the object first: released earlier, it would see a 404 and
        # exit silently (which is right, but not what this test checks)
        time.sleep(2.0)
        _release(kubectl, namespace, "held")
        assert w.read_until(lambda ln: "condition met" in ln), w.out
        assert w.out[-1] == "configmap/held condition met"
    finally:
        w.stop()
    assert kubectl("get", "cm", "held", "-n", namespace).returncode == 1


def test_wait_for_delete_of_missing_object(kubectl, namespace):
    p = kubectl("wait", "--for=delete", "cm/never-existed", "-n", namespace, "--timeout=2s")
    assert p.returncode == 0, p.stderr
    assert p.stdout == ""


def test_cascade_background(kubectl, namespace, minor, gc_running):
    _owner_with_dependents(kubectl, namespace, "owner", ["dep1", "dep2"])
    out = kubectl.ok("delete", "cm", "owner", "-n", namespace, "--cascade=background")
    assert out.strip() == deleted_line(minor, "configmap", "owner", namespace)
    assert _meta(kubectl, namespace, "owner") is None      # the owner goes at once
    need_gc(gc_running)
    p = kubectl("wait", "--for=delete", "cm/dep1", "cm/dep2", "-n", namespace, "--timeout=10s")
    assert p.returncode == 0, p.stderr


def test_cascade_foreground(kubectl, namespace, minor, gc_running):
    _owner_with_dependents(kubectl, namespace, "owner", ["blocker"], dep_hold=True, block=True)
    uid = kubectl.ok("get", "cm", "owner", "-n", namespace, "-o", "jsonpath={.metadata.uid}")
    kubectl.ok("create", "-n", namespace, "-f", "-",
               input=configmap("plain-dep", owner=("owner", uid)))
    out = kubectl.ok("delete", "cm", "owner", "-n", namespace, "--cascade=foreground",
                     "--wait=false")
    assert out.strip() == deleted_line(minor, "configmap", "owner", namespace)
    # The API server keeps the owner, marked, until its blocking dependents are gone.
    meta = _meta(kubectl, namespace, "owner")
    assert meta is not None and meta["deletionTimestamp"]
    assert meta["finalizers"] == ["foregroundDeletion"]
    need_gc(gc_running)
    assert kubectl("wait", "--for=delete", "cm/plain-dep", "-n", namespace,
                   "--timeout=10s").returncode == 0
    blocker = wait_until(lambda: (_meta(kubectl, namespace, "blocker") or {})
                         .get("deletionTimestamp"), timeout=10)
    assert blocker, "the collector did not delete the blocking dependent"
    assert _meta(kubectl, namespace, "owner") is not None   # still waiting for `blocker`
    _release(kubectl, namespace, "blocker")
    p = kubectl("wait", "--for=delete", "cm/owner", "-n", namespace, "--timeout=10s")
    assert p.returncode == 0, p.stderr


def test_cascade_foreground_waits_by_default(kubectl, namespace, minor, gc_running):
    need_gc(gc_running)
    _owner_with_dependents(kubectl, namespace, "owner", ["d1", "d2", "d3"], block=True)
    out = kubectl.ok("delete", "cm", "owner", "-n", namespace, "--cascade=foreground",
                     "--timeout=15s")
    assert out.strip() == deleted_line(minor, "configmap", "owner", namespace)
    for n in ("owner", "d1", "d2", "d3"):
        assert _meta(kubectl, namespace, n) is None


def test_cascade_orphan(kubectl, namespace, minor, gc_running):
    # The owner keeps a finalizer of ours so that it stays visible after the delete.
    _owner_with_dependents(kubectl, namespace, "owner", ["dep1", "dep2"], owner_hold=True)
    w = Watch(kubectl, "get", "cm", "owner", "-n", namespace, "-w", "-o",
              'jsonpath={.metadata.finalizers} {.metadata.deletionTimestamp}{"\\n"}')
    try:
        assert w.read_until(lambda ln: HOLD in ln), w.out
        out = kubectl.ok("delete", "cm", "owner", "-n", namespace, "--cascade=orphan",
                         "--wait=false")
        assert out.strip() == deleted_line(minor, "configmap", "owner", namespace)
        # The API server adds the orphan finalizer (seen in the watch even if the collector
        # removes it at once).
        assert w.read_until(lambda ln: '"orphan"' in ln), w.out
        assert w.out[-1].startswith(f'["{HOLD}","orphan"] ')
    finally:
        w.stop()
    need_gc(gc_running)
    assert wait_until(lambda: _meta(kubectl, namespace, "owner")["finalizers"] == [HOLD],
                      timeout=10), "the collector did not remove the orphan finalizer"
    for d in ("dep1", "dep2"):
        meta = _meta(kubectl, namespace, d)
        assert meta is not None, f"{d} was deleted although orphaned"
        assert not meta.get("ownerReferences")
    _release(kubectl, namespace, "owner")
    assert kubectl("wait", "--for=delete", "cm/owner", "-n", namespace,
                   "--timeout=10s").returncode == 0


def test_delete_namespace_removes_content(kubectl, minor):
    ns = uniq("e2e-ns-del")
    kubectl.ok("create", "-f", "-", input=json.dumps(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}))
    kubectl.ok("create", "-n", ns, "-f", manifest("multi.yaml"))
    out = kubectl.ok("delete", "namespace", ns, "--timeout=20s")
    assert out.strip() == deleted_line(minor, "namespace", ns, None)
    p = kubectl("get", "ns", ns)
    assert p.stderr.strip() == f'Error from server (NotFound): namespaces "{ns}" not found'
