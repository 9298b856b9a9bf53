"""Service environment variables as kubelet makes them (pure)."""

from k1s.node import serviceenv


def svc(name, ns, ip, ports):
    return {"metadata": {"name": name, "namespace": ns},
            "spec": {"clusterIP": ip, "ports": ports}}


KUBERNETES = svc("kubernetes", "default", "10.96.0.1",
                 [{"name": "https", "port": 443, "protocol": "TCP"}])


def pod(ns="app", links=None):
    spec = {} if links is None else {"enableServiceLinks": links}
    return {"metadata": {"name": "p", "namespace": ns}, "spec": spec}


def test_master_service_variables_are_upstreams():
    env = serviceenv.for_pod(pod(), [KUBERNETES])
    assert env == {
        "KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443",
        "KUBERNETES_SERVICE_PORT_HTTPS": "443", "KUBERNETES_PORT": "tcp://10.96.0.1:443",
        "KUBERNETES_PORT_443_TCP": "tcp://10.96.0.1:443", "KUBERNETES_PORT_443_TCP_PROTO": "tcp",
        "KUBERNETES_PORT_443_TCP_PORT": "443", "KUBERNETES_PORT_443_TCP_ADDR": "10.96.0.1"}


def test_namespace_services_with_a_cluster_ip_only_and_links_switch():
    services = [KUBERNETES,
                svc("my-db", "app", "10.96.3.4", [{"port": 5432}, {"name": "m", "port": 9187,
                                                                  "protocol": "UDP"}]),
                svc("nginx", "app", "None", [{"port": 80}]),          # headless: nothing
                svc("other", "elsewhere", "10.96.9.9", [{"port": 1}])]  # another namespace
    env = serviceenv.for_pod(pod(), services)
    assert env["MY_DB_SERVICE_HOST"] == "10.96.3.4"
    assert env["MY_DB_SERVICE_PORT"] == "5432"
    assert env["MY_DB_SERVICE_PORT_M"] == "9187"
    assert env["MY_DB_PORT"] == "tcp://10.96.3.4:5432"
    assert env["MY_DB_PORT_9187_UDP"] == "udp://10.96.3.4:9187"
    assert env["MY_DB_PORT_9187_UDP_PROTO"] == "udp"
    assert not any(k.startswith(("NGINX_", "OTHER_")) for k in env)
    off = serviceenv.for_pod(pod(links=False), services)
    assert set(off) == {k for k in env if k.startswith("KUBERNETES_")}   # master service stays
