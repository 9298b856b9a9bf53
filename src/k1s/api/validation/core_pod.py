"""Pod, PodSpec, PodTemplateSpec and container validation, and the pod update rules.

Mirrors core's ValidatePodCreate/ValidatePodSpec/ValidatePodUpdate/ValidatePodStatusUpdate for
the fields k1s runs: volumes, containers and init containers (names, images, ports, env,
mounts, probes, lifecycle, resources, security context), restart and DNS policies, scheduling
fields, tolerations and affinity. A spec change other than images, activeDeadlineSeconds,
added tolerations and removed scheduling gates gives upstream's `spec: Forbidden: pod updates
may not change fields other than ...` followed by a short diff.
"""

from __future__ import annotations

import copy
from typing import Any

from k1s.api import errors as E
from k1s.api.validation import formats as F
from k1s.api.validation import meta as M
from k1s.api.validation.common import (Errs, child, d, dns1123_label, dns1123_subdomain, index,
                                       key, lst, nonnegative, num, optional_one_of,
                                       parse_quantity, port_number, qualified_name, s, spec_diff,
                                       validate_labels)
from k1s.api.validation.storage import validate_node_selector
from k1s.api.validation.volumes import (local_descending_path, path_no_backsteps,
                                        validate_pod_volume_source)

PROTOCOLS = ("SCTP", "TCP", "UDP")
PULL_POLICIES = ("Always", "IfNotPresent", "Never")
RESTART_POLICIES = ("Always", "OnFailure", "Never")
DNS_POLICIES = ("ClusterFirstWithHostNet", "ClusterFirst", "Default", "None")
TERMINATION_MESSAGE_POLICIES = ("File", "FallbackToLogsOnError")


def validate_protocol(proto: str, path: str) -> Errs:
    """A port's protocol: required, and one of PROTOCOLS."""
    if not proto:
        return [E.required(path)]
    if proto not in PROTOCOLS:
        return [E.unsupported(path, proto, PROTOCOLS)]
    return []
HTTP_SCHEMES = ("HTTP", "HTTPS")
MOUNT_PROPAGATIONS = ("Bidirectional", "HostToContainer", "None")
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")

ENV_FIELD_PATHS = {"metadata.name", "metadata.namespace", "metadata.uid", "spec.nodeName",
                   "spec.serviceAccountName", "status.hostIP", "status.hostIPs", "status.podIP",
                   "status.podIPs"}
CONTAINER_RESOURCE_PATHS = {"limits.cpu", "limits.memory", "limits.ephemeral-storage",
                            "requests.cpu", "requests.memory", "requests.ephemeral-storage"}

# Resource names a container may use without a domain prefix.
_STANDARD_RESOURCES = {"cpu", "memory", "ephemeral-storage", "storage", "requests.cpu",
                       "requests.memory", "requests.ephemeral-storage", "requests.storage",
                       "limits.cpu", "limits.memory", "limits.ephemeral-storage", "pods",
                       "services", "replicationcontrollers", "resourcequotas", "secrets",
                       "persistentvolumeclaims", "configmaps", "services.nodeports",
                       "services.loadbalancers"}
_STANDARD_CONTAINER_RESOURCES = {"cpu", "memory", "ephemeral-storage"}

UPDATABLE_POD_FIELDS = ("`spec.containers[*].image`", "`spec.initContainers[*].image`",
                        "`spec.activeDeadlineSeconds`",
                        "`spec.tolerations` (only additions to existing tolerations)",
                        "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was "
                        "previously negative)")


# env and downward API --------------------------------------------------------------------
def _relaxed_env_name(name: str) -> list[str]:
    # RelaxedEnvironmentVariableValidation is GA: any printable ASCII but '='.
    if any(ord(c) > 126 or ord(c) < 32 or c == "=" for c in name):
        return ["a valid environment variable name must consist only of printable ASCII "
                "characters other than '='"]
    return []


def validate_object_field_selector(fs: dict, allowed: set[str], path: str) -> Errs:
    if not s(fs.get("apiVersion")):
        return [E.required(child(path, "apiVersion"))]
    fp = s(fs.get("fieldPath"))
    if not fp:
        return [E.required(child(path, "fieldPath"))]
    if s(fs.get("apiVersion")) != "v1":
        return [E.invalid(child(path, "fieldPath"), fp, "error converting fieldPath: "
                          f"unsupported version: {s(fs.get('apiVersion'))}")]
    if "[" in fp and fp.endswith("]"):
        base, _, sub = fp[:-1].partition("[")
        sub = sub.strip("'\"")
        if base == "metadata.annotations":
            return qualified_name(sub.lower(), path)
        if base == "metadata.labels":
            return qualified_name(sub, path)
        return [E.invalid(path, base, "does not support subscript")]
    if fp not in allowed:
        return [E.unsupported(child(path, "fieldPath"), fp, sorted(allowed))]
    return []


def validate_resource_field_selector(fs: dict, allowed: set[str], path: str,
                                     volume: bool) -> Errs:
    errs: Errs = []
    res = s(fs.get("resource"))
    if volume and not s(fs.get("containerName")):
        errs.append(E.required(child(path, "containerName")))
    elif not res:
        errs.append(E.required(child(path, "resource")))
    elif res not in allowed and not res.startswith(("requests.hugepages-", "limits.hugepages-")):
        errs.append(E.unsupported(child(path, "resource"), res, sorted(allowed)))
    return errs


