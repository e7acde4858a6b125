"""A SARIF upload is an import, not a scan; a triage changes the overview at once.

The real app (``create_app``) over a real SQLite store with its StoreWriter,
driven through ``TestClient``; the alert engine runs the shipped
``ScanCoverageLow`` rule on a real in-memory bus over the same store.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from secperf.alerts import AlertEngine, default_rules
from secperf.analysis.correlate_store import run_correlation
from secperf.bus import AsyncEventBus
from secperf.events import ScanCompleted
from secperf.model import AlertState, Finding, Severity
from secperf.store import Store, StoreWriter
from secperf.web import create_app
from support.factories import make_finding, make_scan_metrics
from support.paths import FIXTURES

TOKEN = "imports-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _now() -> int:
    return time.time_ns() // 1_000_000


@pytest.fixture()
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "s.db") as opened:
        yield opened


def _client(store: Store) -> TestClient:
    writer = StoreWriter(store, flush_interval_s=0.05)
    app = create_app(store, AsyncEventBus(), token=TOKEN, writer=writer, manage_writer=True)
    return TestClient(app)


def _scan(store: Store, scan_id: str, finished_ms: int, found: list[Finding]) -> None:
    metrics = make_scan_metrics(scan_id, finished_ms, found, new=len(found))
    store.record_scan_started(scan_id, metrics.target, metrics.started_ms, ["bandit"])
    store.add_findings(scan_id, found, [f.fingerprint for f in found])
    store.record_scan_completed(metrics, "ok")


def _upload(client: TestClient, content: bytes, target: str = "webapp") -> dict[str, Any]:
    response = client.post(
        f"/api/v1/ingest/sarif?target={target}",
        content=content,
        headers={**AUTH, "Content-Type": "application/sarif+json"},
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _samples(store: Store, name: str) -> int:
    return sum(int(p.timestamps.size) for p in store.query(name, None, 0, 2**53))


def test_a_sarif_upload_is_an_import_and_no_scan(store: Store) -> None:
    now = _now()
    _scan(store, "s1", now - 60_000, [make_finding("B602", "a.py", Severity.HIGH)])
    _scan(store, "s2", now - 30_000, [make_finding("B602", "a.py", Severity.HIGH)])
    with _client(store) as client:
        result = _upload(client, (FIXTURES / "sarif" / "codeql.sarif").read_bytes())
        assert result["kind"] == "import" and result["status"] == "ok"
        scan = client.get(f"/api/v1/scans/{result['scan_id']}").json()
        assert scan["kind"] == "import"
        assert scan["metrics"]["scan_coverage_percent"] is None
        overview = client.get("/api/v1/overview", params={"target": "webapp"}).json()["security"]
        assert overview["last_scan"]["scan_id"] == result["scan_id"]
        assert overview["coverage_percent"] is None and overview["scan_duration_ms"] is None
        windows = client.get(
            "/api/v1/annotations", params={"start_ms": now - 3_600_000, "end_ms": _now()}
        ).json()["scans"]
        assert [w["scan_id"] for w in windows] == ["s1", "s2"]

    # Its findings count in the series; it measured no coverage and no scan time.
    assert _samples(store, "vulnerability_count") == 3
    assert _samples(store, "security_scan_coverage") == 2
    assert _samples(store, "security_scan_time") == 2
    run = run_correlation(store, now - 3_600_000, _now(), save=False)
    assert run.n_scans == 2


def test_an_import_fires_no_coverage_alert(store: Store) -> None:
    with _client(store) as client:
        result = _upload(client, (FIXTURES / "sarif" / "trivy.sarif").read_bytes())
    record = store.scan(result["scan_id"])
    assert record is not None and record.metrics is not None
    imported = record.metrics
    rule = next(r for r in default_rules(cpu_count=2) if r.name == "ScanCoverageLow")
    low = replace(make_scan_metrics("low", _now(), [], target="webapp"), scan_coverage_percent=50.0)

    async def scenario() -> tuple[set[str], set[str]]:
        bus = AsyncEventBus()
        writer = StoreWriter(store, flush_interval_s=0.05)
        await writer.attach(bus)
        engine = AlertEngine(store, bus, [rule], evaluation_interval_s=60, min_firing_ms=0)
        await engine.start(run_loop=False)
        try:
            # What the upload published; the engine judges it as the server's would.
            await engine.handle_scan_completed(ScanCompleted(metrics=imported))
            await engine.evaluate(security_only=True)
            after_import = {a.rule for a in engine.alerts([AlertState.FIRING])}
            # The same rule on a scan that covered half the code fires: the rule works here.
            await engine.handle_scan_completed(ScanCompleted(metrics=low))
            await engine.evaluate(security_only=True)
            after_scan = {a.rule for a in engine.alerts([AlertState.FIRING])}
        finally:
            await engine.stop()
            await writer.close()
            await bus.close()
        return after_import, after_scan

    after_import, after_scan = asyncio.run(scenario())
    assert after_import == set()
    assert after_scan == {"ScanCoverageLow"}


def test_a_sarif_log_with_skipped_results_is_partial_and_false_positives_are_no_violations(
    store: Store,
) -> None:
    log = json.loads((FIXTURES / "sarif" / "gitleaks.sarif").read_text())
    with _client(store) as client:
        first = _upload(client, json.dumps(log).encode())
        assert first["violations"] == first["findings"] >= 2
        listed = client.get(f"/api/v1/findings?scan_id={first['scan_id']}").json()["findings"]
        fp = listed[0]["fingerprint"]
        triaged = client.post(
            f"/api/v1/findings/{fp}/triage",
            json={"state": "false_positive", "reason": "test key", "author": "ana"},
            headers=AUTH,
        )
        assert triaged.status_code == 200, triaged.text
        broken = json.loads(json.dumps(log))
        bad = json.loads(json.dumps(broken["runs"][0]["results"][0]))
        bad["locations"][0]["physicalLocation"]["region"]["startLine"] = -5
        broken["runs"][0]["results"].append(bad)
        second = _upload(client, json.dumps(broken).encode())
        assert second["status"] == "partial" and len(second["skipped"]) == 1
        assert second["violations"] == second["findings"] - 1
        scan = client.get(f"/api/v1/scans/{second['scan_id']}").json()
        assert scan["status"] == "partial"
        metrics = scan["metrics"]
        assert metrics["violations_found"] == second["violations"]
        assert sum(metrics["vulnerability_severity_counts"].values()) == second["violations"]
        assert metrics["false_positives"] == 1


def test_a_triage_changes_the_overview_at_once(store: Store) -> None:
    found = [
        make_finding("B602", "a.py", Severity.HIGH),
        make_finding("B101", "b.py", Severity.LOW),
        make_finding("B110", "c.py", Severity.LOW),
    ]
    _scan(store, "s1", _now() - 1_000, found)
    with _client(store) as client:
        before = client.get("/api/v1/overview").json()["security"]
        assert before["violations"] == 3 and before["false_positive_rate"] == 0.0
        triaged = client.post(
            f"/api/v1/findings/{found[1].fingerprint}/triage",
            json={"state": "false_positive", "reason": "test code", "author": "ana"},
            headers=AUTH,
        )
        assert triaged.status_code == 200, triaged.text
        after = client.get("/api/v1/overview").json()["security"]
    assert after["violations"] == 2 == sum(after["severity_counts"].values())
    assert after["severity_counts"]["low"] == 1
    assert after["false_positives"] == 1
    assert after["false_positive_rate"] == pytest.approx(1 / 3)
    assert after["new_findings"] == 2
    assert after["trend"][-1]["violations"] == 2
