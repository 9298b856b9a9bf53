"""HTTP handlers: the Kubernetes REST surface on top of the object store.

One dispatcher routes every path (aiohttp's router would only add a layer): discovery, version
and health, OpenAPI, then resource requests (`/api/v1/...`, `/apis/<group>/<version>/...`),
whose verb comes from the method and the path (get/list/watch/create/update/patch/delete/
deletecollection) and whose subresource (status, scale, binding, finalize) picks the strategy.

Responses are plain JSON or meta.k8s.io Tables, chosen from the Accept header. Every error is a
Status; nothing raises through to aiohttp (no 500 with a traceback to the user).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import orjson
import yaml
from aiohttp import web

from ..api import registry, schema
from ..api.errors import StatusError, bad_request, invalid, invalid_error, method_not_allowed, \
    not_found_error, path_not_found, unsupported_media_type
from ..api.registry import Resource
from . import discovery, eventconv, openapi, request as rq, streams, watch as watchmod
from .objects import ListOptions, ObjectStore, WriteOptions
from .watchcache import Entry

log = logging.getLogger(__name__)

MAX_BODY = 3 * 1024 * 1024

try:
    _YAML_LOADER = yaml.CSafeLoader
except AttributeError:  # pragma: no cover
    _YAML_LOADER = yaml.SafeLoader

PATCH_TYPES = {
    "application/json-patch+json": "json",
    "application/merge-patch+json": "merge",
    "application/strategic-merge-patch+json": "strategic",
    "application/apply-patch+yaml": "apply",
    "application/apply-patch+cbor": None,
}


def json_response(body: bytes, status: int = 200, content_type: str = "application/json",
                  warnings: list[str] | None = None) -> web.Response:
    headers = None
    if warnings:
        headers = [("Warning", f'299 - {orjson.dumps(w).decode()}') for w in warnings]
    resp = web.Response(body=body, status=status, content_type=None, headers=headers)
    resp.headers["Content-Type"] = content_type
    return resp


def status_response(err: StatusError) -> web.Response:
    return json_response(orjson.dumps(err.status()), err.code)


def _success_status(r: Resource, name: str, uid: str | None) -> bytes:
    details: dict[str, Any] = {"name": name, "kind": r.plural}
    if r.group:
        details["group"] = r.group
    if uid:
        details["uid"] = uid
    return orjson.dumps({"kind": "Status", "apiVersion": "v1", "metadata": {},
                         "status": "Success", "details": details})


class Handlers:
    def __init__(self, objects: ObjectStore, *, version_info: dict, server_address: str,
                 health: dict[str, Any] | None = None):
        self.objects = objects
        self.version_info = orjson.dumps(version_info)
        self.server_address = server_address
        self.extra_health = health or {}

    # --------------------------------------------------------------------------- dispatch
    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        try:
            return await self._dispatch(request)
        except StatusError as e:
            return status_response(e)
        except web.HTTPRequestEntityTooLarge:
            return status_response(StatusError(413, "RequestEntityTooLarge",
                                               "Request entity too large: limit is 3145728"))
        except (ConnectionResetError, asyncio_cancelled()):
            raise
        except Exception as e:  # never a traceback to the user
            log.exception("internal error serving %s %s", request.method, request.path)
            return status_response(StatusError(500, "InternalError",
                                               f"Internal error occurred: {type(e).__name__}"))

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        if len(path) > 1 and path.endswith("/"):
            path = path.rstrip("/")
        method = request.method
        if path.startswith("/api/") or path.startswith("/apis/"):
            info = rq.parse_path(path)
            if info is not None:
                return await self.resource(request, info)
        if method not in ("GET", "HEAD"):
            raise method_not_allowed()
        if path == "/version":
            return json_response(self.version_info)
        if path in ("/healthz", "/livez", "/readyz") or path.startswith(("/healthz/",
                                                                           "/livez/",
                                                                           "/readyz/")):
            return web.Response(text="ok", content_type="text/plain")
        if path == "/api":
            return self._discovery(request, core=True)
        if path == "/apis":
            return self._discovery(request, core=False)
        parts = path.strip("/").split("/")
        if parts[0] == "api" and len(parts) == 2:
            body = discovery.legacy_resource_list("", parts[1])
            if body is not None:
                return json_response(body)
        if parts[0] == "apis" and len(parts) == 2:
            body = discovery.legacy_group(parts[1])
            if body is not None:
                return json_response(body)
        if parts[0] == "apis" and len(parts) == 3:
            body = discovery.legacy_resource_list(parts[1], parts[2])
            if body is not None:
                return json_response(body)
        if path == "/openapi/v3":
            return json_response(openapi.index())
        if path.startswith("/openapi/v3/"):
            key = path[len("/openapi/v3/"):]
            ps = key.split("/")
            doc = None
            if ps[0] == "api" and len(ps) == 2:
                doc = openapi.document("", ps[1])
            elif ps[0] == "apis" and len(ps) == 3:
                doc = openapi.document(ps[1], ps[2])
            if doc is not None:
                return json_response(doc[0])
        raise path_not_found()

    def _discovery(self, request: web.Request, core: bool) -> web.Response:
        v = discovery.wants_aggregated(request.headers.get("Accept"))
        if v is not None:
            return json_response(discovery.aggregated(core, v),
                                 content_type=discovery.aggregated_content_type(v))
        if core:
            return json_response(discovery.legacy_api_versions(self.server_address))
        return json_response(discovery.legacy_group_list())

    # --------------------------------------------------------------------------- resources
    async def resource(self, request: web.Request, info: rq.RequestInfo) -> web.StreamResponse:
        r, ns, name, sub = info.resource, info.namespace, info.name, info.subresource
        if r.namespaced and ns is None and r.plural == "namespaces":
            ns = None
        m = request.method
        if sub in streams.SUBRESOURCES and r.group == "" and r.plural == "pods" \
                and name is not None and ns is not None:
            # exec, attach, portforward and log are relayed to the pod's node
            return await streams.handle_pod_stream(request, self.objects, r, ns, name, sub)
        if m in ("GET", "HEAD"):
            if name is None:
                if rq.parse_bool(request.query.get("watch"), "watch"):
                    return await self.watch(request, r, ns)
                return await self.list(request, r, ns)
            if sub is None or sub == "status":
                return await self.get(request, r, ns, name)
            if sub == "scale":
                return await self.get_scale(request, r, ns, name)
            raise method_not_allowed()
        if m == "POST":
            if name is None:
                return await self.create(request, r, ns)
            if sub == "binding":
                return await self.bind(request, r, ns, name)
            raise method_not_allowed()
        if m == "PUT" and name is not None:
            if sub == "scale":
                return await self.put_scale(request, r, ns, name)
            if sub in (None, "status", "finalize"):
                return await self.update(request, r, ns, name, sub)
            raise method_not_allowed()
        if m == "PATCH" and name is not None:
            if sub in (None, "status", "scale"):
                return await self.patch(request, r, ns, name, sub)
            raise method_not_allowed()
        if m == "DELETE":
            if name is None:
                return await self.delete_collection(request, r, ns)
            if sub is None:
                return await self.delete(request, r, ns, name)
        raise method_not_allowed()

    # ------------------------------------------------------------------------------ helpers
    @staticmethod
    def _write_options(request: web.Request) -> WriteOptions:
        q = request.query
        fv = q.get("fieldValidation") or "Warn"
        if fv not in ("Strict", "Warn", "Ignore"):
            raise bad_request(f"fieldValidation must be one of Ignore, Warn, Strict, got {fv}")
        dry = q.getall("dryRun", [])
        for d in dry:
            if d != "All":
                raise bad_request(f'Invalid dryRun value: "{d}" (supported values: "All")')
        return WriteOptions(field_manager=q.get("fieldManager", ""), field_validation=fv,
                            dry_run=bool(dry), force=rq.parse_bool(q.get("force"), "force"),
                            user_agent=request.headers.get("User-Agent", ""))

    async def _read_body(self, request: web.Request, *, allow_yaml: bool = True) -> Any:
        if request.content_length is not None and request.content_length > MAX_BODY:
            raise StatusError(413, "RequestEntityTooLarge",
                              "Request entity too large: limit is 3145728")
        raw = await request.read()
        if len(raw) > MAX_BODY:
            raise StatusError(413, "RequestEntityTooLarge",
                              "Request entity too large: limit is 3145728")
        # a request without Content-Type is JSON, as upstream assumes (kubectl's scale client
        # sends none); aiohttp would report application/octet-stream
        ctype = request.content_type.lower() if "Content-Type" in request.headers \
            else "application/json"
        return parse_body(raw, ctype, allow_yaml)

    def _render(self, request: web.Request, r: Resource, view: Resource, entries: list[Entry],
                *, single: bool, revision: int, cont: str | None = None,
                remaining: int | None = None) -> web.Response:
        as_, tv = rq.negotiate_output(request.headers.get("Accept"))
        if as_ == rq.AS_TABLE:
            from ..api import tables
            include = request.query.get("includeObject", "Metadata")
            objs = [self._view_obj(r, view, e) for e in entries]
            table = tables.build_table(view, objs, time.time(), include, str(revision), cont,
                                       with_columns=True, remaining_item_count=remaining)
            table["apiVersion"] = f"meta.k8s.io/{tv}"
            return json_response(orjson.dumps(table))
        if as_ == rq.AS_PARTIAL:
            items = [{"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                      "metadata": self._view_obj(r, view, e).get("metadata", {})}
                     for e in entries]
            if single:
                return json_response(orjson.dumps(items[0]))
            return json_response(orjson.dumps({
                "kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1",
                "metadata": _list_meta(revision, cont, remaining), "items": items}))
        if single:
            return json_response(self._view_raw(r, view, entries[0]))
        head = orjson.dumps({"kind": view.kind + "List", "apiVersion": view.api_version,
                             "metadata": _list_meta(revision, cont, remaining)})
        body = head[:-1] + b',"items":[' + b",".join(self._view_raw(r, view, e)
                                                    for e in entries) + b"]}"
        return json_response(body)

    @staticmethod
    def _view_obj(r: Resource, view: Resource, e: Entry) -> dict:
        return eventconv.to_view(view, e.obj) if view is not r else e.obj

    @staticmethod
    def _view_raw(r: Resource, view: Resource, e: Entry) -> bytes:
        return orjson.dumps(eventconv.to_view(view, e.obj)) if view is not r else e.raw

    def _decode_to_storage(self, r: Resource, sr: Resource, obj: Any, opts: WriteOptions
                           ) -> dict:
        """Decode a written object in the schema of the resource it was sent to, then as the
        stored resource (they differ only for events.k8s.io Events)."""
        if r is not sr:
            self.objects.decode_body(r, obj, opts)
            obj = eventconv.from_view(r, obj)
        return self.objects.decode_body(sr, obj, opts)

    @staticmethod
    def _storage(r: Resource) -> Resource:
        return registry.storage_resource(r)

    def _list_options(self, request: web.Request, r: Resource) -> ListOptions:
        from ..api import fields as fieldsel, selectors
        q = request.query
        ls = fs = None
        try:
            if q.get("labelSelector"):
                ls = selectors.parse_label_selector(q["labelSelector"])
            if q.get("fieldSelector"):
                fs = fieldsel.parse_field_selector(q["fieldSelector"])
                fs = fieldsel.check_supported(r, fs)
        except ValueError as e:
            raise bad_request(str(e))
        limit = rq.parse_int(q.get("limit"), "limit") or 0
        match = q.get("resourceVersionMatch") or None
        if match not in (None, "Exact", "NotOlderThan"):
            raise bad_request(f'resourceVersionMatch: Unsupported value: "{match}": supported '
                              f'values: "Exact", "NotOlderThan"')
        watch_list = rq.parse_bool(q.get("watch"), "watch") and \
            rq.parse_bool(q.get("sendInitialEvents"), "sendInitialEvents")
        if match and not q.get("resourceVersion") and not watch_list:
            raise invalid_error("ListOptions", "meta.k8s.io", "", [
                invalid("resourceVersionMatch", match,
                        "resourceVersionMatch is forbidden unless resourceVersion is provided")])
        return ListOptions(label_selector=ls, field_selector=fs, limit=max(limit, 0),
                           continue_token=q.get("continue") or None,
                           resource_version=q.get("resourceVersion"),
                           resource_version_match=match)

    # --------------------------------------------------------------------------------- read
    async def get(self, request: web.Request, r: Resource, ns: str | None, name: str
                  ) -> web.Response:
        sr = self._storage(r)
        rv = request.query.get("resourceVersion")
        if rv and rv != "0":
            e = await self.objects.get_at(sr, ns, name, int(rv) if rv.isdigit() else -1)
        else:
            e = await self.objects.get(sr, ns, name)
        return self._render(request, sr, r, [e], single=True, revision=e.revision)

    async def list(self, request: web.Request, r: Resource, ns: str | None) -> web.Response:
        sr = self._storage(r)
        opts = self._list_options(request, r)
        res = await self.objects.list(sr, ns, opts)
        return self._render(request, sr, r, res.entries, single=False, revision=res.revision,
                            cont=res.continue_token, remaining=res.remaining)

    async def watch(self, request: web.Request, r: Resource, ns: str | None
                    ) -> web.StreamResponse:
        sr = self._storage(r)
        opts = self._list_options(request, r)
        q = request.query
        as_, tv = rq.negotiate_output(request.headers.get("Accept"))
        render = None
        if as_ == rq.AS_TABLE:
            from ..api import tables
            include = q.get("includeObject", "Metadata")
            first = [True]

            def render(type_: str, e: Entry) -> bytes:
                obj = eventconv.to_view(r, e.obj) if r is not sr else e.obj
                t = tables.build_table(r, [obj], time.time(), include,
                                       obj["metadata"].get("resourceVersion", ""), None,
                                       with_columns=first[0])
                first[0] = False
                t["apiVersion"] = f"meta.k8s.io/{tv}"
                return orjson.dumps(t)
        elif r is not sr:
            def render(type_: str, e: Entry) -> bytes:
                return orjson.dumps(eventconv.to_view(r, e.obj))

        def matches(obj: dict) -> bool:
            return self.objects._matches(sr, obj, opts)

        timeout = rq.parse_int(q.get("timeoutSeconds"), "timeoutSeconds")
        spec = watchmod.WatchSpec(
            resource=sr, namespace=ns, matches=matches, resource_version=q.get(
                "resourceVersion"), timeout=float(timeout) if timeout else None,
            bookmarks=rq.parse_bool(q.get("allowWatchBookmarks"), "allowWatchBookmarks"),
            send_initial_events=rq.parse_bool(q.get("sendInitialEvents"), "sendInitialEvents"),
            render=render)
        if r is not sr:
            spec.resource = sr
        return await watchmod.serve(request, spec, self.objects)

    # -------------------------------------------------------------------------------- write
    async def create(self, request: web.Request, r: Resource, ns: str | None) -> web.Response:
        sr = self._storage(r)
        opts = self._write_options(request)
        obj = self._decode_to_storage(r, sr, await self._read_body(request), opts)
        e = await self.objects.create(sr, ns, obj, opts)
        return json_response(self._view_raw(sr, r, e), 201, warnings=opts.warnings)

    async def update(self, request: web.Request, r: Resource, ns: str | None, name: str,
                     sub: str | None) -> web.Response:
        sr = self._storage(r)
        opts = self._write_options(request)
        obj = self._decode_to_storage(r, sr, await self._read_body(request), opts)

        async def create_missing():
            if sub is not None:
                raise not_found_error(r.plural, r.group, name)
            obj.setdefault("metadata", {})["name"] = name
            obj["metadata"].pop("resourceVersion", None)
            return await self.objects.create(sr, ns, obj, opts)

        # Upstream creates on PUT for kinds that allow it (most do, with AllowCreateOnUpdate);
        # k1s allows it where upstream does: none of the served kinds except events/leases/
        # endpoints. Keep it narrow.
        allow_create = sr.plural in ("events", "leases", "endpoints") and sub is None
        e, created = await self.objects.update(
            sr, ns, name, lambda _cur: _copy_json(obj), opts, subresource=sub,
            create_missing=create_missing if allow_create else None, replace=True)
        return json_response(self._view_raw(sr, r, e), 201 if created else 200,
                             warnings=opts.warnings)

    async def patch(self, request: web.Request, r: Resource, ns: str | None, name: str,
                    sub: str | None) -> web.Response:
        from . import patching as patchmod
        sr = self._storage(r)
        opts = self._write_options(request)
        ctype = (request.content_type or "").lower()
        ptype = PATCH_TYPES.get(ctype)
        if ptype is None:
            raise unsupported_media_type(ctype)
        raw = await request.read()
        if len(raw) > MAX_BODY:
            raise StatusError(413, "RequestEntityTooLarge",
                              "Request entity too large: limit is 3145728")
        try:
            if ptype == "apply":
                body = yaml.load(raw.decode(), Loader=_YAML_LOADER) if raw else None
            else:
                body = orjson.loads(raw)
        except Exception as e:
            raise bad_request(f"error decoding patch: {e}")
        if ptype == "json" and not isinstance(body, list):
            raise bad_request("json: cannot unmarshal object into Go value of type "
                              "jsonpatch.Patch")
        if ptype != "json" and not isinstance(body, dict):
            raise bad_request("error decoding patch: the patch must be a JSON object")
        if sub == "scale":
            return await self._patch_scale(r, ns, name, body, ptype, opts)
        schema_name = schema.name_for_kind(r.group, r.version, r.kind) or ""
        manager = opts.field_manager
        # Only a resourceVersion the patch itself names is a precondition; otherwise the
        # patched object merely carries the version it was computed from, and a write that
        # loses the race is re-applied to the newer object (upstream's GuaranteedUpdate).
        names_rv = _patch_names_resource_version(ptype, body)

        def mutate(cur: dict) -> dict:
            # cur is the object store's private copy: patched in place
            cur_rv = cur["metadata"].get("resourceVersion")
            view = eventconv.to_view(r, cur) if r is not sr else cur
            if ptype == "apply":
                if not manager:
                    raise bad_request("PATCH, application/apply-patch+yaml requests must have "
                                      "a fieldManager query parameter")
                new = patchmod.server_side_apply(view, body, schema_name, manager, opts.force,
                                                 sub)
            else:
                new = patchmod.apply_patch(ptype, view, body, schema_name, owned=True)
            new = self._decode_to_storage(r, sr, new, opts)
            md = new.get("metadata")
            if not names_rv and isinstance(md, dict) and \
                    md.get("resourceVersion") == cur_rv:
                del md["resourceVersion"]
            return new

        async def create_missing():
            if ptype != "apply" or sub is not None:
                raise not_found_error(r.plural, r.group, name)
            if not manager:
                raise bad_request("PATCH, application/apply-patch+yaml requests must have a "
                                  "fieldManager query parameter")
            obj = patchmod.server_side_apply(None, body, schema_name, manager, opts.force, None)
            obj.setdefault("metadata", {})["name"] = name
            obj = self._decode_to_storage(r, sr, obj, opts)
            return await self.objects.create(sr, ns, obj, opts)

        e, created = await self.objects.update(sr, ns, name, mutate, opts, subresource=sub,
                                               create_missing=create_missing)
        return json_response(self._view_raw(sr, r, e), 201 if created else 200,
                             warnings=opts.warnings)

    async def delete(self, request: web.Request, r: Resource, ns: str | None, name: str
                     ) -> web.Response:
        sr = self._storage(r)
        opts = self._write_options(request)
        options = await self._delete_options(request)
        obj, deleted = await self.objects.delete(sr, ns, name, options, opts)
        if deleted and (sr.group, sr.plural) not in _RETURNS_OBJECT:
            uid = (obj.get("metadata") or {}).get("uid")
            return json_response(_success_status(r, name, uid))
        out = eventconv.to_view(r, obj) if r is not sr else obj
        return json_response(orjson.dumps(out))

    async def _delete_options(self, request: web.Request) -> dict:
        q = request.query
        options: dict[str, Any] = {}
        raw = await request.read() if request.can_read_body else b""
        if raw.strip():
            try:
                body = orjson.loads(raw)
            except orjson.JSONDecodeError as e:
                raise bad_request(f"error decoding DeleteOptions: {e}")
            if not isinstance(body, dict):
                raise bad_request("DeleteOptions must be a JSON object")
            options.update(body)
        if q.get("gracePeriodSeconds") is not None:
            options["gracePeriodSeconds"] = rq.parse_int(q["gracePeriodSeconds"],
                                                         "gracePeriodSeconds")
        if q.get("propagationPolicy"):
            options["propagationPolicy"] = q["propagationPolicy"]
        if q.get("orphanDependents") is not None:
            options["orphanDependents"] = rq.parse_bool(q["orphanDependents"],
                                                        "orphanDependents")
        g = options.get("gracePeriodSeconds")
        if g is not None and not isinstance(g, int):
            raise bad_request("gracePeriodSeconds must be an integer")
        return options

    async def delete_collection(self, request: web.Request, r: Resource, ns: str | None
                                ) -> web.Response:
        sr = self._storage(r)
        opts = self._write_options(request)
        lopts = self._list_options(request, r)
        lopts.limit = 0
        options = await self._delete_options(request)
        res = await self.objects.list(sr, ns, lopts)
        items = []
        for e in res.entries:
            md = e.obj["metadata"]
            try:
                obj, _ = await self.objects.delete(sr, md.get("namespace"), md["name"],
                                                   options, opts)
                items.append(eventconv.to_view(r, obj) if r is not sr else obj)
            except StatusError as err:
                if err.code != 404:
                    raise
        return json_response(orjson.dumps({
            "kind": r.kind + "List", "apiVersion": r.api_version,
            "metadata": {"resourceVersion": str(self.objects.cache.revision)},
            "items": items}))

    # ------------------------------------------------------------------------- subresources
    def _scale_of(self, sts: dict) -> dict:
        from ..api import selectors
        md = sts["metadata"]
        sel = (sts.get("spec") or {}).get("selector")
        return {"kind": "Scale", "apiVersion": "autoscaling/v1",
                "metadata": {"name": md["name"], "namespace": md.get("namespace"),
                             "uid": md.get("uid"), "resourceVersion": md.get("resourceVersion"),
                             "creationTimestamp": md.get("creationTimestamp")},
                "spec": {"replicas": (sts.get("spec") or {}).get("replicas", 0)},
                "status": {"replicas": (sts.get("status") or {}).get("replicas", 0),
                           "selector": str(selectors.selector_from_label_selector(sel))
                           if sel else ""}}

    async def get_scale(self, request: web.Request, r: Resource, ns: str | None, name: str
                        ) -> web.Response:
        e = await self.objects.get(r, ns, name)
        return json_response(orjson.dumps(self._scale_of(e.obj)))

    def _apply_scale(self, r: Resource, name: str, cur: dict, scale: Any,
                     check_rv: bool) -> dict:
        if not isinstance(scale, dict):
            raise bad_request("the object provided is unrecognized (must be of type Scale)")
        spec = scale.get("spec") or {}
        replicas = spec.get("replicas", 0)
        if not isinstance(replicas, int) or isinstance(replicas, bool):
            raise bad_request("Scale in version \"v1\" cannot be handled as a Scale: json: "
                              "cannot unmarshal into Go struct field ScaleSpec.spec.replicas of "
                              "type int32")
        if replicas < 0:
            raise invalid_error("Scale", "autoscaling", name, [invalid(
                "spec.replicas", replicas, "must be greater than or equal to 0")])
        want_rv = (scale.get("metadata") or {}).get("resourceVersion")
        if check_rv and want_rv:
            cur["metadata"]["resourceVersion"] = want_rv
        else:
            cur["metadata"].pop("resourceVersion", None)
        cur.setdefault("spec", {})["replicas"] = replicas
        return cur

    async def put_scale(self, request: web.Request, r: Resource, ns: str | None, name: str
                        ) -> web.Response:
        opts = self._write_options(request)
        body = await self._read_body(request)
        e, _ = await self.objects.update(
            r, ns, name, lambda cur: self._apply_scale(r, name, cur, body, True), opts,
            subresource="scale")
        return json_response(orjson.dumps(self._scale_of(e.obj)))

    async def _patch_scale(self, r: Resource, ns: str | None, name: str, body: Any, ptype: str,
                           opts: WriteOptions) -> web.Response:
        from . import patching as patchmod
        names_rv = _patch_names_resource_version(ptype, body)

        def mutate(cur: dict) -> dict:
            scale = self._scale_of(cur)
            if ptype == "apply":
                new_scale = patchmod.server_side_apply(
                    scale, body, "io.k8s.api.autoscaling.v1.Scale", opts.field_manager or "",
                    opts.force, "scale")
            else:
                new_scale = patchmod.apply_patch(ptype, scale, body,
                                                 "io.k8s.api.autoscaling.v1.Scale")
            return self._apply_scale(r, name, cur, new_scale, names_rv)

        e, _ = await self.objects.update(r, ns, name, mutate, opts, subresource="scale")
        return json_response(orjson.dumps(self._scale_of(e.obj)))

    async def bind(self, request: web.Request, r: Resource, ns: str | None, name: str
                   ) -> web.Response:
        opts = self._write_options(request)
        body = await self._read_body(request)
        if not isinstance(body, dict):
            raise bad_request("the object provided is unrecognized (must be of type Binding)")
        target = body.get("target") or {}
        node = target.get("name")
        if not node:
            raise invalid_error("Binding", "", name, [
                invalid("target.name", node or "", "must be a node name")])

        def mutate(cur: dict) -> dict:
            md = cur["metadata"]
            if md.get("deletionTimestamp"):
                raise StatusError(409, "Conflict", f'Operation cannot be fulfilled on '
                                  f'pods/binding "{name}": pod {name} is being deleted, cannot '
                                  f'be assigned to a host')
            spec = cur.setdefault("spec", {})
            if spec.get("nodeName"):
                raise StatusError(409, "Conflict", f'Operation cannot be fulfilled on '
                                  f'pods/binding "{name}": pod {name} is already assigned to '
                                  f'node "{spec["nodeName"]}"')
            spec["nodeName"] = node
            status = cur.setdefault("status", {})
            conds = [c for c in status.get("conditions") or [] if c.get("type") != "PodScheduled"]
            from .meta import now_rfc3339
            conds.append({"type": "PodScheduled", "status": "True", "lastProbeTime": None,
                          "lastTransitionTime": now_rfc3339()})
            status["conditions"] = conds
            md.pop("resourceVersion", None)
            return cur

        await self.objects.update(r, ns, name, mutate, opts, subresource="binding")
        return json_response(orjson.dumps({"kind": "Status", "apiVersion": "v1", "metadata": {},
                                           "status": "Success", "code": 201}), 201)


_RETURNS_OBJECT = {("", "pods"), ("", "services"), ("", "namespaces")}


def _list_meta(revision: int, cont: str | None, remaining: int | None) -> dict:
    md: dict[str, Any] = {"resourceVersion": str(revision)}
    if cont:
        md["continue"] = cont
        if remaining is not None:
            md["remainingItemCount"] = remaining
    return md


def _patch_names_resource_version(ptype: str, body: Any) -> bool:
    """Does the patch set metadata.resourceVersion itself (making it a precondition)?"""
    if ptype == "json":
        return any(isinstance(op, dict) and op.get("path") in (
            "/metadata/resourceVersion", "/metadata") and op.get("op") in (
                "add", "replace", "copy", "move") for op in body)
    md = body.get("metadata") if isinstance(body, dict) else None
    return isinstance(md, dict) and md.get("resourceVersion") is not None


def _copy_json(obj: dict) -> dict:
    return orjson.loads(orjson.dumps(obj))


def parse_body(raw: bytes, ctype: str, allow_yaml: bool = True) -> Any:
    """A request body as a JSON value: JSON, or YAML for application/yaml."""
    if not raw.strip():
        raise bad_request("the body of the request is empty")
    if ctype == "application/vnd.kubernetes.protobuf":
        # kubectl's typed generators (create namespace, configmap, secret, ...) send protobuf
        from . import protobuf
        return protobuf.decode_body(raw)
    if "yaml" in ctype and allow_yaml:
        try:
            return yaml.load(raw.decode(), Loader=_YAML_LOADER)
        except Exception as e:
            raise bad_request(f"error converting YAML to JSON: {e}")
    if ctype not in ("application/json", "", "*/*", "text/plain") and "json" not in ctype:
        raise StatusError(415, "UnsupportedMediaType",
                          'the body of the request was in an unknown format - accepted media '
                          'types include: application/json, application/yaml, '
                          'application/vnd.kubernetes.protobuf, application/cbor')
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise bad_request(f"couldn't get version/kind; json parse error: {e}")


def asyncio_cancelled():
    import asyncio
    return asyncio.CancelledError
