"""Subresources and per-kind server behaviour: pods/binding, statefulsets/scale, Service
ClusterIP allocation, and events.k8s.io/v1 as a second view of core/v1 Events.
"""

from __future__ import annotations

import ipaddress

from test_api_helpers import (api, ns_path, pod, rv, service,  # noqa: F401
                              status_body, statefulset)

PODS = ns_path("default", "pods")
STS = ns_path("default", "statefulsets", group="apps")
SVC = ns_path("default", "services")
JSON_PATCH = "application/json-patch+json"


def binding(name: str, node: str) -> dict:
    return {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": name},
            "target": {"apiVersion": "v1", "kind": "Node", "name": node}}


# -------------------------------------------------------------------------------- binding
async def test_binding_sets_node_name_and_pod_scheduled(api):
    created = await api.ok("POST", PODS, pod("p"))
    r = await api.post(PODS + "/p/binding", binding("p", "n1"))
    assert r.status == 201, r
    assert r.body["status"] == "Success"
    got = await api.ok("GET", PODS + "/p")
    assert got["spec"]["nodeName"] == "n1"
    conds = {c["type"]: c for c in got["status"]["conditions"]}
    assert conds["PodScheduled"]["status"] == "True"
    assert conds["PodScheduled"]["lastTransitionTime"]
    assert got["status"]["phase"] == "Pending"
    assert rv(got) > rv(created)
    assert got["metadata"]["uid"] == created["metadata"]["uid"]


async def test_binding_an_already_bound_pod_conflicts(api):
    await api.ok("POST", PODS, pod("p"))
    await api.ok("POST", PODS + "/p/binding", binding("p", "n1"))
    before = await api.ok("GET", PODS + "/p")
    r = await api.post(PODS + "/p/binding", binding("p", "n2"))
    assert r.status == 409, r
    assert r.body["reason"] == "Conflict"
    assert r.body["message"] == ('Operation cannot be fulfilled on pods/binding "p": pod p is '
                                 'already assigned to node "n1"')
    assert await api.ok("GET", PODS + "/p") == before


async def test_binding_a_missing_pod(api):
    r = await api.post(PODS + "/ghost/binding", binding("ghost", "n1"))
    assert r.status == 404, r
    assert r.body["message"] == 'pods "ghost" not found'


async def test_binding_a_pod_being_deleted_conflicts(api):
    await api.ok("POST", PODS, {**pod("p"), "metadata": {"name": "p",
                                                         "finalizers": ["example.com/x"]}})
    await api.ok("DELETE", PODS + "/p")
    r = await api.post(PODS + "/p/binding", binding("p", "n1"))
    assert r.status == 409, r


async def test_pod_update_cannot_set_node_name(api):
    await api.ok("POST", PODS, pod("p"))
    r = await api.patch(PODS + "/p", {"spec": {"nodeName": "n1"}})
    assert r.status == 422, r
    assert "nodeName" not in (await api.ok("GET", PODS + "/p"))["spec"]


