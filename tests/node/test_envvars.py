"""Container environment resolution (node/envvars): envFrom and env precedence, $(VAR)
expansion and its edge cases, every valueFrom source with kubelet's error messages, optional
references, resourceFieldRef defaults and rounding, command/args expansion (table-driven),
plus hypothesis properties."""

from __future__ import annotations

import base64
import os

import pytest
from hypothesis import given, settings, strategies as st

from k1s.node import envvars
from k1s.node.envvars import ConfigError, container_env, expand, expand_command

UID = "11111111-2222-3333-4444-555555555555"
ALLOC = {"cpu": "4", "memory": "8Gi", "ephemeral-storage": "100Gi"}


def b64(s: str | bytes) -> str:
    return base64.b64encode(s.encode() if isinstance(s, str) else s).decode()


def cm(name, data, binary=None):
    o = {"metadata": {"name": name, "namespace": "default"}, "data": data}
    if binary:
        o["binaryData"] = binary
    return o


def secret(name, data):
    return {"metadata": {"name": name, "namespace": "default"},
            "data": {k: b64(v) for k, v in data.items()}}


OBJECTS = {
    ("ConfigMap", "default", "cfg"): cm("cfg", {"A": "1", "B": "two", "1BAD": "kept",
                                                "with.dot": "ok"}, binary={"BIN": b64("x")}),
    ("ConfigMap", "default", "other"): cm("other", {"A": "from-other", "C": "c"}),
    ("Secret", "default", "creds"): secret("creds", {"USER": "admin", "PASS": "s3cr=t"}),
    ("ConfigMap", "other-ns", "cfg"): cm("cfg", {"A": "wrong namespace"}),
}


def lookup(kind, ns, name):
    return OBJECTS.get((kind, ns, name))


def pod(*containers, **spec):
    return {"metadata": {"name": "web-0", "namespace": "default", "uid": UID,
                         "labels": {"app": "web", "tier": "a b"},
                         "annotations": {"note": 'say "hi"'}},
            "spec": {"containers": list(containers) or [container()], "nodeName": "node-1",
                     "serviceAccountName": "builder", **spec}}


def container(env=None, env_from=None, name="c", resources=None, **extra):
    c = {"name": name, "image": "busybox", **extra}
    if env is not None:
        c["env"] = env
    if env_from is not None:
        c["envFrom"] = env_from
    if resources is not None:
        c["resources"] = resources
    return c


def resolve(c, p=None, services=None, objects=lookup):
    p = p or pod(c)
    return container_env(p, c, objects, pod_ip="10.1.0.5", host_ip="192.168.1.10",
                         allocatable=ALLOC, service_env=services)


def env_of(*pairs):
    return [{"name": n, "value": v} for n, v in pairs]


def ref(kind, name, key=None, optional=None):
    r = {"name": name}
    if key is not None:
        r["key"] = key
    if optional is not None:
        r["optional"] = optional
    return {kind: r}


# -- expansion ------------------------------------------------------------------------------------
@pytest.mark.parametrize("text,env,want", [
    ("plain", {}, "plain"),
    ("$(A)", {"A": "x"}, "x"),
    ("pre-$(A)-post", {"A": "x"}, "pre-x-post"),
    ("$(A)$(B)", {"A": "1", "B": "2"}, "12"),
    ("$(UNDEFINED)", {}, "$(UNDEFINED)"),
    ("a $(UNDEFINED) b $(A)", {"A": "x"}, "a $(UNDEFINED) b x"),
    ("$$", {}, "$"),
    ("$$(A)", {"A": "x"}, "$(A)"),                 # escaped: never expanded
    ("$$$(A)", {"A": "x"}, "$x"),
    ("$$$$", {}, "$$"),
    ("$", {}, "$"),                                # a lone trailing operator
    ("a$", {}, "a$"),
    ("$A", {"A": "x"}, "$A"),                      # no parenthesis: not a reference
    ("$(A", {"A": "x"}, "$(A"),                    # never closed
    ("$($(A)", {"A": "x"}, "$($(A)"),              # the name runs to the first ")": "$(A"
    ("$(A $(B", {"A": "x"}, "$(A $(B"),
    ("$()", {}, "$()"),
    ("$(A)", {"A": "$(B)", "B": "no"}, "$(B)"),    # values are not expanded again
    ("$(A B)", {"A B": "odd"}, "odd"),
    ("ünï$(A)cødé", {"A": "é"}, "ünïécødé"),
])
def test_expand(text, env, want):
    assert expand(text, env) == want


