"""Pod facts both endpoint controllers share (pure): which pods count, readiness, the hostname
rule, target-port resolution and pod IPs per family.

Follows upstream's pkg/api/v1/pod (IsPodReady, FindPort) and
staging/src/k8s.io/endpointslice/util (ShouldPodBeInEndpoints, ShouldSetHostname).
"""

from __future__ import annotations

from typing import Any

TOLERATE_UNREADY = "service.alpha.kubernetes.io/tolerate-unready-endpoints"
HEADLESS_LABEL = "service.kubernetes.io/headless"
TRIGGER_TIME = "endpoints.kubernetes.io/last-change-trigger-time"


def meta(obj: dict | None) -> dict:
    return (obj or {}).get("metadata") or {}


def spec(obj: dict | None) -> dict:
    return (obj or {}).get("spec") or {}


def status(obj: dict | None) -> dict:
    return (obj or {}).get("status") or {}


def key_of(obj: dict) -> str:
    m = meta(obj)
    return f"{m.get('namespace', '')}/{m.get('name', '')}"


# -- services -------------------------------------------------------------------------------------

def has_selector(svc: dict) -> bool:
    """Upstream skips a nil selector; an empty map does not survive a round trip through the
    API (omitempty) either, so both mean "endpoints are the user's"."""
    return bool(spec(svc).get("selector"))


def wants_endpoints(svc: dict | None) -> bool:
    """Services the controllers manage: with a selector, and not of type ExternalName."""
    return svc is not None and has_selector(svc) and spec(svc).get("type") != "ExternalName"


def is_headless(svc: dict) -> bool:
    return spec(svc).get("clusterIP") == "None"


def publish_not_ready(svc: dict) -> bool:
    """publishNotReadyAddresses, or the legacy annotation (any Go ParseBool "true" form)."""
    if spec(svc).get("publishNotReadyAddresses"):
        return True
    v = (meta(svc).get("annotations") or {}).get(TOLERATE_UNREADY)
    return v in ("1", "t", "T", "true", "TRUE", "True")


def address_families(svc: dict) -> list[str]:
    """`IPv4` / `IPv6` address types the Service's endpoints carry (ipFamilies, else IPv4)."""
    fams = [f for f in spec(svc).get("ipFamilies") or () if f in ("IPv4", "IPv6")]
    return fams or ["IPv4"]


# -- pods -----------------------------------------------------------------------------------------

def is_ready(pod: dict) -> bool:
    for c in status(pod).get("conditions") or ():
        if c.get("type") == "Ready":
            return c.get("status") == "True"
    return False


def ready_transition_time(pod: dict) -> str:
    """The Ready condition's lastTransitionTime ('' if none): the pod's trigger time."""
    for c in status(pod).get("conditions") or ():
        if c.get("type") == "Ready":
            return c.get("lastTransitionTime") or ""
    return ""


def is_terminal(pod: dict) -> bool:
    return status(pod).get("phase") in ("Succeeded", "Failed")


def is_terminating(pod: dict) -> bool:
    return bool(meta(pod).get("deletionTimestamp"))


def pod_ips(pod: dict) -> list[str]:
    st = status(pod)
    ips = [p.get("ip") for p in st.get("podIPs") or () if p.get("ip")]
    if not ips and st.get("podIP"):
        ips = [st["podIP"]]
    return ips


def family_of(ip: str) -> str:
    return "IPv6" if ":" in ip else "IPv4"


def ip_for_family(pod: dict, family: str) -> str | None:
    for ip in pod_ips(pod):
        if family_of(ip) == family:
            return ip
    return None


def should_be_in_endpoints(pod: dict, include_terminating: bool) -> bool:
    """Not terminal, has an IP, and (unless include_terminating) not being deleted."""
    if is_terminal(pod) or not pod_ips(pod):
        return False
    return include_terminating or not is_terminating(pod)


def hostname_for(pod: dict, svc: dict) -> str | None:
    """The hostname rule: pod.spec.hostname, only under the Service its subdomain names."""
    ps, pm, sm = spec(pod), meta(pod), meta(svc)
    if ps.get("hostname") and ps.get("subdomain") == sm.get("name") and \
            pm.get("namespace") == sm.get("namespace"):
        return ps["hostname"]
    return None


def find_port(pod: dict, svc_port: dict) -> int | None:
    """The pod's port for a Service port: a number as is, a name looked up among the
    containers' (and restartable init containers') ports with the same protocol."""
    target = svc_port.get("targetPort")
    if target is None or target == "" or target == 0:
        target = svc_port.get("port")
    if isinstance(target, int):
        return target
    if isinstance(target, str) and target.isdigit():
        return int(target)
    proto = svc_port.get("protocol") or "TCP"
    ps = spec(pod)
    containers: list[Any] = list(ps.get("containers") or ())
    containers += [c for c in ps.get("initContainers") or () if c.get("restartPolicy") == "Always"]
    for c in containers:
        for p in c.get("ports") or ():
            if p.get("name") == target and (p.get("protocol") or "TCP") == proto:
                return p.get("containerPort")
    return None


def target_ref(pod: dict) -> dict:
    m = meta(pod)
    return {"kind": "Pod", "namespace": m.get("namespace", ""), "name": m.get("name", ""),
            "uid": m.get("uid", "")}


def endpoint_relevant(pod: dict | None) -> tuple:
    """What of a pod either controller reads: an update that leaves this equal changes no
    endpoint (upstream's podEndpointsChanged, plus phase and the readiness transition time,
    which feeds the trigger-time annotation)."""
    if pod is None:
        return ()
    m, ps = meta(pod), spec(pod)
    return (tuple(sorted((m.get("labels") or {}).items())), bool(m.get("deletionTimestamp")),
            ps.get("hostname"), ps.get("subdomain"), ps.get("nodeName"), is_ready(pod),
            ready_transition_time(pod), tuple(pod_ips(pod)), is_terminal(pod))
