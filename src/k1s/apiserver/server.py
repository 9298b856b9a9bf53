"""The API server process: store, watch cache, object store and HTTP, put together.

`APIServer.start()` opens the store, loads the watch cache, serves HTTP on (by default)
127.0.0.1 and creates what every cluster has from the start: the namespaces default,
kube-system, kube-public and kube-node-lease, and the `kubernetes` Service.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket

from aiohttp import web

from ..api import registry
from ..api.errors import StatusError
from ..store import open_store
from ..store.interface import Store
from . import admission
from .handlers import MAX_BODY, Handlers
from .objects import ObjectStore, WriteOptions
from .watchcache import WatchCache

log = logging.getLogger(__name__)

KUBE_VERSION = {"major": "1", "minor": "32", "gitVersion": "v1.32.4+k1s",
                "gitCommit": "0000000000000000000000000000000000000000",
                "gitTreeState": "clean", "buildDate": "2026-11-25T00:00:00Z",
                "goVersion": "go1.23.0", "compiler": "gc", "platform": "linux/amd64"}

# The default class of `k1s up`: the built-in local provisioner, bound where the pod lands.
STANDARD_STORAGE_CLASS = {
    "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
    "metadata": {"name": "standard",
                 "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
    "provisioner": "k1s.io/local", "reclaimPolicy": "Delete",
    "volumeBindingMode": "WaitForFirstConsumer", "allowVolumeExpansion": True,
}

SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


class APIServer:
    def __init__(self, data_dir: str, *, host: str = "127.0.0.1", port: int = 0,
                 service_cidr: str = "10.96.0.0/12", store: Store | None = None,
                 default_storage_class: bool = False):
        self.data_dir = data_dir
        self.host = host
        self.port = port
        self.service_cidr = service_cidr
        self.store = store
        # `k1s up` ships the class `standard` backed by the built-in local provisioner
        self.default_storage_class = default_storage_class
        self._runner: web.AppRunner | None = None
        self.objects: ObjectStore | None = None
        self.cache: WatchCache | None = None

    @property
    def url(self) -> str:
        host = self.host if ":" not in self.host else f"[{self.host}]"
        return f"http://{host}:{self.port}"

    async def start(self) -> None:
        os.makedirs(self.data_dir, mode=0o700, exist_ok=True)
        if self.store is None:
            self.store = open_store(os.path.join(self.data_dir, "state.db"))
        await self.store.start()
        self.cache = WatchCache(self.store)
        await self.cache.start()
        self.objects = ObjectStore(self.store, self.cache)
        self.service_ips = admission.ServiceIPs(self.objects, self.service_cidr)
        self.objects.admission = admission.Chain([
            admission.NamespaceLifecycle(self.objects), self.service_ips,
            admission.ServiceNodePorts(self.objects),
            admission.DefaultStorageClass(self.objects),
            admission.StorageObjectInUseProtection(), admission.DefaultTolerationSeconds()])
        from . import patching
        patching.install(self.objects)

        # Bind first so the address is known before the handlers are built.
        sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        self.handlers = Handlers(self.objects, version_info=KUBE_VERSION,
                                 server_address=f"{self.host}:{self.port}")
        app = web.Application(client_max_size=MAX_BODY + 64 * 1024)
        app.router.add_route("*", "/{tail:.*}", self.handlers.dispatch)
        # handler_cancellation: a watch whose client went away is cancelled at once instead
        # of lingering until its next write.
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False,
                                     shutdown_timeout=0.25, handler_cancellation=True)
        await self._runner.setup()
        site = web.SockSite(self._runner, sock)
        await site.start()
        await self.bootstrap()
        log.info("API server listening on %s", self.url)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self.cache is not None:
            await self.cache.stop()
        if self.store is not None:
            await self.store.close()

    async def bootstrap(self) -> None:
        """Objects every cluster has; created only when missing, so restarts keep edits."""
        ns_r = registry.core("namespaces")
        for ns in SYSTEM_NAMESPACES:
            await self._ensure(ns_r, None, {"apiVersion": "v1", "kind": "Namespace",
                                            "metadata": {"name": ns}})
        svc = {"apiVersion": "v1", "kind": "Service",
               "metadata": {"name": "kubernetes", "namespace": "default",
                            "labels": {"component": "apiserver", "provider": "kubernetes"}},
               "spec": {"clusterIP": str(self.service_ips.net.network_address + 1),
                        "ports": [{"name": "https", "port": 443, "protocol": "TCP",
                                   "targetPort": self.port}],
                        "sessionAffinity": "None", "type": "ClusterIP"}}
        await self._ensure(registry.core("services"), "default", svc)
        # the cluster DNS's Service, at its conventional address when that is still free (a
        # cluster made before k1s had DNS may have handed 10.96.0.10 to a user's Service)
        from k1s.dns.service import kube_dns_service
        try:
            await self._ensure(registry.core("services"), "kube-system", kube_dns_service())
        except StatusError as e:
            if e.code != 422:
                raise
            await self._ensure(registry.core("services"), "kube-system", kube_dns_service(None))
        if self.default_storage_class:
            await self._ensure(registry.get("storageclasses.storage.k8s.io"), None,
                               STANDARD_STORAGE_CLASS)

    async def _ensure(self, r, namespace, obj) -> None:
        assert self.objects is not None
        name = obj["metadata"]["name"]
        if self.objects.cache.for_resource(r).entries.get(r.key(namespace, name)):
            return
        try:
            opts = WriteOptions(field_manager="kube-apiserver")
            await self.objects.create(r, namespace, self.objects.decode_body(r, obj, opts), opts)
        except StatusError as e:
            if e.code != 409:
                raise


async def run_forever(server: APIServer, stop: asyncio.Event) -> None:
    await server.start()
    try:
        await stop.wait()
    finally:
        await server.stop()
