"""ClusterIP Services reached from pods through the node's service proxy, as a kubectl user
sees it, against one `k1s up` per module: a busybox pod `wget`s nginx pods behind a Service by
its name and its FQDN; a Service with no ready endpoint refuses at once; the backends that
answer follow the pods' readiness as pods come and go; a UDP Service relays datagrams and
answers from its cluster IP; a deleted Service stops answering; a NodePort Service answers on
the host's loopback at its node port.

Each nginx pod serves its own pod name (an init container writes it into the emptyDir nginx
serves), so an answer says which backend took the connection. There is no Deployment
controller in k1s yet: backends are bare pods carrying the Service's selector label.

busybox's `nc` here has no UDP mode (Debian's busybox is built without it), so the UDP backend
and client are small Python programs, the test's own interpreter seen through the container's
view of the host (as the gRPC probe test does).
"""

from __future__ import annotations

import sys

from k1s_harness import Kubectl

NS_PREFIX = "ns-"

# the module's cluster, kubectl and namespace fixtures, helpers, and `pytestmark` (root only)
from node_util import *  # noqa: F401,F403,E402

WGET = ("timeout", "10", "wget", "-qO-")   # busybox's `wget -T` crashes here: `timeout` bounds it


def web(name: str, app: str = "web") -> dict:
    """An nginx pod serving its own name at / (written by an init container)."""
    html = {"name": "html", "mountPath": "/usr/share/nginx/html"}
    p = pod(name, container("nginx", image="nginx", volumeMounts=[html],
                            readinessProbe={"tcpSocket": {"port": 80}, "periodSeconds": 1}),
            initContainers=[container("page", "hostname > /usr/share/nginx/html/index.html",
                                      volumeMounts=[html])],
            volumes=[{"name": "html", "emptyDir": {}}])
    p["metadata"]["labels"] = {"app": app}
    return p


def service(name: str, app: str, ports: list[dict], **spec) -> dict:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"selector": {"app": app}, "ports": ports, **spec}}


HTTP = [{"name": "http", "port": 80, "targetPort": 80}]


def client(k: Kubectl, ns: str) -> None:
    create(k, ns, pod("client", container("c", "sleep 3600")))
    running(k, ns, "client")


def fetch(k: Kubectl, ns: str, url: str):
    return k("exec", "client", "-n", ns, "--", *WGET, url)


def answer(k: Kubectl, ns: str, url: str) -> str:
    p = fetch(k, ns, url)
    assert p.returncode == 0, p
    return p.stdout.strip()


def cluster_ip(k: Kubectl, ns: str, name: str) -> str:
    return k.json("get", "service", name, "-n", ns)["spec"]["clusterIP"]


def answers(k: Kubectl, ns: str, url: str, n: int) -> list[str]:
    return [answer(k, ns, url) for _ in range(n)]


def test_a_clusterip_service_answers_by_name_and_fqdn_from_every_backend(k, ns):
    for name in ("web-1", "web-2"):
        create(k, ns, web(name))
    create(k, ns, service("web", "web", HTTP))
    client(k, ns)
    for name in ("web-1", "web-2"):
        running(k, ns, name)

    def both_answer():
        # round robin: consecutive connections go to different backends
        got = set(answers(k, ns, "http://web", 4))
        assert got == {"web-1", "web-2"}, got
    eventually(both_answer)
    fqdn = f"http://web.{ns}.svc.cluster.local/"
    assert set(answers(k, ns, fqdn, 4)) == {"web-1", "web-2"}
    ip = cluster_ip(k, ns, "web")
    assert answer(k, ns, f"http://{ip}/") in ("web-1", "web-2")


def test_a_service_without_ready_endpoints_refuses_connections(k, ns):
    never = web("never", app="never")
    never["spec"]["containers"][0]["readinessProbe"] = {
        "exec": {"command": ["false"]}, "periodSeconds": 1}
    create(k, ns, never)
    create(k, ns, service("nothing", "never", HTTP))
    create(k, ns, service("nobody", "no-such-pods", HTTP))
    client(k, ns)
    status_is(k, ns, "never", "Running")
    for name in ("nothing", "nobody"):
        ip = cluster_ip(k, ns, name)

        def refused():
            p = fetch(k, ns, f"http://{name}/")
            assert p.returncode != 0 and "Connection refused" in p.stderr, p
            p = fetch(k, ns, f"http://{ip}/")
            assert p.returncode != 0 and "Connection refused" in p.stderr, p
        eventually(refused)


