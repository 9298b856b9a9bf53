"""A container's environment and its expanded command and args, as kubelet builds them: pure
functions, no I/O.

The objects a container's env reads (ConfigMaps, Secrets) come through `lookup(kind,
namespace, name) -> dict | None`, answered from what the caller fetched (`references` says
which). Upstream's rules (kubelet's makeEnvironmentVariables, its expansion package and
ExpandContainerCommandAndArgs), reduced to what a node here needs:

- `envFrom` first, in order, then `env`, in order; a later definition of a name wins.
  Service variables (FOO_SERVICE_HOST ...; the caller decides which, per enableServiceLinks)
  have the lowest precedence: they are visible to `$(VAR)` expansion and fill in only the
  names the container does not define.
- `envFrom`: configMapRef reads `data` (binaryData is ignored), secretRef reads `data`
  (base64-decoded); `prefix` is prepended; a key that is no valid variable name is skipped.
  A missing object fails the container unless the reference is `optional`.
- `env[].value` is expanded against the variables defined before it, then the service ones:
  `$(VAR)` becomes its value, an undefined `$(VAR)` stays as written, `$$` is one `$`.
  An empty value is not expanded and, with `valueFrom`, means "read the source".
- `valueFrom`: fieldRef (metadata.*, spec.nodeName/serviceAccountName, status.hostIP(s) and
  podIP(s)), resourceFieldRef (an unset or zero limit means the pod-level limit, else the
  node's allocatable; the value is rounded up to whole divisors), configMapKeyRef and
  secretKeyRef (`optional`: a missing object or key defines no variable).
- Any failure is a ConfigError carrying kubelet's message: the container is not started and
  waits with reason CreateContainerConfigError.

Valid variable names are upstream's relaxed ones (RelaxedEnvironmentVariableValidation, GA in
1.34): non-empty printable ASCII without `=`. A value holding a NUL byte cannot be passed to a
process: refused here with a message, instead of failing later inside the runtime.
"""

from __future__ import annotations

import base64
import binascii
from decimal import ROUND_CEILING, Decimal, localcontext
from typing import Callable, Iterable, Mapping

from k1s.api.quantity import parse_quantity
from k1s.node.podvolumes.planner import Invalid, field_value

Lookup = Callable[[str, str, str], "dict | None"]    # (kind, namespace, name) -> object

MAX_INT64 = (1 << 63) - 1
# resources a resourceFieldRef may name besides hugepages-<size>
DOWNWARD_RESOURCES = ("cpu", "memory", "ephemeral-storage")
# resources an unset container limit falls back on (kubelet's MergeContainerResourceLimits)
DEFAULTED_LIMITS = ("cpu", "memory", "ephemeral-storage")
# pod-level limits (spec.resources) stand in for the node's allocatable for these
POD_LEVEL = ("cpu", "memory")
# field paths the downward API offers to env (ConvertDownwardAPIFieldLabel); those not
# answered below reach the metadata extractor, which refuses them as upstream's does
FIELD_LABELS = frozenset({
    "metadata.annotations", "metadata.labels", "metadata.name", "metadata.namespace",
    "metadata.uid", "spec.nodeName", "spec.restartPolicy", "spec.serviceAccountName",
    "spec.schedulerName", "status.phase", "status.hostIP", "status.hostIPs", "status.podIP",
    "status.podIPs"})


class ConfigError(Exception):
    """kubelet's CreateContainerConfigError: str(e) is the message it reports."""
    reason = "CreateContainerConfigError"


