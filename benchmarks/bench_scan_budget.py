"""Scans sharing the machine with a service: as today against low priority + impact budget.

The demo's workload in one run: the order service (``secperf.demo.service``)
under its load generator (``secperf.demo.load``, 50 requests/s from 4
clients), its ``/metrics`` scraped every second and published on a bus as
``up`` does, and full scans (no cache) of the demo's sample project
(``MODULES`` generated modules, fewer with ``--quick``; bandit, secrets and
deps over its OSV records), run in this process as ``up`` runs them. The
project is large enough for an unthrottled scan to span several scrapes: the
guard's figure rests on its samples inside the scans, and with 40 modules
(about a second a scan on a quiet host) six scans gave about ten, which made
runs swing by tens of percent. The two modes alternate (``ROUNDS`` each),
with quiet gaps between scans:

- **as today**: normal priority, no budget;
- **priority + budget**: workers at nice 19 and the idle I/O class, guard =
  the service's p95 latency (``response_time_ms{quantile="0.95"}``),
  ``max_increase_pct = 10``, ``max_slowdown = 4``, the controller's slow start
  on (its default); the deadline's predicted
  duration is the previous unthrottled scan's (the cost model's own accuracy
  is measured by ``bench_scan_prediction``).

Per mode, the guard's median and p95 increase during its scans over matched
quiet windows are computed by the correlation engine
(``analysis.windows.match_quiet_windows`` with every scan blocked, then the
engine's comparison: its ``effect_pct`` and, for the p95 increase, its
quantiles), with how many guard samples each side has. After each scan the
run stays quiet for as long as the scan took, so that every scan has a quiet
window to match. Also: the scans' durations, the throttled time, and whether
every scan completed. Targets (issue 15): p95 increase <= 10 % with
the budget; a budgeted scan at most 3 times the unthrottled one.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from prometheus_client.parser import text_string_to_metric_families

from benchmarks.common import Figure

# The engine's comparison itself (``correlate_series`` would not block the other
# mode's scans when it matches quiet windows).
from secperf.analysis.correlation import CorrelationOptions, _correlate
from secperf.analysis.windows import as_scan_windows, match_quiet_windows
from secperf.bus.interface import EventBus
from secperf.bus.memory import AsyncEventBus
from secperf.commands.pacing import ScanPacing
from secperf.config.sections.impact import ImpactConfig, parse_selector
from secperf.config.sections.scan import ScanConfig
from secperf.demo.runner import DemoOptions, start_load, start_service, stop_child
from secperf.demo.sample import write_osv_records, write_sample_project
from secperf.events import MetricsRecorded, now_ms
from secperf.model import Sample
from secperf.security.factory import ScanOptions, make_validator
from secperf.security.pacing.controller import SLOW_START_REASON

AREA = "scan impact budget"
JOB = "acme-shop"
GUARD = f'response_time_ms{{job="{JOB}",quantile="0.95"}}'
#: Cut around the other mode's scans, and the correlation's own guard margin.
MARGIN_MS = 5_000
#: Generated modules of the sample project, and alternating rounds (full run; --quick).
MODULES = 160
QUICK_MODULES = 80
ROUNDS = 5
QUICK_ROUNDS = 1


@dataclass(frozen=True, slots=True)
class ScanRun:
    mode: str
    start_ms: int
    end_ms: int
    duration_s: float
    throttled_s: float
    slow_start_s: float
    status: str
    deadline_reached: bool


class Scraper:
    """Scrapes the service's p95 latency every second; keeps it and publishes it on ``bus``."""

    def __init__(self, url: str, bus: EventBus) -> None:
        self.url = url
        self.bus = bus
        self.points: list[tuple[int, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="bench-scrape", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        next_at = time.monotonic()
        while not self._stop.is_set():
            with contextlib.suppress(OSError, ValueError):
                self._scrape()
            next_at += 1.0
            self._stop.wait(max(0.0, next_at - time.monotonic()))

    def _scrape(self) -> None:
        with urllib.request.urlopen(self.url, timeout=2) as response:
            text = response.read().decode()
        ts = now_ms()
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == "response_time_ms" and sample.labels.get("quantile") == "0.95":
                    self.points.append((ts, float(sample.value)))
                    labels = {"job": JOB, "quantile": "0.95"}
                    batch = MetricsRecorded(
                        samples=(Sample("response_time_ms", labels, ts, float(sample.value)),)
                    )
                    with contextlib.suppress(Exception):
                        self.bus.publish_threadsafe(batch, timeout=1)


async def _scan(
    mode: str, project: Path, osv: Path, pacing: ScanPacing, predicted_ms: float | None = None
) -> ScanRun:
    scan_cfg = ScanConfig.model_validate(
        {"scanners": ["bandit", "secrets", "deps"], "cache": False, "deps": {"osv_db": str(osv)}}
    )
    options = ScanOptions(root=project, use_cache=False)
    validator = make_validator(scan_cfg, options, None, {}, None, None)
    pacing.configure(validator)
    start = time.perf_counter()
    start_ms = now_ms()
    try:
        report = await pacing.scan(validator, project, ["."], predicted_ms=predicted_ms)
    finally:
        validator.close()
    end_ms = now_ms()
    pacing_doc = report.pacing or {}
    slow_start_ms = sum(
        float(s.get("end_ms", 0)) - float(s.get("start_ms", 0))
        for s in pacing_doc.get("stretches") or []
        if s.get("reason") == SLOW_START_REASON
    )
    return ScanRun(
        mode,
        start_ms,
        end_ms,
        time.perf_counter() - start,
        float(pacing_doc.get("throttled_ms") or 0.0) / 1000,
        slow_start_ms / 1000,
        report.status,
        bool(pacing_doc.get("deadline_reached")),
    )


def _increase(
    points: list[tuple[int, float]], runs: list[ScanRun], every_run: list[ScanRun]
) -> tuple[float | None, float | None, str]:
    """(median increase %, p95 increase %, quiet windows) of the guard during ``runs``.

    The correlation engine's own steps: quiet windows matched with every scan of
    the run blocked (so neither mode's quiet windows fall on the other's scans),
    then its comparison of the samples inside ``runs`` with those quiet windows.
    """
    ts = np.array([t for t, _ in points], dtype=np.int64)
    vs = np.array([v for _, v in points], dtype=np.float64)
    windows = as_scan_windows(
        [(r.start_ms, r.end_ms, f"scan-{i}") for i, r in enumerate(every_run)]
    )
    wanted = {f"scan-{i}" for i, r in enumerate(every_run) if r in runs}
    options = CorrelationOptions(guard_ms=MARGIN_MS, quiet_per_scan=1, min_points=5)
    quiet = match_quiet_windows(
        windows,
        data_start_ms=int(ts[0]),
        data_end_ms=int(ts[-1]),
        guard_ms=options.guard_ms,
        per_scan=options.quiet_per_scan,
        max_days=options.max_days,
    )
    result = _correlate(
        "response_time_ms",
        {"quantile": "0.95"},
        ts,
        vs,
        [w for w in windows if w.scan_id in wanted],
        [q for q in quiet if q.scan_id in wanted],
        alpha=options.alpha,
        min_points=options.min_points,
        onset_points=options.onset_points,
        onset_k=options.onset_k,
    )
    p95 = None
    if result.inside_quantiles and result.quiet_quantiles and result.quiet_quantiles[4]:
        p95 = (result.inside_quantiles[4] / result.quiet_quantiles[4] - 1) * 100
    medians = (
        f"median {result.inside_median:.1f} ms in / {result.quiet_median:.1f} ms quiet"
        if result.inside_median is not None and result.quiet_median is not None
        else result.reason
    )
    counts = (
        f"{result.n_inside} samples in {result.n_scans} scans against {result.n_quiet}"
        f" in {result.n_quiet_windows} quiet windows"
    )
    if result.p_value is not None:
        counts += f" (p = {result.p_value:.2g})"
    return result.effect_pct, p95, f"{counts}, {medians}"


async def _session(quick: bool) -> tuple[list[ScanRun], list[tuple[int, float]]]:
    rounds = QUICK_ROUNDS if quick else ROUNDS
    gap_s = 10.0
    with tempfile.TemporaryDirectory(prefix="secperf-bench-budget-") as tmp:
        base = Path(tmp)
        project = base / "project"
        write_sample_project(project, modules=QUICK_MODULES if quick else MODULES)
        osv = write_osv_records(base / "osv")
        demo = DemoOptions(root=base)
        service, url = start_service(demo)
        load = start_load(demo, url)
        runs: list[ScanRun] = []
        async with AsyncEventBus() as bus:
            scraper = Scraper(url + "/metrics", bus)
            scraper.start()
            budget = ImpactConfig(guard=[parse_selector(GUARD)], before_window="30s")
            paced = ScanPacing(budget, priority="low", store=None, bus=bus)
            today = ScanPacing(ImpactConfig(guard=[]), priority="normal", store=None, bus=bus)
            await paced.attach()
            try:
                await asyncio.sleep(3 * gap_s)  # the service warms up; history for "before"
                for _ in range(rounds):
                    for mode, pacing in (("as today", today), ("priority + budget", paced)):
                        # The deadline's prediction: the last unthrottled scan's duration
                        # (the cost model's accuracy is bench_scan_prediction's).
                        last = [r.duration_s for r in runs if r.mode == "as today"]
                        predicted = last[-1] * 1000 if last and pacing is paced else None
                        runs.append(await _scan(mode, project, osv, pacing, predicted))
                        # Room for a quiet window as long as the scan, clear of its margins.
                        await asyncio.sleep(max(gap_s, runs[-1].duration_s + 3 * MARGIN_MS / 1000))
            finally:
                await paced.detach()
                scraper.stop()
                stop_child(load)
                stop_child(service)
        return runs, scraper.points


def run(quick: bool) -> list[Figure]:
    """Alternate the two modes (``ROUNDS`` scans each; ``QUICK_ROUNDS`` with ``quick``)."""
    runs, points = asyncio.run(_session(quick))
    today = [r for r in runs if r.mode == "as today"]
    budget = [r for r in runs if r.mode == "priority + budget"]
    t_median, t_p95, t_quiet = _increase(points, today, runs)
    b_median, b_p95, b_quiet = _increase(points, budget, runs)
    today_s = statistics.median(r.duration_s for r in today)
    budget_s = statistics.median(r.duration_s for r in budget)
    throttled = statistics.median(r.throttled_s for r in budget)
    slow_start = statistics.median(r.slow_start_s for r in budget)
    # Partial: a file of the sample was skipped (as in every scan of it), the scan ended.
    completed = sum(r.status in ("ok", "partial") for r in runs)
    load = os.getloadavg()[1]
    note = (
        f"{len(today)}+{len(budget)} alternating full scans of the demo project"
        f" ({QUICK_MODULES if quick else MODULES} modules); budget: "
        f"{b_quiet}; as today: {t_quiet}; host load average {load:.1f} (5 min) on "
        f"{os.cpu_count()} CPUs"
    )
    figures = [
        Figure(
            AREA,
            "guard p95 latency, p95 increase during scans (budget on)",
            b_p95 if b_p95 is not None else float("nan"),
            "%",
            "<= 10 %",
            b_p95 is not None and b_p95 <= 10.0,
            anchor_name="as today (normal priority, no budget)",
            anchor_value=t_p95,
            note=note,
        ),
        Figure(
            AREA,
            "guard p95 latency, median increase during scans (budget on)",
            b_median if b_median is not None else float("nan"),
            "%",
            "<= 10 %",
            b_median is not None and b_median <= 10.0,
            anchor_name="as today (normal priority, no budget)",
            anchor_value=t_median,
            note="effect_pct of the correlation engine (median inside / median quiet - 1)",
        ),
        Figure(
            AREA,
            "scan duration with priority + budget (median)",
            budget_s,
            "s",
            "<= 3x unthrottled",
            budget_s <= 3 * today_s,
            anchor_name="unthrottled scan (as today)",
            anchor_value=today_s,
            note=f"durations: {', '.join(f'{r.mode} {r.duration_s:.1f} s' for r in runs)}",
        ),
        Figure(
            AREA,
            "throttled time per budgeted scan (median)",
            throttled,
            "s",
            "",
            None,
            note=(
                f"of which in slow start (one worker) {slow_start:.1f} s (median); deadline or"
                f" cap reached in {sum(r.deadline_reached for r in budget)} scans"
            ),
        ),
        Figure(
            AREA,
            "scans completed",
            completed,
            "scans",
            f"all {len(runs)}",
            completed == len(runs),
        ),
    ]
    return figures
