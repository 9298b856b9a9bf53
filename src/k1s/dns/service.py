"""The `kube-dns` Service every cluster has (kube-system, cluster IP 10.96.0.10), as kubeadm
creates it for CoreDNS: what pods' resolv.conf names as their nameserver and what
`kubectl get svc -n kube-system` shows. The API server creates it at bootstrap when missing.

It has no selector: k1s's DNS server is not a pod, so no EndpointSlice controller manages its
endpoints (the node agent routes the cluster IP to the server's sockets itself).
"""

from __future__ import annotations

KUBE_DNS_IP = "10.96.0.10"      # kubeadm's default: the 10th address of the service range
NAME, NAMESPACE = "kube-dns", "kube-system"


def kube_dns_service(cluster_ip: str | None = KUBE_DNS_IP) -> dict:
    """The Service object; cluster_ip None leaves the address to the allocator (for a cluster
    where 10.96.0.10 was already handed to another Service)."""
    svc = {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": NAME, "namespace": NAMESPACE,
                     "labels": {"k8s-app": "kube-dns", "kubernetes.io/cluster-service": "true",
                                "kubernetes.io/name": "CoreDNS"},
                     "annotations": {"prometheus.io/port": "9153",
                                     "prometheus.io/scrape": "true"}},
        "spec": {"clusterIP": cluster_ip, "clusterIPs": [cluster_ip], "type": "ClusterIP",
                 "sessionAffinity": "None",
                 "ports": [{"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                           {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53},
                           {"name": "metrics", "port": 9153, "protocol": "TCP",
                            "targetPort": 9153}]},
    }
    if cluster_ip is None:
        del svc["spec"]["clusterIP"], svc["spec"]["clusterIPs"]
    return svc
