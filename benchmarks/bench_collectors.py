"""Collector overhead: CPU per system and process collection, a node-exporter scrape,
and secperf's own CPU use while monitoring at 1 s.

Anchor: a bare ``psutil.cpu_percent()`` + ``psutil.virtual_memory()`` call, the
least any psutil-based monitor does per sample, measured in the same run. The
scrape's anchor is a plain HTTP GET of the same page (no parsing).
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import statistics
import subprocess
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import psutil

from benchmarks.common import Figure
from secperf.bus.memory import AsyncEventBus
from secperf.events import Event, now_ms
from secperf.perf.collectors.process import ProcessCollector
from secperf.perf.collectors.prometheus import PrometheusCollector
from secperf.perf.collectors.runner import CollectorRunner
from secperf.perf.collectors.system import SystemCollector

AREA = "collectors"
NODE_EXPORTER = "/usr/bin/prometheus-node-exporter"


def _cpu_ms(fn: Callable[[], object], runs: int) -> float:
    """Median CPU milliseconds (this process, all threads) of one call of ``fn``."""
    readings = []
    for _ in range(runs):
        start = time.process_time()
        fn()
        readings.append((time.process_time() - start) * 1000)
    return statistics.median(readings)


def _wall_ms(fn: Callable[[], object], runs: int) -> float:
    readings = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        readings.append((time.perf_counter() - start) * 1000)
    return statistics.median(readings)


def _bare_psutil() -> None:
    psutil.cpu_percent(interval=None)
    psutil.virtual_memory()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_node_exporter() -> tuple[subprocess.Popen[bytes], str] | None:
    binary = NODE_EXPORTER if Path(NODE_EXPORTER).exists() else shutil.which("node_exporter")
    if binary is None:
        return None
    port = _free_port()
    proc = subprocess.Popen(
        [binary, f"--web.listen-address=127.0.0.1:{port}", "--no-collector.textfile"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/metrics"
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                response.read()
                return proc, url
        except OSError:
            time.sleep(0.05)
    proc.kill()
    proc.wait()
    return None


def _scrape_figures(quick: bool) -> list[Figure]:
    started = _start_node_exporter()
    if started is None:
        return [
            Figure(
                AREA,
                "node-exporter scrape + parse",
                float("nan"),
                "ms",
                "<= 50 ms",
                None,
                note="skipped: prometheus-node-exporter is not installed",
            )
        ]
    proc, url = started
    try:
        collector = PrometheusCollector([url], timeout_s=10)
        series = len(collector.collect(now_ms()))
        runs = 10 if quick else 100
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

        def fetch() -> None:
            with opener.open(url, timeout=10) as response:
                response.read()

        fetch_ms = _wall_ms(fetch, runs)
        scrape_ms = _wall_ms(lambda: collector.collect(now_ms()), runs)
        scrape_cpu = _cpu_ms(lambda: collector.collect(now_ms()), runs)
        note = f"{series} samples per scrape; storing is measured by the store's benchmark"
        return [
            Figure(
                AREA,
                "node-exporter scrape + parse (wall)",
                scrape_ms,
                "ms",
                "<= 50 ms",
                scrape_ms <= 50,
                anchor_name="plain HTTP GET of the page",
                anchor_value=fetch_ms,
                note=note,
            ),
            Figure(
                AREA,
                "node-exporter scrape + parse (secperf CPU)",
                scrape_cpu,
                "ms",
                "",
                None,
                anchor_name="plain HTTP GET of the page (wall)",
                anchor_value=fetch_ms,
                note="CPU of this process only; the exporter's own work is excluded",
            ),
        ]
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _monitoring_cpu_percent(seconds: float) -> float:
    """CPU % of one core this process uses running system + process collectors at 1 s."""

    async def main() -> float:
        bus = AsyncEventBus()
        received = 0

        async def store(event: Event) -> None:
            nonlocal received
            received += 1

        await bus.subscribe("metrics.>", store, name="store")
        runner = CollectorRunner(
            bus, [SystemCollector(interval_s=1.0), ProcessCollector(interval_s=1.0)]
        )
        cpu_start, wall_start = time.process_time(), time.perf_counter()
        await runner.start()
        await asyncio.sleep(seconds)
        await runner.stop()
        cpu = time.process_time() - cpu_start
        wall = time.perf_counter() - wall_start
        await bus.close()
        return cpu / wall * 100

    return asyncio.run(main())


def run(quick: bool) -> list[Figure]:
    """Measure every collector figure beside the bare psutil anchor."""
    runs = 50 if quick else 500
    _bare_psutil()
    anchor_ms = _cpu_ms(_bare_psutil, runs)
    system = SystemCollector(per_cpu=True)
    system.collect(now_ms())
    system_ms = _cpu_ms(lambda: system.collect(now_ms()), runs)
    process = ProcessCollector(include_self=True, include_children=True)
    process.collect(now_ms())
    process_ms = _cpu_ms(lambda: process.collect(now_ms()), runs)
    bare = "bare psutil cpu_percent()+virtual_memory()"
    figures = [
        Figure(
            AREA,
            "system collection CPU time",
            system_ms,
            "ms",
            "<= 1 ms",
            system_ms <= 1.0,
            anchor_name=bare,
            anchor_value=anchor_ms,
            note="CPU total + per core, load, memory, swap, disk and network rates",
        ),
        Figure(
            AREA,
            "process collection CPU time (self + children)",
            process_ms,
            "ms",
            "",
            None,
            anchor_name=bare,
            anchor_value=anchor_ms,
        ),
    ]
    figures += _scrape_figures(quick)
    seconds = 2.0 if quick else 60.0
    monitoring = _monitoring_cpu_percent(seconds)
    figures.append(
        Figure(
            AREA,
            "own CPU while monitoring at 1 s (system + process)",
            monitoring,
            "% of one core",
            "<= 1 %",
            monitoring <= 1.0,
            anchor_name=f"{bare}, once a second",
            anchor_value=anchor_ms / 1000 * 100,
            note=f"over {seconds:.0f} s, real bus with one subscriber",
        )
    )
    return figures
