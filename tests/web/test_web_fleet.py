"""The fleet lists (targets and hosts) over a real store (SQLite and PostgreSQL)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event

from secperf.bus import AsyncEventBus
from secperf.model import Severity
from secperf.store import Store
from secperf.web import create_app
from support.two_targets import ALPHA, BETA, HOST_ONE, HOST_TWO, fill_two_targets, scan


def _now() -> int:
    return time.time_ns() // 1_000_000


@pytest.fixture()
def store(store_url: str) -> Iterator[Store]:
    with Store.open(store_url) as opened:
        fill_two_targets(opened, _now())
        yield opened


def _client(store: Store) -> TestClient:
    return TestClient(create_app(store, AsyncEventBus(), token="fleet-token-0123456789"))


def _by_name(entries: list[dict[str, Any]], key: str) -> dict[str, dict[str, Any]]:
    return {e[key]: e for e in entries}


def test_every_target_with_its_scan_findings_gate_cost_and_alerts(store: Store) -> None:
    with _client(store) as client:
        document = client.get("/api/v1/fleet/targets").json()
        assert document["total"] == 2 and document["offset"] == 0
        assert [t["target"] for t in document["targets"]] == [ALPHA, BETA]
        targets = _by_name(document["targets"], "target")
        alpha, beta = targets[ALPHA], targets[BETA]
        assert alpha["last_scan"]["scan_id"] == f"{ALPHA}-scan-2"
        assert alpha["findings"]["violations"] == 2
        assert alpha["findings"]["severity_counts"]["high"] == 1
        assert alpha["findings"]["severity_counts"]["medium"] == 1
        assert alpha["gate"]["verdict"] == "block"
        assert alpha["scan_cost"] == {
            "scan_id": f"{ALPHA}-scan-2",
            "duration_ms": 2000.0,
            "cpu_seconds": 3.5,
        }
        # The silenced alert on alpha counts apart.
        assert alpha["alerts"] == {"firing": 1, "silenced": 1}
        assert beta["findings"]["severity_counts"]["low"] == 1
        assert beta["gate"]["verdict"] == "pass"
        assert beta["scan_cost"]["cpu_seconds"] is None
        assert beta["alerts"] == {"firing": 1, "silenced": 0}
        assert isinstance(document["server_ms"], int)


def test_fleet_counts_are_the_overviews_under_todays_triage(store: Store) -> None:
    with _client(store) as client:
        findings = client.get("/api/v1/findings", params={"target": ALPHA}).json()["findings"]
        high = next(f for f in findings if f["severity"] == "high")
        decided = client.post(
            f"/api/v1/findings/{high['fingerprint']}/triage",
            json={"state": "false_positive", "reason": "test data", "author": "qa"},
            headers={"Authorization": "Bearer fleet-token-0123456789"},
        )
        assert decided.status_code == 200, decided.text
        fleet = _by_name(client.get("/api/v1/fleet/targets").json()["targets"], "target")
        for name in (ALPHA, BETA):
            overview = client.get("/api/v1/overview", params={"target": name}).json()
            assert (
                fleet[name]["findings"]["severity_counts"]
                == (overview["security"]["severity_counts"])
            )
            assert fleet[name]["findings"]["violations"] == overview["security"]["violations"]
        assert fleet[ALPHA]["findings"]["severity_counts"]["high"] == 0


def test_targets_are_paginated_and_filtered(store: Store) -> None:
    with _client(store) as client:
        page = client.get("/api/v1/fleet/targets", params={"limit": 1, "offset": 1}).json()
        assert page["total"] == 2 and [t["target"] for t in page["targets"]] == [BETA]
        one = client.get("/api/v1/fleet/targets", params={"target": ALPHA}).json()
        assert [t["target"] for t in one["targets"]] == [ALPHA]
        none = client.get("/api/v1/fleet/targets", params={"target": "nowhere"}).json()
        assert none == {**none, "total": 0, "targets": []}
        assert client.get("/api/v1/fleet/targets", params={"limit": 0}).status_code == 422
        assert client.get("/api/v1/fleet/targets", params={"limit": 1001}).status_code == 422


def test_every_host_with_host_wide_metrics_and_alerts(store: Store) -> None:
    with _client(store) as client:
        document = client.get("/api/v1/fleet/hosts").json()
        assert [h["host"] for h in document["hosts"]] == [HOST_ONE, HOST_TWO]
        hosts = _by_name(document["hosts"], "host")
        one = hosts[HOST_ONE]
        # The host's total, not one core's (the per-core series read 99 %).
        assert one["latest"] == {"cpu_percent": 35.0, "memory_percent": 61.0, "load_1m": 1.5}
        assert one["alerts"] == {"firing": 1, "silenced": 1}
        assert one["last_seen_ms"] is not None and one["last_seen_ms"] <= _now()
        assert hosts[HOST_TWO]["latest"]["cpu_percent"] == 80.0
        assert hosts[HOST_TWO]["alerts"] == {"firing": 1, "silenced": 0}
        only = client.get("/api/v1/fleet/hosts", params={"host": HOST_TWO}).json()
        assert [h["host"] for h in only["hosts"]] == [HOST_TWO]


def _statements(store: Store, client: TestClient, path: str) -> int:
    """How many SQL statements one request runs."""
    count = 0

    def counted(*_: Any) -> None:
        nonlocal count
        count += 1

    event.listen(store.engine, "before_cursor_execute", counted)
    try:
        assert client.get(path).status_code == 200
    finally:
        event.remove(store.engine, "before_cursor_execute", counted)
    return count


def test_the_fleet_reads_do_not_grow_with_the_number_of_targets(store: Store) -> None:
    with _client(store) as client:
        # Warm: a connection's first use may run set-up statements of its own.
        for path in ("/api/v1/fleet/targets", "/api/v1/fleet/hosts") * 2:
            client.get(path)
        before = _statements(store, client, "/api/v1/fleet/targets")
        hosts_before = _statements(store, client, "/api/v1/fleet/hosts")
        now = _now()
        for n in range(8):
            scan(store, f"t{n}-scan", f"extra-{n:02d}", HOST_TWO, now - n, [Severity.LOW])
        assert client.get("/api/v1/fleet/targets").json()["total"] == 10
        assert _statements(store, client, "/api/v1/fleet/targets") == before
        assert _statements(store, client, "/api/v1/fleet/hosts") == hosts_before
