"""Advice rules on a real SQLite store: each fires on data that warrants it, and only then."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from secperf.analysis.advice import (
    Advice,
    AdviceThresholds,
    Evidence,
    advice_json,
    build_advice,
    quietest_hour,
)
from secperf.analysis.correlate_store import run_correlation
from secperf.model import Finding, Sample, SecurityMetrics, Severity
from secperf.store import Store
from support.factories import make_finding

T0 = 1_700_000_000_000
HOUR = 3_600_000
NOW = T0 + 8 * HOUR


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "secperf.db") as s:
        yield s


def add_scan(
    store: Store,
    scan_id: str,
    *,
    start: int,
    duration_ms: float = 1_000.0,
    target: str = "/repo",
    **fields: Any,
) -> None:
    end = start + int(duration_ms)
    store.record_scan_started(scan_id, target, start, ["bandit"])
    values: dict[str, Any] = {
        "violations_found": 0,
        "false_positive_rate": 0.0,
        "vulnerability_severity_counts": {},
        "scan_coverage_percent": 100.0,
        "eligible_files": 10,
        "files_scanned": 10,
        "lines_scanned": 1000,
    }
    values.update(fields)
    store.record_scan_completed(
        SecurityMetrics(
            scan_id=scan_id,
            target=target,
            started_ms=start,
            finished_ms=end,
            scan_duration_ms=duration_ms,
            **values,
        ),
        "ok",
    )


def finding(
    n: int,
    *,
    category: str = "sast",
    severity: Severity = Severity.MEDIUM,
    rule_id: str = "B101",
    scanner: str = "bandit",
    **properties: Any,
) -> Finding:
    return make_finding(
        rule_id,
        f"src/m{n}.py",
        severity,
        fingerprint=f"fp{n:04d}",
        scanner=scanner,
        message="m",
        line=n + 1,
        category=category,
        snippet="AKIA****MPLE" if category == "secret" else "x = 1",
        properties=properties,
    )


def ids(items: list[Advice]) -> list[str]:
    return [a.id for a in items]


def by_id(items: list[Advice], advice_id: str) -> Advice:
    return next(a for a in items if a.id == advice_id)


# --------------------------------------------------------------------------- scan cost


def test_slow_vendored_files_are_named_for_exclusion(store: Store) -> None:
    add_scan(
        store,
        "s1",
        start=T0,
        duration_ms=10_000,
        scanner_durations_ms={"bandit": 5_000.0, "secrets": 4_000.0},
        slowest_files_ms={"vendor/lib/big.py": 4_000.0, "src/app.py": 200.0},
    )
    advice = build_advice(store, NOW)
    slow = by_id(advice, "slow-files")
    assert slow.kind == "performance"
    assert '"vendor/"' in slow.action and "extend_exclude" in slow.action
    assert slow.evidence[0].label == "vendor/lib/big.py"
    assert "slow-scanner" not in ids(advice)  # 56 % is under the 60 % share


def test_spread_out_scan_time_gives_no_file_advice(store: Store) -> None:
    add_scan(
        store,
        "s1",
        start=T0,
        duration_ms=10_000,
        scanner_durations_ms={"bandit": 5_000.0, "secrets": 4_000.0},
        slowest_files_ms={f"src/f{i}.py": 100.0 for i in range(10)},
    )
    assert "slow-files" not in ids(build_advice(store, NOW))


def test_a_short_scan_is_not_worth_tuning(store: Store) -> None:
    add_scan(
        store,
        "s1",
        start=T0,
        duration_ms=500,
        scanner_durations_ms={"bandit": 450.0, "secrets": 10.0},
        slowest_files_ms={"vendor/x.py": 400.0},
    )
    found = ids(build_advice(store, NOW))
    assert "slow-files" not in found and "slow-scanner" not in found


def test_one_dominant_scanner(store: Store) -> None:
    add_scan(
        store,
        "s1",
        start=T0,
        duration_ms=10_000,
        scanner_durations_ms={"semgrep": 8_000.0, "bandit": 1_000.0},
    )
    slow = by_id(build_advice(store, NOW), "slow-scanner")
    assert "semgrep" in slow.title and "89 %" in slow.title
    assert [e.label for e in slow.evidence] == ["semgrep", "bandit"]


def test_raise_jobs_when_few_cores_were_busy(store: Store) -> None:
    add_scan(
        store,
        "s1",
        start=T0,
        duration_ms=10_000,
        scanner_durations_ms={"bandit": 6_000.0, "secrets": 6_000.0},
        cache_misses=50,
    )
    eight = build_advice(store, NOW, thresholds=AdviceThresholds(cores=8))
    jobs = by_id(eight, "scan-parallelism")
    assert "jobs = 8" in jobs.action and "1.2 of 8 cores" in jobs.title
    two = build_advice(store, NOW, thresholds=AdviceThresholds(cores=2))
    assert "scan-parallelism" not in ids(two)  # 1.2 of 2 cores is busy enough


def test_low_cache_hit_rate_only_after_a_first_scan(store: Store) -> None:
    cold: dict[str, Any] = {"cache_hits": 5, "cache_misses": 95, "cache_hit_rate": 0.05}
    add_scan(store, "s1", start=T0, **cold)
    assert "cache" not in ids(build_advice(store, NOW))  # a first scan fills the cache
    add_scan(store, "s2", start=T0 + HOUR, **cold)
    cache = by_id(build_advice(store, NOW), "cache")
    assert "5 %" in cache.title and ".secperf/" in cache.action
    add_scan(store, "s3", start=T0 + 2 * HOUR, cache_hits=95, cache_misses=5, cache_hit_rate=0.95)
    assert "cache" not in ids(build_advice(store, NOW))


def test_low_coverage_names_the_skip_reasons(store: Store) -> None:
    add_scan(
        store,
        "s1",
        start=T0,
        scan_coverage_percent=70.0,
        eligible_files=100,
        files_scanned=70,
        files_skipped=30,
        skip_reasons={"too large": 20, "not UTF-8 text": 10, "semgrep: unavailable": 1},
    )
    cov = by_id(build_advice(store, NOW), "coverage")
    assert cov.severity is Severity.MEDIUM and cov.kind == "security"
    # A scanner that did not run skipped no file: it is no cause of low coverage.
    assert [(e.label, e.value) for e in cov.evidence] == [
        ("coverage", "70.0 %"),
        ("skipped: too large", "20"),
        ("skipped: not UTF-8 text", "10"),
    ]
    assert cov.action == (
        "Raise [scan] max_file_size if these files matter; convert the files to UTF-8, or"
        " exclude them."
    )
    assert "semgrep" not in cov.action and "semgrep" not in cov.detail
    add_scan(store, "s2", start=T0 + HOUR, scan_coverage_percent=99.0, eligible_files=100)
    assert "coverage" not in ids(build_advice(store, NOW))


def test_scanners_that_did_not_run_get_their_own_advice_not_a_coverage_one(
    store: Store,
) -> None:
    # What the validator stores for a scan without OSV data and without semgrep:
    # full coverage, each scanner counted as NAME: unavailable, the reasons in
    # the scan's error.
    deps_reason = "no OSV database: pass --osv-db PATH or allow network access"
    store.record_scan_started("s1", "/repo", T0, ["bandit", "deps", "semgrep"])
    store.record_scan_completed(
        SecurityMetrics(
            scan_id="s1",
            target="/repo",
            started_ms=T0,
            finished_ms=T0 + 1_000,
            scan_duration_ms=1_000.0,
            violations_found=0,
            false_positive_rate=0.0,
            vulnerability_severity_counts={},
            scan_coverage_percent=100.0,
            eligible_files=10,
            files_scanned=10,
            skip_reasons={"deps: unavailable": 1, "semgrep: unavailable": 1},
        ),
        "ok",
        f"deps: {deps_reason}; semgrep: semgrep executable semgrep not found",
    )
    items = build_advice(store, NOW)
    assert "coverage" not in ids(items)
    deps = by_id(items, "scanner-not-run:deps")
    semgrep = by_id(items, "scanner-not-run:semgrep")
    assert deps.severity is semgrep.severity is Severity.LOW
    assert deps.title == "The deps scanner did not run"
    assert "known vulnerabilities" in deps.detail and "skipped no file" in deps.detail
    assert [(e.label, e.value) for e in deps.evidence] == [("why", deps_reason)]
    assert "--osv-db" in deps.action and "leave deps out of [scan] scanners" in deps.action
    assert [(e.label, e.value) for e in semgrep.evidence] == [
        ("why", "semgrep executable semgrep not found")
    ]
    assert "pip install semgrep" in semgrep.action and "[scan.semgrep] rules" in semgrep.action


def test_scan_time_growing_per_thousand_lines(store: Store) -> None:
    rng = np.random.default_rng(5)
    for i in range(8):
        add_scan(
            store,
            f"s{i}",
            start=T0 + i * HOUR // 4,
            duration_ms=float(1000 + rng.normal(0, 20)),
            lines_scanned=10_000,
        )
    assert "scan-time" not in ids(build_advice(store, NOW))
    add_scan(store, "s8", start=T0 + 3 * HOUR, duration_ms=2_000.0, lines_scanned=10_000)
    trend = by_id(build_advice(store, NOW), "scan-time")
    assert trend.title.startswith("Scan time per 1,000 lines grew +")
    assert trend.evidence[0] == Evidence("latest", "200.0 ms per 1,000 lines")


# --------------------------------------------------------------------------- findings


def test_high_false_positive_rate_names_the_noisy_rules(store: Store) -> None:
    add_scan(store, "s1", start=T0, false_positive_rate=0.4, violations_found=6)
    items = [finding(i, rule_id="B105" if i < 4 else "B101") for i in range(10)]
    store.add_findings("s1", items)
    for f in items[:4]:
        store.set_triage(f.fingerprint, "false_positive", "ana", "test data", now_ms=T0)
    fp = by_id(build_advice(store, NOW), "false-positives")
    assert "bandit:B105" in fp.action
    assert ("false positives of bandit:B105", "4") in [(e.label, e.value) for e in fp.evidence]


def test_a_low_false_positive_rate_is_left_alone(store: Store) -> None:
    add_scan(store, "s1", start=T0, false_positive_rate=0.1)
    store.add_findings("s1", [finding(i) for i in range(10)])
    assert "false-positives" not in ids(build_advice(store, NOW))


def test_expired_risk_acceptances(store: Store) -> None:
    add_scan(store, "s1", start=T0)
    old, fresh = finding(1, severity=Severity.HIGH), finding(2)
    store.add_findings("s1", [old, fresh])
    store.set_triage(old.fingerprint, "accepted_risk", "bo", "later", T0 + HOUR, now_ms=T0)
    store.set_triage(fresh.fingerprint, "accepted_risk", "bo", "later", NOW + HOUR, now_ms=T0)
    expired = by_id(build_advice(store, NOW), "expired-acceptance")
    assert expired.severity is Severity.HIGH
    assert [e.label for e in expired.evidence] == ["B101 at src/m1.py:2"]
    assert "accepted by bo" in expired.evidence[0].value
    assert "expired-acceptance" not in ids(build_advice(store, T0 + HOUR // 2))


def test_dependency_upgrade_to_the_version_fixing_everything(store: Store) -> None:
    add_scan(store, "s1", start=T0)
    dep: dict[str, Any] = {"package": "requests", "installed_version": "2.0.0"}
    store.add_findings(
        "s1",
        [
            finding(1, category="dependency", rule_id="GHSA-1", fixed_versions=["2.31.0"], **dep),
            finding(
                2,
                category="dependency",
                rule_id="GHSA-2",
                severity=Severity.HIGH,
                fixed_versions=["2.32.0", "3.0.0"],
                **dep,
            ),
            finding(
                3,
                category="dependency",
                rule_id="GHSA-3",
                package="leftpad",
                installed_version="1.0",
                fixed_versions=[],
            ),
        ],
    )
    advice = build_advice(store, NOW)
    up = by_id(advice, "upgrade:requests")
    assert up.title == "Upgrade requests 2.0.0 to 2.32.0"
    assert up.severity is Severity.HIGH
    assert up.action.startswith("Upgrade requests to 2.32.0")
    assert "upgrade:leftpad" not in ids(advice)  # no fixed version: nothing to upgrade to


def test_triaged_dependencies_get_no_upgrade_advice(store: Store) -> None:
    add_scan(store, "s1", start=T0)
    f = finding(
        1,
        category="dependency",
        package="requests",
        installed_version="2.0.0",
        fixed_versions=["2.31.0"],
    )
    store.add_findings("s1", [f])
    store.set_triage(f.fingerprint, "false_positive", "ana", "not reachable", now_ms=T0)
    assert not [a for a in build_advice(store, NOW) if a.id.startswith("upgrade:")]


def test_secrets_mean_rotate_and_never_show_the_value(store: Store) -> None:
    add_scan(store, "s1", start=T0)
    secret = finding(1, category="secret", severity=Severity.HIGH, rule_id="aws-key")
    store.add_findings("s1", [secret, finding(2)])
    advice = build_advice(store, NOW)
    assert advice[0].id == "secret" and advice[0].severity is Severity.CRITICAL
    assert "Rotate" in advice[0].action
    assert [(e.label, e.value) for e in advice[0].evidence] == [("src/m1.py:2", "aws-key")]
    assert "AKIA" not in json.dumps(advice_json(advice))
    store.set_triage(secret.fingerprint, "false_positive", "ana", "test fixture", now_ms=T0)
    assert "secret" not in ids(build_advice(store, NOW))


# --------------------------------------------------------------------------- performance


def planted(store: Store, effect: float) -> None:
    """Two hours of latency; ``effect`` during each of 8 one-minute scans."""
    rng = np.random.default_rng(2)
    windows = [(T0 + i * 900_000 + 300_000, T0 + i * 900_000 + 360_000) for i in range(8)]
    ts = T0 + np.arange(2 * 3600) * 1000
    inside = np.zeros(ts.size, dtype=bool)
    for start, end in windows:
        inside |= (ts >= start) & (ts < end)
    values = 100.0 * np.where(inside, 1 + effect, 1.0) + rng.normal(0, 5, ts.size)
    store.write_samples(
        [
            Sample("response_time_ms", {"job": "api"}, int(t), float(v))
            for t, v in zip(ts, values, strict=True)
        ],
        now_ms=NOW,
    )
    for i, (start, end) in enumerate(windows):
        add_scan(store, f"s{i}", start=start, duration_ms=float(end - start))
    run_correlation(store, T0, T0 + 2 * HOUR, now_ms=T0 + 2 * HOUR)


def test_scans_that_degrade_a_metric(store: Store) -> None:
    planted(store, 0.4)
    impact = by_id(build_advice(store, NOW), "scan-impact:response_time_ms{job=api}")
    assert impact.kind == "both" and impact.severity is Severity.MEDIUM
    assert impact.title.startswith("Scans move response_time_ms{job=api} by +")
    assert "off-peak" in impact.action and "jobs" in impact.action
    assert "full speed" in impact.action and "--priority low" in impact.action
    labels = [e.label for e in impact.evidence]
    assert "q-value" in labels and "median change during scans" in labels


def test_no_scan_impact_without_an_effect(store: Store) -> None:
    planted(store, 0.0)
    assert not [a for a in build_advice(store, NOW) if a.id.startswith("scan-impact:")]


def test_quietest_hour_from_host_cpu(store: Store) -> None:
    day_start = T0 - T0 % (24 * HOUR)
    samples = [
        Sample("cpu_percent", {"host": "a"}, t, 5.0 if (t // HOUR) % 24 == 3 else 40.0)
        for t in range(day_start, day_start + 24 * HOUR, 60_000)
    ]
    samples += [Sample("cpu_percent", {"host": "a", "cpu": "0"}, day_start, 0.0)]
    store.write_samples(samples, now_ms=day_start + 25 * HOUR)
    assert quietest_hour(store, day_start + 24 * HOUR) == (3, 5.0)
    assert quietest_hour(store, day_start - HOUR) is None


def test_host_under_memory_pressure(store: Store) -> None:
    samples = [
        Sample("memory_percent", {"host": "web1"}, t, 95.0)
        for t in range(NOW - 600_000, NOW, 10_000)
    ]
    samples += [
        Sample("memory_percent", {"host": "web2"}, t, 50.0)
        for t in range(NOW - 600_000, NOW, 10_000)
    ]
    store.write_samples(samples, now_ms=NOW)
    found = [a for a in build_advice(store, NOW) if a.id.startswith("host-pressure:")]
    assert ids(found) == ["host-pressure:memory_percent:web1"]
    assert found[0].title == "web1: memory at 95 %"
    assert "[scan] jobs" in found[0].action


def anomaly_samples() -> list[Sample]:
    rng = np.random.default_rng(9)
    out = []
    for t in range(NOW - 6 * HOUR, NOW, 60_000):
        spike = NOW - 3 * HOUR <= t < NOW - 3 * HOUR + 15 * 60_000
        out.append(
            Sample("error_rate", {"job": "api"}, t, (3.0 if spike else 1.0) + rng.normal(0, 0.02))
        )
    return out


def test_a_rise_with_no_scan_is_raised_for_a_security_look(store: Store) -> None:
    store.write_samples(anomaly_samples(), now_ms=NOW)
    found = by_id(build_advice(store, NOW), "unexplained-anomaly:error_rate{job=api}")
    assert found.kind == "both"
    assert "possible security event" in found.action
    assert found.title.startswith("error_rate{job=api} rose +")


def test_a_rise_during_a_scan_is_explained(store: Store) -> None:
    store.write_samples(anomaly_samples(), now_ms=NOW)
    add_scan(store, "s1", start=NOW - 3 * HOUR - 60_000, duration_ms=17 * 60_000)
    assert not [a for a in build_advice(store, NOW) if a.id.startswith("unexplained-anomaly:")]


# --------------------------------------------------------------------------- shape


def test_empty_store_gives_no_advice(store: Store) -> None:
    assert build_advice(store, NOW) == []
    assert advice_json([]) == {"advice": []}


def test_advice_json_shape_and_order(store: Store) -> None:
    add_scan(store, "s1", start=T0, scan_coverage_percent=40.0, eligible_files=10, files_skipped=6)
    store.add_findings("s1", [finding(1, category="secret")])
    doc = advice_json(build_advice(store, NOW))
    json.dumps(doc, allow_nan=False)
    assert [a["id"] for a in doc["advice"]] == ["secret", "coverage"]
    for item in doc["advice"]:
        assert set(item) == {"id", "title", "severity", "kind", "detail", "evidence", "action"}
        assert item["kind"] in ("security", "performance", "both")
        assert item["severity"] in [s.value for s in Severity]
        assert all(set(e) == {"label", "value"} for e in item["evidence"])
    assert doc["advice"][0]["severity"] == "critical"
    assert doc["advice"][1]["severity"] == "high"
