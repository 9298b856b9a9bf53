"""The pvc-protection controller: keeps `kubernetes.io/pvc-protection` on claims and removes it
from a deleted claim once no scheduled pod uses it (upstream pkg/controller/volume/pvcprotection)."""
