"""The four PATCH kinds and field ownership, as pure functions over JSON dicts.

- application/merge-patch+json           -> merge_patch(original, patch)
- application/json-patch+json            -> json_patch(original, ops)
- application/strategic-merge-patch+json -> strategic_merge_patch(original, patch, schema_name)
- application/apply-patch+yaml           -> apply.apply(live, applied, schema_name, manager,
                                                  force, managed_fields) (or
                                                  server_side_apply, which returns the object)

Every other write records ownership with update_managed_fields(...) (or the object store hook
managed_fields_hook). The package attribute `apply` is the apply *module* (the HTTP bridge
imports it as such); the function is `apply.apply`. Bad patches raise
k1s.api.errors.StatusError carrying upstream's code, reason and message.
"""

from .apply import server_side_apply
from .jsonpatch import MAX_OPERATIONS, json_patch
from .managedfields import managed_fields_for_write, managed_fields_hook, update_managed_fields
from .merge import merge_patch
from .strategic import strategic_merge_patch

PATCH_TYPES = {
    "application/json-patch+json": "json",
    "application/merge-patch+json": "merge",
    "application/strategic-merge-patch+json": "strategic",
    "application/apply-patch+yaml": "apply",
}

__all__ = ["json_patch", "merge_patch", "strategic_merge_patch", "server_side_apply",
           "update_managed_fields", "managed_fields_for_write", "managed_fields_hook",
           "MAX_OPERATIONS", "PATCH_TYPES"]
