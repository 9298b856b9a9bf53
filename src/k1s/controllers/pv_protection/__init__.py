"""The pv-protection controller: keeps `kubernetes.io/pv-protection` on volumes and removes it
from a deleted volume once it is no longer Bound (upstream pkg/controller/volume/pvprotection)."""
