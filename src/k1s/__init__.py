"""k1s: a Kubernetes-compatible control plane and node agent for stateful workloads."""

__version__ = "0.1.0"
