"""Scans against performance series: planted effects found, clean series left alone."""

from __future__ import annotations

import numpy as np
import pytest

from secperf.analysis.correlation import (
    CorrelationOptions,
    SeriesInput,
    benjamini_hochberg,
    correlate_all,
    correlate_series,
    effect_is_material,
    lead_lag,
)
from secperf.analysis.windows import DAY_MS, ScanWindow, as_scan_windows, match_quiet_windows

T0 = 1_700_000_000_000
SEC = 1000


def _series(
    seed: int,
    *,
    effect: float = 0.0,
    onset_s: int = 0,
    hours: float = 3,
    step_ms: int = SEC,
    scans: int = 8,
    scan_s: int = 120,
    noise: float = 0.05,
) -> tuple[np.ndarray, np.ndarray, list[tuple[int, int, str]]]:
    """Latency around 100 ms with ``noise`` relative sd; scans multiply it by 1+effect."""
    rng = np.random.default_rng(seed)
    ts = T0 + np.arange(0, int(hours * 3600 * SEC), step_ms, dtype=np.int64)
    values = rng.normal(100.0, 100.0 * noise, ts.size)
    gap = int(hours * 3600 * SEC) // scans
    windows = []
    for i in range(scans):
        start = T0 + i * gap + gap // 2
        end = start + scan_s * SEC
        windows.append((start, end, f"scan-{i}"))
        values[(ts >= start + onset_s * SEC) & (ts < end)] *= 1 + effect
    return ts, values, windows


# --------------------------------------------------------------------------- the effect


def test_thirty_percent_slowdown_during_scans_is_found() -> None:
    ts, values, windows = _series(1, effect=0.30)
    r = correlate_series("response_time_ms", {"host": "a"}, ts, values, windows)
    assert not r.insufficient
    assert r.significant
    assert r.direction == "up"
    assert r.effect_pct == pytest.approx(30, abs=3)
    assert r.q_value is not None and r.q_value < 1e-10
    assert r.volume_score == pytest.approx(0.30, abs=0.03)
    assert r.n_scans == 8 and r.n_inside == 8 * 120
    assert r.n_quiet == r.n_quiet_windows * 120
    assert r.inside_median == pytest.approx(130, rel=0.03)
    assert r.quiet_median == pytest.approx(100, rel=0.03)
    assert len(r.inside_quantiles) == 5 and r.inside_quantiles == tuple(sorted(r.inside_quantiles))
    assert r.labels == {"host": "a"}
    assert effect_is_material(r, 20.0)
    assert not effect_is_material(r, 40.0)


def test_faster_during_scans_is_direction_down() -> None:
    ts, values, windows = _series(2, effect=-0.2)
    r = correlate_series("throughput", {}, ts, values, windows)
    assert r.significant and r.direction == "down"
    assert r.effect_pct == pytest.approx(-20, abs=3)


def test_unaffected_series_false_positive_rate_stays_near_alpha() -> None:
    alpha = 0.01
    flagged = 0
    for seed in range(200):
        ts, values, windows = _series(seed, hours=1, scans=4, scan_s=60)
        r = correlate_series(
            "cpu", {}, ts, values, windows, options=CorrelationOptions(alpha=alpha)
        )
        flagged += r.significant
    # 200 trials at alpha = 1 %: expect 2; 6 or more would happen by chance < 2 % of the time.
    assert flagged <= 5


def test_onset_lag_is_recovered() -> None:
    ts, values, windows = _series(3, effect=0.30, onset_s=5)
    r = correlate_series("response_time_ms", {}, ts, values, windows)
    assert r.onset_lag_ms is not None
    assert r.onset_lag_ms == pytest.approx(5000, abs=2000)


def test_ks_on_differences_sees_noisier_behaviour_at_the_same_level() -> None:
    rng = np.random.default_rng(4)
    ts, values, windows = _series(4, hours=2, scans=6)
    for start, end, _ in windows:
        inside = (ts >= start) & (ts < end)
        values[inside] = 100.0 + rng.normal(0, 20.0, int(inside.sum()))
    r = correlate_series("latency", {}, ts, values, windows)
    assert r.ks_p is not None and r.ks_p < 1e-6
    assert r.significant
    assert abs(r.effect_pct or 0) < 5