# -- expansion --------------------------------------------------------------------------------
def expand(text: str, *contexts: Mapping[str, str]) -> str:
    """`$(VAR)` replaced by the first context defining VAR (left as written when none does);
    `$$` is a literal `$`; a `$` before anything else, or a `$(` never closed, is kept.
    A name runs to the first `)`: `$($(A)` names the variable `$(A`."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c != "$" or i + 1 == n:
            out.append(c)
            i += 1
            continue
        nxt = text[i + 1]
        if nxt == "$":
            out.append("$")
            i += 2
        elif nxt == "(":
            end = text.find(")", i + 2)
            if end == -1:
                out.append("$(")
                i += 2
                continue
            name = text[i + 2:end]
            out.append(_resolve(name, contexts))
            i = end + 1
        else:
            out.append("$" + nxt)
            i += 2
    return "".join(out)


def _resolve(name: str, contexts: Iterable[Mapping[str, str]]) -> str:
    for ctx in contexts:
        if name in ctx:
            return ctx[name]
    return f"$({name})"


def expand_command(container: dict, env: dict[str, str]
                   ) -> tuple[list[str] | None, list[str] | None]:
    """(command, args) with $(VAR) expanded against the container's environment; None where
    the container gives none (an empty list too: the image's own entrypoint/cmd apply)."""
    def each(items) -> list[str] | None:
        if not items or not isinstance(items, list):
            return None
        return [expand(s if isinstance(s, str) else str(s), env) for s in items]
    return each(container.get("command")), each(container.get("args"))


# -- names ------------------------------------------------------------------------------------
def valid_env_name(name: object) -> bool:
    """Upstream's relaxed rule: printable ASCII but `=`, at least one character."""
    return isinstance(name, str) and name != "" and \
        all(" " <= ch <= "~" and ch != "=" for ch in name)


def references(pod: dict, container: dict) -> set[tuple[str, str, str]]:
    """(kind, namespace, name) of every ConfigMap and Secret the container's env reads: what
    the caller fetches so that `lookup` can answer."""
    ns = _namespace(pod)
    out: set[tuple[str, str, str]] = set()
    for src in _dicts(container.get("envFrom")):
        for field, kind in (("configMapRef", "ConfigMap"), ("secretRef", "Secret")):
            ref = src.get(field)
            if isinstance(ref, dict) and isinstance(ref.get("name"), str):
                out.add((kind, ns, ref["name"]))
    for var in _dicts(container.get("env")):
        vf = var.get("valueFrom")
        if var.get("value") or not isinstance(vf, dict):
            continue
        for field, kind in (("configMapKeyRef", "ConfigMap"), ("secretKeyRef", "Secret")):
            ref = vf.get(field)
            if isinstance(ref, dict) and isinstance(ref.get("name"), str):
                out.add((kind, ns, ref["name"]))
    return out


# -- the environment --------------------------------------------------------------------------
def container_env(pod: dict, container: dict, lookup: Lookup, *, pod_ip: str, host_ip: str,
                  allocatable: dict[str, str], service_env: dict[str, str] | None = None
                  ) -> dict[str, str]:
    """The container's environment, in kubelet's order (envFrom first, then env, later entries
    win; then the service variables the container does not define), values expanded.
    Raises ConfigError."""
    ns = _namespace(pod)
    services = dict(service_env or {})
    sources = _Sources(lookup, ns)
    env: dict[str, str] = {}

    for src in _dicts(container.get("envFrom")):
        if isinstance(src.get("configMapRef"), dict):
            ref, kind = src["configMapRef"], "ConfigMap"
        elif isinstance(src.get("secretRef"), dict):
            ref, kind = src["secretRef"], "Secret"
        else:
            continue
        data = sources.data(kind, _name(ref), bool(ref.get("optional")))
        if data is None:
            continue                 # optional and missing
        prefix = src.get("prefix") if isinstance(src.get("prefix"), str) else ""
        for key, value in data.items():
            name = prefix + key
            if not valid_env_name(name):
                # a name no process environment can hold; with the relaxed rule a ConfigMap
                # key always passes, the old strict one skipped e.g. `1ST` (with an event)
                continue
            env[name] = value

    for var in _dicts(container.get("env")):
        name = var.get("name")
        if not valid_env_name(name):
            raise ConfigError(f"invalid environment variable name {name!r}: must be printable "
                              f"ASCII characters other than '='")
        value = var.get("value")
        if value is not None and not isinstance(value, str):
            value = str(value)
        if value:
            value = expand(value, env, services)
        elif isinstance(var.get("valueFrom"), dict):
            value = _value_from(pod, container, var["valueFrom"], sources, pod_ip=pod_ip,
                                host_ip=host_ip, allocatable=allocatable)
            if value is None:
                continue             # an optional reference that is missing
        else:
            value = ""
        env[name] = value

    for name, value in services.items():
        if name not in env:
            env[name] = value
    for name, value in env.items():
        if "\x00" in value:
            raise ConfigError(f"environment variable {name} contains a NUL byte, which a "
                              f"process environment cannot hold")
    return env


class _Sources:
    """The ConfigMaps and Secrets of one namespace, each looked up once, decoded to str."""

    def __init__(self, lookup: Lookup, ns: str):
        self.lookup, self.ns = lookup, ns
        self.cache: dict[tuple[str, str], dict[str, str] | None] = {}

    def data(self, kind: str, name: str, optional: bool) -> dict[str, str] | None:
        """The object's data, or None when it is missing and `optional`."""
        if (kind, name) not in self.cache:
            obj = self.lookup(kind, self.ns, name)
            self.cache[(kind, name)] = None if obj is None else _decode(kind, self.ns, name, obj)
        data = self.cache[(kind, name)]
        if data is None and not optional:
            raise ConfigError(f'{"configmap" if kind == "ConfigMap" else "secret"} "{name}" '
                              f"not found")
        return data

    def key(self, kind: str, ref: dict) -> str | None:
        name, key, optional = _name(ref), ref.get("key"), bool(ref.get("optional"))
        data = self.data(kind, name, optional)
        if data is None:
            return None
        if not isinstance(key, str) or key not in data:
            if optional:
                return None
            raise ConfigError(f"couldn't find key {key if key is not None else ''} in {kind} "
                              f"{self.ns}/{name}")
        return data[key]


def _decode(kind: str, ns: str, name: str, obj: dict) -> dict[str, str]:
    raw = obj.get("data") or {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{kind} {ns}/{name}: data is not a map")
    if kind == "ConfigMap":
        return {str(k): v if isinstance(v, str) else str(v) for k, v in raw.items()}
    out = {}
    for k, v in raw.items():
        try:
            b = base64.b64decode(str(v), validate=True)
        except (binascii.Error, ValueError):
            raise ConfigError(f"Secret {ns}/{name}: value of key {k} is not valid base64") \
                from None
        # bytes that are not UTF-8 survive: os.fsencode turns them back into the same bytes
        out[str(k)] = b.decode("utf-8", "surrogateescape")
    return out


def _value_from(pod, container, vf: dict, sources: _Sources, *, pod_ip, host_ip,
                allocatable) -> str | None:
    if isinstance(vf.get("fieldRef"), dict):
        return _field(pod, vf["fieldRef"], pod_ip, host_ip)
    if isinstance(vf.get("resourceFieldRef"), dict):
        return _resource(pod, container, vf["resourceFieldRef"], allocatable)
    if isinstance(vf.get("configMapKeyRef"), dict):
        return sources.key("ConfigMap", vf["configMapKeyRef"])
    if isinstance(vf.get("secretKeyRef"), dict):
        return sources.key("Secret", vf["secretKeyRef"])
    return ""                        # no source kubelet knows: the variable is empty, as there


# -- fieldRef ---------------------------------------------------------------------------------
def _field(pod: dict, ref: dict, pod_ip: str, host_ip: str) -> str:
    version = ref.get("apiVersion") or "v1"          # the API server defaults it to v1
    if version != "v1":
        raise ConfigError(f"unsupported pod version: {version}")
    path = ref.get("fieldPath")
    if not isinstance(path, str):
        raise ConfigError(f"field label not supported: {path}")
    if path.endswith("']") and "['" in path:
        if path.split("['", 1)[0] not in ("metadata.labels", "metadata.annotations"):
            raise ConfigError(f"field label does not support subscript: {path}")
    elif path == "spec.host":                        # old clients' name for spec.nodeName
        path = "spec.nodeName"
    elif path not in FIELD_LABELS:
        raise ConfigError(f"field label not supported: {path}")
    spec = pod.get("spec") or {}
    if path == "spec.nodeName":
        return str(spec.get("nodeName") or "")
    if path == "spec.serviceAccountName":
        return str(spec.get("serviceAccountName") or "")
    if path in ("status.hostIP", "status.hostIPs"):
        return host_ip or ""
    if path in ("status.podIP", "status.podIPs"):
        return pod_ip or ""
    if path.startswith("metadata."):
        try:
            return field_value(pod, path)
        except Invalid:
            pass
    raise ConfigError(f"unsupported fieldPath: {path}")


# -- resourceFieldRef -------------------------------------------------------------------------
def _resource(pod: dict, container: dict, ref: dict, allocatable: Mapping[str, str]) -> str:
    spec = pod.get("spec") or {}
    fallback = _limit_fallback(spec, allocatable)
    cname = ref.get("containerName") or ""
    if not cname:
        target = _with_default_limits(container, fallback)
    else:
        # kubelet defaults the limits of the pod's regular containers only; an init container
        # named here is read as written
        found = [c for c in _dicts(spec.get("containers")) if c.get("name") == cname]
        if found:
            target = _with_default_limits(found[0], fallback)
        else:
            found = [c for c in _dicts(spec.get("initContainers")) if c.get("name") == cname]
            if not found:
                raise ConfigError(f"container {cname} not found")
            target = _resources(found[0])
    resource = ref.get("resource") or ""
    kind, _, rname = str(resource).partition(".")
    if kind not in ("limits", "requests") or not (
            rname in DOWNWARD_RESOURCES or rname.startswith("hugepages-")):
        raise ConfigError(f"unsupported container resource : {resource}")
    value = target[kind].get(rname)
    divisor = _quantity(ref.get("divisor") or "0", "divisor")
    if divisor == 0:
        divisor = Decimal(1)                         # an unset divisor means 1
    return ceil_ratio(_quantity(value, rname) if value is not None else Decimal(0), divisor)


def _resources(c: dict) -> dict[str, dict]:
    """limits and requests of a container; requests not given are its limits, as the API
    server's defaulting makes them."""
    res = c.get("resources") if isinstance(c.get("resources"), dict) else {}
    limits = dict(res.get("limits") or {}) if isinstance(res.get("limits"), dict) else {}
    requests = dict(res.get("requests") or {}) if isinstance(res.get("requests"), dict) else {}
    for k, v in limits.items():
        requests.setdefault(k, v)
    return {"limits": limits, "requests": requests}


def _limit_fallback(spec: dict, allocatable: Mapping[str, str]) -> dict[str, object]:
    """What an unset container limit means: the pod-level limit when the pod has one (cpu and
    memory), else the node's allocatable."""
    out: dict[str, object] = dict(allocatable or {})
    res = spec.get("resources") if isinstance(spec.get("resources"), dict) else {}
    pod_limits = res.get("limits") if isinstance(res.get("limits"), dict) else {}
    for r in POD_LEVEL:
        v = pod_limits.get(r)
        if v is not None and r in out and _quantity(v, r) != 0:
            out[r] = v
    return out


def _with_default_limits(c: dict, fallback: Mapping[str, object]) -> dict[str, dict]:
    res = _resources(c)
    limits = res["limits"]
    for r in DEFAULTED_LIMITS:
        if (r not in limits or _quantity(limits[r], r) == 0) and r in fallback:
            limits[r] = fallback[r]
    return res


def _quantity(v, what: str) -> Decimal:
    try:
        return parse_quantity(v)
    except (ValueError, TypeError):
        raise ConfigError(f"invalid quantity {v!r} for {what}") from None


def ceil_ratio(q: Decimal, divisor: Decimal) -> str:
    """ceil(q / divisor) as a decimal string, as upstream's downward API converts quantities:
    0 for a value or divisor that is not positive, capped at the largest int64."""
    if q <= 0 or divisor <= 0:
        return "0"
    # compare magnitudes first: 1e1000000 / 1 must not build a million-digit number
    if q.adjusted() - divisor.adjusted() > 19:
        return str(MAX_INT64)
    if divisor.adjusted() - q.adjusted() > 1:
        return "1"
    with localcontext() as ctx:
        # the ratio is below 10^21 here: 60 digits leave the rounding-up error far below one
        # unit, so the ceiling of the rounded-up quotient is the ceiling of the exact one
        ctx.prec, ctx.rounding = 60, ROUND_CEILING
        ctx.Emax, ctx.Emin = 10 ** 9, -10 ** 9
        ratio = (q / divisor).to_integral_value(rounding=ROUND_CEILING)
    return str(min(int(ratio), MAX_INT64))


# -- small helpers ----------------------------------------------------------------------------
def _namespace(pod: dict) -> str:
    return (pod.get("metadata") or {}).get("namespace") or "default"


def _name(ref: dict) -> str:
    n = ref.get("name")
    return n if isinstance(n, str) else ""


def _dicts(items) -> list[dict]:
    return [i for i in items if isinstance(i, dict)] if isinstance(items, list) else []
