"""Pod streams through the API server: `pods/<name>/exec|attach|portforward|log`.

As upstream's apiserver does, this layer validates the request against the pod (the container
name, that the pod has a node) and then proxies to the node's stream server, found on the
Node object: `status.daemonEndpoints.kubeletEndpoint.Port` on 127.0.0.1 (k1s nodes are local
and the root namespace may connect only to loopback, so the address part is not used).
- exec/attach/portforward: kubectl's WebSocket is terminated here and a WebSocket with the same
  subprotocol is opened to the node; binary messages are relayed unchanged both ways (the
  channel bytes and SPDY frames are the node's business). The node connection is made first,
  so a node-side refusal (e.g. the container is not running) reaches kubectl as a Status
  without an upgrade.
- log: the node's text/plain body is streamed through chunk by chunk (`follow` included).
"""

from __future__ import annotations

import asyncio
import logging
from urllib.parse import quote

import aiohttp
import orjson
from aiohttp import WSMsgType, web

from ..api import registry
from ..api.errors import StatusError, bad_request
from ..api.registry import Resource

log = logging.getLogger(__name__)

SUBRESOURCES = ("exec", "attach", "portforward", "log")
EXEC_PROTOCOL = "v5.channel.k8s.io"
PORTFORWARD_PROTOCOL = "SPDY/3.1+portforward.k8s.io"
NODE_PATHS = {"exec": "exec", "attach": "attach", "portforward": "portForward",
              "log": "containerLogs"}
PASS_QUERY = {"exec": ("command", "stdin", "stdout", "stderr", "tty"),
              "attach": ("stdin", "stdout", "stderr", "tty"),
              "log": ("follow", "tailLines", "sinceSeconds", "sinceTime", "timestamps",
                      "previous", "limitBytes", "insecureSkipTLSVerifyBackend")}


def _status(err: StatusError) -> web.Response:
    return web.Response(body=orjson.dumps(err.status()), status=err.code,
                        content_type="application/json")


def container_for(pod: dict, requested: str | None) -> str:
    """The container a request means, with upstream's errors."""
    name = pod["metadata"]["name"]
    spec = pod.get("spec") or {}
    names = [c.get("name", "") for c in spec.get("containers") or []]
    every = names + [c.get("name", "") for key in ("initContainers", "ephemeralContainers")
                     for c in spec.get(key) or []]
    if not requested:
        if len(names) == 1:
            return names[0]
        default = ((pod["metadata"].get("annotations") or {})
                   .get("kubectl.kubernetes.io/default-container"))
        if default in names:
            return default
        raise bad_request(f"a container name must be specified for pod {name}, "
                          f"choose one of: [{' '.join(every)}]")
    if requested not in every:
        raise bad_request(f"container {requested} is not valid for pod {name}")
    return requested


async def node_endpoint(objects, node_name: str) -> str:
    try:
        node = (await objects.get(registry.core("nodes"), None, node_name)).obj
    except StatusError:
        raise StatusError(503, "ServiceUnavailable",
                          f'node "{node_name}" of the pod is not known') from None
    port = (((node.get("status") or {}).get("daemonEndpoints") or {})
            .get("kubeletEndpoint") or {}).get("Port") or 0
    if not port:
        raise StatusError(503, "ServiceUnavailable",
                          f'node "{node_name}" does not serve streams (no kubelet endpoint)')
    return f"127.0.0.1:{int(port)}"


async def handle_pod_stream(request: web.Request, objects, resource: Resource, namespace: str,
                            name: str, subresource: str) -> web.StreamResponse:
    try:
        return await _handle(request, objects, resource, namespace, name, subresource)
    except StatusError as e:
        return _status(e)


