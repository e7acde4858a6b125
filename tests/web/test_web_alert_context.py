"""Alerts over a time window, and an alert's context read without an alert engine.

The real secperf app over a real SQLite store: ``GET /api/v1/alerts`` with
``start_ms``/``end_ms`` lists the alerts active at some time in the window
(begun by its end, not resolved before its start), and
``GET /api/v1/alerts/{fingerprint}/context`` builds the context the alert
detail renders (the scan, its new findings, the host's CPU/memory/load) from
the store when no engine runs.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from secperf.bus import AsyncEventBus
from secperf.model import (
    Alert,
    AlertState,
    Finding,
    MetricKind,
    Sample,
    SecurityMetrics,
    Severity,
    make_fingerprint,
)
from secperf.store import Store
from secperf.web import create_app

TOKEN = "alert-context-token"
MIN = 60_000
HOUR = 60 * MIN
HEADERS = {"Authorization": f"Bearer {TOKEN}"}


def _alert(fingerprint: str, state: AlertState, **times: int | None) -> Alert:
    return Alert(
        fingerprint=fingerprint,
        rule="HighCpu",
        state=state,
        severity=Severity.HIGH,
        kind=MetricKind.PERFORMANCE,
        labels={"alertname": "HighCpu", "host": "web-1", "target": "shop"},
        annotations={"summary": fingerprint},
        value=90.0,
        active_since_ms=times.get("active_since_ms"),
        fired_at_ms=times.get("fired_at_ms"),
        resolved_at_ms=times.get("resolved_at_ms"),
        updated_ms=times.get("updated_ms") or 0,
    )


@pytest.fixture()
def now() -> int:
    return time.time_ns() // 1_000_000


@pytest.fixture()
def client(tmp_path: Path, now: int) -> Iterator[TestClient]:
    store = Store.open(tmp_path / "secperf.db")
    start, end = now - 30 * MIN, now - 25 * MIN
    store.record_scan_started("scan-shop", "shop", start, ["bandit"])
    findings = [
        Finding(
            fingerprint=make_fingerprint(f"R{i}", f"app/{i}.py", "x"),
            rule_id=f"R{i}",
            scanner="bandit",
            severity=Severity.CRITICAL if i == 0 else Severity.MEDIUM,
            message="m",
            path=f"app/{i}.py",
            line=i + 1,
        )
        for i in range(3)
    ]
    store.record_scan_completed(
        SecurityMetrics(
            scan_id="scan-shop",
            target="shop",
            started_ms=start,
            finished_ms=end,
            scan_duration_ms=float(end - start),
            violations_found=3,
            false_positive_rate=0.0,
            vulnerability_severity_counts={"critical": 1, "medium": 2},
            scan_coverage_percent=100.0,
            new_findings=3,
        ),
        "ok",
    )
    store.add_findings("scan-shop", findings, {f.fingerprint for f in findings})
    store.write_samples(
        [
            Sample(name, {"host": "web-1"}, now - 20 * MIN + i * 10_000, value)
            for i in range(60)
            for name, value in (("cpu_percent", 80.0), ("memory_percent", 40.0), ("load_1m", 2.0))
        ]
    )
    alerts = [
        # Resolved an hour before the window: out.
        _alert(
            "old",
            AlertState.RESOLVED,
            active_since_ms=now - 5 * HOUR,
            fired_at_ms=now - 5 * HOUR,
            resolved_at_ms=now - 4 * HOUR,
            updated_ms=now - 4 * HOUR,
        ),
        # Began before the window and still firing: in.
        _alert(
            "long",
            AlertState.FIRING,
            active_since_ms=now - 6 * HOUR,
            fired_at_ms=now - 6 * HOUR,
            updated_ms=now - 6 * HOUR,
        ),
        # Fired and resolved inside the window: in.
        _alert(
            "inside",
            AlertState.RESOLVED,
            active_since_ms=now - 2 * HOUR,
            fired_at_ms=now - 2 * HOUR,
            resolved_at_ms=now - 90 * MIN,
            updated_ms=now - 90 * MIN,
        ),
        # Began after the window ended: out.
        _alert(
            "later",
            AlertState.FIRING,
            active_since_ms=now - 15 * MIN,
            fired_at_ms=now - 15 * MIN,
            updated_ms=now - 15 * MIN,
        ),
        _alert(
            "cpu-now",
            AlertState.FIRING,
            active_since_ms=now - 18 * MIN,
            fired_at_ms=now - 17 * MIN,
            updated_ms=now - 17 * MIN,
        ),
    ]
    for alert in alerts:
        store.upsert_alert(alert)
    app = create_app(store, AsyncEventBus(), token=TOKEN)
    with TestClient(app) as test_client:
        yield test_client
    store.close()


def test_alerts_in_a_time_window(client: TestClient, now: int) -> None:
    window = {"start_ms": now - 3 * HOUR, "end_ms": now - HOUR}
    res = client.get("/api/v1/alerts", params=window, headers=HEADERS)
    assert res.status_code == 200, res.text
    assert {a["fingerprint"] for a in res.json()["alerts"]} == {"long", "inside"}
    # Without a window every alert is listed; the counts are those of now either way.
    every = client.get("/api/v1/alerts", headers=HEADERS).json()
    assert {a["fingerprint"] for a in every["alerts"]} == {
        "old",
        "long",
        "inside",
        "later",
        "cpu-now",
    }
    assert res.json()["counts"] == every["counts"] == {"firing": 3, "silenced": 0}
    # One bound alone limits on that side only.
    since = client.get(
        "/api/v1/alerts", params={"start_ms": now - 3 * HOUR}, headers=HEADERS
    ).json()
    assert {a["fingerprint"] for a in since["alerts"]} == {"long", "inside", "later", "cpu-now"}
    firing = client.get(
        "/api/v1/alerts", params={**window, "state": "firing"}, headers=HEADERS
    ).json()
    assert [a["fingerprint"] for a in firing["alerts"]] == ["long"]


def test_a_reversed_window_is_refused_naming_the_field(client: TestClient, now: int) -> None:
    res = client.get(
        "/api/v1/alerts", params={"start_ms": now, "end_ms": now - HOUR}, headers=HEADERS
    )
    assert res.status_code == 422
    assert res.json()["error"]["where"] == "query.end_ms"
    assert "before start_ms" in res.json()["error"]["message"]
    bad = client.get("/api/v1/alerts", params={"start_ms": "yesterday"}, headers=HEADERS)
    assert bad.status_code == 422
    assert "start_ms" in bad.text


def test_context_without_an_engine_names_the_scan_its_findings_and_the_host(
    client: TestClient,
) -> None:
    res = client.get("/api/v1/alerts/cpu-now/context", headers=HEADERS)
    assert res.status_code == 200, res.text
    context = res.json()["context"]
    security = context["security"]
    assert security["scope"] == {"target": "shop", "host": None}
    assert security["latest_scan"]["scan_id"] == "scan-shop"
    assert security["latest_scan"]["target"] == "shop"
    assert {f["rule_id"] for f in security["new_findings"]} == {"R0", "R1", "R2"}
    # Never a finding's snippet in the context.
    assert all("snippet" not in f for f in security["new_findings"])
    performance = context["performance"]
    assert performance["host"] == "web-1"
    assert performance["load"]["cpu_percent"] == pytest.approx(80.0)
    assert performance["load"]["memory_percent"] == pytest.approx(40.0)
    assert performance["load"]["load_1m"] == pytest.approx(2.0)
    assert "no security scan was running" in context["text"]


def test_context_of_an_unknown_alert_is_a_404(client: TestClient) -> None:
    res = client.get("/api/v1/alerts/nope/context", headers=HEADERS)
    assert res.status_code == 404
    assert res.json()["error"]["where"] == "path.fingerprint"
    bad = client.get("/api/v1/alerts/a%20b/context", headers=HEADERS)
    assert bad.status_code == 422
