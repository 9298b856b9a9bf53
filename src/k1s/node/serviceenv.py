"""The Service environment variables kubelet gives every container (pure).

Upstream (pkg/kubelet getServiceEnvVarMap + pkg/kubelet/envvars FromServices): the master
Service `kubernetes` in `default` always, and, unless the pod sets enableServiceLinks: false,
every Service of the pod's namespace that has a cluster IP (a headless or ExternalName Service
has none and gives nothing). Per Service NAME (upper-cased, `-` -> `_`):
    NAME_SERVICE_HOST=<clusterIP>   NAME_SERVICE_PORT=<first port>
    NAME_SERVICE_PORT_<PORTNAME>=<port>          (named ports)
    NAME_PORT=<proto>://<ip>:<first port>        (Docker link variables)
    NAME_PORT_<port>_<PROTO>=<proto>://<ip>:<port>, ..._PROTO, ..._PORT, ..._ADDR
These have the lowest precedence: a container's own env wins (envvars.container_env).
"""

from __future__ import annotations

MASTER_NAMESPACE = "default"
MASTER_SERVICES = ("kubernetes",)


def _has_ip(svc: dict) -> bool:
    ip = (svc.get("spec") or {}).get("clusterIP")
    return bool(ip) and ip != "None"


def _env_name(name: str) -> str:
    return name.upper().replace("-", "_")


def from_services(services: list[dict]) -> dict[str, str]:
    """The variables of these Services (each assumed to have a cluster IP)."""
    out: dict[str, str] = {}
    for svc in services:
        spec = svc.get("spec") or {}
        ip = spec.get("clusterIP", "")
        ports = [p for p in spec.get("ports") or () if isinstance(p, dict)]
        base = _env_name((svc.get("metadata") or {}).get("name", ""))
        out[f"{base}_SERVICE_HOST"] = ip
        if ports:
            out[f"{base}_SERVICE_PORT"] = str(ports[0].get("port", ""))
        for p in ports:
            if p.get("name"):
                out[f"{base}_SERVICE_PORT_{_env_name(p['name'])}"] = str(p.get("port", ""))
        for i, p in enumerate(ports):
            proto = str(p.get("protocol") or "TCP")
            port = str(p.get("port", ""))
            url = f"{proto.lower()}://{ip}:{port}"
            if i == 0:
                out[f"{base}_PORT"] = url
            prefix = f"{base}_PORT_{port}_{proto.upper()}"
            out[prefix] = url
            out[f"{prefix}_PROTO"] = proto.lower()
            out[f"{prefix}_PORT"] = port
            out[f"{prefix}_ADDR"] = ip
    return out


def for_pod(pod: dict, services: list[dict]) -> dict[str, str]:
    """The Service variables of one pod, from the Services of its namespace and `default`."""
    ns = (pod.get("metadata") or {}).get("namespace") or "default"
    links = (pod.get("spec") or {}).get("enableServiceLinks") is not False
    chosen: dict[str, dict] = {}
    for svc in services:
        if not _has_ip(svc):
            continue
        m = svc.get("metadata") or {}
        name = m.get("name", "")
        if m.get("namespace") == MASTER_NAMESPACE and name in MASTER_SERVICES:
            chosen.setdefault(name, svc)
        elif m.get("namespace") == ns and links:
            chosen[name] = svc
    return from_services([chosen[k] for k in sorted(chosen)])
