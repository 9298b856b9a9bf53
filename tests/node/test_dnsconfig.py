"""A pod's resolv.conf (k1s.node.dnsconfig) for each dnsPolicy, with dnsConfig merged in and
kubelet's limits."""

from __future__ import annotations

from k1s.node.dnsconfig import parse, pod_resolv_conf

HOST = """# generated
nameserver 10.0.0.2
nameserver 10.0.0.3
search corp.example lab.example
options timeout:2 attempts:3
"""


def pod(**spec):
    return {"metadata": {"name": "web-0", "namespace": "shop", "uid": "u1"}, "spec": spec}


def test_cluster_first_is_the_default_and_appends_the_node_searches():
    conf = pod_resolv_conf(pod(), "10.96.0.10", HOST)
    assert conf.render() == ("search shop.svc.cluster.local svc.cluster.local cluster.local "
                             "corp.example lab.example\nnameserver 10.96.0.10\n"
                             "options ndots:5\n")


def test_default_is_the_node_configuration():
    conf = pod_resolv_conf(pod(dnsPolicy="Default"), "10.96.0.10", HOST)
    assert conf.nameservers == ["10.0.0.2", "10.0.0.3"]
    assert conf.searches == ["corp.example", "lab.example"]
    assert conf.options == ["timeout:2", "attempts:3"]


def test_host_network_uses_the_node_unless_cluster_first_with_host_net():
    assert pod_resolv_conf(pod(hostNetwork=True), "10.96.0.10", HOST).nameservers == \
        ["10.0.0.2", "10.0.0.3"]
    assert pod_resolv_conf(pod(hostNetwork=True, dnsPolicy="ClusterFirstWithHostNet"),
                           "10.96.0.10", HOST).nameservers == ["10.96.0.10"]


def test_none_takes_only_dns_config_and_options_merge_by_name():
    conf = pod_resolv_conf(pod(dnsPolicy="None", dnsConfig={
        "nameservers": ["1.2.3.4", "1.2.3.4"], "searches": ["a.example"],
        "options": [{"name": "ndots", "value": "2"}, {"name": "edns0"}]}), "10.96.0.10", HOST)
    assert conf.render() == "search a.example\nnameserver 1.2.3.4\noptions ndots:2 edns0\n"
    merged = pod_resolv_conf(pod(dnsConfig={"options": [{"name": "ndots", "value": "1"}],
                                            "searches": ["svc.cluster.local", "x.example"]}),
                             "10.96.0.10", "")
    assert merged.options == ["ndots:1"]
    assert merged.searches == ["shop.svc.cluster.local", "svc.cluster.local", "cluster.local",
                               "x.example"]


def test_limits_trim_with_a_warning():
    conf = pod_resolv_conf(pod(dnsConfig={"nameservers": ["1.1.1.1", "2.2.2.2", "3.3.3.3"],
                                          "searches": [f"d{i}.example" for i in range(40)]}),
                           "10.96.0.10", "")
    assert conf.nameservers == ["10.96.0.10", "1.1.1.1", "2.2.2.2"]
    assert len(conf.searches) == 32
    assert ("DNSConfigForming", "Nameserver limits were exceeded, some nameservers have been "
            "omitted, the applied nameserver line is: 10.96.0.10 1.1.1.1 2.2.2.2") in conf.warnings
    assert any(r == "DNSConfigForming" and m.startswith("Search Line limits were exceeded")
               for r, m in conf.warnings)


def test_without_cluster_dns_cluster_first_falls_back_to_default():
    conf = pod_resolv_conf(pod(), None, HOST)
    assert conf.nameservers == ["10.0.0.2", "10.0.0.3"]
    assert conf.warnings[0][0] == "MissingClusterDNS"
    assert conf.warnings[0][1].startswith('pod: "web-0_shop(u1)". kubelet does not have')


def test_parse_keeps_the_last_search_line_and_ignores_comments():
    c = parse("search a\n; x\nsearch b c # d\nnameserver 9.9.9.9\n")
    assert c.searches == ["b", "c"] and c.nameservers == ["9.9.9.9"]