def validate_env(env: list, path: str) -> Errs:
    errs: Errs = []
    for i, ev in enumerate(env):
        ev = d(ev)
        ip = index(path, i)
        name = s(ev.get("name"))
        if not name:
            errs.append(E.required(child(ip, "name")))
        else:
            errs += [E.invalid(child(ip, "name"), name, m) for m in _relaxed_env_name(name)]
        vf = ev.get("valueFrom")
        if vf is None:
            continue
        vf, vp = d(vf), child(ip, "valueFrom")
        n = 0
        if vf.get("fieldRef") is not None:
            n += 1
            errs += validate_object_field_selector(d(vf.get("fieldRef")), ENV_FIELD_PATHS,
                                                   child(vp, "fieldRef"))
        if vf.get("resourceFieldRef") is not None:
            n += 1
            errs += validate_resource_field_selector(d(vf.get("resourceFieldRef")),
                                                     CONTAINER_RESOURCE_PATHS,
                                                     child(vp, "resourceFieldRef"), False)
        for ref in ("configMapKeyRef", "secretKeyRef"):
            if vf.get(ref) is not None:
                n += 1
                errs += _key_selector(d(vf.get(ref)), child(vp, ref))
        if n == 0:
            errs.append(E.invalid(vp, "", "must specify one of: `fieldRef`, `resourceFieldRef`, "
                                  "`configMapKeyRef` or `secretKeyRef`"))
        elif s(ev.get("value")):
            errs.append(E.invalid(vp, "", "may not be specified when `value` is not empty"))
        elif n > 1:
            errs.append(E.invalid(vp, "", "may not have more than one field specified at a time"))
    return errs


def _key_selector(sel: dict, path: str) -> Errs:
    errs = [E.invalid(child(path, "name"), s(sel.get("name")), m)
            for m in F.name_is_dns_subdomain(s(sel.get("name")))]
    k = s(sel.get("key"))
    if not k:
        errs.append(E.required(child(path, "key")))
    else:
        errs += [E.invalid(child(path, "key"), k, m) for m in F.is_config_map_key(k)]
    return errs


def validate_env_from(items: list, path: str) -> Errs:
    errs: Errs = []
    for i, ev in enumerate(items):
        ev, ip = d(ev), index(path, i)
        prefix = s(ev.get("prefix"))
        if prefix:
            errs += [E.invalid(child(ip, "prefix"), prefix, m) for m in _relaxed_env_name(prefix)]
        n = 0
        for ref in ("configMapRef", "secretRef"):
            if ev.get(ref) is not None:
                n += 1
                name = s(d(ev.get(ref)).get("name"))
                if not name:
                    errs.append(E.required(child(ip, ref, "name")))
                else:
                    errs += [E.invalid(child(ip, ref, "name"), name, m)
                             for m in F.name_is_dns_subdomain(name, True)]
        if n == 0:
            errs.append(E.invalid(path, "", "must specify one of: `configMapRef` or `secretRef`"))
        elif n > 1:
            errs.append(E.invalid(path, "", "may not have more than one field specified at a time"))
    return errs


# ports, probes, handlers -----------------------------------------------------------------
def validate_container_ports(ports: list, path: str) -> Errs:
    errs: Errs = []
    names: set[str] = set()
    for i, port in enumerate(ports):
        port, ip = d(port), index(path, i)
        name = s(port.get("name"))
        if name:
            msgs = F.is_valid_port_name(name)
            if msgs:
                errs += [E.invalid(child(ip, "name"), name, m) for m in msgs]
            elif name in names:
                errs.append(E.duplicate(child(ip, "name"), name))
            else:
                names.add(name)
        cp = num(port.get("containerPort"))
        if cp == 0:
            errs.append(E.required(child(ip, "containerPort")))
        else:
            errs += port_number(cp, child(ip, "containerPort"))
        hp = num(port.get("hostPort"))
        if hp:
            errs += port_number(hp, child(ip, "hostPort"))
        errs += validate_protocol(s(port.get("protocol")), child(ip, "protocol"))
    return errs


def validate_port_num_or_name(port: Any, path: str) -> Errs:
    if isinstance(port, bool) or port is None:
        return [E.invalid(path, port, F.inclusive_range_error(1, 65535))]
    if isinstance(port, int):
        return port_number(port, path)
    return [E.invalid(path, s(port), m) for m in F.is_valid_port_name(s(port))]


def _handler(h: dict, grace: Any, path: str, kinds: tuple[str, ...]) -> Errs:
    errs: Errs = []
    n = 0
    for kind in kinds:
        if h.get(kind) is None:
            continue
        if n > 0:
            errs.append(E.forbidden(child(path, kind), "may not specify more than 1 handler type"))
            continue
        n += 1
        v, kp = d(h.get(kind)), child(path, kind)
        if kind == "exec":
            if not lst(v.get("command")):
                errs.append(E.required(child(kp, "command")))
        elif kind == "httpGet":
            if not s(v.get("path")):
                errs.append(E.required(child(kp, "path")))
            errs += validate_port_num_or_name(v.get("port"), child(kp, "port"))
            scheme = s(v.get("scheme"))
            if scheme not in HTTP_SCHEMES:
                errs.append(E.unsupported(child(kp, "scheme"), scheme, HTTP_SCHEMES))
            for hdr in lst(v.get("httpHeaders")):
                hn = s(d(hdr).get("name"))
                errs += [E.invalid(child(kp, "httpHeaders"), hn, m)
                         for m in F.is_http_header_name(hn)]
        elif kind == "tcpSocket":
            errs += validate_port_num_or_name(v.get("port"), child(kp, "port"))
        elif kind == "grpc":
            errs += validate_port_num_or_name(num(v.get("port")), child(kp, "port"))
        elif kind == "sleep":
            secs = num(v.get("seconds"))
            if grace is not None and (secs < 0 or secs > num(grace)):
                errs.append(E.invalid(kp, secs, "must be non-negative and less than "
                                      f"terminationGracePeriodSeconds ({num(grace)})"))
    if n == 0:
        errs.append(E.required(path, "must specify a handler type"))
    return errs


