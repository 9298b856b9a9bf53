"""The async REST client every k1s component uses to talk to the API server.

One `aiohttp.ClientSession` per client (keep-alive connection pool), orjson for every body.
Paths are built from a `k1s.api.registry.Resource` the way upstream's REST mapper does:
core resources under `/api/v1`, the others under `/apis/<group>/<version>`, namespaced ones
under `namespaces/<ns>/`. Non-2xx answers raise `ApiError` carrying the server's Status.

`watch()` reads the newline-delimited JSON event stream itself: aiohttp's `readline()` refuses
lines over its 512 KiB buffer limit, and a single watch event (a big ConfigMap, a CRD) may be
larger, so chunks are gathered and split on newlines here with no length limit.
"""

from __future__ import annotations

import gc
import logging
import os
import ssl as _ssl
from typing import Any, AsyncIterator
from urllib.parse import quote

import aiohttp
import orjson

from k1s.api import registry
from k1s.api.registry import Resource

from . import local
from .errors import ApiError, error_from_response

log = logging.getLogger(__name__)

# patch_type -> Content-Type the API server dispatches on (k8s.io/apimachinery/pkg/types.PatchType)
PATCH_CONTENT_TYPES = {
    "merge": "application/merge-patch+json",
    "strategic": "application/strategic-merge-patch+json",
    "json": "application/json-patch+json",
    "apply": "application/apply-patch+yaml",   # JSON is YAML: we send JSON
}

# Client-side slack over a watch's timeoutSeconds before we give up on the connection.
WATCH_TIMEOUT_MARGIN = 10

# Bodies larger than this are decoded with the cyclic GC paused: decoding builds many dicts at
# once, and the default thresholds make CPython run repeated full collections over them
# (python-stack.md §2: 20,000 pods took 2.05 s with GC on, 0.41 s with it off).
_GC_PAUSE_BYTES = 1 << 20

def resource_of(resource: Resource | str) -> Resource:
    """Accept a Resource or its qualified name (`pods`, `statefulsets.apps`)."""
    if isinstance(resource, Resource):
        return resource
    return registry.get(resource)


def resource_path(resource: Resource, namespace: str | None = None, name: str | None = None,
                  subresource: str | None = None) -> str:
    """The URL path of a collection, an object or an object's subresource."""
    if resource.group:
        parts = ["/apis", resource.group, resource.version]
    else:
        parts = ["/api", resource.version]
    if resource.namespaced and namespace:
        parts += ["namespaces", quote(namespace, safe="")]
    parts.append(resource.plural)
    if name is not None:
        if name == "":
            # An empty name would silently address the collection instead of the object.
            raise ValueError(f"resource name may not be empty ({resource.qualified})")
        parts.append(quote(name, safe=""))
        if subresource:
            parts.append(subresource)
    elif subresource:
        raise ValueError("a subresource needs an object name")
    return "/".join(parts)


def decode_json(body: bytes) -> Any:
    """orjson.loads, with the cyclic GC paused for large bodies (lists, relists)."""
    if len(body) < _GC_PAUSE_BYTES or not gc.isenabled():
        return orjson.loads(body)
    gc.disable()
    try:
        return orjson.loads(body)
    finally:
        gc.enable()


def split_lines(buf: bytearray, chunk: bytes, scan_from: int) -> tuple[list[bytes], int]:
    """Append `chunk` to `buf`, cut every complete line off it, and return them.

    `scan_from` is where the newline search resumes in `buf` (everything before it is known to
    hold no newline), so a multi-megabyte line arriving in many chunks is scanned once, not
    once per chunk. Returns the complete lines (without the newline) and the new `scan_from`.
    """
    buf += chunk
    lines: list[bytes] = []
    start = 0
    pos = buf.find(b"\n", scan_from)
    while pos != -1:
        lines.append(bytes(buf[start:pos]))
        start = pos + 1
        pos = buf.find(b"\n", start)
    if start:
        del buf[:start]
    return lines, len(buf)


