"""The node agent's container runtime: pods as real Linux processes in namespaces k1s makes
itself (ctypes), with no container engine.

- `linux`: the system calls Python 3.11 lacks (unshare, setns, mount, pivot_root, prctl).
- `sandbox`: a pod's shared namespaces (holder process), /etc files, each container's view.
- `process`: one container's monitored process tree, CRI logs, exit status, re-adoption.
- `cgroups`: memory/cpu/pids limits on cgroup v1 or v2, OOM detection, kill-all.
- `images`: the image catalog (nginx, busybox, pause) in place of pulled images.
- `runtime`: `ProcessRuntime`, the `k1s.node.pods.Runtime` protocol over all of the above.

Host packages it uses (Debian): coreutils (sleep), nginx-light, busybox; tests also curl and
iproute2.
"""