def _probe(probe: Any, grace: Any, path: str, kind: str) -> Errs:
    if probe is None:
        return []
    probe = d(probe)
    errs = _handler(probe, grace, path, ("exec", "httpGet", "tcpSocket", "grpc"))
    for f in ("initialDelaySeconds", "timeoutSeconds", "periodSeconds", "successThreshold",
              "failureThreshold"):
        errs += nonnegative(probe.get(f, 0), child(path, f))
    tgp = probe.get("terminationGracePeriodSeconds")
    if tgp is not None and num(tgp) <= 0:
        errs.append(E.invalid(child(path, "terminationGracePeriodSeconds"), num(tgp),
                              "must be greater than 0"))
    if kind in ("liveness", "startup") and num(probe.get("successThreshold", 1)) != 1:
        errs.append(E.invalid(child(path, "successThreshold"), num(probe.get("successThreshold")),
                              "must be 1"))
    if kind == "readiness" and tgp is not None:
        errs.append(E.invalid(child(path, "terminationGracePeriodSeconds"), tgp,
                              "must not be set for readinessProbes"))
    return errs


def _lifecycle(lc: dict, grace: Any, path: str) -> Errs:
    errs: Errs = []
    for hook in ("postStart", "preStop"):
        if lc.get(hook) is not None:
            errs += _handler(d(lc.get(hook)), grace, child(path, hook),
                             ("exec", "httpGet", "tcpSocket", "sleep"))
    return errs


# resources -------------------------------------------------------------------------------
def _is_native(name: str) -> bool:
    return "/" not in name or name.split("/", 1)[0].endswith("kubernetes.io")


def _is_extended(name: str) -> bool:
    return not _is_native(name) and not name.startswith("requests.") and \
        not F.is_qualified_name("requests." + name)


def _overcommit_allowed(name: str) -> bool:
    return _is_native(name) and not name.startswith("hugepages-")


def _container_resource_name(name: str, path: str) -> Errs:
    errs = [E.invalid(path, name, m) for m in F.is_qualified_name(name)]
    if errs:
        return errs
    if "/" not in name:
        if name not in _STANDARD_RESOURCES and not name.startswith("hugepages-"):
            errs.append(E.invalid(path, name, "must be a standard resource type or fully "
                                  "qualified"))
        if name not in _STANDARD_CONTAINER_RESOURCES and not name.startswith("hugepages-"):
            errs.append(E.invalid(path, name, "must be a standard resource for containers"))
    elif not _is_native(name) and not _is_extended(name):
        errs.append(E.invalid(path, name, "doesn't follow extended resource name standard"))
    return errs


class _StringerInvalid(E.FieldError):
    """Invalid value printed through Go's Stringer (a Quantity): unquoted."""

    def body(self) -> str:
        return f"{self.kind[1]}: {self.value}: {self.detail}"


def validate_resource_requirements(res: dict, path: str) -> Errs:
    errs: Errs = []
    lp, rp = child(path, "limits"), child(path, "requests")
    limits, requests = d(res.get("limits")), d(res.get("requests"))
    parsed: dict[tuple[str, str], Any] = {}
    for section, sp, items in (("limits", lp, limits), ("requests", rp, requests)):
        for name, raw in items.items():
            fp = key(sp, name)
            errs += _container_resource_name(name, fp)
            try:
                q = parse_quantity(raw)
            except (ValueError, TypeError, ArithmeticError) as exc:
                errs.append(E.invalid(fp, raw, str(exc)))
                continue
            parsed[(section, name)] = q
            if q < 0:
                errs.append(E.invalid(fp, str(raw), "must be greater than or equal to 0"))
            if _is_extended(name) and q != int(q):
                errs.append(_StringerInvalid(E.INVALID, fp, str(raw), "must be an integer"))
    for name, raw in requests.items():
        q = parsed.get(("requests", name))
        if q is None:
            continue
        if name in limits:
            lq = parsed.get(("limits", name))
            if lq is None:
                continue
            if q != lq and not _overcommit_allowed(name):
                errs.append(E.invalid(rp, str(raw), f"must be equal to {name} limit of "
                                      f"{limits[name]}"))
            elif q > lq:
                errs.append(E.invalid(rp, str(raw), f"must be less than or equal to {name} "
                                      f"limit of {limits[name]}"))
        elif not _overcommit_allowed(name):
            errs.append(E.required(lp, "Limit must be set for non overcommitable resources"))
    return errs