# ---------------------------------------------------------------------------------- scale
async def test_get_scale(api):
    created = await api.ok("POST", STS, statefulset("web", replicas=2))
    r = await api.ok("GET", STS + "/web/scale")
    assert r["kind"] == "Scale" and r["apiVersion"] == "autoscaling/v1"
    assert r["metadata"]["name"] == "web" and r["metadata"]["namespace"] == "default"
    assert r["metadata"]["uid"] == created["metadata"]["uid"]
    assert r["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
    assert r["spec"] == {"replicas": 2}
    assert r["status"] == {"replicas": 0, "selector": "app=web"}


async def test_patch_scale_sets_replicas_and_bumps_generation(api):
    await api.ok("POST", STS, statefulset("web", replicas=1))
    r = await api.ok("PATCH", STS + "/web/scale", {"spec": {"replicas": 3}})
    assert r["kind"] == "Scale" and r["spec"]["replicas"] == 3
    sts = await api.ok("GET", STS + "/web")
    assert sts["spec"]["replicas"] == 3
    assert sts["metadata"]["generation"] == 2
    assert r["metadata"]["resourceVersion"] == sts["metadata"]["resourceVersion"]
    r = await api.ok("PATCH", STS + "/web/scale",
                     [{"op": "replace", "path": "/spec/replicas", "value": 0}],
                     content_type=JSON_PATCH)
    assert r["spec"]["replicas"] == 0
    assert (await api.ok("GET", STS + "/web"))["metadata"]["generation"] == 3


async def test_put_scale(api):
    await api.ok("POST", STS, statefulset("web", replicas=1))
    scale = await api.ok("GET", STS + "/web/scale")
    scale["spec"]["replicas"] = 5
    r = await api.ok("PUT", STS + "/web/scale", scale)
    assert r["spec"]["replicas"] == 5
    assert (await api.ok("GET", STS + "/web"))["spec"]["replicas"] == 5


async def test_put_scale_with_a_stale_resource_version_conflicts(api):
    await api.ok("POST", STS, statefulset("web", replicas=1))
    scale = await api.ok("GET", STS + "/web/scale")
    await api.ok("PATCH", STS + "/web", {"metadata": {"labels": {"x": "y"}}})
    scale["spec"]["replicas"] = 5
    r = await api.put(STS + "/web/scale", scale)
    assert r.status == 409, r
    assert r.body == status_body(
        409, "Conflict", 'Operation cannot be fulfilled on statefulsets.apps "web": the object '
        'has been modified; please apply your changes to the latest version and try again',
        {"name": "web", "group": "apps", "kind": "statefulsets"})
    assert (await api.ok("GET", STS + "/web"))["spec"]["replicas"] == 1


async def test_negative_replicas_through_scale_is_invalid(api):
    before = await api.ok("POST", STS, statefulset("web", replicas=1))
    r = await api.patch(STS + "/web/scale", {"spec": {"replicas": -1}})
    assert r.status == 422, r
    assert r.body["reason"] == "Invalid"
    assert r.body["details"]["causes"] == [{
        "reason": "FieldValueInvalid", "field": "spec.replicas",
        "message": "Invalid value: -1: must be greater than or equal to 0"}]
    assert await api.ok("GET", STS + "/web") == before


async def test_negative_replicas_message_is_upstreams(api):
    await api.ok("POST", STS, statefulset("web", replicas=1))
    r = await api.patch(STS + "/web/scale", {"spec": {"replicas": -1}})
    assert r.body["message"] == ('Scale.autoscaling "web" is invalid: spec.replicas: Invalid '
                                 'value: -1: must be greater than or equal to 0')


async def test_scale_of_a_missing_statefulset(api):
    r = await api.get(STS + "/nope/scale")
    assert r.status == 404
    assert r.body["message"] == 'statefulsets.apps "nope" not found'


# -------------------------------------------------------------------------------- services
async def test_kubernetes_service_exists(api):
    svc = await api.ok("GET", SVC + "/kubernetes")
    assert svc["spec"]["clusterIP"] == "10.96.0.1"
    assert svc["spec"]["ports"][0]["port"] == 443


async def test_cluster_ips_are_allocated_unique_and_in_range(api):
    net = ipaddress.ip_network("10.96.0.0/12")
    ips = []
    for i in range(50):
        svc = await api.ok("POST", SVC, service(f"s{i}"))
        ip = svc["spec"]["clusterIP"]
        assert ipaddress.ip_address(ip) in net
        assert svc["spec"]["clusterIPs"] == [ip]
        ips.append(ip)
    assert len(set(ips)) == 50
    assert "10.96.0.1" not in ips


async def test_headless_service_stays_none(api):
    svc = await api.ok("POST", SVC, service("db", cluster_ip="None"))
    assert svc["spec"]["clusterIP"] == "None"
    assert svc["spec"]["clusterIPs"] == ["None"]


async def test_requested_cluster_ip(api):
    svc = await api.ok("POST", SVC, service("fixed", cluster_ip="10.96.100.100"))
    assert svc["spec"]["clusterIP"] == "10.96.100.100"
    r = await api.post(SVC, service("again", cluster_ip="10.96.100.100"))
    assert r.status == 422, r
    r = await api.post(SVC, service("outside", cluster_ip="192.168.0.1"))
    assert r.status == 422, r
    assert (await api.get(SVC + "/outside")).status == 404


def node_port_service(name, *ports, type_="NodePort"):
    body = service(name)
    body["spec"]["type"] = type_
    body["spec"]["ports"] = [dict(p) for p in ports] or [{"port": 80}]
    return body


async def test_node_ports_are_allocated_in_range_kept_and_refused_as_upstream(api):
    """A NodePort Service gets a free port of 30000-32767 per port; one asked for must be in
    the range and free; an update keeps the ports; a change of type drops them; a ClusterIP
    Service may not ask for one."""
    a = await api.ok("POST", SVC, node_port_service("np-a", {"name": "http", "port": 80},
                                                     {"name": "https", "port": 443}))
    got = [p["nodePort"] for p in a["spec"]["ports"]]
    assert all(30000 <= p <= 32767 for p in got) and len(set(got)) == 2
    b = await api.ok("POST", SVC, node_port_service("np-b", {"port": 80, "nodePort": 31234}))
    assert b["spec"]["ports"][0]["nodePort"] == 31234
    r = await api.post(SVC, node_port_service("np-c", {"port": 80, "nodePort": 31234}))
    assert r.status == 422 and r.body["message"] == (
        'Service "np-c" is invalid: spec.ports[0].nodePort: Invalid value: 31234: '
        'provided port is already allocated'), r.body
    r = await api.post(SVC, node_port_service("np-d", {"port": 80, "nodePort": 80}))
    assert r.status == 422 and r.body["message"].endswith(
        "provided port is not in the valid range. The range of valid ports is 30000-32767"), \
        r.body
    r = await api.post(SVC, {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "np-e"},
                             "spec": {"ports": [{"port": 80, "nodePort": 30500}]}})
    assert r.status == 422 and "may not be used when `type` is 'ClusterIP'" in \
        r.body["message"], r.body
    # an update that does not name the ports keeps them; changing the type drops them
    body = node_port_service("np-a", {"name": "http", "port": 80},
                             {"name": "https", "port": 443})
    kept = await api.ok("PUT", SVC + "/np-a", body)
    assert [p["nodePort"] for p in kept["spec"]["ports"]] == got
    cleared = await api.ok("PATCH", SVC + "/np-a", {"spec": {"type": "ClusterIP"}})
    assert all("nodePort" not in p for p in cleared["spec"]["ports"]), cleared["spec"]
    # the freed port can be asked for again
    again = await api.ok("POST", SVC, node_port_service("np-f", {"port": 80,
                                                                  "nodePort": got[0]}))
    assert again["spec"]["ports"][0]["nodePort"] == got[0]


