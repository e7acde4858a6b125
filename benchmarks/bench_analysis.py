"""Statistics core: scan correlation over many series, and change-point detection.

Correlation run: ``correlate_all`` over 50 series of 24 h at 10 s resolution
(8,640 samples each) with 30 scan windows of 5 minutes: quiet-window matching,
KS, Mann-Whitney, quantiles, onset lag and Benjamini-Hochberg. Anchor:
``scipy.stats.ks_2samp`` alone, on the same inside / quiet first differences of
the same 50 series (the floor any implementation of the KS part pays).

Issue target: one scan window against 100 series of 24 h at 1 s resolution
(86,400 samples each), <= 200 ms. Anchor: the same ``ks_2samp`` floor.

Change points: ``e_divisive`` on a 500-point history with one 10 % step.
Anchor: the same search scoring each split from the definition (``naive=True``,
O(n^3) per split instead of O(n^2)).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import numpy as np
from scipy import stats

from benchmarks.common import Figure
from secperf.analysis.changepoint import e_divisive
from secperf.analysis.correlation import SeriesInput, correlate_all
from secperf.analysis.windows import as_scan_windows, match_quiet_windows

AREA = "analysis"
T0 = 1_700_000_000_000
DAY_MS = 86_400_000
ONE_WINDOW_TARGET_MS = 200.0


def _dataset(
    n_series: int, step_ms: int, n_scans: int, scan_ms: int, seed: int = 0
) -> tuple[list[SeriesInput], list[tuple[int, int, str]]]:
    rng = np.random.default_rng(seed)
    ts = T0 + np.arange(0, DAY_MS, step_ms, dtype=np.int64)
    gap = DAY_MS // max(n_scans, 1)
    windows = [
        (T0 + i * gap + gap // 2, T0 + i * gap + gap // 2 + scan_ms, f"scan-{i}")
        for i in range(n_scans)
    ]
    inside = np.zeros(ts.size, dtype=bool)
    for start, end, _ in windows:
        inside |= (ts >= start) & (ts < end)
    series = []
    for i in range(n_series):
        values = rng.normal(100.0, 5.0, ts.size)
        if i % 10 == 0:  # a tenth of the series react to scans
            values[inside] *= 1.2
        series.append(SeriesInput(f"metric_{i}", {"i": str(i)}, ts, values))
    return series, windows


def _ks_floor(series: list[SeriesInput], windows: list[tuple[int, int, str]]) -> Callable[[], None]:
    """ks_2samp on the same inside/quiet first differences; slicing done up front."""
    scans = as_scan_windows(windows)
    ts0 = np.asarray(series[0].timestamps_ms)
    quiet = match_quiet_windows(scans, data_start_ms=int(ts0[0]), data_end_ms=int(ts0[-1]))
    pairs = []
    for s in series:
        ts, vs = np.asarray(s.timestamps_ms), np.asarray(s.values, dtype=np.float64)

        def diffs(
            spans: list[tuple[int, int]], ts: np.ndarray = ts, vs: np.ndarray = vs
        ) -> np.ndarray:
            parts = []
            for start, end in spans:
                a, b = np.searchsorted(ts, [start, end])
                parts.append(np.diff(vs[a:b]))
            return np.concatenate(parts)

        pairs.append(
            (
                diffs([(w.start_ms, w.end_ms) for w in scans]),
                diffs([(q.start_ms, q.end_ms) for q in quiet]),
            )
        )

    def run() -> None:
        for inside, quiet_d in pairs:
            stats.ks_2samp(inside, quiet_d)

    return run


def _median_ms(fn: Callable[[], object], runs: int) -> tuple[float, float]:
    """Median and max wall time of ``runs`` calls, in ms."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), max(times)


def run(quick: bool) -> list[Figure]:
    runs = 3 if quick else 11
    figures: list[Figure] = []

    # 50 series x 24 h at 10 s, 30 scan windows of 5 min.
    series, windows = _dataset(50, 10_000, 30, 300_000)
    full, _ = _median_ms(lambda: correlate_all(series, windows), runs)
    floor, _ = _median_ms(_ks_floor(series, windows), runs)
    figures.append(
        Figure(
            AREA,
            "correlate_all: 50 series x 24 h @10 s, 30 scans",
            full,
            "ms",
            "no target (context)",
            None,
            anchor_name="ks_2samp alone, same data",
            anchor_value=floor,
            note=f"median of {runs}",
        )
    )

    # Issue target: one scan window, 100 series x 24 h at 1 s.
    n_big = 20 if quick else 100
    big, one = _dataset(n_big, 1_000, 1, 300_000, seed=1)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        correlate_all(big, one)
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
    one_floor, _ = _median_ms(_ks_floor(big, one), runs)
    figures.append(
        Figure(
            AREA,
            f"correlate one scan window vs {n_big} series x 24 h @1 s (p95)",
            p95,
            "ms",
            f"<= {ONE_WINDOW_TARGET_MS:.0f} ms (100 series)",
            p95 <= ONE_WINDOW_TARGET_MS if not quick else None,
            anchor_name="ks_2samp alone, same data",
            anchor_value=one_floor,
            note=f"{runs} runs" + (" (quick: 20 series)" if quick else ""),
        )
    )

    # Change points on a 500-point history with a 10 % step.
    rng = np.random.default_rng(2)
    history = rng.normal(100.0, 3.0, 500)
    history[400:] *= 1.10
    fast, _ = _median_ms(lambda: e_divisive(history), runs)
    naive_runs = 1 if quick else 3
    naive, _ = _median_ms(lambda: e_divisive(history, naive=True), naive_runs)
    found = [cp.index for cp in e_divisive(history)]
    figures.append(
        Figure(
            AREA,
            "e_divisive on 500 points (one 10 % step)",
            fast,
            "ms",
            "no target (context)",
            None,
            anchor_name="same search, splits scored naively O(n^3)",
            anchor_value=naive,
            note=f"found {found}; median of {runs} (anchor {naive_runs})",
        )
    )
    return figures