# containers ------------------------------------------------------------------------------
def _volume_mounts(ctr: dict, volumes: dict[str, dict], path: str) -> Errs:
    errs: Errs = []
    devices = {s(d(x).get("name")): s(d(x).get("devicePath")) for x in lst(ctr.get("volumeDevices"))}
    seen: set[str] = set()
    privileged = d(ctr.get("securityContext")).get("privileged") is True
    for i, m in enumerate(lst(ctr.get("volumeMounts"))):
        m, ip = d(m), index(path, i)
        name, mp = s(m.get("name")), s(m.get("mountPath"))
        if not name:
            errs.append(E.required(child(ip, "name")))
        if name not in volumes:
            errs.append(E.not_found(child(ip, "name"), name))
        if not mp:
            errs.append(E.required(child(ip, "mountPath")))
        if mp in seen:
            errs.append(E.invalid(child(ip, "mountPath"), mp, "must be unique"))
        seen.add(mp)
        if name in devices:
            errs.append(E.invalid(child(ip, "name"), name, "must not already exist in "
                                  "volumeDevices"))
        if mp in devices.values():
            errs.append(E.invalid(child(ip, "mountPath"), mp, "must not already exist as a path "
                                  "in volumeDevices"))
        sub, subx = s(m.get("subPath")), s(m.get("subPathExpr"))
        if sub:
            errs += local_descending_path(sub, child(path, "subPath"))
        if subx:
            if sub:
                errs.append(E.invalid(child(ip, "subPathExpr"), subx,
                                      "subPathExpr and subPath are mutually exclusive"))
            errs += local_descending_path(subx, child(path, "subPathExpr"))
        prop = m.get("mountPropagation")
        if prop is not None:
            pp = child(path, "mountPropagation")
            if prop not in MOUNT_PROPAGATIONS:
                errs.append(E.unsupported(pp, prop, MOUNT_PROPAGATIONS))
            if prop == "Bidirectional" and not privileged:
                errs.append(E.forbidden(pp, "Bidirectional mount propagation is available only "
                                        "to privileged containers"))
    return errs


def _volume_devices(ctr: dict, volumes: dict[str, dict], path: str) -> Errs:
    errs: Errs = []
    mounts = {s(d(x).get("name")): s(d(x).get("mountPath")) for x in lst(ctr.get("volumeMounts"))}
    names: set[str] = set()
    paths: set[str] = set()
    for i, dev in enumerate(lst(ctr.get("volumeDevices"))):
        dev, ip = d(dev), index(path, i)
        name, dp = s(dev.get("name")), s(dev.get("devicePath"))
        if not name:
            errs.append(E.required(child(ip, "name")))
        if name in names:
            errs.append(E.invalid(child(ip, "name"), name, "must be unique"))
        src = volumes.get(name)
        if src is not None and src.get("persistentVolumeClaim") is None and \
                src.get("ephemeral") is None:
            errs.append(E.invalid(child(ip, "name"), name, "can only use volume source type of "
                                  "PersistentVolumeClaim or Ephemeral for block mode"))
        if src is None:
            errs.append(E.not_found(child(ip, "name"), name))
        if not dp:
            errs.append(E.required(child(ip, "devicePath")))
        if dp in paths:
            errs.append(E.invalid(child(ip, "devicePath"), dp, "must be unique"))
        if dp and path_no_backsteps(dp, ""):
            errs.append(E.invalid(child(ip, "devicePath"), dp, "can not contain backsteps ('..')"))
        else:
            paths.add(dp)
        if name in mounts:
            errs.append(E.invalid(child(ip, "name"), name, "must not already exist in "
                                  "volumeMounts"))
        if dp in mounts.values():
            errs.append(E.invalid(child(ip, "devicePath"), dp, "must not already exist as a path "
                                  "in volumeMounts"))
        if name:
            names.add(name)
    return errs


def _security_context(sc: Any, path: str) -> Errs:
    if sc is None:
        return []
    sc = d(sc)
    errs: Errs = []
    for f in ("runAsUser", "runAsGroup"):
        if sc.get(f) is not None and not 0 <= num(sc.get(f), -1) <= 0xFFFFFFFF:
            errs.append(E.invalid(child(path, f), num(sc.get(f), -1),
                                  F.inclusive_range_error(0, 4294967295)))
    if sc.get("allowPrivilegeEscalation") is False and sc.get("privileged") is True:
        errs.append(E.invalid(path, sc, "cannot set `allowPrivilegeEscalation` to false and "
                              "`privileged` to true"))
    return errs


def _container_common(ctr: dict, volumes: dict[str, dict], path: str) -> Errs:
    errs: Errs = []
    name = s(ctr.get("name"))
    if not name:
        errs.append(E.required(child(path, "name")))
    else:
        errs += dns1123_label(name, child(path, "name"))
    if not s(ctr.get("image")):
        errs.append(E.required(child(path, "image")))
    tmp = s(ctr.get("terminationMessagePolicy"))
    if not tmp:
        errs.append(E.required(child(path, "terminationMessagePolicy")))
    elif tmp not in TERMINATION_MESSAGE_POLICIES:
        errs.append(E.unsupported(child(path, "terminationMessagePolicy"), tmp,
                                  TERMINATION_MESSAGE_POLICIES))
    errs += validate_container_ports(lst(ctr.get("ports")), child(path, "ports"))
    errs += validate_env(lst(ctr.get("env")), child(path, "env"))
    errs += validate_env_from(lst(ctr.get("envFrom")), child(path, "envFrom"))
    errs += _volume_mounts(ctr, volumes, child(path, "volumeMounts"))
    errs += _volume_devices(ctr, volumes, child(path, "volumeDevices"))
    pol = s(ctr.get("imagePullPolicy"))
    if not pol:
        errs.append(E.required(child(path, "imagePullPolicy")))
    elif pol not in PULL_POLICIES:
        errs.append(E.unsupported(child(path, "imagePullPolicy"), pol, PULL_POLICIES))
    errs += validate_resource_requirements(d(ctr.get("resources")), child(path, "resources"))
    errs += _security_context(ctr.get("securityContext"), child(path, "securityContext"))
    return errs


