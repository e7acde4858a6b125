"""Records in the store: scans, findings with triage, baselines, alerts, silences, gates."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from secperf.events import AlertChanged
from secperf.model import (
    Alert,
    AlertState,
    BenchmarkResult,
    ConditionStatus,
    Finding,
    GateCondition,
    GateResult,
    GateVerdict,
    MetricKind,
    ScanCost,
    SecurityMetrics,
    Severity,
    make_fingerprint,
)
from secperf.store import Store
from support.factories import make_finding

DAY = 86_400_000
T0 = 1_700_000_000_000


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    s = Store.open(store_url)
    yield s
    s.close()


def finding(rule: str, path: str, severity: Severity, scanner: str = "bandit") -> Finding:
    return make_finding(
        rule,
        path,
        severity,
        fingerprint=make_fingerprint(rule, path, f"code {rule}"),
        scanner=scanner,
        line=3,
        cwe=78,
        snippet="AKIA****MPLE",
        properties={"more": [1, 2], "nested": {"a": None}},
    )


def metrics(scan_id: str, target: str, started: int, found: int = 2) -> SecurityMetrics:
    return SecurityMetrics(
        scan_id=scan_id,
        target=target,
        started_ms=started,
        finished_ms=started + 1500,
        scan_duration_ms=1500.0,
        violations_found=found,
        false_positive_rate=0.0,
        vulnerability_severity_counts={"high": 1, "low": 1},
        scan_coverage_percent=98.5,
        files_scanned=10,
        scanner_durations_ms={"bandit": 900.0, "secrets": 400.0},
    )


def test_scan_lifecycle_and_cost(store: Store) -> None:
    store.record_scan_started("s1", "/repo", T0, ["bandit", "secrets"])
    running = store.scan("s1")
    assert running is not None and running.status == "running" and running.metrics is None
    assert running.scanners == ("bandit", "secrets")
    m = metrics("s1", "/repo", T0)
    store.record_scan_completed(m, "ok")
    cost = ScanCost("s1", T0, T0 + 1500, 2.5, 100_000_000, 10, 20, 30.0, 60.0, 3)
    store.record_scan_cost(cost)
    done = store.scan("s1")
    assert done is not None
    assert (done.status, done.finished_ms, done.metrics, done.cost) == ("ok", T0 + 1500, m, cost)
    store.record_scan_completed(metrics("s2", "/other", T0 + 10), "failed", error="boom")
    assert [s.scan_id for s in store.scans()] == ["s2", "s1"]
    assert [s.scan_id for s in store.scans(target="/repo")] == ["s1"]
    assert store.scan("s2").error == "boom"  # type: ignore[union-attr]
    assert store.scan("missing") is None
    store.record_scan_started("s1", "/repo", T0, ["bandit"])  # re-delivery is harmless
    assert len(store.scans()) == 2


def test_findings_filters_new_flag_and_triage(store: Store) -> None:
    high = finding("B602", "src/app/run.py", Severity.HIGH)
    low = finding("B101", "tests/test_x.py", Severity.LOW)
    secret = finding("aws", "src/app/conf.py", Severity.CRITICAL, scanner="secrets")
    store.record_scan_started("s1", "/repo", T0, [])
    assert store.add_findings("s1", [high, low, secret], {high.fingerprint}) == 3
    assert store.add_findings("s1", [high], {high.fingerprint}) == 1  # re-delivery replaces
    all_rows = store.findings(scan_id="s1")
    assert len(all_rows) == 3
    by_fp = {r.finding.fingerprint: r for r in all_rows}
    assert by_fp[high.fingerprint].finding == high  # exact round trip of the payload
    assert by_fp[high.fingerprint].is_new and not by_fp[low.fingerprint].is_new
    assert {r.finding.rule_id for r in store.findings(severity_at_least="high")} == {"B602", "aws"}
    assert {r.finding.rule_id for r in store.findings(severity_at_least=Severity.CRITICAL)} == {
        "aws"
    }
    assert [r.finding.rule_id for r in store.findings(scanner="secrets")] == ["aws"]
    assert {r.finding.rule_id for r in store.findings(path_glob="src/*")} == {"B602", "aws"}
    assert len(store.findings(limit=1)) == 1

    store.set_triage(low.fingerprint, "false_positive", "ana", "test code", now_ms=T0)
    store.set_triage(secret.fingerprint, "accepted_risk", "bo", expires_ms=T0 + DAY, now_ms=T0)
    assert [r.finding.rule_id for r in store.findings(state="false_positive")] == ["B101"]
    assert [r.finding.rule_id for r in store.findings(state="open", now_ms=T0)] == ["B602"]
    # Past its expiry an accepted risk is open again.
    later = {r.finding.rule_id for r in store.findings(state="open", now_ms=T0 + 2 * DAY)}
    assert later == {"B602", "aws"}
    with pytest.raises(ValueError, match="unknown triage state"):
        store.findings(state="ignored")
    with pytest.raises(ValueError, match="unknown severity"):
        store.findings(severity_at_least="urgent")


def test_latest_scan_findings_uses_the_newest_finished_scan(store: Store) -> None:
    a = finding("B1", "a.py", Severity.LOW)
    b = finding("B2", "b.py", Severity.LOW)
    store.record_scan_completed(metrics("old", "/repo", T0), "ok")
    store.add_findings("old", [a], set())
    store.record_scan_completed(metrics("new", "/repo", T0 + 100), "ok")
    store.add_findings("new", [b], {b.fingerprint})
    store.record_scan_started("running", "/repo", T0 + 200, [])
    assert [r.finding.rule_id for r in store.latest_scan_findings("/repo")] == ["B2"]
    assert store.latest_scan_findings("/elsewhere") == []


def test_triage_history_is_kept(store: Store) -> None:
    fp = "f" * 32
    store.set_triage(fp, "accepted_risk", "ana", now_ms=T0)
    store.set_triage(fp, "fixed", "bo", "patched", now_ms=T0 + 5)
    current = store.triage(fp)
    assert current is not None and (current.state, current.author) == ("fixed", "bo")
    assert [e.state for e in store.triage_history(fp)] == ["accepted_risk", "fixed"]
    assert set(store.triage_all()) == {fp}
    assert store.triage("nope") is None
    with pytest.raises(ValueError, match="unknown triage state"):
        store.set_triage(fp, "wontfix", "ana")
    with pytest.raises(ValueError, match="author"):
        store.set_triage(fp, "open", "")


def test_baselines_replace_and_read_back(store: Store) -> None:
    assert store.save_baseline("main", ["x", "y", "x"], T0) == 2
    assert store.baseline("main") == {"x", "y"}
    store.save_baseline("main", iter(["z"]), T0 + 1)
    assert store.baseline("main") == {"z"}
    assert store.baseline("unknown") == set()
    assert store.baseline_names() == ["main"]


def _alert(state: AlertState, updated: int) -> Alert:
    return Alert(
        fingerprint="al1",
        rule="HighCPU",
        state=state,
        severity=Severity.HIGH,
        kind=MetricKind.PERFORMANCE,
        labels={"host": "a"},
        annotations={"summary": "cpu high"},
        value=97.5,
        updated_ms=updated,
    )


def test_alerts_and_their_transitions(store: Store) -> None:
    pending = _alert(AlertState.PENDING, T0)
    firing = _alert(AlertState.FIRING, T0 + 60_000)
    store.upsert_alert(pending)
    first = AlertChanged(alert=firing, previous_state=AlertState.PENDING, ts_ms=T0 + 60_000)
    assert store.record_alert_transition(first)
    assert not store.record_alert_transition(first)  # same event again: ignored
    resolved = _alert(AlertState.RESOLVED, T0 + 120_000)
    store.record_alert_transition(
        AlertChanged(alert=resolved, previous_state=AlertState.FIRING, ts_ms=T0 + 120_000)
    )
    assert store.alerts() == [resolved]
    assert store.alerts(states=["firing"]) == []
    history = store.alert_history("al1")
    assert [(h.from_state, h.to_state) for h in history] == [
        (AlertState.PENDING, AlertState.FIRING),
        (AlertState.FIRING, AlertState.RESOLVED),
    ]
    assert history[0].alert == firing


def test_silences(store: Store) -> None:
    matchers = [{"name": "host", "value": "a", "isRegex": False}]
    sid = store.add_silence(matchers, T0, T0 + DAY, "ana", "maintenance", created_ms=T0)
    assert [s.id for s in store.silences(active_at_ms=T0 + 5)] == [sid]
    assert store.silences(active_at_ms=T0 + 2 * DAY) == []
    assert store.silences()[0].matchers == matchers
    assert store.expire_silence(sid, T0 + 10)
    assert not store.expire_silence(sid, T0 + 20)
    assert store.silences(active_at_ms=T0 + 15) == []
    with pytest.raises(ValueError, match="must be after"):
        store.add_silence(matchers, T0, T0, "ana", "x")
    with pytest.raises(ValueError, match="matcher 0"):
        store.add_silence([["host"]], T0, T0 + 1, "ana", "x")  # type: ignore[list-item]


def test_gate_runs(store: Store) -> None:
    cond = GateCondition("new critical", "security", ConditionStatus.BLOCK, 1.0, 0.0, "aws key")
    r1 = GateResult("g1", "/repo", T0, T0 + 5, GateVerdict.BLOCK, (cond,), "abc123", "blocked")
    r2 = GateResult("g2", "/repo", T0 + 10, T0 + 15, GateVerdict.PASS)
    store.add_gate_run(r1)
    store.add_gate_run(r2)
    store.add_gate_run(r1)
    assert store.gate_runs(10) == [r2, r1]
    assert store.gate_runs(1) == [r2]


def test_benchmark_results_deduplicate(store: Store) -> None:
    def result(name: str, ts: int, commit: str | None = "c1") -> BenchmarkResult:
        return BenchmarkResult(
            name=name,
            source="pytest-benchmark",
            timestamp_ms=ts,
            machine="m1",
            commit=commit,
            stats={"median": 0.01, "mean": 0.011},
            data=(0.01, 0.012),
            params={"n": "10"},
        )

    batch = [result("test_a", T0), result("test_a", T0 + 1), result("test_b", T0, None)]
    assert store.add_benchmark_results(batch) == 3
    assert store.add_benchmark_results([*batch, result("test_b", T0, None)]) == 0
    assert store.benchmark_results("test_a") == batch[:2]
    assert store.benchmark_results("test_a", limit=1) == [batch[1]]
    assert store.benchmark_results(machine="other") == []
    assert store.benchmark_names() == ["test_a", "test_b"]


def test_retention_of_records_keeps_each_targets_newest_scan(store: Store) -> None:
    old = finding("B1", "a.py", Severity.LOW)
    for i, scan_id in enumerate(["s1", "s2"]):
        store.record_scan_completed(metrics(scan_id, "/repo", T0 + i), "ok")
        store.add_findings(scan_id, [old], set())
    store.record_scan_completed(metrics("s3", "/lonely", T0), "ok")
    store.add_gate_run(GateResult("g1", "/repo", T0, T0 + 1, GateVerdict.PASS))
    store.upsert_alert(_alert(AlertState.RESOLVED, T0))
    store.add_silence([{"name": "a", "value": "b"}], T0, T0 + 1, "ana", "x")
    store.set_triage(old.fingerprint, "fixed", "ana", now_ms=T0)
    result = store.apply_retention(now_ms=T0 + 10 * DAY, max_age_ms=DAY)
    assert (result.records.scans, result.records.findings) == (1, 1)
    assert {s.scan_id for s in store.scans()} == {"s2", "s3"}
    assert store.gate_runs(10) == [] and store.alerts() == [] and store.silences() == []
    assert store.triage(old.fingerprint) is not None


def test_wrong_types_are_refused_with_clear_errors(store: Store) -> None:
    with pytest.raises(TypeError, match="Finding"):
        store.add_findings("s1", ["not a finding"], set())  # type: ignore[list-item]
    with pytest.raises(TypeError, match="BenchmarkResult"):
        store.add_benchmark_results([{"name": "x"}])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="scan_id"):
        store.record_scan_started("", "/repo", T0, [])
