"""Helpers for the kubectl end-to-end tests: manifests, output parsing, polling, watch processes.

Everything here is pure or drives kubectl; nothing talks to the API server directly, so the
tests see exactly what a user of kubectl sees.
"""

from __future__ import annotations

import json
import os
import queue
import re
import subprocess
import threading
import time
import uuid
from typing import Callable

MANIFESTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "manifests")
# the project's shared/ folder sits beside the checkout (CI lays a copy there too)
SEED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "shared",
                    "scenarios", "seed")


def manifest(name: str) -> str:
    """Path of a manifest kept beside the tests."""
    return os.path.join(MANIFESTS, name)


def uniq(prefix: str) -> str:
    """A name no other test uses: cluster-scoped objects (PV, StorageClass, Node) are shared."""
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def lines(text: str) -> list[str]:
    """Non-empty lines, trailing blanks removed (kubectl pads table cells with spaces)."""
    return [ln.rstrip() for ln in text.splitlines() if ln.strip()]


def columns(line: str) -> list[str]:
    """Split one table line on the runs of 2+ spaces kubectl puts between columns."""
    return re.split(r"\s{2,}", line.strip())


def header(text: str) -> list[str]:
    """The column names of a printed table."""
    return columns(lines(text)[0])


def rows(text: str) -> dict[str, list[str]]:
    """Table rows keyed by their first cell (NAME, or NAMESPACE with -A)."""
    out = {}
    for ln in lines(text)[1:]:
        cells = columns(ln)
        out[cells[0]] = cells
    return out


def row(text: str, name: str) -> dict[str, str]:
    """One row of a printed table as {HEADER: cell}; the row is the one whose NAME is `name`.

    Empty cells (a Pending claim has no VOLUME) make splitting on spaces ambiguous, so cells are
    cut at the header's column offsets, which is how kubectl's tabwriter aligns them.
    """
    ls = [ln for ln in text.splitlines() if ln.strip()]
    head = ls[0]
    found = list(re.finditer(r"\S+(?: \S+)*", head))
    starts = [m.start() for m in found]
    names = [m.group(0) for m in found]
    for ln in ls[1:]:
        cells = []
        for i, s in enumerate(starts):
            end = starts[i + 1] if i + 1 < len(starts) else len(ln)
            cells.append(ln[s:end].strip())
        if cells and name in (cells[0], cells[1] if len(cells) > 1 else None):
            return dict(zip(names, cells))
    raise AssertionError(f"no row {name!r} in:\n{text}")


def wait_until(fn: Callable[[], object], timeout: float = 10.0, interval: float = 0.05):
    """Poll `fn` until it returns something truthy; return it, or None on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() > deadline:
            return None
        time.sleep(interval)


def client_minor(kubectl) -> int:
    """The client's minor version (the machine's dispatcher reports its built-in 1.32)."""
    info = json.loads(kubectl.ok("version", "--client", "-o", "json"))
    return int(re.match(r"\d+", info["clientVersion"]["minor"]).group(0))


def deleted_line(minor: int, resource: str, name: str, ns: str | None) -> str:
    """What `kubectl delete` prints for one object.

    kubectl 1.32 prints `configmap "x" deleted`; newer kubectl (1.37 observed) names the
    namespace of a namespaced object: `configmap "x" deleted from ns namespace`.
    """
    base = f'{resource} "{name}" deleted'
    if ns and minor > 32:
        return f"{base} from {ns} namespace"
    return base


class Watch:
    """`kubectl ... -w` running in the background, its stdout collected line by line.

    A thread reads stdout into a queue: selecting on the pipe would miss lines already
    buffered by the reader.
    """

    def __init__(self, kubectl, *args: str):
        env = dict(os.environ, KUBECONFIG=kubectl.kubeconfig, HOME=kubectl.cache_dir)
        self.proc = subprocess.Popen([kubectl.binary, "--cache-dir", kubectl.cache_dir, *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     env=env)
        self.out: list[str] = []
        self._lines: queue.Queue = queue.Queue()
        self._reader = threading.Thread(target=self._pump, daemon=True)
        self._reader.start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for ln in self.proc.stdout:
            self._lines.put(ln.rstrip("\n"))
        self._lines.put(None)

    def read_until(self, pred: Callable[[str], bool], timeout: float = 10.0) -> bool:
        """Collect lines until one satisfies `pred` (True), or the stream ends or time runs out."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            try:
                ln = self._lines.get(timeout=left)
            except queue.Empty:
                return False
            if ln is None:
                self._lines.put(None)
                return False
            self.out.append(ln)
            if pred(ln):
                return True

    def stop(self) -> tuple[str, str]:
        """End the watch (our own child, stopped by its pid) and return what it printed."""
        if self.proc.poll() is None:
            self.proc.terminate()
        self.proc.wait(timeout=10)
        self._reader.join(timeout=10)
        err = self.proc.stderr.read() if self.proc.stderr else ""
        while not self._lines.empty():
            ln = self._lines.get()
            if ln is not None:
                self.out.append(ln)
        return "\n".join(self.out), err


def configmap(name: str, data: dict | None = None, labels: dict | None = None,
              owner: tuple[str, str] | None = None, finalizers: list[str] | None = None,
              block: bool = False) -> str:
    """A ConfigMap manifest as JSON text (kubectl reads JSON as YAML); owner = (name, uid)."""
    meta: dict = {"name": name}
    if labels:
        meta["labels"] = labels
    if finalizers:
        meta["finalizers"] = finalizers
    if owner:
        ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": owner[0], "uid": owner[1]}
        if block:
            ref["blockOwnerDeletion"] = True
        meta["ownerReferences"] = [ref]
    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta}
    if data is not None:
        obj["data"] = data
    return json.dumps(obj)