def test_backends_follow_pods_as_they_come_and_go(k, ns):
    create(k, ns, web("web-1"))
    create(k, ns, service("web", "web", HTTP))
    client(k, ns)
    running(k, ns, "web-1")
    eventually(lambda: _assert_equal(set(answers(k, ns, "http://web", 3)), {"web-1"}))
    create(k, ns, web("web-2"))
    running(k, ns, "web-2")
    eventually(lambda: _assert_equal(set(answers(k, ns, "http://web", 4)), {"web-1", "web-2"}))
    k.ok("delete", "pod", "web-1", "-n", ns, "--wait=false")
    eventually(lambda: _assert_equal(set(answers(k, ns, "http://web", 4)), {"web-2"}))


def test_client_ip_affinity_keeps_a_client_on_one_backend(k, ns):
    for name in ("web-1", "web-2"):
        create(k, ns, web(name))
    create(k, ns, service("sticky", "web", HTTP, sessionAffinity="ClientIP"))
    client(k, ns)
    for name in ("web-1", "web-2"):
        running(k, ns, name)

    def sticky():
        got = answers(k, ns, "http://sticky", 6)
        assert len(set(got)) == 1 and got[0] in ("web-1", "web-2"), got
    eventually(sticky)


UDP_SERVER = """
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 5353))
name = socket.gethostname().encode()
while True:
    data, addr = s.recvfrom(2048)
    s.sendto(name + b":" + data, addr)
"""

UDP_CLIENT = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(3)
host = socket.gethostbyname(sys.argv[1])
s.sendto(b"ping", (host, 53))
data, frm = s.recvfrom(2048)
print(data.decode(), frm[0], frm[1])
"""


def test_a_udp_service_relays_datagrams_and_answers_from_its_cluster_ip(k, ns):
    c = container("udp", image="busybox")
    c["command"] = [sys.executable, "-c", UDP_SERVER]
    echo = pod("echo", c)
    echo["metadata"]["labels"] = {"app": "echo"}
    create(k, ns, echo)
    create(k, ns, service("echo", "echo", [{"name": "dns", "port": 53, "protocol": "UDP",
                                            "targetPort": 5353}]))
    client(k, ns)
    running(k, ns, "echo")
    ip = cluster_ip(k, ns, "echo")

    def exchange():
        p = k("exec", "client", "-n", ns, "--", sys.executable, "-c", UDP_CLIENT, "echo")
        assert p.returncode == 0, p
        assert p.stdout.split() == ["echo:ping", ip, "53"], p
    eventually(exchange)


def test_a_deleted_service_stops_answering(k, ns):
    create(k, ns, web("web-1"))
    create(k, ns, service("web", "web", HTTP))
    client(k, ns)
    running(k, ns, "web-1")
    ip = cluster_ip(k, ns, "web")
    eventually(lambda: _assert_equal(answer(k, ns, f"http://{ip}/"), "web-1"))
    k.ok("delete", "service", "web", "-n", ns)

    def gone():
        p = fetch(k, ns, f"http://{ip}/")
        assert p.returncode != 0, p
    eventually(gone)
    # the pod itself still serves: only the Service went
    pod_ip = pod_json(k, ns, "web-1")["status"]["podIP"]
    assert answer(k, ns, f"http://{pod_ip}/") == "web-1"


def _assert_equal(got, want) -> None:
    assert got == want, (got, want)



def test_a_node_port_answers_on_the_host_loopback(k, ns):
    """`kubectl create service nodeport`: the API server hands out a node port and the node
    serves it on its address, 127.0.0.1 of the machine, as kube-proxy serves node ports on a
    node's addresses; the ClusterIP of the same Service answers pods as before."""
    import urllib.request
    # straight to loopback: never through a proxy the environment may name
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    url = None

    def get() -> str:
        with opener.open(url, timeout=5) as r:
            return r.read().decode().strip()
    create(k, ns, web("np-1", app="np"))
    k.ok("create", "service", "nodeport", "np", "-n", ns, "--tcp=80:80")
    svc = k.json("get", "service", "np", "-n", ns)
    node_port = svc["spec"]["ports"][0]["nodePort"]
    assert 30000 <= node_port <= 32767, svc["spec"]
    row = k.ok("get", "service", "np", "-n", ns, "--no-headers").split()
    assert row[1] == "NodePort" and row[4] == f"80:{node_port}/TCP", row
    running(k, ns, "np-1")
    url = f"http://127.0.0.1:{node_port}/"

    def served():
        try:
            assert get() == "np-1"
        except OSError as e:
            raise AssertionError(f"not served yet: {e}") from None
    eventually(served)
    # back to ClusterIP: the node port goes, and its listener with it
    k.ok("patch", "service", "np", "-n", ns, "-p", '{"spec": {"type": "ClusterIP"}}')

    def gone():
        try:
            get()
        except OSError as e:
            assert "refused" in str(e).lower(), e
            return
        raise AssertionError("the node port still answers")
    eventually(gone)
