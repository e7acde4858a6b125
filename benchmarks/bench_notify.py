"""Notification latency: from a scan's event to the webhook notification received.

A real ``AsyncEventBus`` carries the events, a ``StoreWriter`` stores them in
SQLite (in a temporary directory) and an ``AlertEngine`` runs the shipped
``NewCriticalFinding`` rule with ``group_wait = 0`` and a ``WebhookNotifier``
pointed at an HTTP server of this benchmark, which timestamps each arrival.

Each event: a ``ViolationDetected`` (a new critical finding) then the
``ScanCompleted`` of its scan, for a new target each time so that every event
opens a new alert group (grouped by ``alertname`` and ``target``), as a first
critical finding in a project does. The latency runs from publishing
``ScanCompleted`` to the receiver reading the notification: the engine's
evaluation of the security rules, the alert's context, grouping, the
notifier's queue and the HTTP POST of the Alertmanager v4 payload.

Anchor: a bare ``urllib`` POST of the same payload to the same server, timed
the same way (from the call to the arrival), with a ``marker`` field added
so the receiver can tell the posts apart.

Every event adds a firing alert and a series, and the security rules'
evaluation reads every project's series, so the latency grows with the number
of projects alerting at once; the third figure shows it at 200.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import Figure
from secperf.alerts import AlertEngine, default_rules
from secperf.alerts.grouping import GroupSettings
from secperf.alerts.notifiers import WebhookNotifier
from secperf.bus.memory import AsyncEventBus
from secperf.events import ScanCompleted, ViolationDetected, now_ms
from secperf.model import Finding, SecurityMetrics, Severity
from secperf.store import Store, StoreWriter

AREA = "alerts"
TARGET_P95_MS = 100.0


class _Receiver:
    """An HTTP server that records when each notification (by target) arrived."""

    def __init__(self) -> None:
        self.arrivals: dict[str, float] = {}
        self.bodies: dict[str, bytes] = {}
        self._cond = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                arrived = time.perf_counter()
                payload = json.loads(body)
                key = str(payload.get("marker") or payload["alerts"][0]["labels"]["target"])
                with receiver._cond:
                    receiver.arrivals[key] = arrived
                    receiver.bodies[key] = body
                    receiver._cond.notify_all()
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def wait(self, key: str, timeout: float = 10.0) -> float:
        """When ``key`` arrived (perf_counter seconds); waits for it."""
        with self._cond:
            if not self._cond.wait_for(lambda: key in self.arrivals, timeout):
                raise RuntimeError(f"notification for {key} did not arrive in {timeout} s")
            return self.arrivals[key]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _finding(index: int) -> Finding:
    return Finding(
        fingerprint=f"bench-{index:06d}",
        rule_id="B105",
        scanner="bandit",
        severity=Severity.CRITICAL,
        message="hard-coded password",
        path="app.py",
        line=3,
        category="sast",
    )


def _metrics(scan_id: str, target: str) -> SecurityMetrics:
    end = now_ms()
    return SecurityMetrics(
        scan_id=scan_id,
        target=target,
        started_ms=end - 500,
        finished_ms=end,
        scan_duration_ms=500.0,
        violations_found=1,
        false_positive_rate=0.0,
        vulnerability_severity_counts={"critical": 1},
        scan_coverage_percent=100.0,
        new_findings=1,
        scanner_durations_ms={"bandit": 400.0},
    )


async def _notification_latencies(
    store: Store, receiver: _Receiver, events: int, warmup: int, prefix: str
) -> list[float]:
    bus = AsyncEventBus()
    await bus.start()
    writer = StoreWriter(store)
    await writer.attach(bus)
    rules = [r for r in default_rules() if r.name == "NewCriticalFinding"]
    engine = AlertEngine(
        store,
        bus,
        rules,
        evaluation_interval_s=3600.0,  # only the scan events evaluate here
        notifiers=[WebhookNotifier(receiver.url, timeout_s=5.0)],
        group_settings=GroupSettings(("alertname", "target"), 0, 300_000, 4 * 3_600_000),
    )
    await engine.start()
    latencies: list[float] = []
    try:
        for index in range(warmup + events):
            scan_id = f"scan-{index}"
            target = f"{prefix}/project-{index}"
            await bus.publish(
                ViolationDetected(scan_id=scan_id, finding=_finding(index), is_new=True)
            )
            started = time.perf_counter()
            await bus.publish(ScanCompleted(metrics=_metrics(scan_id, target)))
            arrived = await asyncio.to_thread(receiver.wait, target)
            if index >= warmup:
                latencies.append((arrived - started) * 1000)
    finally:
        await engine.stop()
        await bus.close(drain=True)
        await writer.close()
    return latencies


def _bare_posts(receiver: _Receiver, body: bytes, runs: int) -> list[float]:
    payload = json.loads(body)
    times: list[float] = []
    for index in range(runs):
        marker = f"bare-{index}"
        data = json.dumps({**payload, "marker": marker}, separators=(",", ":")).encode()
        request = urllib.request.Request(
            receiver.url, data=data, method="POST", headers={"Content-Type": "application/json"}
        )
        started = time.perf_counter()
        with urllib.request.urlopen(request, timeout=5) as answer:
            answer.read()
        times.append((receiver.wait(marker) - started) * 1000)
    return times


def _round(receiver: _Receiver, events: int, warmup: int, prefix: str) -> list[float]:
    """One fresh store and engine; latencies of ``events`` events on new projects."""
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open(Path(tmp) / "bench.db")
        try:
            return asyncio.run(_notification_latencies(store, receiver, events, warmup, prefix))
        finally:
            store.close()


def run(quick: bool) -> list[Figure]:
    rounds, per_round, warmup = (1, 25, 3) if quick else (4, 50, 3)
    scale_projects, scale_tail = (25, 5) if quick else (200, 20)
    receiver = _Receiver()
    try:
        latencies: list[float] = []
        for number in range(rounds):
            latencies += _round(receiver, per_round, warmup, f"/srv/round-{number}")
        body = receiver.bodies[f"/srv/round-0/project-{warmup}"]
        anchors = _bare_posts(receiver, body, len(latencies))
        scaled = (
            latencies[-scale_tail:]
            if quick
            else _round(receiver, scale_projects, warmup, "/srv/scale")
        )
        scaled_tail = scaled[-scale_tail:]
    finally:
        receiver.close()
    p95 = float(np.percentile(latencies, 95))
    median = statistics.median(latencies)
    anchor = statistics.median(anchors)
    note = (
        f"ScanCompleted with a new critical finding -> NewCriticalFinding fires -> webhook "
        f"(Alertmanager v4, {len(body)} bytes) received; AsyncEventBus, StoreWriter on SQLite, "
        f"group_wait 0; {rounds} x {per_round} events, each on a new project (so up to "
        f"{per_round} firing alerts); median {median:.1f} ms"
    )
    return [
        Figure(
            AREA,
            "event to notification received, group_wait 0 (p95)",
            p95,
            "ms",
            f"<= {TARGET_P95_MS:g} ms p95",
            p95 <= TARGET_P95_MS,
            "bare HTTP POST of the same payload (median)",
            anchor,
            note,
        ),
        Figure(
            AREA,
            "event to notification received, group_wait 0 (median)",
            median,
            "ms",
            "",
            None,
            "bare HTTP POST of the same payload",
            anchor,
            f"{len(latencies)} events; bare POST p95 {float(np.percentile(anchors, 95)):.2f} ms",
        ),
        Figure(
            AREA,
            f"event to notification with {scale_projects} projects alerting (median)",
            statistics.median(scaled_tail),
            "ms",
            "",
            None,
            "bare HTTP POST of the same payload",
            anchor,
            f"median of the last {scale_tail} of {scale_projects} events on new projects: "
            "the security rules' evaluation reads every project's series",
        ),
    ]
