"""The built-in `k1s.io/local` provisioner: pvc-<uid> volumes on this node, with real capacity."""
