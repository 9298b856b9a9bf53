"""StatefulSet validation messages the controller's users meet first, through the real API
server: maxUnavailable as upstream's validateRollingUpdateStatefulSet words it (an
IntOrString printed unquoted, "cannot be 0" after the format check)."""

from __future__ import annotations

import pytest

from k1s.api import registry
from k1s.client.errors import ApiError
from k1s.client.rest import APIClient

STS = registry.get("statefulsets.apps")
FIELD = "spec.updateStrategy.rollingUpdate.maxUnavailable"
PERCENT = ("a valid percent string must be a numeric string followed by an ending '%' "
           "(e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')")


def sts(max_unavailable) -> dict:
    return {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "web"},
            "spec": {"selector": {"matchLabels": {"app": "nginx"}}, "serviceName": "nginx",
                     "updateStrategy": {"type": "RollingUpdate",
                                        "rollingUpdate": {"maxUnavailable": max_unavailable}},
                     "template": {"metadata": {"labels": {"app": "nginx"}},
                                  "spec": {"containers": [{"name": "n", "image": "nginx"}]}}}}


@pytest.mark.parametrize("value,causes", [
    (0, [f"{FIELD}: Invalid value: 0: cannot be 0"]),
    (-1, [f"{FIELD}: Invalid value: -1: must be greater than or equal to 0"]),
    ("0%", [f"{FIELD}: Invalid value: 0%: cannot be 0"]),
    ("150%", [f"{FIELD}: Invalid value: 150%: must not be greater than 100%"]),
    ("abc", [f"{FIELD}: Invalid value: abc: {PERCENT}",
             f"{FIELD}: Invalid value: abc: cannot be 0"]),
])
async def test_max_unavailable_errors(api_server, value, causes):
    async with APIClient(api_server.url) as c:
        with pytest.raises(ApiError) as e:
            await c.create(STS, sts(value), "default")
    assert e.value.code == 422
    want = causes[0] if len(causes) == 1 else "[" + ", ".join(causes) + "]"
    assert e.value.message == f'StatefulSet.apps "web" is invalid: {want}'


@pytest.mark.parametrize("value", [1, 100, "1%", "100%"])
async def test_max_unavailable_accepted(api_server, value):
    async with APIClient(api_server.url) as c:
        got = await c.create(STS, sts(value), "default")
    assert got["spec"]["updateStrategy"]["rollingUpdate"]["maxUnavailable"] == value
