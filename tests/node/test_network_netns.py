"""Network namespace names and the helper threads that run code inside a namespace.

Names: built only from k1s-controlled parts and never able to leave /run/netns, whatever a
node name holds (table cases plus a hypothesis property). Namespaces: real ones, created with
a prefix unique to the test run and removed by a finalizer; no test touches another name.
"""

from __future__ import annotations

import fcntl
import os
import re
import socket
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from k1s.node.network import netns

needs_root = pytest.mark.skipif(os.geteuid() != 0,
                                reason="named network namespaces need root (CI runs as root)")


# -- names ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("node, tag", [
    ("node-a", "node-a"),
    ("n1", "n1"),
    ("Node-A", None),                  # changed by lower-casing: hashed
    ("node.example.com", None),        # dots are not kept
    ("../../etc/passwd", None),
    ("a" * 60, None),                  # too long
    ("", None),
])
def test_node_tag_keeps_clean_names_and_hashes_the_rest(node, tag):
    got = netns.node_tag(node)
    assert re.fullmatch(r"[a-z0-9][a-z0-9-]*", got), got
    assert len(got) <= netns.NODE_TAG_MAX
    if tag is not None:
        assert got == tag
    else:
        assert got != node and re.search(r"(^|-)[0-9a-f]{8}$", got)


@pytest.mark.parametrize("uid", ["../x", "a/b", "", "x" * 65, "a_b", "-lead", "a b", "é", "abc\n"])
def test_pod_names_refuse_uids_that_are_not_uids(uid):
    with pytest.raises(ValueError):
        netns.pod_netns_name("k1s", "node-a", uid)


@pytest.mark.parametrize("prefix", ["", "K1S", "k1s-x", "1abc", "a" * 17, "a/b", "..", "k1s\n"])
def test_bad_prefixes_are_refused(prefix):
    with pytest.raises(ValueError):
        netns.node_netns_name(prefix, "node-a")


@pytest.mark.parametrize("name", ["", ".", "..", "a/b", "/abs"])
def test_path_of_never_leaves_the_netns_dir(name):
    with pytest.raises(ValueError):
        netns.path_of(name)


@settings(max_examples=300, deadline=None)
@given(a=st.text(max_size=80), b=st.text(max_size=80), uid=st.uuids())
def test_names_are_safe_and_tell_nodes_apart(a, b, uid):
    for node in (a, b):
        for name in (netns.node_netns_name("k1s", node),
                     netns.pod_netns_name("k1s", node, str(uid))):
            assert re.fullmatch(r"[a-z0-9_-]+", name), name
            assert os.path.dirname(netns.path_of(name)) == netns.NETNS_DIR
            assert len(name) < 120
        # the uid is read back from the pod name after the node's part
        head = netns.pod_netns_prefix("k1s", node)
        assert netns.pod_netns_name("k1s", node, str(uid))[len(head):] == str(uid)
    if a != b:
        assert netns.node_tag(a) != netns.node_tag(b)
        # one node's pod names never fall under another node's listing
        assert not netns.pod_netns_prefix("k1s", a).startswith(netns.pod_netns_prefix("k1s", b))


# -- namespaces and threads ---------------------------------------------------------------------
def _own_netns() -> str:
    return os.readlink("/proc/thread-self/ns/net")


@needs_root
def test_create_is_idempotent_and_remove_reports_absence(prefix):
    name = netns.node_netns_name(prefix, "n")
    path = netns.create(name)
    ino = os.stat(path).st_ino
    assert netns.is_netns(path)
    assert netns.create(name) == path and os.stat(path).st_ino == ino   # same namespace
    assert netns.remove(name) is True
    assert not os.path.exists(path)
    assert netns.remove(name) is False


@needs_root
def test_create_mounts_over_a_placeholder_left_by_a_crash(prefix):
    name = netns.node_netns_name(prefix, "n")
    path = netns.path_of(name)
    netns._ensure_dir()
    open(path, "w").close()                    # the file exists, nothing is mounted on it
    assert not netns.is_netns(path)
    netns.create(name)
    assert netns.is_netns(path)


@needs_root
def test_in_netns_runs_inside_and_leaves_the_caller_where_it_was(prefix):
    path = netns.create(netns.node_netns_name(prefix, "n"))
    before = _own_netns()
    inside = netns.in_netns(path, _own_netns)
    assert inside != before
    assert inside == f"net:[{os.stat(path).st_ino}]"
    assert _own_netns() == before
    # a fresh namespace has only loopback, whatever the machine has
    assert [n for _i, n in netns.in_netns(path, socket.if_nameindex)] == ["lo"]
    with pytest.raises(ZeroDivisionError):
        netns.in_netns(path, lambda: 1 / 0)


@needs_root
async def test_in_netns_async_and_sockets_keep_their_namespace(prefix):
    path = netns.create(netns.node_netns_name(prefix, "n"))
    assert await netns.in_netns_async(path, _own_netns) == f"net:[{os.stat(path).st_ino}]"
    s = await netns.socket_in_async(path, socket.AF_INET, socket.SOCK_DGRAM)
    with s:
        # SIOCGSKNS gives the namespace a socket belongs to: the one it was created in
        assert _socket_netns(s) == f"net:[{os.stat(path).st_ino}]"
        assert _socket_netns(s) != _own_netns()


SIOCGSKNS = 0x894C


def _socket_netns(s: socket.socket) -> str:
    fd = fcntl.ioctl(s.fileno(), SIOCGSKNS)
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    finally:
        os.close(fd)


@needs_root
def test_cleanup_all_removes_only_its_own_prefix(prefix):
    other = "t" + uuid.uuid4().hex[:10]
    try:
        mine = [netns.create(netns.node_netns_name(prefix, "n")),
                netns.create(netns.pod_netns_name(prefix, "n", "u1"))]
        theirs = netns.create(netns.node_netns_name(other, "n"))
        gone = netns.cleanup_all(prefix)
        assert sorted(gone) == sorted(os.path.basename(p) for p in mine)
        assert netns.is_netns(theirs)
        assert netns.names(prefix + "-") == []
    finally:
        netns.cleanup_all(other)


@settings(max_examples=300, deadline=None)
@given(uid=st.text(max_size=70), node=st.text(max_size=40))
def test_any_uid_gives_a_safe_name_or_is_refused(uid, node):
    try:
        name = netns.pod_netns_name("k1s", node, uid)
    except ValueError:
        return
    assert re.fullmatch(r"[a-z0-9_-]+", name.lower()), name
    assert os.path.dirname(netns.path_of(name)) == netns.NETNS_DIR
    assert name.endswith("_" + uid)