async def test_cluster_ip_is_kept_on_update(api):
    created = await api.ok("POST", SVC, service("web"))
    ip = created["spec"]["clusterIP"]
    body = service("web")            # no clusterIP in the new body
    body["spec"]["ports"] = [{"port": 8080}]
    r = await api.ok("PUT", SVC + "/web", body)
    assert r["spec"]["clusterIP"] == ip and r["spec"]["clusterIPs"] == [ip]
    assert r["spec"]["ports"][0]["port"] == 8080
    r = await api.ok("PATCH", SVC + "/web", {"spec": {"selector": {"app": "other"}}})
    assert r["spec"]["clusterIP"] == ip


async def test_cluster_ip_cannot_change(api):
    created = await api.ok("POST", SVC, service("web"))
    r = await api.patch(SVC + "/web", {"spec": {"clusterIP": "10.96.200.200",
                                                "clusterIPs": ["10.96.200.200"]}})
    assert r.status == 422, r
    assert (await api.ok("GET", SVC + "/web"))["spec"]["clusterIP"] == \
        created["spec"]["clusterIP"]


# --------------------------------------------------------------------------------- events
EV_NEW = ns_path("default", "events", group="events.k8s.io")
EV_CORE = ns_path("default", "events")


async def test_event_created_through_events_k8s_io_is_a_core_event(api):
    ev = {"apiVersion": "events.k8s.io/v1", "kind": "Event",
          "metadata": {"name": "e1"},
          "eventTime": "2026-01-01T00:00:00.000000Z",
          "reportingController": "example.com/ctl", "reportingInstance": "ctl-1",
          "action": "Binding", "reason": "Scheduled", "type": "Normal",
          "note": "assigned default/p to n1",
          "regarding": {"kind": "Pod", "namespace": "default", "name": "p", "apiVersion": "v1"}}
    r = await api.post(EV_NEW, ev)
    assert r.status == 201, r
    assert r.body["apiVersion"] == "events.k8s.io/v1"
    assert r.body["note"] == "assigned default/p to n1"
    assert r.body["regarding"]["name"] == "p"
    core = await api.ok("GET", EV_CORE + "/e1")
    assert core["apiVersion"] == "v1" and core["kind"] == "Event"
    assert core["involvedObject"] == ev["regarding"]
    assert core["message"] == "assigned default/p to n1"
    assert core["reportingComponent"] == "example.com/ctl"
    assert "note" not in core and "regarding" not in core
    assert core["metadata"]["uid"] == r.body["metadata"]["uid"]


async def test_core_event_seen_through_events_k8s_io(api):
    ev = {"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e2"},
          "involvedObject": {"kind": "Pod", "namespace": "default", "name": "p"},
          "reason": "Pulled", "message": "image pulled", "type": "Normal", "count": 3,
          "source": {"component": "kubelet"},
          "firstTimestamp": "2026-01-01T00:00:00Z", "lastTimestamp": "2026-01-01T00:01:00Z"}
    await api.ok("POST", EV_CORE, ev)
    new = await api.ok("GET", EV_NEW + "/e2")
    assert new["apiVersion"] == "events.k8s.io/v1"
    assert new["regarding"]["name"] == "p"
    assert new["note"] == "image pulled"
    assert new["deprecatedCount"] == 3
    assert new["deprecatedSource"] == {"component": "kubelet"}
    lst = await api.ok("GET", EV_NEW)
    assert lst["kind"] == "EventList" and lst["apiVersion"] == "events.k8s.io/v1"
    assert [i["note"] for i in lst["items"]] == ["image pulled"]
