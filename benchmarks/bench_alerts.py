"""Alert rule evaluation: one tick of the default rule set + 200 rules over the store.

The store (SQLite, in a temporary directory) holds 1 h of 50 series at 1 s
(5 metrics x 10 hosts, 180,000 samples). The 200 rules each watch one metric
on one host, cycling through the ten aggregations and windows from 1 to 30
minutes. One tick = ``AlertEngine.observe()``: read each metric once from the
store (decoding its chunks), slice each rule's window, filter by matchers,
aggregate, compare. Anchor: the same 200 aggregations by plain numpy
(``searchsorted`` + the aggregation) on arrays already in memory.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import Figure
from secperf.alerts import AlertEngine, Rule, default_rules, rule_from_dict
from secperf.alerts.evaluate import aggregate
from secperf.bus.memory import AsyncEventBus
from secperf.model import Sample
from secperf.store import Store

AREA = "alerts"
TARGET_P95_MS = 50.0
METRICS = ("cpu_percent", "memory_percent", "load_1m", "response_time_ms", "throughput")
HOSTS = tuple(f"h{i}" for i in range(10))
AGGREGATIONS = ("last", "avg", "min", "max", "p50", "p95", "p99", "rate", "increase", "count")
WINDOWS = ("1m", "5m", "15m", "30m")
HOUR_MS = 3_600_000
END_MS = 1_700_000_000_000


def _data() -> dict[tuple[str, str], tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(0)
    ts = np.arange(END_MS - HOUR_MS + 1000, END_MS + 1, 1000, dtype=np.int64)
    return {(m, h): (ts, 50 + rng.normal(0, 10, ts.size)) for m in METRICS for h in HOSTS}


def _never_reached(metric: str, aggregation: str) -> float:
    """A threshold the rule's value never passes, within what the metric can take.

    Percentages end at 100 (rules refuse thresholds a bounded metric cannot
    reach); rate, increase and count are not in the metric's unit.
    """
    if metric.endswith("_percent") and aggregation not in ("rate", "increase", "count"):
        return 100.0
    return 1e9


def _rules() -> list[Rule]:
    rules = default_rules(cpu_count=2)
    for i in range(200):
        metric = METRICS[i % len(METRICS)]
        aggregation = AGGREGATIONS[i % len(AGGREGATIONS)]
        rules.append(
            rule_from_dict(
                {
                    "name": f"bench_{i}",
                    "metric": metric,
                    "matchers": [f'host="{HOSTS[(i // len(METRICS)) % len(HOSTS)]}"'],
                    "aggregation": aggregation,
                    "window": WINDOWS[i % len(WINDOWS)],
                    "threshold": _never_reached(metric, aggregation),
                }
            )
        )
    return rules


def _numpy_tick(
    data: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]], rules: list[Rule]
) -> int:
    fired = 0
    for rule in rules:
        if not rule.name.startswith("bench_"):
            continue
        host = rule.matchers[0].value
        ts, vs = data[(rule.metric, host)]
        lo = int(np.searchsorted(ts, END_MS - rule.window_ms, side="left"))
        value = aggregate(rule.aggregation, ts[lo:], vs[lo:])
        fired += value is not None and value > rule.threshold
    return fired


def run(quick: bool) -> list[Figure]:
    runs = 7 if quick else 41
    data = _data()
    rules = _rules()
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open(Path(tmp) / "bench.db")
        try:
            samples = [
                Sample(m, {"host": h}, int(t), float(v))
                for (m, h), (ts, vs) in data.items()
                for t, v in zip(ts.tolist(), vs.tolist(), strict=True)
            ]
            store.write_samples(samples, now_ms=END_MS)
            store.compact()
            engine = AlertEngine(store, AsyncEventBus(), rules, clock=lambda: END_MS)
            engine.observe()  # warm caches (series ids, imports)
            ticks = []
            for _ in range(runs):
                start = time.perf_counter()
                results = engine.observe()
                ticks.append((time.perf_counter() - start) * 1000)
            errors = [r.error for r in results if r.error]
            if errors:
                raise RuntimeError(f"alert benchmark rules failed: {errors[:3]}")
            anchors = []
            for _ in range(runs):
                start = time.perf_counter()
                _numpy_tick(data, rules)
                anchors.append((time.perf_counter() - start) * 1000)
            full = asyncio.run(_full_tick(engine))
        finally:
            store.close()
    median = statistics.median(ticks)
    p95 = float(np.percentile(ticks, 95))
    anchor = statistics.median(anchors)
    note = (
        f"{len(rules)} rules ({len(rules) - 200} default + 200), 50 series x 1 h at 1 s in SQLite;"
        f" median of {runs}"
    )
    return [
        Figure(
            AREA,
            "evaluation tick, default rules + 200 rules (p95)",
            p95,
            "ms",
            f"<= {TARGET_P95_MS:g} ms p95",
            p95 <= TARGET_P95_MS,
            "numpy aggregations on in-memory arrays (median)",
            anchor,
            note.replace("median", "p95") + f"; tick median {median:.1f} ms",
        ),
        Figure(
            AREA,
            "evaluation tick, default rules + 200 rules (median)",
            median,
            "ms",
            "",
            None,
            "numpy aggregations on in-memory arrays",
            anchor,
            note,
        ),
        Figure(
            AREA,
            "full engine tick with lifecycle, silences, grouping (median)",
            full,
            "ms",
            "",
            None,
            None,
            None,
            "AlertEngine.evaluate() on the same store, no alert firing; median of 5",
        ),
    ]


async def _full_tick(engine: AlertEngine) -> float:
    times = []
    for _ in range(5):
        start = time.perf_counter()
        await engine.evaluate()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)
