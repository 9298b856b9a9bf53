"""In-process transport: an APIClient whose API server runs in the same process hands its
requests straight to that server's HTTP handler instead of a socket.

`k1s up` runs the API server and every controller, the scheduler and the simulated nodes in
one asyncio process, all of them CPU-bound on one core; a request through aiohttp's client and
server costs about as much as the API server's own work on it. The request still passes the
whole API pipeline (the same `Handlers.dispatch`, with the client's method, path, query,
headers and encoded body; the answer is the same status and bytes), so controllers keep
talking only to the API and can move to another process unchanged. Watches stay on HTTP
(streamed responses), as do clients of any other server.

`k1s up` registers its server's base URL after it starts serving and unregisters it before it
stops; nothing else does, so every test that runs a server and controllers over HTTP still
exercises the sockets.
"""

from __future__ import annotations

import asyncio
from typing import Any, Awaitable, Callable

from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

Dispatch = Callable[[Any], Awaitable[Any]]

_SERVERS: dict[str, Dispatch] = {}


def register(base_url: str, dispatch: Dispatch) -> None:
    _SERVERS[base_url.rstrip("/")] = dispatch


def unregister(base_url: str) -> None:
    _SERVERS.pop(base_url.rstrip("/"), None)


# subresources whose answers stream (or upgrade the connection): always over HTTP
_STREAMING = frozenset({"log", "exec", "attach", "portforward", "proxy"})


def lookup(base_url: str, method: str, path: str, params: dict | None) -> Dispatch | None:
    """The in-process handler for this request, if its server is here and it is unary."""
    if not _SERVERS:
        return None
    dispatch = _SERVERS.get(base_url)
    if dispatch is None or (params and "watch" in params):
        return None
    if path.rpartition("/")[2] in _STREAMING or "/proxy/" in path:
        return None
    return dispatch


class LocalRequest:
    """What the API server's handlers read of an aiohttp web.Request."""

    __slots__ = ("method", "path", "query", "headers", "content_type", "content_length",
                 "can_read_body", "_body")

    def __init__(self, method: str, url: URL, headers: CIMultiDict, body: bytes | None):
        self.method = method
        self.path = url.path
        self.query = url.query
        self.headers = CIMultiDictProxy(headers)
        self._body = body or b""
        self.content_length = len(body) if body is not None else None
        self.can_read_body = bool(self._body)
        ctype = headers.get("Content-Type")
        # aiohttp's content_type: the media type without parameters, octet-stream if none
        self.content_type = (ctype.split(";", 1)[0].strip().lower() if ctype
                             else "application/octet-stream")

    async def read(self) -> bytes:
        return self._body


async def call(dispatch: Dispatch, method: str, url: str, params: dict | None,
               body: bytes | None, headers: dict, extra_headers: dict | None,
               timeout: float | None) -> tuple[int, bytes]:
    """One request through `dispatch`; (status, body bytes) as the socket would carry them."""
    u = URL(url)
    if params:
        u = u.with_query(params)
    h = CIMultiDict(headers)
    if extra_headers:
        h.update(extra_headers)
    if body is not None:
        h["Content-Length"] = str(len(body))
    req = LocalRequest(method, u, h, body)
    if timeout:
        async with asyncio.timeout(timeout):
            resp = await dispatch(req)
    else:
        resp = await dispatch(req)
    return resp.status, resp.body or b""
