"""Fixtures the node tests share.

- `prefix`: a name prefix of its own for one network test's namespaces; afterwards everything
  made under it is removed, and the test fails if anything was left behind.
"""

from __future__ import annotations

import uuid

import pytest


@pytest.fixture
def prefix():
    from k1s.node.network import netns
    p = "t" + uuid.uuid4().hex[:10]
    yield p
    netns.cleanup_all(p)
    assert netns.names(p + "-") == []
