"""Errors as Kubernetes reports them: field errors (validation) and Status errors (the API).

Field errors follow upstream's `field.Error` wording exactly, because kubectl prints them as they
come: `spec.accessModes: Required value`, `spec.replicas: Invalid value: -1: must be greater than
or equal to 0`, `spec.type: Unsupported value: "x": supported values: "A", "B"`.

A `StatusError` is anything the API answers with a non-2xx `Status` object. `invalid()` turns a
list of field errors into the 422 upstream sends, with one cause per field.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

import orjson

# field.ErrorType -> (cause reason, message prefix)
REQUIRED = ("FieldValueRequired", "Required value")
INVALID = ("FieldValueInvalid", "Invalid value")
UNSUPPORTED = ("FieldValueNotSupported", "Unsupported value")
DUPLICATE = ("FieldValueDuplicate", "Duplicate value")
FORBIDDEN = ("FieldValueForbidden", "Forbidden")
NOT_FOUND = ("FieldValueNotFound", "Not found")
TOO_LONG = ("FieldValueTooLong", "Too long")
TOO_MANY = ("FieldValueTooMany", "Too many")
INTERNAL = ("InternalError", "Internal error")
TYPE_INVALID = ("FieldValueTypeInvalid", "Invalid value")

_OMIT = object()


def format_value(v: Any) -> str:
    """Render a bad value the way Go's field errors do (%q for strings, plain for numbers)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return orjson.dumps(v).decode()
    if isinstance(v, (int, float)):
        return str(v)
    if v is None:
        return "null"
    try:
        return orjson.dumps(v).decode()
    except TypeError:
        return str(v)


@dataclass
class FieldError:
    kind: tuple[str, str]     # one of the constants above
    field: str                # "spec.accessModes", "metadata.labels[app]"
    value: Any = _OMIT
    detail: str = ""

    @property
    def reason(self) -> str:
        return self.kind[0]

    def body(self) -> str:
        """The part after `field: ` (what upstream puts in a cause's message)."""
        prefix = self.kind[1]
        if self.kind in (REQUIRED, FORBIDDEN, TOO_LONG, INTERNAL) and self.value is _OMIT:
            return f"{prefix}: {self.detail}" if self.detail else prefix
        if self.kind in (REQUIRED, FORBIDDEN, INTERNAL):
            return f"{prefix}: {self.detail}" if self.detail else prefix
        s = prefix
        if self.value is not _OMIT:
            s += ": " + format_value(self.value)
        if self.detail:
            s += ": " + self.detail
        return s

    def __str__(self) -> str:
        return f"{self.field}: {self.body()}" if self.field else self.body()


# Shorthand constructors, named as upstream's field.Required(...), field.Invalid(...), ...
def required(field: str, detail: str = "") -> FieldError:
    return FieldError(REQUIRED, field, _OMIT, detail)


def invalid(field: str, value: Any, detail: str = "") -> FieldError:
    return FieldError(INVALID, field, value, detail)


def unsupported(field: str, value: Any, supported: Iterable[str] = ()) -> FieldError:
    sup = list(supported)
    detail = ("supported values: " + ", ".join(format_value(s) for s in sup)) if sup else ""
    return FieldError(UNSUPPORTED, field, value, detail)


def duplicate(field: str, value: Any) -> FieldError:
    return FieldError(DUPLICATE, field, value)


def forbidden(field: str, detail: str = "") -> FieldError:
    return FieldError(FORBIDDEN, field, _OMIT, detail)


def not_found(field: str, value: Any) -> FieldError:
    return FieldError(NOT_FOUND, field, value)


def too_long(field: str, max_len: int) -> FieldError:
    return FieldError(TOO_LONG, field, _OMIT, f"may not be more than {max_len} bytes")


def too_many(field: str, actual: int, max_items: int) -> FieldError:
    """`Too many: 101: must have at most 100 items` (upstream prints the actual count)."""
    return FieldError(TOO_MANY, field, actual, f"must have at most {max_items} items")


