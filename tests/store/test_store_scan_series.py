"""Recording a scan's outcome stores its security series once, counted with the store's triage.

Real stores: SQLite files and the PostgreSQL server (``store_url``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from secperf.model import Finding, SecurityMetrics, Severity
from secperf.store import Store, migrations
from secperf.store.engine import create_store_engine
from support.factories import make_finding, make_scan_metrics

T0 = 1_700_000_000_000
FOUND = [
    make_finding("B602", "a.py", Severity.HIGH, category="sast"),
    make_finding("B101", "b.py", Severity.LOW, category="sast"),
    make_finding("S001", "c.py", Severity.LOW, category="secret"),
]


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    with Store.open(store_url) as opened:
        yield opened


def _latest(store: Store, name: str, **labels: str) -> dict[str, float]:
    """Each series of ``name`` matching ``labels``: its last value, by its varying label."""
    out: dict[str, float] = {}
    for points in store.query(name, labels or None, 0, 2**53):
        key = points.labels.get("severity") or points.labels.get("category") or ""
        out[key] = float(points.values[-1])
    return out


def _count(store: Store, name: str) -> int:
    return sum(int(p.timestamps.size) for p in store.query(name, None, 0, 2**53))


def _record(store: Store, metrics: SecurityMetrics, found: list[Finding]) -> SecurityMetrics:
    store.record_scan_started(metrics.scan_id, metrics.target, metrics.started_ms, ["bandit"])
    store.add_findings(metrics.scan_id, found, [f.fingerprint for f in found])
    return store.record_scan_completed(metrics, "ok", host="agent-1")


def test_an_agents_scan_is_counted_with_the_stores_triage(store: Store) -> None:
    # An agent has no triage: it reports all three findings as violations.
    store.set_triage(FOUND[1].fingerprint, "false_positive", "ana", "test code", now_ms=T0)
    reported = make_scan_metrics("s1", T0 + 10_000, FOUND, new=3)
    stored = _record(store, reported, FOUND)
    assert stored.violations_found == 2
    assert stored.vulnerability_severity_counts == {"high": 1, "low": 1}
    assert (stored.false_positives, stored.new_findings, stored.existing_findings) == (1, 2, 0)
    assert stored.false_positive_rate == pytest.approx(1 / 3)
    record = store.scan("s1")
    assert record is not None and record.metrics == stored and record.kind == "scan"

    assert _latest(store, "vulnerability_count", host="agent-1") == {"": 2.0}
    by_severity = _latest(store, "security_violations", host="agent-1")
    assert sum(by_severity.values()) == 2.0 and by_severity["low"] == 1.0
    assert sum(_latest(store, "security_new_findings").values()) == 2.0
    assert _latest(store, "security_findings")["secret"] == 1.0
    assert _latest(store, "security_findings")["sast"] == 1.0
    assert _latest(store, "security_false_positives") == {"": pytest.approx(1 / 3)}
    assert _latest(store, "security_scan_coverage") == {"": 95.0}


def test_the_series_are_stored_once_however_often_the_outcome_comes(store: Store) -> None:
    metrics = make_scan_metrics("s1", T0 + 10_000, FOUND, new=3)
    _record(store, metrics, FOUND)
    before = {name: _count(store, name) for name in store.list_metric_names()}
    assert before["vulnerability_count"] == 1 and before["security_violations"] == 5
    store.record_scan_completed(metrics, "ok", host="agent-1")  # a re-delivered event
    store.record_scan_completed(metrics, "partial", host="agent-1")
    assert {name: _count(store, name) for name in store.list_metric_names()} == before


def test_missing_findings_leave_the_scans_own_counts(store: Store) -> None:
    metrics = make_scan_metrics("s1", T0 + 10_000, FOUND, new=3)
    stored = _record(store, metrics, FOUND[:1])  # two findings never reached the store
    assert stored == metrics


def test_an_import_gets_no_coverage_or_scan_time_series(store: Store) -> None:
    metrics = replace(make_scan_metrics("sarif-1", T0 + 10_000, FOUND, new=3), kind="import")
    _record(store, metrics, FOUND)
    names = set(store.list_metric_names())
    assert "vulnerability_count" in names and "security_new_findings" in names
    assert "security_scan_coverage" not in names and "security_scan_time" not in names
    record = store.scan("sarif-1")
    assert record is not None and record.is_import
    assert [r.scan_id for r in store.scans(kind="scan")] == []
    assert [r.scan_id for r in store.scans(kind="import")] == ["sarif-1"]
    with pytest.raises(ValueError, match="kind 'upload' is not one of"):
        store.record_scan_completed(replace(metrics, kind="upload"), "ok")


def test_a_scans_current_counts_follow_later_triage(store: Store) -> None:
    _record(store, make_scan_metrics("s1", T0 + 10_000, FOUND, new=3), FOUND)
    assert store.scan_finding_counts("s1").violations == 3
    store.set_triage(FOUND[0].fingerprint, "accepted_risk", "ana", "internal tool")
    now = store.scan_finding_counts("s1")
    assert (now.violations, now.accepted_risks, now.violations_by_severity) == (2, 1, {"low": 2})
    # The scan's own record and series keep what it counted when it ended.
    record = store.scan("s1")
    assert record is not None and record.metrics is not None
    assert record.metrics.violations_found == 3


def test_migration_6_marks_earlier_sarif_uploads_as_imports(tmp_path: Path) -> None:
    path = tmp_path / "v5.db"
    engine = create_store_engine(path)
    assert migrations.migrate(engine, target=5) == 5
    old = Store(engine)
    old.record_scan_started("sarif-0123abcd", "webapp", T0, ["sarif"])
    old.record_scan_started("s1", "/repo", T0, ["bandit"])
    old.record_scan_started("sarif-like-name", "/repo", T0, ["bandit", "sarif"])
    old.close()
    with sqlite3.connect(path) as conn:  # rows written before the column existed
        conn.execute("update scans set kind = null")
    with Store.open(path) as store:
        kinds = {r.scan_id: r.kind for r in store.scans()}
    assert kinds == {"sarif-0123abcd": "import", "s1": "scan", "sarif-like-name": "scan"}
