"""Fixtures for client tests: an APIClient on the in-process API server, unique names."""

import uuid

import pytest

from k1s.client.rest import APIClient


@pytest.fixture
async def client(api_server):
    c = APIClient(api_server.url, user_agent="k1s-client-tests", timeout=10)
    yield c
    await c.close()


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