def _host_port_conflicts(containers: list, path: str) -> Errs:
    errs: Errs = []
    seen: set[str] = set()
    for ci, ctr in enumerate(containers):
        for pi, port in enumerate(lst(d(ctr).get("ports"))):
            port = d(port)
            hp = num(port.get("hostPort"))
            if not hp:
                continue
            k = f"{s(port.get('protocol'))}/{s(port.get('hostIP'))}/{hp}"
            if k in seen:
                errs.append(E.duplicate(child(index(child(index(path, ci), "ports"), pi),
                                              "hostPort"), k))
            seen.add(k)
    return errs


def validate_containers(containers: list, volumes: dict[str, dict], grace: Any,
                        path: str) -> Errs:
    if not containers:
        return [E.required(path)]
    errs: Errs = []
    names: set[str] = set()
    for i, ctr in enumerate(containers):
        ctr, ip = d(ctr), index(path, i)
        errs += _container_common(ctr, volumes, ip)
        name = s(ctr.get("name"))
        if name in names:
            errs.append(E.duplicate(child(ip, "name"), name))
        names.add(name)
        if ctr.get("lifecycle") is not None:
            errs += _lifecycle(d(ctr.get("lifecycle")), grace, child(ip, "lifecycle"))
        errs += _probe(ctr.get("livenessProbe"), grace, child(ip, "livenessProbe"), "liveness")
        errs += _probe(ctr.get("readinessProbe"), grace, child(ip, "readinessProbe"), "readiness")
        errs += _probe(ctr.get("startupProbe"), grace, child(ip, "startupProbe"), "startup")
        if ctr.get("restartPolicy") is not None:
            errs.append(E.forbidden(child(ip, "restartPolicy"),
                                    "may not be set for non-init containers"))
    return errs + _host_port_conflicts(containers, path)


def validate_init_containers(inits: list, regular: list, volumes: dict[str, dict], grace: Any,
                             path: str) -> Errs:
    errs: Errs = []
    names = {s(d(c).get("name")) for c in regular}
    for i, ctr in enumerate(inits):
        ctr, ip = d(ctr), index(path, i)
        errs += _container_common(ctr, volumes, ip)
        rp = ctr.get("restartPolicy")
        always = rp == "Always"
        if rp is not None and rp != "Always":
            errs.append(E.unsupported(child(ip, "restartPolicy"), rp, ["Always"]))
        name = s(ctr.get("name"))
        if name in names:
            errs.append(E.duplicate(child(ip, "name"), name))
        elif name:
            names.add(name)
        errs += _host_port_conflicts([ctr], path)
        if always:
            if ctr.get("lifecycle") is not None:
                errs += _lifecycle(d(ctr.get("lifecycle")), grace, child(ip, "lifecycle"))
            errs += _probe(ctr.get("livenessProbe"), grace, child(ip, "livenessProbe"), "liveness")
            errs += _probe(ctr.get("readinessProbe"), grace, child(ip, "readinessProbe"),
                           "readiness")
            errs += _probe(ctr.get("startupProbe"), grace, child(ip, "startupProbe"), "startup")
        else:
            for f in ("lifecycle", "livenessProbe", "readinessProbe", "startupProbe"):
                if ctr.get(f) is not None:
                    errs.append(E.forbidden(child(ip, f), "may not be set for init containers "
                                            "without restartPolicy=Always"))
    return errs


# pod spec --------------------------------------------------------------------------------
def validate_volumes(volumes: list, path: str) -> tuple[dict[str, dict], Errs]:
    errs: Errs = []
    good: dict[str, dict] = {}
    for i, vol in enumerate(volumes):
        vol, ip = d(vol), index(path, i)
        el = validate_pod_volume_source(vol, ip)
        name = s(vol.get("name"))
        if not name:
            el.append(E.required(child(ip, "name")))
        else:
            el += dns1123_label(name, child(ip, "name"))
        if name in good:
            el.append(E.duplicate(child(ip, "name"), name))
        if el:
            errs += el
        else:
            good[name] = vol
    return good, errs


def validate_tolerations(tols: list, path: str) -> Errs:
    errs: Errs = []
    for i, t in enumerate(tols):
        t, ip = d(t), index(path, i)
        k, op, v, eff = s(t.get("key")), s(t.get("operator")), s(t.get("value")), s(t.get("effect"))
        if k:
            errs += qualified_name(k, child(ip, "key"))
        if not k and op != "Exists":
            errs.append(E.invalid(child(ip, "operator"), op, "operator must be Exists when "
                                  "`key` is empty, which means \"match all values and all keys\""))
        if t.get("tolerationSeconds") is not None and eff != "NoExecute":
            errs.append(E.invalid(child(ip, "effect"), eff, "effect must be 'NoExecute' when "
                                  "`tolerationSeconds` is set"))
        if op in ("Equal", ""):
            msgs = F.is_label_value(v)
            if msgs:
                errs.append(E.invalid(child(ip, "operator"), v, ";".join(msgs)))
        elif op == "Exists":
            if v:
                errs.append(E.invalid(child(ip, "operator"), v, "value must be empty when "
                                      "`operator` is 'Exists'"))
        else:
            errs.append(E.unsupported(child(ip, "operator"), op, ["Equal", "Exists"]))
        if eff and eff not in TAINT_EFFECTS:
            errs.append(E.unsupported(child(ip, "effect"), eff, TAINT_EFFECTS))
    return errs