def test_expand_contexts_first_wins():
    assert expand("$(A)-$(B)", {"A": "declared"}, {"A": "service", "B": "svc"}) == \
        "declared-svc"


# -- envFrom --------------------------------------------------------------------------------------
def test_env_from_configmap_and_secret():
    c = container(env_from=[{"configMapRef": {"name": "cfg"}}, {"secretRef": {"name": "creds"}}])
    env = resolve(c)
    assert env == {"A": "1", "B": "two", "1BAD": "kept", "with.dot": "ok", "USER": "admin",
                   "PASS": "s3cr=t"}
    assert "BIN" not in env                       # binaryData is not offered to env


def test_env_from_prefix_and_later_source_wins():
    c = container(env_from=[{"configMapRef": {"name": "cfg"}},
                            {"configMapRef": {"name": "other"}},
                            {"prefix": "S_", "secretRef": {"name": "creds"}}])
    env = resolve(c)
    assert env["A"] == "from-other" and env["C"] == "c" and env["B"] == "two"
    assert env["S_USER"] == "admin" and "USER" not in env


def test_env_from_skips_keys_that_are_not_variable_names():
    objs = {("ConfigMap", "default", "odd"): cm("odd", {"GOOD": "1", "a=b": "2", "": "3",
                                                        "tab\tkey": "4"})}
    env = resolve(container(env_from=[{"configMapRef": {"name": "odd"}}]),
                  objects=lambda k, ns, n: objs.get((k, ns, n)))
    assert env == {"GOOD": "1"}


@pytest.mark.parametrize("source,message", [
    ({"configMapRef": {"name": "missing"}}, 'configmap "missing" not found'),
    ({"secretRef": {"name": "missing"}}, 'secret "missing" not found'),
    ({"configMapRef": {"name": "missing", "optional": False}}, 'configmap "missing" not found'),
])
def test_env_from_missing_object(source, message):
    with pytest.raises(ConfigError) as e:
        resolve(container(env_from=[source]))
    assert str(e.value) == message
    assert e.value.reason == "CreateContainerConfigError"


def test_env_from_optional_missing_defines_nothing():
    c = container(env_from=[{"configMapRef": {"name": "missing", "optional": True}},
                            {"secretRef": {"name": "missing", "optional": True}},
                            {"configMapRef": {"name": "other"}}])
    assert resolve(c) == {"A": "from-other", "C": "c"}


def test_objects_are_read_from_the_pods_namespace():
    p = pod(container())
    p["metadata"]["namespace"] = "other-ns"
    c = container(env_from=[{"configMapRef": {"name": "cfg"}}])
    assert resolve(c, p) == {"A": "wrong namespace"}


# -- env values and expansion order ---------------------------------------------------------------
def test_env_overrides_env_from_and_expands_in_order():
    c = container(env_from=[{"configMapRef": {"name": "cfg"}}],
                  env=env_of(("X", "$(A)-$(Y)"), ("Y", "y"), ("Z", "$(Y)+$(X)"),
                             ("A", "over"), ("W", "$(A)")))
    env = resolve(c)
    assert env["X"] == "1-$(Y)"                    # Y was not defined yet
    assert env["Z"] == "y+1-$(Y)"
    assert env["A"] == "over" and env["W"] == "over"


def test_env_self_reference_sees_the_previous_value():
    c = container(env=env_of(("P", "/bin"), ("P", "/usr/bin:$(P)")))
    assert resolve(c)["P"] == "/usr/bin:/bin"


