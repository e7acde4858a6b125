"""The correlation rules on by default: what one recompute costs after a scan.

``ScansRaiseHostCpu`` and ``ScansSlowLatency`` correlate their series over a
24 h lookback whenever a scan completes (and every 10 minutes). The store
(SQLite, in a temporary directory) holds a day at 1 s of host CPU and three
latency quantiles (345,600 samples) and 144 finished scans of 30 s, one every
10 minutes. One recompute = both rules' ``evaluate_scan_impact``: read the
day from the store (decoding its chunks), match quiet windows, test each
series, Benjamini-Hochberg. Anchor: ``correlate_all`` alone on the same
arrays already in memory (the statistics without the store).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import Figure
from secperf.alerts.default_rules import default_rules
from secperf.alerts.evaluate import SeriesReader, evaluate_scan_impact, quiet_guard_ms
from secperf.analysis.correlation import CorrelationOptions, SeriesInput, correlate_all
from secperf.analysis.windows import ScanWindow
from secperf.model import Sample
from secperf.store import Store

AREA = "alerts"
TARGET_MS = 2_000.0  # a recompute runs in a worker thread once per scan
DAY_S = 86_400
START_MS = 1_700_000_000_000


Key = tuple[str, tuple[tuple[str, str], ...]]


def _series() -> dict[Key, tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(0)
    ts = np.arange(START_MS, START_MS + DAY_S * 1000, 1000, dtype=np.int64)
    out: dict[Key, tuple[np.ndarray, np.ndarray]] = {
        ("cpu_percent", (("host", "h1"),)): (ts, np.clip(20 + rng.normal(0, 4, ts.size), 0, 100))
    }
    for q, level in (("0.5", 7.0), ("0.95", 14.0), ("0.99", 16.0)):
        labels = (("instance", "127.0.0.1:8080"), ("job", "shop"), ("quantile", q))
        out[("response_time_ms", labels)] = (ts, level * rng.lognormal(0, 0.15, ts.size))
    return out


def _scans() -> list[ScanWindow]:
    return [
        ScanWindow(START_MS + i * 600_000 + 5_000, START_MS + i * 600_000 + 35_000, f"s{i}")
        for i in range(144)
    ]


def run(quick: bool) -> list[Figure]:
    runs = 3 if quick else 9
    data = _series()
    scans = _scans()
    now = START_MS + DAY_S * 1000
    rules = [r for r in default_rules() if r.kind == "scan_impact"]
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open(Path(tmp) / "bench.db")
        try:
            for (name, labels), (ts, vs) in data.items():
                store.write_samples(
                    [
                        Sample(name, dict(labels), int(t), float(v))
                        for t, v in zip(ts.tolist(), vs.tolist(), strict=True)
                    ],
                    now_ms=now,
                )
            store.compact()
            times = []
            for _ in range(runs):
                start = time.perf_counter()
                found = [
                    o
                    for r in rules
                    for o in evaluate_scan_impact(r, SeriesReader(store), now, scans)
                ]
                times.append((time.perf_counter() - start) * 1000)
            if len(found) != len(data):
                raise RuntimeError(f"expected {len(data)} judged series, got {len(found)}")
        finally:
            store.close()
    inputs = [SeriesInput(n, dict(lb), ts, vs) for (n, lb), (ts, vs) in data.items()]
    options = CorrelationOptions(alpha=0.01, guard_ms=quiet_guard_ms(scans))
    anchors = []
    for _ in range(runs):
        start = time.perf_counter()
        correlate_all(inputs, scans, options=options)
        anchors.append((time.perf_counter() - start) * 1000)
    median = statistics.median(times)
    return [
        Figure(
            AREA,
            "default correlation rules, one recompute over 24 h (median)",
            median,
            "ms",
            f"<= {TARGET_MS:,.0f} ms",
            median <= TARGET_MS,
            "correlate_all on in-memory arrays (median)",
            statistics.median(anchors),
            f"2 rules, 4 series x 24 h at 1 s in SQLite, 144 scans; median of {runs}",
        )
    ]
