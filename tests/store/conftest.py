"""Fixtures for the store tests: a started SqliteStore in a fresh directory."""

import pytest

from k1s.store import SqliteStore


@pytest.fixture
async def store(tmp_path):
    s = SqliteStore(str(tmp_path / "state.db"), compact_interval=None)
    await s.start()
    yield s
    await s.close()


@pytest.fixture
def db_path(tmp_path):
    return str(tmp_path / "state.db")
