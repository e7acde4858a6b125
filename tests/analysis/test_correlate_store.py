"""Correlation runs over a real SQLite store: ranking, storage, JSON shape, missing data."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from secperf.analysis.correlate_store import (
    choose_step_ms,
    correlations_json,
    explain,
    is_performance_metric,
    latest_run,
    run_correlation,
    scan_windows,
)
from secperf.analysis.windows import ScanWindow
from secperf.events import local_host
from secperf.model import Sample, SecurityMetrics
from secperf.store import Store
from secperf.store.engine import create_store_engine
from secperf.store.migrations import migrate

T0 = 1_700_000_000_000
HOUR = 3_600_000
NOW = T0 + 3 * HOUR
SCAN_EVERY = 900_000
SCAN_LEN = 60_000
ONSET = 5_000

API_KEYS = {
    "name",
    "labels",
    "effect_pct",
    "q_value",
    "ks_p",
    "mw_p",
    "volume_score",
    "onset_lag_ms",
    "direction",
    "significant",
    "n_inside",
    "n_quiet",
    "inside_median",
    "quiet_median",
    "inside_quantiles",
    "quiet_quantiles",
}


def scan_times(n: int = 8) -> list[tuple[int, int]]:
    return [
        (T0 + i * SCAN_EVERY + 300_000, T0 + i * SCAN_EVERY + 300_000 + SCAN_LEN) for i in range(n)
    ]


def record_scans(store: Store, windows: list[tuple[int, int]], target: str = "/repo") -> None:
    for i, (start, end) in enumerate(windows):
        store.record_scan_started(f"scan-{i}", target, start, ["bandit"])
        store.record_scan_completed(
            SecurityMetrics(
                f"scan-{i}", target, start, end, float(end - start), i, 0.0, {"high": i}, 100.0
            ),
            "ok",
        )


def fill(
    store: Store,
    *,
    effect: float = 0.3,
    windows: list[tuple[int, int]] | None = None,
    seed: int = 1,
    hours: int = 2,
) -> list[tuple[int, int]]:
    """Two hours of 1 s samples; response_time_ms rises by ``effect`` 5 s into each scan."""
    windows = scan_times() if windows is None else windows
    rng = np.random.default_rng(seed)
    ts = T0 + np.arange(hours * 3600) * 1000
    inside = np.zeros(ts.size, dtype=bool)
    for start, end in windows:
        inside |= (ts >= start + ONSET) & (ts < end)
    latency = 100.0 * np.where(inside, 1.0 + effect, 1.0) + rng.normal(0, 5, ts.size)
    cpu = 20.0 + rng.normal(0, 3, ts.size)
    samples = [
        Sample("response_time_ms", {"job": "api"}, int(t), float(v))
        for t, v in zip(ts, latency, strict=True)
    ]
    samples += [
        Sample("cpu_percent", {"host": "a"}, int(t), float(v)) for t, v in zip(ts, cpu, strict=True)
    ]
    # Sampled only while scans run: caused by the scan by construction.
    for start, end in windows:
        samples += [
            Sample("scan_process_cpu_percent", {"scan_id": "x"}, t, 90.0)
            for t in range(start, end, 1000)
        ]
    assert store.write_samples(samples, now_ms=NOW).rejected == 0
    return windows


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "secperf.db") as s:
        yield s


def test_planted_effect_ranks_first_with_its_size_and_onset(store: Store) -> None:
    record_scans(store, fill(store))
    run = run_correlation(store, T0, T0 + 2 * HOUR, now_ms=NOW)
    assert run.evaluable and run.problems == ()
    assert run.n_scans == 8
    top = run.results[0]
    assert (top.name, top.labels) == ("response_time_ms", {"job": "api"})
    assert top.significant and top.direction == "up"
    assert top.q_value is not None and top.q_value < 1e-6
    assert top.effect_pct is not None and 22 < top.effect_pct < 38
    assert top.onset_lag_ms is not None and 0 < top.onset_lag_ms <= 15_000
    cpu = next(r for r in run.results if r.name == "cpu_percent")
    assert not cpu.significant
    names = {r.name for r in run.results}
    assert not any(n.startswith("scan_process_") for n in names)
    text = explain(top, run.alpha)
    assert text.startswith("response_time_ms{job=api} is ")
    assert "% higher during scans (q=" in text and "after a scan begins" in text


def test_the_run_is_stored_and_reads_back_equal(store: Store) -> None:
    record_scans(store, fill(store))
    run = run_correlation(store, T0, T0 + 2 * HOUR, now_ms=NOW)
    record = store.latest_correlation_run()
    assert record is not None and record.id == run.id
    assert (record.computed_ms, record.since_ms, record.until_ms) == (NOW, T0, T0 + 2 * HOUR)
    again = latest_run(store)
    assert again == run
    later = run_correlation(store, T0, T0 + 2 * HOUR, now_ms=NOW + 1000)
    assert store.latest_correlation_run().id == later.id != run.id  # type: ignore[union-attr]


def test_correlations_json_has_the_api_shape(store: Store) -> None:
    record_scans(store, fill(store))
    run = run_correlation(store, T0, T0 + 2 * HOUR, now_ms=NOW)
    doc = correlations_json(run)
    assert set(doc) == {"computed_ms", "results"}
    assert doc["computed_ms"] == NOW
    assert doc["results"], "tested results are listed"
    for item in doc["results"]:
        assert set(item) == API_KEYS
        assert len(item["inside_quantiles"]) == 5 and len(item["quiet_quantiles"]) == 5
    assert doc["results"][0]["name"] == "response_time_ms"
    json.dumps(doc, allow_nan=False)  # JSON-ready: no NaN or infinity
    assert correlations_json(None) == {"computed_ms": None, "results": []}


def test_security_and_scan_process_series_stay_off_the_performance_side() -> None:
    assert is_performance_metric("response_time_ms")
    assert is_performance_metric("host_cpu_percent")
    assert is_performance_metric("my_app_queue_depth")
    for name in (
        "security_violations",
        "security_scan_time",
        "vulnerability_count",
        "security_new_findings",
        "scan_process_cpu_percent",
        "scan_process_rss_bytes",
    ):
        assert not is_performance_metric(name), name


def test_no_scans_says_so_and_stores_nothing(store: Store) -> None:
    fill(store, windows=[])
    run = run_correlation(store, T0, T0 + 2 * HOUR, now_ms=NOW)
    assert not run.evaluable
    assert run.n_series == 2
    assert any(p.startswith("no scan finished between") for p in run.problems)
    assert store.latest_correlation_run() is None


def test_no_samples_says_so(store: Store) -> None:
    record_scans(store, scan_times())
    run = run_correlation(store, T0, T0 + 2 * HOUR, now_ms=NOW)
    assert not run.evaluable
    assert any(p.startswith("no performance samples between") for p in run.problems)


def test_too_little_data_around_the_scans_is_named(store: Store) -> None:
    # One short scan at the very start: nothing before it and little inside.
    windows = [(T0 + 1000, T0 + 4000)]
    fill(store, windows=windows, hours=1)
    record_scans(store, windows)
    run = run_correlation(store, T0, T0 + HOUR, now_ms=NOW)
    assert not run.evaluable
    assert any("no series has enough data around the 1 scan(s)" in p for p in run.problems)
    assert all(r.insufficient and r.reason for r in run.results)


def test_metric_filter_and_unknown_metric(store: Store) -> None:
    record_scans(store, fill(store))
    only = run_correlation(store, T0, T0 + 2 * HOUR, metrics=["cpu_percent"], now_ms=NOW)
    assert [r.name for r in only.results] == ["cpu_percent"]
    missing = run_correlation(store, T0, T0 + 2 * HOUR, metrics=["nope_ms"], now_ms=NOW)
    assert not missing.evaluable
    assert any(p.startswith("no samples of nope_ms between") for p in missing.problems)


def test_bad_arguments_are_refused(store: Store) -> None:
    with pytest.raises(ValueError, match=r"until_ms .* must be after since_ms"):
        run_correlation(store, T0, T0)
    with pytest.raises(ValueError, match=r"alpha must be in \(0, 1\)"):
        run_correlation(store, T0, T0 + HOUR, alpha=1.5)


def test_dense_series_are_averaged_and_sparse_ones_kept_raw(store: Store) -> None:
    windows = fill(store)
    record_scans(store, windows)
    sparse = [
        Sample("queue_depth", {}, t, 5.0 + (t // 1000) % 3)
        for t in range(T0, T0 + 2 * HOUR, 15_000)
    ]
    store.write_samples(sparse, now_ms=NOW)
    run = run_correlation(store, T0, T0 + 2 * HOUR, now_ms=NOW)
    assert run.step_ms == SCAN_LEN // 10
    latency = next(r for r in run.results if r.name == "response_time_ms")
    assert latency.n_inside == 8 * SCAN_LEN // run.step_ms  # 1 s samples, 6 s steps
    queue = next(r for r in run.results if r.name == "queue_depth")
    assert queue.n_inside == 8 * SCAN_LEN // 15_000  # raw: one sample every 15 s


def test_scan_windows_and_step_choice() -> None:
    class Rec:
        def __init__(self, sid: str, start: int, end: int | None, kind: str = "scan") -> None:
            self.scan_id, self.started_ms, self.finished_ms = sid, start, end
            self.is_import = kind == "import"

    recs = [
        Rec("a", 100, 200),
        Rec("b", 50, None),
        Rec("c", 5000, 5000),
        Rec("d", 9000, 9500),
        Rec("sarif-e", 300, 400, "import"),  # another tool's results: no scan window
    ]
    assert scan_windows(recs, 0, 1000) == [ScanWindow(100, 200, "a")]  # type: ignore[arg-type]
    assert choose_step_ms([]) == 10_000
    assert choose_step_ms([ScanWindow(0, 5_000)]) == 1_000
    assert choose_step_ms([ScanWindow(0, 600_000)]) == 10_000


def test_lead_lag_finds_a_series_that_follows_violations(store: Store) -> None:
    windows = scan_times(8)
    # Recording the scans stores their security_violations series (i per scan).
    record_scans(store, windows)
    rng = np.random.default_rng(3)
    # backlog follows the violations count of the latest scan, 2 minutes later.
    backlog = []
    for t in range(T0, T0 + 2 * HOUR, 1000):
        done = [i for i, (_, end) in enumerate(windows) if end + 120_000 <= t]
        level = 3 * done[-1] if done else 0
        backlog.append(Sample("backlog", {}, t, level * 10.0 + float(rng.normal(0, 1))))
    store.write_samples(backlog, now_ms=NOW)
    run = run_correlation(store, T0, T0 + 2 * HOUR, now_ms=NOW)
    pair = next(p for p in run.lead_lags if p.name == "backlog")
    assert pair.security_name == "security_violations"
    # Summed over severities.
    assert pair.security_labels == {"host": local_host(), "target": "/repo"}
    assert pair.coefficient > 0.9
    assert 100_000 <= pair.best_lag_ms <= 140_000


def test_runs_beyond_keep_are_dropped_and_bad_rows_refused(store: Store) -> None:
    ids = [
        store.add_correlation_run(T0 + i, T0, T0 + 10, {"results": []}, keep=3) for i in range(5)
    ]
    kept = store.correlation_runs()
    assert [r.id for r in kept] == ids[:1:-1]
    assert store.latest_correlation_run().id == ids[-1]  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="until_ms 1 is before since_ms 5"):
        store.add_correlation_run(T0, 5, 1, {})
    with pytest.raises(ValueError, match="computed_ms must be a non-negative integer"):
        store.add_correlation_run(-1, 0, 1, {})


def test_a_version_2_database_gains_the_table(tmp_path: Path) -> None:
    path = tmp_path / "v2.db"
    engine = create_store_engine(path)
    assert migrate(engine, target=2) == 2
    engine.dispose()
    with Store.open(path) as upgraded:
        assert upgraded.latest_correlation_run() is None
        upgraded.add_correlation_run(T0, T0, T0 + 1, {"results": []})
    with sqlite3.connect(path) as conn:
        assert conn.execute("select count(*) from correlation_runs").fetchone() == (1,)
