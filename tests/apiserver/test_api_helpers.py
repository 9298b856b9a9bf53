"""Shared helpers for the API-semantics tests (no tests here): a raw HTTP client that returns
status, body and headers exactly as the server sent them, object builders, and watch readers.

Raw aiohttp is used on purpose: these tests assert exact status codes, Status bodies and
headers, which a typed client would hide or reinterpret.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

JSON = "application/json"
MERGE = "application/merge-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
TABLE_ACCEPT = "application/json;as=Table;v=v1;g=meta.k8s.io"


@dataclass
class Reply:
    status: int
    body: Any               # parsed JSON, or the text when it is not JSON
    headers: Any            # multidict of response headers

    def __repr__(self) -> str:   # shows up in assertion messages
        return f"Reply({self.status}, {self.body!r})"


class Api:
    """A thin raw client: `await api.get(path)` -> Reply."""

    def __init__(self, session: aiohttp.ClientSession, url: str):
        self.session = session
        self.url = url

    async def request(self, method: str, path: str, body: Any = None, *,
                      params: dict | None = None, headers: dict | None = None,
                      content_type: str = JSON, data: bytes | None = None) -> Reply:
        hdrs = dict(headers or {})
        if data is None and body is not None:
            data = json.dumps(body).encode()
        if data is not None:
            hdrs.setdefault("Content-Type", content_type)
        async with self.session.request(method, self.url + path, data=data, params=params,
                                        headers=hdrs) as resp:
            raw = await resp.read()
            try:
                parsed = json.loads(raw) if raw else None
            except ValueError:
                parsed = raw.decode(errors="replace")
            return Reply(resp.status, parsed, resp.headers)

    async def get(self, path: str, **kw) -> Reply:
        return await self.request("GET", path, **kw)

    async def post(self, path: str, body: Any = None, **kw) -> Reply:
        return await self.request("POST", path, body, **kw)

    async def put(self, path: str, body: Any = None, **kw) -> Reply:
        return await self.request("PUT", path, body, **kw)

    async def patch(self, path: str, body: Any, *, content_type: str = MERGE, **kw) -> Reply:
        return await self.request("PATCH", path, body, content_type=content_type, **kw)

    async def delete(self, path: str, body: Any = None, **kw) -> Reply:
        return await self.request("DELETE", path, body, **kw)

    async def ok(self, method: str, path: str, body: Any = None, **kw) -> Any:
        """The body of a request that must succeed (2xx). PATCH defaults to a merge patch."""
        if method == "PATCH":
            kw.setdefault("content_type", MERGE)
        r = await self.request(method, path, body, **kw)
        assert 200 <= r.status < 300, r
        return r.body

    async def watch(self, path: str, params: dict | None = None, *,
                    headers: dict | None = None) -> "WatchStream":
        resp = await self.session.get(self.url + path, params=dict(params or {}, watch="true"),
                                      headers=headers)
        assert resp.status == 200, await resp.text()
        return WatchStream(resp)


class WatchStream:
    """Reads newline-delimited watch events from an open response."""

    def __init__(self, resp: aiohttp.ClientResponse):
        self.resp = resp

    async def next(self, timeout: float = 5.0) -> dict | None:
        """The next event, or None when the server closed the stream."""
        line = await asyncio.wait_for(self.resp.content.readline(), timeout)
        if not line:
            return None
        return json.loads(line)

    async def take(self, n: int, timeout: float = 5.0) -> list[dict]:
        out = []
        for _ in range(n):
            ev = await self.next(timeout)
            assert ev is not None, f"stream closed after {out}"
            out.append(ev)
        return out

    async def nothing_for(self, seconds: float) -> None:
        """Assert that no event arrives within `seconds`."""
        try:
            ev = await asyncio.wait_for(self.resp.content.readline(), seconds)
        except asyncio.TimeoutError:
            return
        raise AssertionError(f"unexpected event: {ev!r}")

    def close(self) -> None:
        self.resp.close()


@pytest.fixture
async def api(api_server):
    async with aiohttp.ClientSession() as s:
        yield Api(s, api_server.url)


# ------------------------------------------------------------------------------- builders
def ns_path(ns: str, plural: str, name: str | None = None, sub: str | None = None,
            group: str = "", version: str = "v1") -> str:
    base = f"/apis/{group}/{version}" if group else f"/api/{version}"
    p = f"{base}/namespaces/{ns}/{plural}"
    if name:
        p += "/" + name
    if sub:
        p += "/" + sub
    return p


def configmap(name: str, data: dict | None = None, labels: dict | None = None, **meta) -> dict:
    md: dict[str, Any] = {"name": name, **meta}
    if labels is not None:
        md["labels"] = labels
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": md, "data": data or {}}


def pod(name: str, labels: dict | None = None, **spec) -> dict:
    md: dict[str, Any] = {"name": name}
    if labels is not None:
        md["labels"] = labels
    return {"apiVersion": "v1", "kind": "Pod", "metadata": md,
            "spec": {"containers": [{"name": "c", "image": "busybox"}], **spec}}


def statefulset(name: str, replicas: int = 1, labels: dict | None = None) -> dict:
    sel = {"app": name}
    md: dict[str, Any] = {"name": name}
    if labels is not None:
        md["labels"] = labels
    return {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": md,
            "spec": {"replicas": replicas, "serviceName": name,
                     "selector": {"matchLabels": sel},
                     "template": {"metadata": {"labels": sel},
                                  "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}


def service(name: str, cluster_ip: str | None = None) -> dict:
    spec: dict[str, Any] = {"ports": [{"port": 80}], "selector": {"app": name}}
    if cluster_ip is not None:
        spec["clusterIP"] = cluster_ip
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": spec}


def namespace(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def status_body(code: int, reason: str, message: str, details: dict | None = None) -> dict:
    """The Status upstream answers for a failed request."""
    s = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
         "message": message, "reason": reason, "code": code}
    if details is not None:
        s["details"] = details
    return s


def rv(obj: dict) -> int:
    return int(obj["metadata"]["resourceVersion"])


def names(list_body: dict) -> list[str]:
    return [i["metadata"]["name"] for i in list_body["items"]]
