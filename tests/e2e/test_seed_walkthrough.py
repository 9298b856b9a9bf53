"""The acceptance scenario: ../shared/scenarios/seed-walkthrough.sh (the user's source document
as a kubectl script) against a fresh `k1s up` with its real node: pods are processes, volumes
are mounted, exec/curl/getent run inside the pods, and the pods' DNS names resolve."""

from __future__ import annotations

import os
import subprocess

import pytest

from k1s_harness import pinned_kubectl, start_cluster, stop_cluster

SCENARIO = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared",
                                         "scenarios", "seed-walkthrough.sh"))

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="the real node runs pods in namespaces with "
                       "mounts, which needs root (CI runs as root)"),
    pytest.mark.skipif(not os.path.exists(SCENARIO), reason=f"{SCENARIO} is not there"),
]


def test_seed_walkthrough_passes_on_a_fresh_cluster(tmp_path):
    c = start_cluster(str(tmp_path))
    try:
        env = dict(os.environ, KUBECONFIG=c.kubeconfig, KUBECTL=pinned_kubectl(),
                   HOME=str(tmp_path), SCENARIO_TIMEOUT="90s")
        p = subprocess.run(["bash", SCENARIO], env=env, capture_output=True, text=True,
                           timeout=900)
        lines = p.stdout.strip().splitlines()
        failed = [ln for ln in lines if ln.startswith("FAIL")]
        assert p.returncode == 0 and not failed, \
            p.stdout + p.stderr + "\n--- k1s log ---\n" + open(c.log_path).read()[-4000:]
        assert lines[-1].endswith(" passed, 0 failed")
        assert int(lines[-1].split()[0]) >= 25          # every check of the scenario ran
    finally:
        stop_cluster(c)