def test_empty_value_is_defined_and_not_expanded():
    c = container(env=[{"name": "E"}, {"name": "F", "value": ""}, {"name": "G", "value": "$(E)|"}])
    assert resolve(c) == {"E": "", "F": "", "G": "|"}


def test_value_wins_over_value_from():
    c = container(env=[{"name": "V", "value": "literal",
                        "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}])
    assert resolve(c) == {"V": "literal"}


def test_service_env_lowest_precedence_but_visible_to_expansion():
    services = {"DB_SERVICE_HOST": "10.0.0.7", "DB_SERVICE_PORT": "5432", "A": "svc"}
    c = container(env_from=[{"configMapRef": {"name": "other"}}],
                  env=env_of(("URL", "pg://$(DB_SERVICE_HOST):$(DB_SERVICE_PORT)"),
                             ("DB_SERVICE_PORT", "6543"), ("B", "$(A)")))
    env = resolve(c, services=services)
    assert env["URL"] == "pg://10.0.0.7:5432"
    assert env["DB_SERVICE_PORT"] == "6543"        # the container's own definition wins
    assert env["DB_SERVICE_HOST"] == "10.0.0.7"
    assert env["A"] == "from-other" and env["B"] == "from-other"
    # kubelet's order: the container's variables as declared, then the remaining service ones
    assert list(env)[-1] == "DB_SERVICE_HOST"


@pytest.mark.parametrize("name", ["", "A=B", "NUL\x00", None])
def test_env_name_that_no_process_can_hold(name):
    with pytest.raises(ConfigError, match="invalid environment variable name"):
        resolve(container(env=[{"name": name, "value": "v"}]))


def test_relaxed_names_are_accepted():
    c = container(env=env_of(("1st", "a"), ("my-var.x", "b"), ("with space", "c")))
    assert resolve(c) == {"1st": "a", "my-var.x": "b", "with space": "c"}


def test_nul_in_a_value_is_refused():
    objs = {("Secret", "default", "bin"): secret("bin", {"K": b"a\x00b"})}
    c = container(env=[{"name": "K", "valueFrom": ref("secretKeyRef", "bin", "K")}])
    with pytest.raises(ConfigError, match="K contains a NUL byte"):
        resolve(c, objects=lambda k, ns, n: objs.get((k, ns, n)))


def test_secret_bytes_that_are_not_utf8_survive():
    objs = {("Secret", "default", "bin"): secret("bin", {"K": b"\xff\xfe"})}
    c = container(env=[{"name": "K", "valueFrom": ref("secretKeyRef", "bin", "K")}])
    value = resolve(c, objects=lambda k, ns, n: objs.get((k, ns, n)))["K"]
    assert os.fsencode(value) == b"\xff\xfe"


# -- configMapKeyRef / secretKeyRef ---------------------------------------------------------------
@pytest.mark.parametrize("source,want", [
    (ref("configMapKeyRef", "cfg", "B"), "two"),
    (ref("secretKeyRef", "creds", "PASS"), "s3cr=t"),
    (ref("configMapKeyRef", "cfg", "1BAD"), "kept"),
])
def test_key_refs(source, want):
    assert resolve(container(env=[{"name": "V", "valueFrom": source}])) == {"V": want}


@pytest.mark.parametrize("source,message", [
    (ref("configMapKeyRef", "missing", "k"), 'configmap "missing" not found'),
    (ref("secretKeyRef", "missing", "k"), 'secret "missing" not found'),
    (ref("configMapKeyRef", "cfg", "nope"), "couldn't find key nope in ConfigMap default/cfg"),
    (ref("secretKeyRef", "creds", "nope"), "couldn't find key nope in Secret default/creds"),
    (ref("configMapKeyRef", "cfg", "BIN"), "couldn't find key BIN in ConfigMap default/cfg"),
    (ref("secretKeyRef", "creds", "nope", optional=False),
     "couldn't find key nope in Secret default/creds"),
])
def test_key_ref_errors(source, message):
    with pytest.raises(ConfigError) as e:
        resolve(container(env=[{"name": "V", "valueFrom": source}]))
    assert str(e.value) == message


@pytest.mark.parametrize("source", [
    ref("configMapKeyRef", "missing", "k", optional=True),
    ref("secretKeyRef", "missing", "k", optional=True),
    ref("configMapKeyRef", "cfg", "nope", optional=True),
    ref("secretKeyRef", "creds", "nope", optional=True),
])
def test_optional_key_ref_missing_defines_no_variable(source):
    c = container(env_from=[{"configMapRef": {"name": "other"}}],
                  env=[{"name": "A", "valueFrom": source}])
    assert resolve(c) == {"A": "from-other", "C": "c"}   # envFrom's A is left alone


def test_each_object_is_looked_up_once():
    calls = []

    def counting(kind, ns, name):
        calls.append((kind, ns, name))
        return lookup(kind, ns, name)
    c = container(env_from=[{"configMapRef": {"name": "cfg"}}],
                  env=[{"name": "X", "valueFrom": ref("configMapKeyRef", "cfg", "A")},
                       {"name": "Y", "valueFrom": ref("configMapKeyRef", "cfg", "B")}])
    resolve(c, objects=counting)
    assert calls == [("ConfigMap", "default", "cfg")]


def test_references_names_every_object_read():
    c = container(env_from=[{"configMapRef": {"name": "cfg"}}, {"secretRef": {"name": "creds"}}],
                  env=[{"name": "X", "valueFrom": ref("configMapKeyRef", "other", "A")},
                       {"name": "Y", "valueFrom": ref("secretKeyRef", "s2", "k")},
                       {"name": "Z", "value": "v", "valueFrom": ref("secretKeyRef", "s3", "k")}])
    assert envvars.references(pod(c), c) == {
        ("ConfigMap", "default", "cfg"), ("Secret", "default", "creds"),
        ("ConfigMap", "default", "other"), ("Secret", "default", "s2")}


# -- fieldRef -------------------------------------------------------------------------------------
@pytest.mark.parametrize("path,want", [
    ("metadata.name", "web-0"),
    ("metadata.namespace", "default"),
    ("metadata.uid", UID),
    ("metadata.labels['app']", "web"),
    ("metadata.labels['absent']", ""),
    ("metadata.annotations['note']", 'say "hi"'),
    ("metadata.labels", 'app="web"\ntier="a b"'),
    ("metadata.annotations", 'note="say \\"hi\\""'),
    ("spec.nodeName", "node-1"),
    ("spec.host", "node-1"),
    ("spec.serviceAccountName", "builder"),
    ("status.hostIP", "192.168.1.10"),
    ("status.hostIPs", "192.168.1.10"),
    ("status.podIP", "10.1.0.5"),
    ("status.podIPs", "10.1.0.5"),
])
def test_field_ref(path, want):
    c = container(env=[{"name": "V", "valueFrom": {"fieldRef": {"apiVersion": "v1",
                                                                "fieldPath": path}}}])
    assert resolve(c) == {"V": want}


@pytest.mark.parametrize("field_ref,message", [
    ({"fieldPath": "spec.containers"}, "field label not supported: spec.containers"),
    ({"fieldPath": "spec.nodeName['x']"}, "field label does not support subscript: "
                                          "spec.nodeName['x']"),
    ({"fieldPath": "status.phase"}, "unsupported fieldPath: status.phase"),
    ({"apiVersion": "v2", "fieldPath": "metadata.name"}, "unsupported pod version: v2"),
])
def test_field_ref_errors(field_ref, message):
    with pytest.raises(ConfigError) as e:
        resolve(container(env=[{"name": "V", "valueFrom": {"fieldRef": field_ref}}]))
    assert str(e.value) == message


def test_field_ref_value_is_usable_by_later_expansion():
    c = container(env=[{"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                       {"name": "HOST", "value": "$(POD).svc"}])
    assert resolve(c)["HOST"] == "web-0.svc"


# -- resourceFieldRef -----------------------------------------------------------------------------
def res_env(resource, divisor=None, container_name=None):
    r = {"resource": resource}
    if divisor is not None:
        r["divisor"] = divisor
    if container_name is not None:
        r["containerName"] = container_name
    return [{"name": "V", "valueFrom": {"resourceFieldRef": r}}]


@pytest.mark.parametrize("resources,resource,divisor,want", [
    ({"limits": {"cpu": "250m"}}, "limits.cpu", None, "1"),       # rounded up to whole cores
    ({"limits": {"cpu": "250m"}}, "limits.cpu", "1m", "250"),
    ({"limits": {"cpu": "1500m"}}, "limits.cpu", "1", "2"),
    ({"limits": {"cpu": "2"}}, "limits.cpu", "1", "2"),
    ({"limits": {"cpu": "250m"}}, "limits.cpu", "100m", "3"),
    ({"limits": {"cpu": "1"}}, "limits.cpu", "0", "1"),            # a zero divisor means 1
    ({"limits": {"memory": "1Gi"}}, "limits.memory", "1Mi", "1024"),
    ({"limits": {"memory": "1Gi"}}, "limits.memory", None, str(1 << 30)),
    ({"limits": {"memory": "1000"}}, "limits.memory", "1Ki", "1"),
    ({"limits": {"memory": "1500M"}}, "limits.memory", "1G", "2"),
    ({"limits": {"ephemeral-storage": "2Gi"}}, "limits.ephemeral-storage", "1Gi", "2"),
    ({}, "limits.cpu", None, "4"),                                 # the node's allocatable
    ({}, "limits.memory", "1Gi", "8"),
    ({}, "limits.ephemeral-storage", "1Gi", "100"),
    ({"limits": {"cpu": "0"}}, "limits.cpu", None, "4"),           # a zero limit is unset
    ({"requests": {"cpu": "100m"}}, "requests.cpu", "1m", "100"),
    ({"requests": {"memory": "64Mi"}}, "requests.memory", "1Mi", "64"),
    ({}, "requests.cpu", None, "0"),                               # no request: 0
    ({"limits": {"cpu": "3"}}, "requests.cpu", None, "3"),         # requests default to limits
    ({"limits": {"hugepages-2Mi": "4Mi"}}, "limits.hugepages-2Mi", "2Mi", "2"),
    ({"limits": {"memory": "1e30"}}, "limits.memory", None, str((1 << 63) - 1)),  # capped
    ({"limits": {"memory": "1"}}, "limits.memory", "1Ei", "1"),
])
def test_resource_field_ref(resources, resource, divisor, want):
    c = container(resources=resources, env=res_env(resource, divisor))
    assert resolve(c) == {"V": want}


def test_resource_field_ref_named_container_and_pod_level_limits():
    side = container(name="side", resources={"limits": {"memory": "256Mi"}})
    init = container(name="init")
    me = container(env=res_env("limits.memory", "1Mi", "side") +
                   [{"name": "CPU", "valueFrom": {"resourceFieldRef": {
                       "resource": "limits.cpu", "containerName": "side"}}},
                    {"name": "INIT", "valueFrom": {"resourceFieldRef": {
                        "resource": "limits.cpu", "containerName": "init"}}},
                    {"name": "MINE", "valueFrom": {"resourceFieldRef": {
                        "resource": "limits.memory", "divisor": "1Mi"}}}])
    p = pod(me, side, initContainers=[init])
    env = resolve(me, p)
    assert env["V"] == "256" and env["CPU"] == "4"
    assert env["INIT"] == "0"            # kubelet defaults regular containers' limits only
    assert env["MINE"] == str(8 * 1024)
    p["spec"]["resources"] = {"limits": {"cpu": "2", "memory": "512Mi"}}
    env = resolve(me, p)
    assert env["CPU"] == "2" and env["MINE"] == "512" and env["V"] == "256"


@pytest.mark.parametrize("env,message", [
    (res_env("limits.cpu", container_name="ghost"), "container ghost not found"),
    (res_env("limits.gpu"), "unsupported container resource : limits.gpu"),
    (res_env("cpu"), "unsupported container resource : cpu"),
    (res_env("limits.cpu", divisor="lots"), "invalid quantity 'lots' for divisor"),
])
def test_resource_field_ref_errors(env, message):
    with pytest.raises(ConfigError) as e:
        resolve(container(env=env))
    assert str(e.value) == message


# -- command and args -----------------------------------------------------------------------------
@pytest.mark.parametrize("c,want", [
    ({}, (None, None)),
    ({"command": [], "args": []}, (None, None)),
    ({"command": ["sh", "-c", "echo $(MSG)"]}, (["sh", "-c", "echo hello"], None)),
    ({"args": ["$(MSG)", "$$(MSG)", "$(NOPE)", "$HOME"]},
     (None, ["hello", "$(MSG)", "$(NOPE)", "$HOME"])),
    ({"command": ["/bin/$(BIN)"], "args": ["--name=$(MSG)-$(MSG)"]},
     (["/bin/true"], ["--name=hello-hello"])),
])
def test_expand_command(c, want):
    assert expand_command(c, {"MSG": "hello", "BIN": "true"}) == want


def test_command_sees_the_resolved_environment():
    c = container(env_from=[{"secretRef": {"name": "creds"}}],
                  env=env_of(("DSN", "$(USER):$(PASS)")),
                  command=["run", "$(DSN)"], args=["$(metadata.name)"])
    assert expand_command(c, resolve(c)) == (["run", "admin:s3cr=t"], ["$(metadata.name)"])


# -- properties -----------------------------------------------------------------------------------
names = st.text(alphabet=st.sampled_from("ABCXYZ_"), min_size=1, max_size=3)
values = st.text(alphabet=st.characters(blacklist_characters="\x00",
                                        blacklist_categories=("Cs",)), max_size=20)


@given(st.text(alphabet=st.characters(blacklist_characters="$"), max_size=60),
       st.dictionaries(names, values, max_size=5))
def test_expansion_without_dollar_is_identity(text, env):
    assert expand(text, env) == text


@given(st.text(alphabet="ab$()", max_size=40).filter(lambda t: "$$" not in t))
def test_expansion_with_nothing_defined_and_no_escape_is_identity(text):
    # an undefined reference, an unclosed "$(" and a "$" before anything else all stay as written
    assert expand(text, {}) == text


@given(names, values, st.text(alphabet=st.characters(blacklist_characters="$"), max_size=10))
def test_a_defined_reference_becomes_its_value(name, value, around):
    assert expand(f"{around}$({name}){around}", {name: value}) == f"{around}{value}{around}"


@settings(max_examples=200)
@given(st.lists(st.tuples(names, st.text(alphabet="ab$()AB", max_size=8)), max_size=8),
       st.dictionaries(names, values, max_size=3))
def test_later_entry_overrides_earlier(entries, services):
    c = container(env=env_of(*entries))
    env = resolve(c, services=services)
    # every declared name holds the value of its last entry, expanded against what preceded it
    defined: dict[str, str] = {}
    for name, value in entries:
        defined[name] = expand(value, defined, services) if value else ""
    for name, value in defined.items():
        assert env[name] == value
    for name, value in services.items():
        assert env[name] == defined.get(name, value)
    assert set(env) == set(defined) | set(services)


@settings(max_examples=100)
@given(st.dictionaries(names, values, max_size=5), st.dictionaries(names, values, max_size=5))
def test_env_from_later_source_and_env_win(first, second):
    objs = {("ConfigMap", "default", "one"): cm("one", first),
            ("Secret", "default", "two"): secret("two", second)}
    c = container(env_from=[{"configMapRef": {"name": "one"}}, {"secretRef": {"name": "two"}}],
                  env=env_of(("A", "env")))
    env = resolve(c, objects=lambda k, ns, n: objs.get((k, ns, n)))
    assert env == {**first, **second, "A": "env"}
