"""Who this node is: its Node name, where k1s keeps its data on this machine, and how much
memory the machine has (the Node's capacity, an unset limit in the downward API, the OOM
score of a Burstable container).

The name is the lower-cased short hostname (what kubelet uses by default), overridable by env
K1S_NODE_NAME so tests and several agents on one machine can pick their own. The data dir is
env K1S_DATA_DIR (set by `k1s up`), else ~/.k1s.
"""

from __future__ import annotations

import os
import socket


def node_name() -> str:
    """This node's name: $K1S_NODE_NAME, else the lower-cased short hostname."""
    override = os.environ.get("K1S_NODE_NAME", "").strip()
    if override:
        return override.lower()
    host = socket.gethostname().split(".", 1)[0].strip().lower()
    return host or "localhost"


def memory_bytes() -> int:
    """The machine's memory (MemTotal), 0 when /proc/meminfo cannot be read."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def data_dir() -> str:
    """The k1s data directory: $K1S_DATA_DIR, else ~/.k1s."""
    return os.environ.get("K1S_DATA_DIR") or os.path.join(os.path.expanduser("~"), ".k1s")