def test_volume_score_as_netdata_computes_it() -> None:
    ts = T0 + np.arange(0, 3600 * SEC, 10 * SEC, dtype=np.int64)
    values = np.full(ts.size, 100.0)
    windows = [(T0 + 1200 * SEC, T0 + 1500 * SEC, "s")]
    values[(ts >= windows[0][0]) & (ts < windows[0][1])] = 130.0
    r = correlate_series("x", {}, ts, values, windows)
    assert r.volume_score == pytest.approx(0.30)  # (130 - 100) / 100
    assert r.effect_pct == pytest.approx(30.0)
    assert r.onset_lag_ms == 0.0

    zero = np.where(values == 130.0, 5.0, 0.0)
    r0 = correlate_series("x", {}, ts, zero, windows)
    assert r0.volume_score == pytest.approx(5.0)  # zero baseline: the inside mean
    assert r0.effect_pct is None


def test_lag_shifts_the_scan_windows() -> None:
    ts, values, windows = _series(5, effect=0.3, hours=2, scans=5)
    # The effect is planted 60 s after each window: shifting finds it in full.
    shifted = [(s - 60 * SEC, e - 60 * SEC, i) for s, e, i in windows]
    plain = correlate_series("x", {}, ts, values, shifted)
    lagged = correlate_series("x", {}, ts, values, shifted, lag_ms=60 * SEC)
    assert lagged.effect_pct == pytest.approx(30, abs=3)
    assert (plain.effect_pct or 0) < (lagged.effect_pct or 0)


# --------------------------------------------------------------------------- several series


def test_correlate_all_ranks_and_applies_benjamini_hochberg() -> None:
    ts, hit, windows = _series(10, effect=0.3)
    series = [SeriesInput("response_time_ms", {"svc": "api"}, ts, hit)]
    for seed in range(11, 16):
        ts_i, values, _ = _series(seed)
        series.append(SeriesInput(f"quiet_{seed}", {}, ts_i, values))
    series.append(SeriesInput("empty", {}, np.array([], dtype=np.int64), np.array([])))
    results = correlate_all(series, windows, alpha=0.01)
    assert results[0].name == "response_time_ms" and results[0].significant
    assert results[-1].name == "empty" and results[-1].insufficient
    tested = [r for r in results if not r.insufficient]
    assert len(tested) == 6
    assert not any(r.significant for r in tested[1:])
    p = [r.p_value or 0.0 for r in tested]
    q = benjamini_hochberg(p)
    assert [r.q_value for r in tested] == pytest.approx(q.tolist())
    assert all(
        r.q_value is not None and r.p_value is not None and r.q_value >= r.p_value for r in tested
    )


def test_benjamini_hochberg_hand_computed() -> None:
    p = [0.01, 0.04, 0.03, 0.005, 0.5]
    # sorted: 0.005 0.01 0.03 0.04 0.5 -> p*n/rank: 0.025 0.025 0.05 0.05 0.5
    # (already monotone from the top), back in input order:
    expected = [0.025, 0.05, 0.05, 0.025, 0.5]
    assert benjamini_hochberg(p).tolist() == pytest.approx(expected)
    # A later smaller ratio pulls earlier ones down: 0.02*3/2 = 0.03 > 0.03*3/3 = 0.03
    assert benjamini_hochberg([0.02, 0.021, 0.03]).tolist() == pytest.approx([0.03, 0.03, 0.03])
    assert benjamini_hochberg([0.9, 0.95]).tolist() == pytest.approx([0.95, 0.95])
    assert benjamini_hochberg([]).size == 0
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        benjamini_hochberg([0.5, 1.2])


# --------------------------------------------------------------------------- quiet windows


