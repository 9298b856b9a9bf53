"""A pod's volumes on a real node: what each `spec.volumes` entry becomes on the host (planner.py,
pure), kubelet's atomic writer for configMap/secret/downwardAPI/projected files (atomic.py), and
the module that mounts, writes and tears down (manager.py)."""
