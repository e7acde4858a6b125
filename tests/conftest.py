"""Store engines for the store tests: every store test runs on SQLite and on PostgreSQL.

PostgreSQL is the server on this machine (``support.services``); each test
gets its own schema, dropped afterwards. ``nats_url`` is the NATS JetStream
server's. When a server cannot be reached those cases skip and say why (and
fail in CI, below).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support.services import NATS_URL, POSTGRES_URL, nats_unreachable, postgres_unreachable


def _drop_schema(schema: str) -> None:
    import psycopg

    dsn = POSTGRES_URL.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A PostgreSQL store URL in a fresh schema of its own (dropped afterwards)."""
    reason = postgres_unreachable()
    if reason is not None:
        pytest.skip(reason)
    schema = f"secperf_t_{uuid.uuid4().hex[:16]}"
    sep = "&" if "?" in POSTGRES_URL else "?"
    yield f"{POSTGRES_URL}{sep}schema={schema}"
    _drop_schema(schema)


@pytest.fixture
def nats_url() -> str:
    """The NATS JetStream server's URL (skips, or fails in CI, when it is unreachable)."""
    reason = nats_unreachable()
    if reason is not None:
        pytest.skip(reason)
    return NATS_URL


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty store's URL on each engine."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'nested' / 'dir' / 'secperf.db'}"
        return
    yield request.getfixturevalue("postgres_url")


@pytest.fixture
def stores(store_url: str) -> Iterator[tuple[Any, Any]]:
    """Two stores on one database: the server's and another process's."""
    from secperf.store import Store

    server, other = Store.open(store_url), Store.open(store_url)
    yield server, other
    other.close()
    server.close()


# --------------------------------------------------------------------------- CI strictness

#: In CI every service and tool a test drives is supposed to be there, so a
#: skip ("PostgreSQL is unreachable", "Chromium is not installed") is a failure.
REQUIRE_SERVICES = os.environ.get("SECPERF_REQUIRE_SERVICES", "") not in ("", "0")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """With ``SECPERF_REQUIRE_SERVICES=1``, turn a skipped test into a failed one."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if not REQUIRE_SERVICES or not report.skipped or hasattr(report, "wasxfail"):
        return
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    report.outcome = "failed"
    report.longrepr = (
        f"{reason}\nSECPERF_REQUIRE_SERVICES=1: a service or tool this test needs is missing,"
        " which fails the test in CI instead of skipping it"
    )


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Iterator[None]:
    """The same for a whole module skipped at import (``pytest.importorskip``)."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if REQUIRE_SERVICES and report.skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = (
            f"{reason}\nSECPERF_REQUIRE_SERVICES=1: a module this test file needs is missing"
        )