def _overlaps(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def test_quiet_windows_prefer_the_same_time_of_day_on_other_days() -> None:
    scans = as_scan_windows([(T0 + 2 * DAY_MS, T0 + 2 * DAY_MS + 600_000, "nightly")])
    quiet = match_quiet_windows(scans, data_start_ms=T0, data_end_ms=T0 + 5 * DAY_MS, per_scan=3)
    assert [q.kind for q in quiet] == ["time_of_day"] * 3
    # Nearest days first: the day before, the day after, two days before.
    assert [q.start_ms - scans[0].start_ms for q in quiet] == [-DAY_MS, DAY_MS, -2 * DAY_MS]
    assert all(q.end_ms - q.start_ms == 600_000 for q in quiet)


def test_quiet_windows_nearest_when_short_and_never_overlapping() -> None:
    guard = 60_000
    scans = as_scan_windows(
        [(T0 + 3_600_000, T0 + 3_900_000, "a"), (T0 + 4_000_000, T0 + 4_100_000, "b")]
    )
    quiet = match_quiet_windows(
        scans, data_start_ms=T0, data_end_ms=T0 + 3 * 3_600_000, guard_ms=guard, per_scan=3
    )
    assert len(quiet) == 6
    assert all(q.kind == "nearest" for q in quiet)
    spans = [(q.start_ms, q.end_ms) for q in quiet]
    for scan in scans:
        guarded = (scan.start_ms - guard, scan.end_ms + guard)
        assert not any(_overlaps(guarded, s) for s in spans)
        mine = [q for q in quiet if q.scan_id == scan.scan_id]
        assert all(q.end_ms - q.start_ms == scan.duration_ms for q in mine)
    for i, a in enumerate(spans):
        assert not any(_overlaps(a, b) for b in spans[i + 1 :])
    assert all(s >= T0 and e <= T0 + 3 * 3_600_000 + 1 for s, e in spans)


def test_scan_window_validation() -> None:
    with pytest.raises(
        ValueError, match="scan window 1 \\(b\\): end_ms 5 is not after start_ms 10"
    ):
        as_scan_windows([(0, 5, "a"), (10, 5, "b")])
    with pytest.raises(ValueError, match="integer milliseconds"):
        as_scan_windows([(0.5, 5, "a")])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="expected ScanWindow"):
        as_scan_windows(["x"])  # type: ignore[list-item]
    assert as_scan_windows([ScanWindow(10, 20, "z"), (0, 5)])[0].scan_id == "#1"


def test_a_running_scan_is_a_window_up_to_now() -> None:
    """The alert rules see running scans as windows ending at the tick's time."""
    running = ScanWindow.still_running("s", 100, 250, ("bandit",))
    assert (running.start_ms, running.end_ms, running.duration_ms) == (100, 250, 150)
    assert running.running and running.scanners == ("bandit",)
    assert not ScanWindow(0, 5).running
    shifted = as_scan_windows([running], lag_ms=10)[0]
    assert shifted == ScanWindow(110, 260, "s", ("bandit",), running=True)


# --------------------------------------------------------------------------- too little, bad input


def test_insufficient_data_is_a_result_not_an_exception() -> None:
    ts = T0 + np.arange(0, 60 * SEC, SEC, dtype=np.int64)
    r = correlate_series("x", {}, ts, np.ones(ts.size), [(T0 + 10 * SEC, T0 + 15 * SEC, "s")])
    assert r.insufficient
    assert "inside scan windows" in r.reason
    assert r.q_value is None and not r.significant

    none = correlate_series("x", {}, ts, np.ones(ts.size), [])
    assert none.insufficient and "no scan windows" in none.reason

    empty = correlate_series("x", {}, [], [], [(T0, T0 + 1000, "s")])
    assert empty.insufficient and "no quiet window" in empty.reason


def test_bad_series_input_names_the_series() -> None:
    with pytest.raises(ValueError, match="'rt': 3 timestamps but 2 values"):
        correlate_series("rt", {}, [1, 2, 3], [1.0, 2.0], [])
    with pytest.raises(ValueError, match="'rt': value at index 1 \\(t=2\\) is not finite"):
        correlate_series("rt", {}, [1, 2, 3], [1.0, float("nan"), 2.0], [])
    with pytest.raises(ValueError, match="alpha"):
        correlate_series("rt", {}, [1], [1.0], [], options=CorrelationOptions(alpha=0))