async def _handle(request, objects, resource, namespace, name, sub) -> web.StreamResponse:
    if sub not in SUBRESOURCES:
        raise bad_request(f"unknown subresource {sub}")
    if sub == "log" and request.method not in ("GET", "HEAD"):
        raise StatusError(405, "MethodNotAllowed", "the server does not allow this method on "
                                                   "the requested resource")
    pod = (await objects.get(resource, namespace, name)).obj
    meta, q = pod["metadata"], request.query
    container = container_for(pod, q.get("container")) if sub != "portforward" else ""
    node = (pod.get("spec") or {}).get("nodeName") or ""
    if not node:
        if sub == "log":                # upstream: no host yet, so no logs: an empty body
            return web.Response(body=b"", content_type="text/plain")
        raise bad_request(f"pod {name} does not have a host assigned")
    endpoint = await node_endpoint(objects, node)
    path = f"/{NODE_PATHS[sub]}/{quote(namespace)}/{quote(name)}/{quote(meta.get('uid', ''))}"
    if container:
        path += f"/{quote(container)}"
    query = [(k, v) for k, v in q.items() if k in PASS_QUERY.get(sub, ())]
    url = f"http://{endpoint}{path}"
    if sub == "log":
        return await _relay_log(request, url, query)
    proto = PORTFORWARD_PROTOCOL if sub == "portforward" else EXEC_PROTOCOL
    offered = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",")]
    if request.headers.get("Upgrade", "").lower() != "websocket" or proto not in offered:
        # e.g. kubectl's SPDY fallback after a refused WebSocket: the node's own refusal (the
        # container is not running) says more than "upgrade required", so ask it first
        return await _node_refusal(url, query)
    return await _relay_ws(request, url, query, proto)


async def _node_refusal(url: str, query) -> web.Response:
    """The node's answer to a plain GET: its Status error, or "Upgrade request required"."""
    timeout = aiohttp.ClientTimeout(total=30)
    try:
        async with aiohttp.ClientSession(timeout=timeout) as s:
            async with s.get(url, params=query) as r:
                body = await r.read()
                if r.status >= 400:
                    return web.Response(body=body, status=r.status,
                                        content_type="application/json")
    except (aiohttp.ClientError, asyncio.TimeoutError) as e:
        raise StatusError(503, "ServiceUnavailable",
                          f"the node's stream server cannot be reached: {e}") from None
    raise bad_request("Upgrade request required")


async def _relay_log(request: web.Request, url: str, query) -> web.StreamResponse:
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=10)
    async with aiohttp.ClientSession(timeout=timeout) as s:
        try:
            async with s.get(url, params=query) as r:
                if r.status != 200:
                    return web.Response(body=await r.read(), status=r.status,
                                        content_type="application/json")
                resp = web.StreamResponse(headers={"Content-Type": "text/plain"})
                resp.enable_chunked_encoding()
                await resp.prepare(request)
                async for chunk in r.content.iter_any():
                    await resp.write(chunk)
                await resp.write_eof()
                return resp
        except aiohttp.ClientError as e:
            raise StatusError(503, "ServiceUnavailable",
                              f"the node's stream server cannot be reached: {e}") from None


async def _relay_ws(request: web.Request, url: str, query, proto: str) -> web.StreamResponse:
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=10)
    async with aiohttp.ClientSession(timeout=timeout) as s:
        try:
            node_ws = await s.ws_connect(url, params=query, protocols=(proto,), autoping=True,
                                         max_msg_size=0)
        except aiohttp.WSServerHandshakeError:
            # the node refused before upgrading: fetch its Status and hand it on
            return await _node_refusal(url, query)
        except aiohttp.ClientError as e:
            raise StatusError(503, "ServiceUnavailable",
                              f"the node's stream server cannot be reached: {e}") from None
        ws = web.WebSocketResponse(protocols=(proto,), autoping=True, max_msg_size=0)
        await ws.prepare(request)

        async def to_node() -> None:
            async for msg in ws:
                if msg.type == WSMsgType.BINARY:
                    await node_ws.send_bytes(msg.data)
                elif msg.type == WSMsgType.TEXT:
                    await node_ws.send_str(msg.data)

        async def to_client() -> None:
            async for msg in node_ws:
                if msg.type == WSMsgType.BINARY:
                    await ws.send_bytes(msg.data)
                elif msg.type == WSMsgType.TEXT:
                    await ws.send_str(msg.data)

        up = asyncio.create_task(to_node())
        down = asyncio.create_task(to_client())
        try:
            done, _ = await asyncio.wait({up, down}, return_when=asyncio.FIRST_COMPLETED)
            if down in done:
                await ws.close(code=node_ws.close_code or 1000)
            else:
                await node_ws.close()
        finally:
            up.cancel()
            down.cancel()
            await node_ws.close()
            await ws.close()
        return ws
