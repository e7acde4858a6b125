"""Downsampling tiers: 30 simulated days of 100 series at 1 s, rolled up and retained.

Timestamps are generated, not waited for: day after day, every series' day
of samples (half noisy CPU percentages with one decimal, half byte counters,
as in the store's benchmark) is written through ``Store.write_series_arrays``,
then the store is maintained as ``serve`` / ``up`` do (``rollup``, then
``apply_tiered_retention`` with the default ``[store]`` retention: raw 7 d,
1-minute 90 d, 1-hour 730 d). Then:

* disk: the database file (after a WAL checkpoint, free pages included) per
  raw sample ingested, and the stored bytes of each tier;
* queries: one series over 1 h, 24 h and 30 d to 1,000 points (median);
  anchor: the same 30 d query on raw samples only, in a store that kept them
  all (one series), measured in the same run.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.bench_store import _realistic_series
from benchmarks.common import Figure
from secperf.config.sections.store import StoreConfig
from secperf.store import Store
from secperf.store.maintenance import tier_retention
from secperf.store.tiers import MINUTE_MS, TierRetention

AREA = "tiers"
DAY_MS = 86_400_000
HOUR_MS = 3_600_000


def _day(
    rng: np.random.Generator, index: int, start: int, day: int
) -> tuple[np.ndarray, np.ndarray]:
    n = DAY_MS // 1000
    ts = start + day * DAY_MS + np.arange(n, dtype=np.int64) * 1000
    cpu, counter = _realistic_series(n, rng)
    if index % 2 == 0:
        return ts, cpu
    return ts, counter + day * 1.7e10


def _checkpoint(store: Store) -> None:
    with store.engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")


def _median_ms(repeats: int, fn: object) -> float:
    assert callable(fn)
    fn()  # warm
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        fn()
        times.append(time.perf_counter() - began)
    return statistics.median(times) * 1000


def run(quick: bool) -> list[Figure]:
    days, nseries, repeats = (2, 10, 5) if quick else (30, 100, 21)
    retention = tier_retention(StoreConfig())
    if quick:  # two days: a one-day raw retention still exercises the hand-over
        retention = TierRetention(DAY_MS, retention.minute_ms, retention.hour_ms)
    now0 = time.time_ns() // 1_000_000
    start = now0 - now0 % DAY_MS - days * DAY_MS
    end = start + days * DAY_MS
    with tempfile.TemporaryDirectory(prefix="secperf-bench-tiers-") as tmp:
        path = Path(tmp) / "tiers.db"
        store = Store.open(path)
        rngs = [np.random.default_rng(1000 + i) for i in range(nseries)]
        ingested = 0
        write_s = rollup_s = retention_s = 0.0
        for day in range(days):
            began = time.perf_counter()
            for i in range(nseries):
                ts, vals = _day(rngs[i], i, start, day)
                result = store.write_series_arrays(
                    "bench_metric", {"series": str(i)}, ts, vals, now_ms=end
                )
                ingested += result.accepted
            write_s += time.perf_counter() - began
            now = start + (day + 1) * DAY_MS
            began = time.perf_counter()
            store.rollup(now + 2 * MINUTE_MS, retention=retention)
            rollup_s += time.perf_counter() - began
            began = time.perf_counter()
            store.apply_tiered_retention(now, retention)
            retention_s += time.perf_counter() - began
        _checkpoint(store)
        file_bytes = store.file_size() or 0
        stats = {s.tier: s for s in store.tier_stats()}

        def query(span_ms: int, *, tiers: bool = True) -> None:
            found = store.query(
                "bench_metric",
                {"series": "0"},
                end - span_ms,
                end - 1,
                max_points=1000,
                tiers=tiers,
            )
            if len(found) != 1 or not 0 < found[0].timestamps.size <= 1000:
                raise RuntimeError("tier query returned the wrong shape")

        spans = [("1 h", HOUR_MS), ("24 h", DAY_MS), (f"{days} d", days * DAY_MS)]
        timed = {label: _median_ms(repeats, lambda s=span: query(s)) for label, span in spans}
        raw_1h = _median_ms(repeats, lambda: query(HOUR_MS, tiers=False))
        raw_24h = _median_ms(repeats, lambda: query(DAY_MS, tiers=False))
        store.close()

        # Anchors: the same first two series (a percentage, a counter) kept raw for
        # the whole range, nothing rolled up or dropped: its file per sample, and
        # the long query on raw samples only.
        anchor_path = Path(tmp) / "raw.db"
        anchor = Store.open(anchor_path)
        anchor_rngs = [np.random.default_rng(1000 + i) for i in range(2)]
        anchor_samples = 0
        for day in range(days):
            for i in range(2):
                ts, vals = _day(anchor_rngs[i], i, start, day)
                written = anchor.write_series_arrays(
                    "bench_metric", {"series": str(i)}, ts, vals, now_ms=end
                )
                anchor_samples += written.accepted
        _checkpoint(anchor)
        anchor_per_sample = (anchor.file_size() or 0) / anchor_samples

        def raw_query() -> None:
            found = anchor.query(
                "bench_metric", {"series": "0"}, start, end - 1, max_points=1000, tiers=False
            )
            if len(found) != 1 or found[0].timestamps.size != 1000:
                raise RuntimeError("raw query returned the wrong shape")

        raw_long = _median_ms(max(3, repeats // 3), raw_query)
        anchor.close()

    per_sample = file_bytes / ingested
    shape = f"{days} d x {nseries} series at 1 s ({ingested:,} samples)"
    kept = (
        f"raw {retention.raw_ms // DAY_MS} d, 1m {retention.minute_ms // DAY_MS} d,"
        f" 1h {retention.hour_ms // DAY_MS} d"
    )
    tier_note = "; ".join(
        f"{name} {s.bytes / 1_048_576:.1f} MiB ({s.points:,} points)" for name, s in stats.items()
    )
    figures = [
        Figure(
            AREA,
            "file per raw sample ingested, raw + 1m + 1h tiers",
            per_sample,
            "B/sample",
            "<= 1 B/sample",
            per_sample <= 1.0,
            "the same kind of samples all kept raw (2 series, file per sample)",
            anchor_per_sample,
            f"{shape}, kept {kept}; file {file_bytes / 1_048_576:.1f} MiB after a WAL"
            f" checkpoint, free pages included; {tier_note}",
        ),
        Figure(
            AREA,
            f"query {days} d of one series to 1,000 points",
            timed[f"{days} d"],
            "ms",
            "<= 50 ms",
            timed[f"{days} d"] <= 50,
            f"same query on raw samples only (all {days} d kept)",
            raw_long,
            f"reads the 1-minute tier (raw dropped after {retention.raw_ms // DAY_MS} d);"
            f" median of {repeats}",
        ),
        Figure(
            AREA,
            "query 24 h of one series to 1,000 points",
            timed["24 h"],
            "ms",
            "",
            None,
            "same query on raw samples only",
            raw_24h,
            f"1-minute tier, step rounded to 2 min (720 points); median of {repeats}",
        ),
        Figure(
            AREA,
            "query 1 h of one series to 1,000 points",
            timed["1 h"],
            "ms",
            "",
            None,
            "same query on raw samples only",
            raw_1h,
            f"raw samples (the step, 3.6 s, is below a minute); median of {repeats}",
        ),
        Figure(
            AREA,
            "rollup of one day, all series (1m and 1h tiers)",
            rollup_s / days * 1000,
            "ms",
            "",
            None,
            "writing that day's raw samples",
            write_s / days * 1000,
            f"{nseries} series x 86,400 samples a day; retention {retention_s / days * 1000:.0f}"
            " ms a day",
        ),
    ]
    return figures
