"""Builders for the API objects the DNS tests feed in, shaped as upstream's controllers write
them (EndpointSlice: `kubernetes.io/service-name` label, endpoints[].addresses / hostname /
conditions.ready / targetRef)."""

from __future__ import annotations


def service(name, ns="default", *, cluster_ip="10.96.0.20", ports=(("web", 80, "TCP"),),
            publish_not_ready=False, external_name=None, labels=None):
    spec: dict = {"ports": [{"name": n, "port": p, "protocol": proto} if n else
                            {"port": p, "protocol": proto} for n, p, proto in ports]}
    if external_name is not None:
        spec = {"type": "ExternalName", "externalName": external_name}
    else:
        spec["type"] = "ClusterIP"
        if cluster_ip is not None:          # None: let the API server allocate one
            spec["clusterIP"] = cluster_ip
            if cluster_ip != "None":
                spec["clusterIPs"] = [cluster_ip]
        if publish_not_ready:
            spec["publishNotReadyAddresses"] = True
        if not spec["ports"]:
            del spec["ports"]
    meta = {"name": name, "namespace": ns}
    if labels:
        meta["labels"] = labels
    return {"apiVersion": "v1", "kind": "Service", "metadata": meta, "spec": spec}


def endpoint(ip, hostname=None, ready=True, pod=None, ns="default"):
    ep: dict = {"addresses": [ip], "conditions": {"ready": ready, "serving": ready,
                                                  "terminating": False}}
    if hostname:
        ep["hostname"] = hostname
    if pod:
        ep["targetRef"] = {"kind": "Pod", "namespace": ns, "name": pod}
    return ep


def endpoint_slice(name, svc, endpoints, ns="default", *, ports=(("web", 80, "TCP"),),
                   address_type="IPv4"):
    return {
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": name, "namespace": ns,
                     "labels": {"kubernetes.io/service-name": svc,
                                "endpointslice.kubernetes.io/managed-by": "k1s-test"}},
        "addressType": address_type,
        "ports": [{"name": n, "port": p, "protocol": proto} if n else
                  {"port": p, "protocol": proto} for n, p, proto in ports],
        "endpoints": list(endpoints),
    }


def nginx_objects():
    """The tutorial's headless Service `nginx` with web-0 and web-1 ready."""
    svc = service("nginx", cluster_ip="None")
    sl = endpoint_slice("nginx-abcde", "nginx", [
        endpoint("10.244.0.5", "web-0", pod="web-0"),
        endpoint("10.244.0.6", "web-1", pod="web-1"),
    ])
    return svc, sl
