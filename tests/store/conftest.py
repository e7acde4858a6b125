"""Fixtures shared by the store tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from secperf.store import Store


@pytest.fixture
def stores(store_url: str) -> Iterator[tuple[Store, Store]]:
    """Two stores on one database: the server's and another process's."""
    server, other = Store.open(store_url), Store.open(store_url)
    yield server, other
    other.close()
    server.close()