def validate_pod_spec(spec: dict, path: str = "spec", is_pod: bool = True) -> Errs:
    errs: Errs = []
    if spec.get("terminationGracePeriodSeconds") is None:
        errs.append(E.required(child(path, "terminationGracePeriodSeconds")))
    grace = spec.get("terminationGracePeriodSeconds")
    volumes, verrs = validate_volumes(lst(spec.get("volumes")), child(path, "volumes"))
    errs += verrs
    containers = lst(spec.get("containers"))
    errs += validate_containers(containers, volumes, grace, child(path, "containers"))
    errs += validate_init_containers(lst(spec.get("initContainers")), containers, volumes, grace,
                                     child(path, "initContainers"))
    if spec.get("hostNetwork") is True:
        for i, ctr in enumerate(containers):
            for j, port in enumerate(lst(d(ctr).get("ports"))):
                hp, cp = num(d(port).get("hostPort")), num(d(port).get("containerPort"))
                if (is_pod or hp != 0) and hp != cp:
                    errs.append(E.invalid(child(index(child(index(child(path, "containers"), i),
                                                            "ports"), j), "hostPort"), hp,
                                          "must match `containerPort` when `hostNetwork` is true"))
    rp = s(spec.get("restartPolicy"))
    if not rp:
        errs.append(E.required(child(path, "restartPolicy")))
    elif rp not in RESTART_POLICIES:
        errs.append(E.unsupported(child(path, "restartPolicy"), rp, RESTART_POLICIES))
    dp = s(spec.get("dnsPolicy"))
    if not dp:
        errs.append(E.required(child(path, "dnsPolicy")))
    elif dp not in DNS_POLICIES:
        errs.append(E.unsupported(child(path, "dnsPolicy"), dp, DNS_POLICIES))
    errs += validate_labels(spec.get("nodeSelector"), child(path, "nodeSelector"))
    aff = d(d(spec.get("affinity")).get("nodeAffinity"))
    req = aff.get("requiredDuringSchedulingIgnoredDuringExecution")
    if req is not None:
        errs += validate_node_selector(d(req), child(path, "affinity", "nodeAffinity",
                                                     "requiredDuringSchedulingIgnoredDuringExecution"))
    errs += _dns_config(spec, child(path, "dnsConfig"))
    for i, g in enumerate(lst(spec.get("readinessGates"))):
        errs += qualified_name(s(d(g).get("conditionType")),
                               child(index(child(path, "readinessGates"), i), "conditionType"))
    sa = s(spec.get("serviceAccountName"))
    if sa:
        errs += [E.invalid(child(path, "serviceAccountName"), sa, m)
                 for m in F.name_is_dns_subdomain(sa)]
    node = s(spec.get("nodeName"))
    if node:
        errs += [E.invalid(child(path, "nodeName"), node, m) for m in F.name_is_dns_subdomain(node)]
    ads = spec.get("activeDeadlineSeconds")
    if ads is not None and not 1 <= num(ads) <= 2147483647:
        errs.append(E.invalid(child(path, "activeDeadlineSeconds"), num(ads),
                              F.inclusive_range_error(1, 2147483647)))
    if s(spec.get("hostname")):
        errs += dns1123_label(s(spec.get("hostname")), child(path, "hostname"))
    if s(spec.get("subdomain")):
        errs += dns1123_label(s(spec.get("subdomain")), child(path, "subdomain"))
    errs += validate_tolerations(lst(spec.get("tolerations")), child(path, "tolerations"))
    for i, ha in enumerate(lst(spec.get("hostAliases"))):
        hp = index(child(path, "hostAliases"), i)
        errs += [E.invalid(child(hp, "ip"), s(d(ha).get("ip")), m)
                 for m in F.is_valid_ip(s(d(ha).get("ip")))]
        for j, hn in enumerate(lst(d(ha).get("hostnames"))):
            errs += dns1123_subdomain(s(hn), index(child(hp, "hostnames"), j))
    pcn = s(spec.get("priorityClassName"))
    if pcn:
        errs += [E.invalid(child(path, "priorityClassName"), pcn, m)
                 for m in F.name_is_dns_subdomain(pcn)]
    pp = spec.get("preemptionPolicy")
    errs += optional_one_of(pp, ("PreemptLowerPriority", "Never"), child(path, "preemptionPolicy"))
    os_ = spec.get("os")
    if os_ is not None:
        name = s(d(os_).get("name"))
        if not name:
            errs.append(E.required(child(path, "os", "name"), "cannot be empty"))
        elif name not in ("linux", "windows"):
            errs.append(E.unsupported(child(path, "os"), name, ["linux", "windows"]))
    errs += _security_context(spec.get("securityContext"), child(path, "securityContext"))
    return errs