def test_unsorted_samples_are_sorted() -> None:
    ts, values, windows = _series(6, effect=0.3, hours=1, scans=3)
    order = np.random.default_rng(0).permutation(ts.size)
    a = correlate_series("x", {}, ts, values, windows)
    b = correlate_series("x", {}, ts[order], values[order], windows)
    assert a == b


# --------------------------------------------------------------------------- lead / lag


def test_cross_correlation_finds_a_known_shift() -> None:
    rng = np.random.default_rng(7)
    step = 10 * SEC
    n = 2000
    ts = T0 + np.arange(n, dtype=np.int64) * step
    # A smooth security signal (scan time), and latency following it 3 steps later.
    security = np.convolve(rng.normal(0, 1, n + 20), np.ones(20) / 20, mode="valid")[:n]
    perf = np.roll(security, 3) * 5 + rng.normal(0, 0.05, n)
    r = lead_lag(ts, security, ts, perf, step_ms=step, max_lag_ms=10 * step)
    assert not r.insufficient
    assert r.best_lag_ms == 3 * step
    assert r.coefficient is not None and r.coefficient > 0.9
    assert len(r.lags_ms) == len(r.coefficients) == 21

    inverse = lead_lag(ts, security, ts, -perf, step_ms=step, max_lag_ms=10 * step)
    assert inverse.best_lag_ms == 3 * step
    assert inverse.coefficient is not None and inverse.coefficient < -0.9


def test_cross_correlation_with_sparse_security_events() -> None:
    # Violations reported once per scan (every 10 min) hold until the next scan;
    # CPU follows each new level 30 s later.
    rng = np.random.default_rng(8)
    scan_ts = T0 + np.arange(0, 48, dtype=np.int64) * 600 * SEC
    violations = rng.integers(0, 50, scan_ts.size).astype(float)
    cpu_ts = T0 + np.arange(0, 48 * 600, 10, dtype=np.int64) * SEC
    level = violations[np.searchsorted(scan_ts, cpu_ts - 30 * SEC, side="right") - 1]
    cpu = np.where(cpu_ts - 30 * SEC >= T0, level, violations[0]) + rng.normal(0, 1, cpu_ts.size)
    r = lead_lag(scan_ts, violations, cpu_ts, cpu, step_ms=10 * SEC, max_lag_ms=120 * SEC)
    assert r.best_lag_ms == 30 * SEC
    assert r.coefficient is not None and r.coefficient > 0.9


def test_cross_correlation_insufficient() -> None:
    r = lead_lag([T0], [1.0], [T0 + 5 * SEC], [1.0], step_ms=SEC, max_lag_ms=0)
    assert r.insufficient and "common grid points" in r.reason
    ts = T0 + np.arange(100, dtype=np.int64) * SEC
    flat = lead_lag(ts, np.ones(100), ts, np.arange(100.0), step_ms=SEC, max_lag_ms=5 * SEC)
    assert flat.insufficient and "constant" in flat.reason
    with pytest.raises(ValueError, match="step_ms"):
        lead_lag(ts, ts, ts, ts, step_ms=0, max_lag_ms=0)


@pytest.mark.parametrize("seed", range(5))
def test_mann_whitney_p_matches_scipy(seed: int) -> None:
    from scipy import stats

    from secperf.analysis.correlation import mann_whitney_p

    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, 40 + seed * 30)
    y = rng.normal(0.2 * seed, 1, 300)
    rounded_x, rounded_y = np.round(x, 1), np.round(y, 1)  # many ties
    for a, b in ((x, y), (rounded_x, rounded_y), (x[:5], y[:7])):
        expected = stats.mannwhitneyu(a, b, alternative="two-sided").pvalue
        assert mann_whitney_p(a, b) == pytest.approx(expected, rel=1e-9, abs=1e-300)
