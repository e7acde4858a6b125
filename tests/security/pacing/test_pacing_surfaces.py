"""What the pacing records change elsewhere: the advice says what secperf already does,
the alert context and ``secperf correlate`` say when a scan in their window was throttled.
Real SQLite store, real correlation run, the real CLI."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from secperf.alerts.context import ContextBuilder, ScanTracker
from secperf.analysis.advice import build_advice
from secperf.analysis.correlate_store import run_correlation
from secperf.events import now_ms
from secperf.model import Alert, AlertState, MetricKind, Sample, SecurityMetrics, Severity
from secperf.security.pacing.document import GuardReport, PacingDocument, Stretch
from secperf.store import Store
from support.cli import run_cli

HOUR = 3_600_000
NOW = now_ms()
T0 = NOW - 3 * HOUR
SERIES = "response_time_ms{job=api}"
GUARD = 'response_time_ms{job="api"}'
THROTTLED = ("s5", "s6", "s7")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "secperf.db") as opened:
        yield opened


def _pacing(start: int, throttled: bool) -> dict[str, Any]:
    stretches = [Stretch(start + 10_000, start + 14_000, "pause", f"{GUARD} +30 %")]
    return PacingDocument(
        priority="low",
        budget_state="on",
        guards=[GuardReport(GUARD, before=100.0, peak_increase_pct=30.0, samples=50)],
        throttled_ms=4_000.0 if throttled else 0.0,
        stretches=stretches if throttled else [],
        within_budget=True,
        priority_applied={"nice": 19, "io_class": "idle", "scheduler": "SCHED_OTHER"},
    ).to_document()


def _planted(store: Store) -> None:
    """Two hours of latency, 40 % higher during each of 8 one-minute scans, all paced."""
    rng = np.random.default_rng(3)
    windows = [(T0 + i * 900_000 + 300_000, T0 + i * 900_000 + 360_000) for i in range(8)]
    ts = T0 + np.arange(2 * 3600) * 1000
    inside = np.zeros(ts.size, dtype=bool)
    for start, end in windows:
        inside |= (ts >= start) & (ts < end)
    values = 100.0 * np.where(inside, 1.4, 1.0) + rng.normal(0, 5, ts.size)
    store.write_samples(
        [
            Sample("response_time_ms", {"job": "api"}, int(t), float(v))
            for t, v in zip(ts, values, strict=True)
        ],
        now_ms=NOW,
    )
    for i, (start, end) in enumerate(windows):
        scan_id = f"s{i}"
        store.record_scan_started(scan_id, "/repo", start, ["bandit"])
        store.record_scan_completed(
            SecurityMetrics(
                scan_id=scan_id,
                target="/repo",
                started_ms=start,
                finished_ms=end,
                scan_duration_ms=float(end - start),
                violations_found=0,
                false_positive_rate=0.0,
                vulnerability_severity_counts={},
                scan_coverage_percent=100.0,
                eligible_files=10,
                files_scanned=10,
            ),
            "ok",
        )
        store.record_scan_pacing(scan_id, _pacing(start, scan_id in THROTTLED))
    run_correlation(store, T0, T0 + 2 * HOUR, now_ms=T0 + 2 * HOUR)


def test_the_advice_says_what_the_budget_already_does(store: Store) -> None:
    _planted(store)
    advice = next(a for a in build_advice(store, NOW) if a.id == f"scan-impact:{SERIES}")
    assert "already runs 8 of these 8 scans at low priority" in advice.action
    assert "10 % impact budget on this series" in advice.action
    assert "3 were throttled, 12.0 s in all" in advice.action
    assert "all kept the 10 % budget" in advice.action
    assert "nice -n" not in advice.action
    evidence = {e.label: e.value for e in advice.evidence}
    assert "3 throttled" in evidence["pacing of these scans"]


def test_the_alert_context_says_the_scan_was_throttled(store: Store) -> None:
    _planted(store)
    tracker = ScanTracker()
    tracker.seed(store.scans(limit=50))
    builder = ContextBuilder(store, tracker)
    at = T0 + 7 * 900_000 + 330_000  # inside the last scan (s7, throttled)
    security = builder.security(at)
    assert security["scan_running"]["scan_id"] == "s7"
    assert security["scan_running"]["pacing"]["throttled_ms"] == 4_000.0
    alert = Alert(
        fingerprint="f",
        rule="OrdersSlow",
        state=AlertState.FIRING,
        severity=Severity.HIGH,
        kind=MetricKind.PERFORMANCE,
        active_since_ms=at,
    )
    sentence = builder.sentence(alert, None, security, {})
    assert "(throttled 4.0 s by its impact budget)" in sentence
    # A scan that was not throttled gets no such clause.
    quiet = builder.security(T0 + 330_000)
    assert quiet["scan_running"]["scan_id"] == "s0"
    assert "throttled" not in builder.sentence(alert, None, quiet, {}).split(";")[0]


def test_correlate_says_when_scans_in_its_window_were_throttled(
    store: Store, tmp_path: Path
) -> None:
    _planted(store)
    (tmp_path / "secperf.toml").write_text(f'[store]\nurl = "{tmp_path / "secperf.db"}"\n')
    result = run_cli(["correlate", "--since", "4h"], cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "8 of 8 scans in the window were paced (8 at low priority" in result.stdout
    assert "3 throttled, 12.0 s in all" in result.stdout
    as_json = run_cli(["correlate", "--since", "4h", "--json"], cwd=tmp_path)
    document = json.loads(as_json.stdout)
    assert document["pacing"]["throttled"] == 3
    assert document["pacing"]["throttled_ms"] == 12_000.0