class StatusError(Exception):
    """An API error that is answered with a Kubernetes Status object."""

    def __init__(self, code: int, reason: str, message: str,
                 details: dict[str, Any] | None = None, metadata: dict[str, Any] | None = None):
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details
        self.metadata = metadata or {}

    def status(self) -> dict[str, Any]:
        s: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": self.metadata,
                             "status": "Failure", "message": self.message,
                             "reason": self.reason}
        if self.details is not None:
            s["details"] = self.details
        s["code"] = self.code
        return s


def _details(resource: str, group: str, name: str | None) -> dict[str, Any]:
    d: dict[str, Any] = {}
    if name is not None:
        d["name"] = name
    if group:
        d["group"] = group
    d["kind"] = resource
    return d


def _qual(resource: str, group: str) -> str:
    return f"{resource}.{group}" if group else resource


def not_found_error(resource: str, group: str, name: str) -> StatusError:
    return StatusError(404, "NotFound", f'{_qual(resource, group)} "{name}" not found',
                       _details(resource, group, name))


def already_exists(resource: str, group: str, name: str) -> StatusError:
    return StatusError(409, "AlreadyExists", f'{_qual(resource, group)} "{name}" already exists',
                       _details(resource, group, name))


def conflict(resource: str, group: str, name: str, why: str | None = None) -> StatusError:
    why = why or ("the object has been modified; please apply your changes to the latest "
                  "version and try again")
    return StatusError(409, "Conflict",
                       f'Operation cannot be fulfilled on {_qual(resource, group)} "{name}": {why}',
                       _details(resource, group, name))


def invalid_error(kind: str, group: str, name: str, errs: list[FieldError]) -> StatusError:
    """422 Invalid: `Kind "name" is invalid: <error>` or `... is invalid: [<e1>, <e2>]`."""
    if len(errs) == 1:
        agg = str(errs[0])
    else:
        agg = "[" + ", ".join(str(e) for e in errs) + "]"
    details: dict[str, Any] = {"name": name}
    if group:
        details["group"] = group
    details["kind"] = kind
    details["causes"] = [{"reason": e.reason, "message": e.body(), "field": e.field}
                         for e in errs]
    qualified = f"{kind}.{group}" if group else kind
    return StatusError(422, "Invalid", f'{qualified} "{name}" is invalid: {agg}', details)


def bad_request(message: str) -> StatusError:
    return StatusError(400, "BadRequest", message)


def forbidden_error(message: str, resource: str = "", group: str = "",
                    name: str | None = None) -> StatusError:
    return StatusError(403, "Forbidden", message,
                       _details(resource, group, name) if resource else None)


def method_not_allowed(message: str = "the server does not allow this method on the requested "
                       "resource") -> StatusError:
    return StatusError(405, "MethodNotAllowed", message, {})


def gone(message: str) -> StatusError:
    """410 Expired: a watch or list from a compacted resourceVersion."""
    return StatusError(410, "Expired", message)


def unsupported_media_type(content_type: str) -> StatusError:
    return StatusError(415, "UnsupportedMediaType",
                       'the body of the request was in an unknown format - accepted media types '
                       'include: application/json-patch+json, application/merge-patch+json, '
                       'application/apply-patch+yaml, application/strategic-merge-patch+json'
                       if content_type else "missing content type")


def too_large() -> StatusError:
    return StatusError(413, "RequestEntityTooLarge",
                       "Request entity too large: limit is 3145728")


def path_not_found() -> StatusError:
    return StatusError(404, "NotFound", "the server could not find the requested resource", {})


def internal(message: str) -> StatusError:
    return StatusError(500, "InternalError",
                       f"Internal error occurred: {message}")


def timeout(message: str) -> StatusError:
    return StatusError(504, "Timeout", message)
