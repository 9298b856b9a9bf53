#!/usr/bin/env python3
"""Issue 5's benchmark 2: sequential write and read throughput inside a pod on a provisioned
claim (the local provisioner's loop-mounted ext4 image) against the same on the host.

In a busybox pod on `k1s up`'s real node, through `kubectl exec`:
    dd if=/dev/zero of=<dir>/f bs=1M count=N oflag=direct conv=fsync     (write)
    dd if=<dir>/f of=/dev/null bs=1M iflag=direct                         (read)
Direct I/O, so the page cache does not make either side look like memory; the figures are
dd's own (bytes / its seconds), so kubectl's round trip is not counted. A loop device without
direct I/O (/sys/block/loopN/loop/dio = 0) goes through the host's page cache of its image
file even for the pod's O_DIRECT; so before each in-pod read from the claim, the image file's
clean pages are dropped from the host cache (posix_fadvise DONTNEED on that one file; the
machine-wide drop_caches would disturb everyone else). The cached figure is printed too.

Reference, measured in the same run with the same dd (coreutils'): the host, into a directory on
the filesystem that holds the data directory (where the claim's image file lives). Context:
the same dd in the pod on an emptyDir. Repetitions are interleaved (host, claim, emptyDir,
host, ...) so a noisy moment hits every location; medians are printed.
Goal: in-pod on the claim / host >= 0.9, for write and for read.

Needs root (the real node runs pods in namespaces with mounts).

Experiment, when the claim's loop device runs without direct I/O: the claim measured again
after switching that device to direct I/O (LOOP_SET_DIRECT_IO), to show what the node's
loop setup would gain from it.

    python bench/bench_pod_io.py [--mb 512] [--reps 3] [--no-dio-experiment]
"""

from __future__ import annotations

import argparse
import fcntl
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "src"))

from _common import K1s, kubectl_binary, median  # noqa: E402

LOOP_SET_DIRECT_IO = 0x4C08
DD_RE = re.compile(r"(\d+) bytes.*copied, ([0-9.]+) s")

MANIFEST = """
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: io-data}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: %(claim)s}}
---
apiVersion: v1
kind: Pod
metadata: {name: io}
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: io
    image: busybox:1.36
    command: [sh, -c, 'trap "exit 0" TERM; while true; do sleep 1; done']
    volumeMounts:
    - {name: data, mountPath: /data}
    - {name: scratch, mountPath: /scratch}
  volumes:
  - name: data
    persistentVolumeClaim: {claimName: io-data}
  - name: scratch
    emptyDir: {}
"""


class Cluster:
    """`k1s up` with its real node on a private network-namespace prefix."""

    def __init__(self):
        self.prefix = "b" + os.urandom(5).hex()
        os.environ["K1S_NETNS_PREFIX"] = self.prefix
        self.k = K1s()
        self.data = os.path.join(self.k.dir, "data")
        self.cache = tempfile.mkdtemp(prefix="k1s-bench-kcache-")

    def kubectl(self, *args: str, input: str | None = None, timeout: float = 300) -> str:
        p = subprocess.run([kubectl_binary(), "--kubeconfig", self.k.kubeconfig,
                            "--cache-dir", self.cache, *args], input=input, text=True,
                           capture_output=True, timeout=timeout)
        if p.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)}: {p.stderr.strip()}")
        return p.stdout + p.stderr

    def stop(self) -> list[str]:
        proc = self.k.proc
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(120)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        from k1s.node.cleanup import remove_node_leftovers
        left = remove_node_leftovers(self.data, self.prefix)
        shutil.rmtree(self.k.dir, ignore_errors=True)
        shutil.rmtree(self.cache, ignore_errors=True)
        return left


def mb_per_s(dd_output: str) -> float:
    m = DD_RE.search(dd_output)
    if not m:
        raise RuntimeError(f"no figures in dd's output: {dd_output!r}")
    return int(m.group(1)) / 1e6 / max(float(m.group(2)), 1e-9)


# coreutils dd by its path on both sides (the pod's root is the host's, seen through overlay):
# busybox's dd here prints no timing line, and one tool on both sides keeps the comparison fair
DD = "/bin/dd"


def write_cmd(path: str, mb: int) -> list[str]:
    return [DD, "if=/dev/zero", f"of={path}", "bs=1M", f"count={mb}", "oflag=direct",
            "conv=fsync"]


def read_cmd(path: str) -> list[str]:
    return [DD, f"if={path}", "of=/dev/null", "bs=1M", "iflag=direct"]