def _dns_config(spec: dict, path: str) -> Errs:
    cfg = spec.get("dnsConfig")
    errs: Errs = []
    if s(spec.get("dnsPolicy")) == "None":
        if cfg is None:
            return [E.required(path, "must provide `dnsConfig` when `dnsPolicy` is None")]
        if not lst(d(cfg).get("nameservers")):
            return [E.required(child(path, "nameservers"), "must provide at least one DNS "
                               "nameserver when `dnsPolicy` is None")]
    if cfg is None:
        return errs
    cfg = d(cfg)
    ns = lst(cfg.get("nameservers"))
    if len(ns) > 3:
        errs.append(E.invalid(child(path, "nameservers"), ns, "must not have more than 3 "
                              "nameservers"))
    for i, n in enumerate(ns):
        errs += [E.invalid(index(child(path, "nameservers"), i), s(n), m)
                 for m in F.is_valid_ip(s(n))]
    searches = [s(x) for x in lst(cfg.get("searches"))]
    if len(searches) > 32:
        errs.append(E.invalid(child(path, "searches"), searches, "must not have more than 32 "
                              "search paths"))
    if len(" ".join(searches)) > 2048:
        errs.append(E.invalid(child(path, "searches"), searches, "must not have more than 2048 "
                              "characters (including spaces) in the search list"))
    for i, sx in enumerate(searches):
        if sx != ".":
            sx = sx[:-1] if sx.endswith(".") else sx
            errs += [E.invalid(index(child(path, "searches"), i), sx, m)
                     for m in F.is_dns1123_subdomain(sx.replace("_", "a"))]
    for i, o in enumerate(lst(cfg.get("options"))):
        if not s(d(o).get("name")):
            errs.append(E.required(index(child(path, "options"), i), "must not be empty"))
    return errs


def _pod_only(spec: dict, path: str) -> Errs:
    errs: Errs = []
    for field in ("containers", "initContainers"):
        for i, ctr in enumerate(lst(spec.get(field))):
            img = s(d(ctr).get("image"))
            if img != img.strip():
                errs.append(E.invalid(child(index(child(path, field), i), "image"), img,
                                      "must not have leading or trailing whitespace"))
    if not s(spec.get("serviceAccountName")):
        for vi, vol in enumerate(lst(spec.get("volumes"))):
            proj = d(vol).get("projected")
            for si, src in enumerate(lst(d(proj).get("sources"))):
                if d(src).get("serviceAccountToken") is not None:
                    errs.append(E.forbidden(
                        child(index(child(index(child(path, "volumes"), vi), "projected",
                                          "sources"), si), "serviceAccountToken"),
                        "must not be specified when serviceAccountName is not set"))
    return errs


def validate_pod(obj: dict) -> Errs:
    meta = d(obj.get("metadata"))
    errs = M.validate_object_meta(meta, True, F.name_is_dns_subdomain)
    ann = d(meta.get("annotations"))
    mirror = "kubernetes.io/config.mirror"
    spec = d(obj.get("spec"))
    if mirror in ann and not s(spec.get("nodeName")):
        errs.append(E.invalid(key(child("metadata", "annotations"), mirror), ann[mirror],
                              "must set spec.nodeName if mirror pod annotation is set"))
    errs += validate_pod_spec(spec, "spec", True)
    return errs + _pod_only(spec, "spec")


def validate_pod_template_spec(tmpl: dict, path: str) -> Errs:
    meta = d(tmpl.get("metadata"))
    mp = child(path, "metadata")
    errs = validate_labels(meta.get("labels"), child(mp, "labels"))
    errs += M.validate_annotations(meta.get("annotations"), child(mp, "annotations"))
    spec = d(tmpl.get("spec"))
    errs += validate_pod_spec(spec, child(path, "spec"), False)
    if lst(spec.get("ephemeralContainers")):
        errs.append(E.forbidden(child(path, "spec", "ephemeralContainers"),
                                "ephemeral containers not allowed in pod template"))
    return errs


# update ----------------------------------------------------------------------------------
def _norm(v: Any) -> Any:
    if isinstance(v, dict):
        out = {k: _norm(x) for k, x in v.items()}
        return {k: x for k, x in out.items() if x not in (None, {}, [])}
    if isinstance(v, list):
        return [_norm(x) for x in v]
    return v


