"""The API server under load: the overview's throughput and p95 at 1 to 200 clients.

The server is the real ``secperf serve`` in a process of its own, over a
SQLite store holding 6 hours of samples of 4 hosts (cpu, memory, load, two
cores each, every 10 s), 20 scans with their findings, alerts and a silence;
its alert engine runs with the default rules.

Clients are closed loops over raw asyncio sockets in this process (keep-alive
HTTP/1.1; httpx would spend more CPU per request than the server): each asks
``GET /api/v1/overview`` again as soon as it has its answer, and after a 503
waits the ``Retry-After`` it was given, as a client should. Figures per
number of clients (1, 10, 50, 200): answers 200 per second and their p95
latency, with the 503s (shed load) in the note; anchor: ``/healthz`` with as
many clients in the same run (the server's bare request rate and latency).
One more figure: the p99 of ``/healthz`` probed from another process while
200 clients ask for the overview; anchor: the same probe on an idle server.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.common import Figure
from secperf.model import (
    Alert,
    AlertState,
    Finding,
    MetricKind,
    Sample,
    SecurityMetrics,
    Severity,
)
from secperf.store import Store

AREA = "web load"
LEVELS = (1, 10, 50, 200)
HEALTHZ_P99_TARGET_MS = 100.0

#: Times /healthz from a process of its own; prints the latencies (ms) as JSON.
PROBER = textwrap.dedent(
    """
    import http.client, json, sys, time
    host, port = sys.argv[1], int(sys.argv[2])
    seconds, interval = float(sys.argv[3]), float(sys.argv[4])
    latencies = []
    conn = http.client.HTTPConnection(host, port, timeout=30)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        began = time.perf_counter()
        conn.request("GET", "/healthz")
        response = conn.getresponse()
        response.read()
        if response.status != 200:
            raise SystemExit(f"/healthz answered {response.status}")
        latencies.append((time.perf_counter() - began) * 1000)
        time.sleep(interval)
    print(json.dumps(latencies))
    """
)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _fill(store: Store) -> None:
    """Six hours of four hosts, 20 scans with findings, two alerts and a silence."""
    now = _now_ms()
    start = now - 6 * 3_600_000
    samples: list[Sample] = []
    for h in range(4):
        host = f"h{h + 1}"
        for i in range(6 * 360):
            ts = start + i * 10_000
            samples.append(Sample("cpu_percent", {"host": host}, ts, float(i % 100)))
            samples.append(Sample("memory_percent", {"host": host}, ts, 40.0 + i % 20))
            samples.append(Sample("load_1m", {"host": host}, ts, (i % 30) / 10))
            for core in range(2):
                samples.append(
                    Sample("cpu_percent", {"host": host, "cpu": str(core)}, ts, float(i % 90))
                )
    for i in range(0, len(samples), 20_000):
        store.write_samples(samples[i : i + 20_000])
    for n in range(1, 21):
        found = [
            Finding(
                fingerprint=f"{n:04x}{k:028x}",
                rule_id=f"B{600 + k % 20}",
                scanner="bandit",
                severity=Severity.HIGH if k % 3 == 0 else Severity.MEDIUM,
                message=f"issue {k}",
                path=f"src/m{k}.py",
                line=k + 1,
                snippet="subprocess.call(cmd, shell=True)",
            )
            for k in range(n * 5)
        ]
        started = now - (21 - n) * 600_000
        counts: dict[str, int] = {}
        for f in found:
            counts[f.severity.value] = counts.get(f.severity.value, 0) + 1
        store.record_scan_started(f"scan-{n}", "repo", started, ["bandit"])
        store.add_findings(f"scan-{n}", found, {found[-1].fingerprint})
        store.record_scan_completed(
            SecurityMetrics(
                scan_id=f"scan-{n}",
                target="repo",
                started_ms=started,
                finished_ms=started + 2_000,
                scan_duration_ms=2_000.0,
                violations_found=len(found),
                false_positive_rate=0.0,
                vulnerability_severity_counts=counts,
                scan_coverage_percent=95.0,
                eligible_files=20,
                files_scanned=19,
                new_findings=1,
            ),
            "ok",
        )
    for fp, state in (("a" * 16, AlertState.FIRING), ("b" * 16, AlertState.PENDING)):
        store.upsert_alert(
            Alert(
                fingerprint=fp,
                rule="cpu_high",
                state=state,
                severity=Severity.HIGH,
                kind=MetricKind.PERFORMANCE,
                labels={"host": "h1"},
                value=93.0,
                active_since_ms=now - 60_000,
                fired_at_ms=now - 1_000 if state is AlertState.FIRING else None,
                updated_ms=now - 1_000,
            )
        )
    store.add_silence([{"name": "host", "value": "h2", "op": "="}], now, now + 3_600_000, "o", "x")


@contextlib.contextmanager
def _server(db: Path, project: Path) -> Iterator[str]:
    """``secperf serve`` on a free loopback port; yields its URL."""
    env = {k: v for k, v in os.environ.items() if k != "SECPERF_TOKEN"}
    process = subprocess.Popen(
        [sys.executable, "-m", "secperf", "serve", "--port", "0", "--store", str(db)],
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().decode(errors="replace")
        found = re.search(r"http://127\.0\.0\.1:\d+", line)
        if found is None:
            raise RuntimeError(f"secperf serve did not start: {line!r}")
        yield found.group(0)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class _Run:
    ok_ms: list[float] = field(default_factory=list)
    shed: int = 0
    other: int = 0
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return len(self.ok_ms) / self.seconds if self.seconds else 0.0

    def p(self, q: float) -> float:
        if not self.ok_ms:
            return float("nan")
        ordered = sorted(self.ok_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _answer(reader: asyncio.StreamReader) -> tuple[int, dict[str, str]]:
    status = int((await reader.readline()).split()[1])
    headers: dict[str, str] = {}
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    await reader.readexactly(int(headers.get("content-length", "0")))
    return status, headers


async def _closed_loop(host: str, port: int, path: str, end: float, seed: int, out: _Run) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    request = f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
    rng = random.Random(seed)
    try:
        while time.monotonic() < end:
            began = time.perf_counter()
            writer.write(request)
            await writer.drain()
            status, headers = await _answer(reader)
            if status == 200:
                out.ok_ms.append((time.perf_counter() - began) * 1000)
            elif status == 503:
                out.shed += 1
                delay = float(headers.get("retry-after", "1")) * rng.uniform(1, 1.5)
                await asyncio.sleep(max(0.0, min(delay, end - time.monotonic())))
            else:
                out.other += 1
    finally:
        writer.close()


def _load(url: str, path: str, clients: int, seconds: float) -> _Run:
    host, port = url.removeprefix("http://").split(":")

    async def main() -> _Run:
        out = _Run()
        began = time.monotonic()
        end = began + seconds
        await asyncio.gather(
            *(_closed_loop(host, int(port), path, end, n, out) for n in range(clients))
        )
        out.seconds = time.monotonic() - began
        return out

    run = asyncio.run(main())
    if run.other:
        raise RuntimeError(f"{path} answered {run.other} time(s) with neither 200 nor 503")
    return run


def _probe(url: str, seconds: float) -> subprocess.Popen[bytes]:
    host, port = url.removeprefix("http://").split(":")
    return subprocess.Popen(
        [sys.executable, "-c", PROBER, host, port, str(seconds), "0.01"], stdout=subprocess.PIPE
    )


def _probed(process: subprocess.Popen[bytes]) -> list[float]:
    out, _ = process.communicate(timeout=120)
    if process.returncode:
        raise RuntimeError(f"the /healthz prober failed with exit code {process.returncode}")
    latencies: list[float] = json.loads(out)
    return latencies


def _p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


def run(quick: bool) -> list[Figure]:
    """Overview throughput and p95 per number of clients, beside /healthz's."""
    seconds = 0.4 if quick else 8.0
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory(prefix="secperf-bench-load-") as name:
        tmp = Path(name)
        with Store.open(tmp / "load.db") as store:
            _fill(store)
        with _server(tmp / "load.db", tmp) as url:
            _load(url, "/api/v1/overview", 4, 0.2)  # warm-up: caches, connections
            idle = _probed(_probe(url, 0.5 if quick else 5.0))
            runs: dict[int, tuple[_Run, _Run]] = {}
            for clients in LEVELS:
                prober = _probe(url, seconds) if clients == LEVELS[-1] else None
                overview = _load(url, "/api/v1/overview", clients, seconds)
                loaded = _probed(prober) if prober is not None else []
                health = _load(url, "/healthz", clients, seconds)
                runs[clients] = (overview, health)
    ten = runs[10][0].rate
    for clients, (overview, health) in runs.items():
        shed = f"{overview.shed:,} answers 503 (shed, Retry-After honoured)"
        figures.append(
            Figure(
                AREA,
                f"GET /api/v1/overview, {clients} client(s): answers 200 per second",
                overview.rate,
                "req/s",
                ">= 0.5x the 10-client rate (no collapse)" if clients > 10 else "",
                overview.rate >= 0.5 * ten if clients > 10 else None,
                f"GET /healthz, {clients} client(s)",
                health.rate,
                f"{len(overview.ok_ms):,} answers 200 and {shed} in {overview.seconds:.1f} s; "
                "closed-loop clients, SQLite store, 4 hosts x 6 h",
            )
        )
        figures.append(
            Figure(
                AREA,
                f"GET /api/v1/overview, {clients} client(s): p95 of answers 200",
                overview.p(0.95),
                "ms",
                "",
                None,
                f"GET /healthz p95, {clients} client(s)",
                health.p(0.95),
                f"median {overview.p(0.5):.1f} ms; {shed}",
            )
        )
    p99 = _p99(loaded)
    figures.append(
        Figure(
            AREA,
            f"/healthz p99 while {LEVELS[-1]} clients ask for the overview",
            p99,
            "ms",
            f"<= {HEALTHZ_P99_TARGET_MS:g} ms",
            p99 <= HEALTHZ_P99_TARGET_MS,
            "/healthz p99, idle server",
            _p99(idle),
            f"{len(loaded):,} probes from another process, one every 10 ms; "
            f"max {max(loaded):.1f} ms",
        )
    )
    return figures