def host_dd(argv: list[str]) -> str:
    p = subprocess.run(argv, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {p.stderr.strip()}")
    return p.stdout + p.stderr


def loop_of(data_dir: str) -> tuple[str, str, str]:
    """(loop device, its direct-io setting, its image file) of the claim mounted under the
    data directory."""
    with open("/proc/self/mountinfo") as f:
        for ln in f:
            fields = ln.split()
            mp = fields[4]
            src = fields[fields.index("-") + 2]
            if mp.startswith(os.path.realpath(data_dir)) and src.startswith("/dev/loop"):
                sysdir = f"/sys/block/{os.path.basename(src)}/loop"
                return src, _read(f"{sysdir}/dio"), _read(f"{sysdir}/backing_file")
    raise RuntimeError(f"the claim is not loop-mounted under {data_dir}")


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return "?"


def evict(path: str) -> None:
    """Drop one file's clean pages from the host's page cache."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def set_loop_dio(dev: str, on: bool) -> None:
    """LOOP_SET_DIRECT_IO on a loop device (losetup --direct-io=on does the same)."""
    fd = os.open(dev, os.O_RDONLY)
    try:
        fcntl.ioctl(fd, LOOP_SET_DIRECT_IO, 1 if on else 0)
    finally:
        os.close(fd)


def measure(c: Cluster, places: dict[str, str], reps: int, mb: int, image: str):
    """Write and read MB/s per place, interleaved; plus the claim's read with a cached image."""
    w: dict[str, list[float]] = {p: [] for p in places}
    r: dict[str, list[float]] = {p: [] for p in places}
    cached: list[float] = []
    for _ in range(reps):
        for place, path in places.items():
            if place == "host":
                w[place].append(mb_per_s(host_dd(write_cmd(path, mb))))
                r[place].append(mb_per_s(host_dd(read_cmd(path))))
                os.unlink(path)
                continue
            w[place].append(mb_per_s(c.kubectl("exec", "io", "--", *write_cmd(path, mb))))
            if place == "pod, claim":
                cached.append(mb_per_s(c.kubectl("exec", "io", "--", *read_cmd(path))))
                evict(image)
            r[place].append(mb_per_s(c.kubectl("exec", "io", "--", *read_cmd(path))))
            c.kubectl("exec", "io", "--", "rm", "-f", path)
    return w, r, cached


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mb", type=int, default=512, help="MiB written and read per run")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--no-dio-experiment", action="store_true",
                    help="skip measuring the claim again with its loop device in direct I/O")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("needs root: the real node runs pods in namespaces with mounts")
    if not os.path.exists(DD):
        sys.exit(f"needs coreutils' dd at {DD}")
    c = Cluster()
    left: list[str] = []
    try:
        claim_mb = max(64, int(args.mb * 1.5))
        c.kubectl("apply", "-f", "-", input=MANIFEST % {"claim": f"{claim_mb}Mi"})
        c.kubectl("wait", "--for=condition=Ready", "pod/io", "--timeout=300s", timeout=320)
        host_dir = os.path.join(c.k.dir, "host-io")     # same filesystem as the data dir
        os.makedirs(host_dir)
        places = {"host": os.path.join(host_dir, "f"), "pod, claim": "/data/f",
                  "pod, emptyDir": "/scratch/f"}
        dev, dio, image = loop_of(c.data)
        w, r, cached = measure(c, places, args.reps, args.mb, image)
        print(f"sequential I/O, {args.mb} MiB, bs=1M, O_DIRECT (+fsync on write), "
              f"median of {args.reps}; claim on {dev} (loop direct-io={dio})")
        for place in places:
            print(f"  {place:<15} write {median(w[place]):8.1f} MB/s   "
                  f"read {median(r[place]):8.1f} MB/s")
        print(f"  (pod, claim, read with its image file in the host cache: "
              f"{median(cached):.1f} MB/s)")
        hw, hr = median(w["host"]), median(r["host"])
        print(f"in-pod claim / host: write {median(w['pod, claim'])/hw:.2f}  "
              f"read {median(r['pod, claim'])/hr:.2f}   goal: >= 0.9 each")
        print(f"in-pod emptyDir / host: write {median(w['pod, emptyDir'])/hw:.2f}  "
              f"read {median(r['pod, emptyDir'])/hr:.2f}")
        if not args.no_dio_experiment and dio == "0":
            # what the node would get by attaching its loop devices with direct I/O
            set_loop_dio(dev, True)
            dio2 = _read(f"/sys/block/{os.path.basename(dev)}/loop/dio")
            w2, r2, _c = measure(c, {"pod, claim": "/data/f"}, args.reps, args.mb, image)
            print(f"experiment: the same claim with its loop device switched to direct I/O "
                  f"(dio={dio2}): write {median(w2['pod, claim']):.1f} MB/s "
                  f"({median(w2['pod, claim'])/hw:.2f} of host), read "
                  f"{median(r2['pod, claim']):.1f} MB/s ({median(r2['pod, claim'])/hr:.2f})")
    finally:
        try:
            c.kubectl("delete", "pod", "io", "--wait=true", "--timeout=60s", timeout=90)
            c.kubectl("delete", "pvc", "io-data", "--wait=false")
        except (RuntimeError, subprocess.TimeoutExpired) as e:
            print(f"cleanup through kubectl failed: {e}")
        left = c.stop()
    if left:
        print(f"WARNING: k1s up left these behind (removed now): {left}")


if __name__ == "__main__":
    main()