class APIClient:
    """Kubernetes REST over one keep-alive aiohttp session."""

    def __init__(self, base_url: str, *, token: str | None = None, user_agent: str = "k1s",
                 timeout: float = 30.0, ssl: _ssl.SSLContext | bool | None = None):
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.user_agent = user_agent
        self.timeout = timeout
        self._ssl = ssl
        self._session: aiohttp.ClientSession | None = None
        self._headers = {"User-Agent": user_agent, "Accept": "application/json"}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"

    @classmethod
    def from_kubeconfig(cls, path: str, *, context: str | None = None,
                        user_agent: str = "k1s", timeout: float = 30.0) -> "APIClient":
        """A client for a kubeconfig's (current) context: server, bearer token, TLS files."""
        return cls(**kubeconfig_settings(path, context), user_agent=user_agent, timeout=timeout)

    # -- session -------------------------------------------------------------------------------

    def _get_session(self) -> aiohttp.ClientSession:
        # Created lazily: a ClientSession binds to the running loop, and clients are often
        # constructed before the loop starts.
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=0, ssl=self._ssl if self._ssl is not None
                                             else True)
            self._session = aiohttp.ClientSession(
                connector=connector, headers=self._headers,
                json_serialize=lambda o: orjson.dumps(o).decode(),
                timeout=aiohttp.ClientTimeout(total=self.timeout))
        return self._session

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    async def __aenter__(self) -> "APIClient":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    # -- the generic request ---------------------------------------------------------------------

    async def request(self, method: str, path: str, *, params=None, body=None,
                      content_type: str = "application/json") -> dict:
        """Send one request; return the decoded JSON answer, raise ApiError on non-2xx."""
        data: bytes | None
        headers = None
        if body is None:
            data = None
        else:
            data = body if isinstance(body, (bytes, bytearray)) else orjson.dumps(body)
            headers = {"Content-Type": content_type}
        params = _clean(params)
        dispatch = local.lookup(self.base_url, method, path, params)
        if dispatch is not None:
            status, raw = await local.call(dispatch, method, self.base_url + path, params, data,
                                           self._headers, headers, self.timeout)
            if status >= 300:
                raise error_from_response(status, raw)
        else:
            session = self._get_session()
            async with session.request(method, self.base_url + path, params=params,
                                       data=data, headers=headers) as resp:
                raw = await resp.read()
                status = resp.status
                if status >= 300:
                    raise error_from_response(status, raw)
        if not raw:
            return {}
        try:
            out = decode_json(raw)
        except orjson.JSONDecodeError:
            raise ApiError({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                            "code": status, "reason": "InternalError",
                            "message": "the server answered with a body that is not JSON: "
                                       + raw[:200].decode("utf-8", "replace")}) from None
        return out if isinstance(out, dict) else {"items": out}

    # -- verbs ---------------------------------------------------------------------------------

    async def get(self, resource, name: str, namespace: str | None = None, *,
                  subresource: str | None = None) -> dict:
        r = resource_of(resource)
        return await self.request("GET", resource_path(r, namespace, name, subresource))

    async def list(self, resource, namespace: str | None = None, *,
                   label_selector: str | None = None, field_selector: str | None = None,
                   limit: int = 0, continue_: str | None = None,
                   resource_version: str | None = None) -> dict:
        r = resource_of(resource)
        params = {"labelSelector": label_selector, "fieldSelector": field_selector,
                  "limit": limit or None, "continue": continue_,
                  "resourceVersion": resource_version}
        return await self.request("GET", resource_path(r, namespace), params=params)

    async def create(self, resource, obj: dict, namespace: str | None = None, *,
                     subresource: str | None = None, name: str | None = None) -> dict:
        """POST to the collection, or to `<name>/<subresource>` (pods/binding, evictions)."""
        r = resource_of(resource)
        ns = namespace or _meta(obj).get("namespace")
        if subresource:
            path = resource_path(r, ns, name or _meta(obj).get("name"), subresource)
        else:
            path = resource_path(r, ns)
        return await self.request("POST", path, body=obj)

    async def update(self, resource, obj: dict, *, subresource: str | None = None) -> dict:
        """PUT the whole object; namespace and name come from its metadata."""
        r = resource_of(resource)
        meta = _meta(obj)
        path = resource_path(r, meta.get("namespace"), meta.get("name"), subresource)
        return await self.request("PUT", path, body=obj)

    async def update_status(self, resource, obj: dict) -> dict:
        return await self.update(resource, obj, subresource="status")

    async def patch(self, resource, name: str, patch, namespace: str | None = None, *,
                    patch_type: str = "merge", subresource: str | None = None,
                    field_manager: str | None = None, force: bool = False) -> dict:
        try:
            ctype = PATCH_CONTENT_TYPES[patch_type]
        except KeyError:
            raise ValueError(f"unknown patch type {patch_type!r}; "
                             f"expected one of {sorted(PATCH_CONTENT_TYPES)}") from None
        r = resource_of(resource)
        params: dict[str, Any] = {}
        if patch_type == "apply":
            # Server-side apply requires a field manager; default to who we are.
            params["fieldManager"] = field_manager or self.user_agent
            if force:
                params["force"] = "true"
        elif field_manager:
            params["fieldManager"] = field_manager
        return await self.request("PATCH", resource_path(r, namespace, name, subresource),
                                  params=params, body=patch, content_type=ctype)

    async def delete(self, resource, name: str, namespace: str | None = None, *,
                     propagation_policy: str | None = None,
                     grace_period_seconds: int | None = None,
                     preconditions: dict | None = None) -> dict:
        """DELETE; returns the object (when finalizers keep it) or a Success Status."""
        r = resource_of(resource)
        opts: dict[str, Any] = {}
        if propagation_policy is not None:
            opts["propagationPolicy"] = propagation_policy
        if grace_period_seconds is not None:
            opts["gracePeriodSeconds"] = grace_period_seconds
        if preconditions:
            opts["preconditions"] = preconditions
        body = {"kind": "DeleteOptions", "apiVersion": "v1", **opts} if opts else None
        return await self.request("DELETE", resource_path(r, namespace, name), body=body)

    # -- watch ---------------------------------------------------------------------------------

    async def watch(self, resource, namespace: str | None = None, *, resource_version: str = "",
                    label_selector: str | None = None, field_selector: str | None = None,
                    allow_bookmarks: bool = True, timeout_seconds: int | None = None,
                    send_initial_events: bool = False) -> AsyncIterator[tuple[str, dict]]:
        """Yield (type, object) for each watch event until the server ends the stream.

        An ERROR event carrying a Status raises ApiError (code 410 when the resourceVersion is
        too old: the caller must relist). Closing the generator closes the connection.
        """
        r = resource_of(resource)
        params: dict[str, Any] = {
            "watch": "true",
            "resourceVersion": resource_version or None,
            "labelSelector": label_selector,
            "fieldSelector": field_selector,
            "allowWatchBookmarks": "true" if allow_bookmarks else None,
            "timeoutSeconds": timeout_seconds,
        }
        if send_initial_events:
            # Upstream requires this pairing for the streaming-list mode.
            params["sendInitialEvents"] = "true"
            params["resourceVersionMatch"] = "NotOlderThan"
        session = self._get_session()
        # A watch lives as long as the server keeps it. Like client-go, bound it on our side
        # too when timeoutSeconds is set (plus a margin so the server normally ends it first):
        # a server that vanished without closing the socket must not hang the watcher forever.
        total = timeout_seconds + WATCH_TIMEOUT_MARGIN if timeout_seconds else None
        timeout = aiohttp.ClientTimeout(total=total, sock_connect=self.timeout)
        async with session.get(self.base_url + resource_path(r, namespace),
                               params=_clean(params), timeout=timeout) as resp:
            if resp.status >= 300:
                raise error_from_response(resp.status, await resp.read())
            buf = bytearray()
            scan_from = 0
            async for chunk in resp.content.iter_any():
                lines, scan_from = split_lines(buf, chunk, scan_from)
                for line in lines:
                    event = _decode_event(line)
                    if event is not None:
                        yield event
            if buf.strip():
                event = _decode_event(bytes(buf))
                if event is not None:
                    yield event


