"""Fixtures for client tests: an APIClient on the in-process API server, unique names."""

import uuid

import pytest

from k1s.client.rest import APIClient


@pytest.fixture(params=["http", "in-process"])
async def client(api_server, request):
    """Every client test runs over HTTP and over the in-process transport `k1s up` uses
    (k1s.client.local): the answers must be the same."""
    from k1s.client import local
    if request.param == "in-process":
        local.register(api_server.url, api_server.server.handlers.dispatch)
    c = APIClient(api_server.url, user_agent="k1s-client-tests", timeout=10)
    try:
        yield c
    finally:
        await c.close()
        local.unregister(api_server.url)


@pytest.fixture
def uniq():
    """A short random suffix so tests sharing a server never collide."""
    return uuid.uuid4().hex[:8]


@pytest.fixture
async def namespace(client, uniq):
    """A fresh namespace for one test."""
    name = f"t-{uniq}"
    await client.create("namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                       "metadata": {"name": name}})
    yield name
