"""The terminal views of ``monitor`` and ``up``: what one refresh of the live summary costs.

A SQLite store holding a day of host CPU and memory at 1 s (quick: two hours),
four per-core CPU series beside them, 200 scans and 50 alerts, as a machine
that has run ``secperf up`` for a while holds. One refresh is what
``SummaryPoller`` does every second: ``build_summary`` (the newest scan, the
firing alerts, five minutes of each trend) and drawing it at 80 columns.

Anchor, in the same run on the same store: one ``store.query`` of the host CPU
series over the same five minutes, the least read a CPU sparkline needs.

Also the scan progress bar's callback (``ScanProgressFeed``, called once per
batch from the scan's thread) beside a bare ``Progress.update`` of the same
task.
"""

from __future__ import annotations

import io
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from rich.console import Console

from benchmarks.common import Figure
from secperf.cli.live_summary import render_live_summary
from secperf.cli.scan_progress import ScanProgressFeed, scan_progress_bar
from secperf.commands.summary import HOST_SERIES, build_summary
from secperf.events import local_host, now_ms
from secperf.model import Alert, AlertState, MetricKind, Sample, SecurityMetrics, Severity
from secperf.store import Store

AREA = "terminal"
#: A refresh must leave the process alone: at most 5 % of the 1 s refresh period.
REFRESH_TARGET_MS = 50.0


def _wall_ms(fn: Callable[[], object], runs: int) -> float:
    readings = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        readings.append((time.perf_counter() - start) * 1000)
    return statistics.median(readings)


def _fill(store: Store, now: int, seconds: int) -> None:
    host = local_host()
    start = now - seconds * 1000
    batch: list[Sample] = []
    for i in range(seconds):
        ts = start + i * 1000
        batch.append(Sample("cpu_percent", {"host": host}, ts, 20.0 + (i % 60)))
        batch.append(Sample("memory_percent", {"host": host}, ts, 40.0 + (i % 7)))
        for core in range(4):
            batch.append(Sample("cpu_percent", {"host": host, "cpu": str(core)}, ts, 10.0))
        if len(batch) >= 60_000:
            store.write_samples(batch, now_ms=ts)
            batch = []
    if batch:
        store.write_samples(batch, now_ms=now)
    for n in range(200):
        finished = now - (200 - n) * 60_000
        scan_id = f"scan-{n}"
        store.record_scan_started(scan_id, "example-project", finished - 5000, ["bandit"])
        metrics = SecurityMetrics(
            scan_id=scan_id,
            target="example-project",
            started_ms=finished - 5000,
            finished_ms=finished,
            scan_duration_ms=5000.0,
            violations_found=12,
            false_positive_rate=0.0,
            vulnerability_severity_counts={"high": 2, "medium": 4, "low": 6},
            scan_coverage_percent=100.0,
            files_scanned=300,
        )
        store.record_scan_completed(metrics, status="ok")
    for n in range(50):
        state = AlertState.FIRING if n % 5 == 0 else AlertState.RESOLVED
        store.upsert_alert(
            Alert(
                fingerprint=f"{n:032x}",
                rule="HostHighCpu" if n % 2 else "SecretFound",
                state=state,
                severity=Severity.HIGH if n % 2 else Severity.CRITICAL,
                kind=MetricKind.PERFORMANCE if n % 2 else MetricKind.SECURITY,
                labels={"host": host, "n": str(n)},
                value=91.0,
                fired_at_ms=now - n * 1000,
                updated_ms=now - n * 1000,
            )
        )


def _progress_figures(runs: int) -> tuple[float, float]:
    """Microseconds per progress callback: the feed, and a bare ``update`` (the anchor)."""
    bar = scan_progress_bar(Console(file=io.StringIO(), width=80))
    feed = ScanProgressFeed(bar)
    feed("discover", runs, runs)
    feed("scan", 0, runs)
    start = time.perf_counter()
    for done in range(1, runs + 1):
        feed("scan", done, runs)
    feed_us = (time.perf_counter() - start) / runs * 1e6
    bare = scan_progress_bar(Console(file=io.StringIO(), width=80))
    task = bare.add_task("scanning files", total=runs)
    start = time.perf_counter()
    for done in range(1, runs + 1):
        bare.update(task, completed=done, total=runs)
    bare_us = (time.perf_counter() - start) / runs * 1e6
    return feed_us, bare_us


def run(quick: bool) -> list[Figure]:
    """One live-summary refresh beside the bare CPU read; the progress callback beside update."""
    seconds = 2 * 3600 if quick else 86_400
    runs = 20 if quick else 200
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open(Path(tmp) / "bench.db")
        try:
            now = now_ms()
            _fill(store, now, seconds)
            out = Console(file=io.StringIO(), width=80, color_system=None)

            def refresh() -> None:
                summary = build_summary(store, at_ms=now, series=HOST_SERIES)
                out.print(render_live_summary(summary, title="up", status="Ctrl-C stops"))
                out.file = io.StringIO()

            def bare_read() -> None:
                store.query("cpu_percent", {"host": local_host()}, now - 300_000, now)

            refresh()
            bare_read()
            refresh_ms = _wall_ms(refresh, runs)
            anchor_ms = _wall_ms(bare_read, runs)
            build_ms = _wall_ms(lambda: build_summary(store, at_ms=now, series=HOST_SERIES), runs)
        finally:
            store.close()
    feed_us, bare_us = _progress_figures(2000 if quick else 20_000)
    stored = f"{seconds // 3600} h of host CPU and memory at 1 s, 4 core series, 200 scans"
    return [
        Figure(
            AREA,
            "live summary refresh (read + draw at 80 columns)",
            refresh_ms,
            "ms",
            f"<= {REFRESH_TARGET_MS:.0f} ms",
            refresh_ms <= REFRESH_TARGET_MS,
            anchor_name="one 5-minute query of the host CPU series",
            anchor_value=anchor_ms,
            note=f"median of {runs}; {stored}; of which reading the store {build_ms:.1f} ms",
        ),
        Figure(
            AREA,
            "scan progress callback",
            feed_us,
            "µs",
            "",
            None,
            anchor_name="bare Progress.update of the task",
            anchor_value=bare_us,
            note="called once per batch of files from the scan's thread",
        ),
    ]