def _decode_event(line: bytes) -> tuple[str, dict] | None:
    if not line.strip():
        return None
    try:
        ev = decode_json(line)
    except orjson.JSONDecodeError:
        raise ApiError({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 500,
                        "reason": "InternalError",
                        "message": "malformed watch event: "
                                   + line[:200].decode("utf-8", "replace")}) from None
    etype = ev.get("type", "")
    obj = ev.get("object") or {}
    if etype == "ERROR":
        if obj.get("kind") == "Status":
            raise ApiError(obj)
        raise ApiError({"kind": "Status", "status": "Failure", "code": 500,
                        "reason": "InternalError", "message": f"watch error: {obj!r}"})
    return etype, obj


def kubeconfig_settings(path: str, context: str | None = None) -> dict[str, Any]:
    """base_url, token and ssl for one context of a kubeconfig file."""
    import base64
    import tempfile

    import yaml

    with open(path, "rb") as f:
        cfg = yaml.safe_load(f) or {}

    def named(section: str, name: str) -> dict:
        for entry in cfg.get(section) or []:
            if entry.get("name") == name:
                return entry.get(section[:-1]) or {}
        raise ValueError(f"kubeconfig {path}: no {section[:-1]} named {name!r}")

    ctx = named("contexts", context or cfg.get("current-context") or "")
    cluster = named("clusters", ctx.get("cluster", ""))
    user = named("users", ctx["user"]) if ctx.get("user") else {}
    server = cluster.get("server") or ""
    token = user.get("token")
    if not token and user.get("tokenFile"):
        with open(user["tokenFile"]) as f:
            token = f.read().strip()
    ssl_ctx: _ssl.SSLContext | bool | None = None
    if server.startswith("https"):
        if cluster.get("insecure-skip-tls-verify"):
            ssl_ctx = _ssl.create_default_context()
            ssl_ctx.check_hostname = False
            ssl_ctx.verify_mode = _ssl.CERT_NONE
        elif cluster.get("certificate-authority-data"):
            ssl_ctx = _ssl.create_default_context(cadata=base64.b64decode(
                cluster["certificate-authority-data"]).decode())
        elif cluster.get("certificate-authority"):
            ssl_ctx = _ssl.create_default_context(cafile=cluster["certificate-authority"])
        else:
            ssl_ctx = _ssl.create_default_context()

        temps: list[str] = []

        def pem_file(key: str) -> str | None:
            # ssl wants files; inline *-data goes to a private temporary file, removed once
            # load_cert_chain has read it.
            if user.get(key):
                return user[key]
            data = user.get(key + "-data")
            if not data:
                return None
            tmp = tempfile.NamedTemporaryFile(prefix="k1s-kubeconfig-", delete=False)
            with tmp:
                tmp.write(base64.b64decode(data))
            temps.append(tmp.name)
            return tmp.name

        try:
            cert, key = pem_file("client-certificate"), pem_file("client-key")
            if cert:
                ssl_ctx.load_cert_chain(cert, key)
        finally:
            for name in temps:
                os.unlink(name)
    return {"base_url": server, "token": token, "ssl": ssl_ctx}


def _meta(obj: dict) -> dict:
    return obj.get("metadata") or {}


def _clean(params) -> dict | None:
    """Drop unset query parameters; aiohttp wants str values."""
    if not params:
        return None
    return {k: (v if isinstance(v, str) else str(v)) for k, v in params.items()
            if v is not None and v != ""}
