"""The client's error type: every non-2xx answer from the API server becomes an `ApiError`.

The server answers errors with a `meta/v1 Status` object; the error carries it whole (`.status`)
and exposes the three fields callers branch on (`code`, `reason`, `message`). A body that is not
a Status (a proxy's HTML page, an empty 502) is turned into a synthetic Status with the reason
upstream's client-go would infer from the HTTP code, so callers can always use the predicates.
"""

from __future__ import annotations

from typing import Any

import orjson

# HTTP code -> the StatusReason upstream's client infers when the body carries none
# (k8s.io/apimachinery/pkg/api/errors.NewGenericServerResponse).
_REASON_BY_CODE = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    406: "NotAcceptable",
    409: "Conflict",
    410: "Expired",
    413: "RequestEntityTooLarge",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


class ApiError(Exception):
    """A Kubernetes Status error. `code` is the HTTP status, `reason` the StatusReason."""

    def __init__(self, status: dict[str, Any]):
        self.status = status
        self.code: int = int(status.get("code") or 0)
        self.reason: str = status.get("reason") or _REASON_BY_CODE.get(self.code, "Unknown")
        self.message: str = status.get("message") or ""
        super().__init__(f"({self.code} {self.reason}) {self.message}")

    def is_not_found(self) -> bool:
        return self.code == 404 or self.reason == "NotFound"

    def is_conflict(self) -> bool:
        # AlreadyExists is also a 409 but callers treat it apart, as upstream's IsConflict does.
        return self.reason == "Conflict" or (self.code == 409 and self.reason != "AlreadyExists")

    def is_already_exists(self) -> bool:
        return self.reason == "AlreadyExists"

    def is_gone(self) -> bool:
        """410: the requested resourceVersion is too old (Expired) or compacted (Gone)."""
        return self.code == 410 or self.reason in ("Expired", "Gone")

    def is_invalid(self) -> bool:
        return self.code == 422 or self.reason == "Invalid"


def status_from_response(code: int, body: bytes) -> dict[str, Any]:
    """The Status an error answer carries, or a synthetic one when the body is not a Status."""
    try:
        decoded = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        decoded = None
    if isinstance(decoded, dict) and decoded.get("kind") == "Status":
        status = dict(decoded)
        status.setdefault("code", code)
        return status
    reason = _REASON_BY_CODE.get(code, "Unknown")
    text = body.decode("utf-8", "replace").strip() if body else ""
    if len(text) > 1024:
        text = text[:1024] + "..."
    message = text or f"the server responded with the status code {code} but did not return " \
                      f"more information"
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}


def error_from_response(code: int, body: bytes) -> ApiError:
    return ApiError(status_from_response(code, body))
