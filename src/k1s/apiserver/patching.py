"""The bridge between the HTTP handlers and the patch package (apiserver/patch).

Handlers call `apply_patch` for the three client-side patch kinds and `server_side_apply` for
`application/apply-patch+yaml`; `install` hooks managed-fields tracking into every write of the
object store, so each manager's fields are recorded as upstream records them.
"""

from __future__ import annotations

from typing import Any


def apply_patch(ptype: str, obj: dict, body: Any, schema_name: str, *,
                owned: bool = False) -> dict:
    """`owned`: obj is the caller's private copy and may be patched in place."""
    from .patch import jsonpatch, merge, strategic
    if ptype == "merge":
        return merge.merge_patch(obj, body, owned=owned)
    if ptype == "json":
        return jsonpatch.json_patch(obj, body, owned=owned)
    if ptype == "strategic":
        return strategic.strategic_merge_patch(obj, body, schema_name, owned=owned)
    raise ValueError(ptype)


def server_side_apply(live: dict | None, applied: Any, schema_name: str, manager: str,
                      force: bool, subresource: str | None) -> dict:
    from .patch import apply as ssa
    return ssa.server_side_apply(live, applied, schema_name, manager, force, subresource)


def install(objects) -> None:
    """Record managed fields on every create and update (if the patch package provides it)."""
    try:
        from .patch import apply as ssa
    except ImportError:
        return
    hook = getattr(ssa, "managed_fields_hook", None)
    if hook is not None:
        objects.managed_fields = hook