def validate_pod_update(new: dict, old: dict) -> Errs:
    errs = M.validate_object_meta_update(new.get("metadata"), old.get("metadata"))
    errs += validate_pod(new)
    ns, os_ = d(new.get("spec")), d(old.get("spec"))
    for field in ("containers", "initContainers"):
        nc, oc = lst(ns.get(field)), lst(os_.get(field))
        if len(nc) != len(oc):
            errs.append(E.forbidden(child("spec", field), "pod updates may not add or remove "
                                    "containers"))
            return errs
        for i, c in enumerate(nc):
            img = s(d(c).get("image"))
            if not img:
                errs.append(E.required(child(index(child("spec", field), i), "image")))
    nads, oads = ns.get("activeDeadlineSeconds"), os_.get("activeDeadlineSeconds")
    if nads is not None:
        if not 0 <= num(nads) <= 2147483647:
            errs.append(E.invalid(child("spec", "activeDeadlineSeconds"), num(nads),
                                  F.inclusive_range_error(0, 2147483647)))
            return errs
        if oads is not None and num(oads) < num(nads):
            errs.append(E.invalid(child("spec", "activeDeadlineSeconds"), num(nads),
                                  "must be less than or equal to previous value"))
            return errs
    elif oads is not None:
        errs.append(E.invalid(child("spec", "activeDeadlineSeconds"), None,
                              "must not update from a positive integer to nil value"))
    # tolerations: existing ones may only change tolerationSeconds
    ntol = [d(t) for t in lst(ns.get("tolerations"))]
    for old_t in lst(os_.get("tolerations")):
        old_t = d(old_t)
        found = any({**old_t, "tolerationSeconds": t.get("tolerationSeconds")} ==
                    {**t, "tolerationSeconds": t.get("tolerationSeconds")} for t in ntol)
        if not found:
            errs.append(E.forbidden(child("spec", "tolerations"), "existing toleration can not "
                                    "be modified except its tolerationSeconds"))
            break
    old_gates = {s(d(g).get("name")) for g in lst(os_.get("schedulingGates"))}
    for i, g in enumerate(lst(ns.get("schedulingGates"))):
        name = s(d(g).get("name"))
        if name not in old_gates:
            errs.append(E.forbidden(child(index(child("spec", "schedulingGates"), i), "name"),
                                    "only deletion is allowed, but found new scheduling gate "
                                    f"'{name}'"))
    if _norm(ns) == _norm(os_):
        return errs
    munged = copy.deepcopy(ns)
    for field in ("containers", "initContainers"):
        for c, oc in zip(lst(munged.get(field)), lst(os_.get(field))):
            if isinstance(c, dict):
                c["image"] = d(oc).get("image")
    for field in ("activeDeadlineSeconds", "schedulingGates", "tolerations"):
        if field in os_:
            munged[field] = os_[field]
        else:
            munged.pop(field, None)
    if num(os_.get("terminationGracePeriodSeconds"), 0) < 0 and \
            munged.get("terminationGracePeriodSeconds") == 1:
        munged["terminationGracePeriodSeconds"] = os_.get("terminationGracePeriodSeconds")
    if old_gates:
        # gated pods may gain nodeSelector entries and node affinity
        munged["nodeSelector"] = os_.get("nodeSelector")
        if "affinity" in os_ or "affinity" in munged:
            aff = dict(d(munged.get("affinity")))
            aff["nodeAffinity"] = d(os_.get("affinity")).get("nodeAffinity")
            munged["affinity"] = aff
    if _norm(munged) != _norm(os_):
        diff = "\n".join(spec_diff(_norm(os_), _norm(munged)))
        errs.append(E.forbidden("spec", "pod updates may not change fields other than "
                                + ",".join(UPDATABLE_POD_FIELDS) + "\n" + diff))
    return errs


def validate_pod_status_update(new: dict, old: dict) -> Errs:
    errs = M.validate_object_meta_update(new.get("metadata"), old.get("metadata"))
    status = d(new.get("status"))
    for i, c in enumerate(lst(status.get("conditions"))):
        t = s(d(c).get("type"))
        if t not in ("PodScheduled", "Ready", "Initialized"):
            errs += qualified_name(t, child(index(child("metadata", "conditions"), i), "Type"))
    if s(d(new.get("spec")).get("nodeName")) != s(d(old.get("spec")).get("nodeName")):
        errs.append(E.forbidden(child("status", "nodeName"), "may not be changed directly"))
    nnn = s(status.get("nominatedNodeName"))
    if nnn and nnn != s(d(old.get("status")).get("nominatedNodeName")):
        errs += [E.invalid(child("status", "nominatedNodeName"), nnn, m)
                 for m in F.name_is_dns_subdomain(nnn)]
    oq, nq = d(old.get("status")).get("qosClass"), status.get("qosClass")
    if oq and nq != oq:
        errs.append(E.invalid(child("status", "qosClass"), nq, "field is immutable"))
    for field in ("podIPs", "hostIPs"):
        ips = [s(d(x).get("ip")) for x in lst(status.get(field))]
        for i, ip in enumerate(ips):
            errs += [E.invalid(index(child("status", field), i), ip, m) for m in F.is_valid_ip(ip)]
        seen: set[str] = set()
        for i, ip in enumerate(ips):
            if ip in seen:
                errs.append(E.duplicate(index(child("status", field), i), {"ip": ip}))
            seen.add(ip)
    hips = lst(status.get("hostIPs"))
    if hips and s(status.get("hostIP")) != s(d(hips[0]).get("ip")):
        errs.append(E.invalid(child(index(child("status", "hostIPs"), 0), "ip"),
                              s(d(hips[0]).get("ip")), "must be equal to `hostIP`"))
    rp = s(d(old.get("spec")).get("restartPolicy"))
    if rp != "Always":
        for field in ("containerStatuses", "initContainerStatuses"):
            new_by_name = {s(d(c).get("name")): d(c) for c in lst(status.get(field))}
            for i, oc in enumerate(lst(d(old.get("status")).get(field))):
                term = d(d(oc).get("state")).get("terminated")
                if term is None:
                    continue
                if num(d(term).get("exitCode")) != 0 and rp == "OnFailure":
                    continue
                nc = new_by_name.get(s(d(oc).get("name")))
                if nc is not None and d(nc.get("state")).get("terminated") is None:
                    errs.append(E.forbidden(child(index(child("status", field), i), "state"),
                                            "may not be transitioned to non-terminated state"))
    return errs
