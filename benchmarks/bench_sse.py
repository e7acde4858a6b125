"""The live stream under load: many SSE clients while 1,000 events/s go through the bus.

Target: 50 concurrent SSE clients at 1,000 events/s; the server uses at most
one core and no client falls more than 1 s behind.

The server is a real uvicorn process (this module run with ``serve``), so
its CPU can be measured on its own with psutil: it builds ``create_app`` over
a SQLite store and the in-memory bus, and once every client is connected a
publisher task in the same loop publishes ``ViolationDetected`` and
``AlertChanged`` events on the bus at the set rate (security and alert events
are never thinned, unlike metric batches). The publisher belongs to the
benchmark, not to the product API.

The clients are raw asyncio sockets in this process speaking HTTP/1.1 to
``/api/v1/stream`` with the dashboard's topics. For every event each client
records the lag between the event's ``ts_ms`` and the moment its bytes
arrived. Figures: the server's CPU in % of one core (median of 0.5 s samples
during publishing) and the lag over all clients (max and p99); anchor: the
same publisher with one client.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import psutil

from benchmarks.common import Figure

AREA = "sse"
ROOT = Path(__file__).resolve().parent.parent
RATE = 1000
#: The topics the dashboard subscribes to.
TOPICS = "security.>,alerts.>,metrics.recorded"
TS_RE = re.compile(rb'"ts_ms":(\d+)')
CPU_SAMPLE_S = 0.5


# --------------------------------------------------------------------------- server side


def _serve(db: Path, clients: int, rate: int, seconds: float) -> None:
    """The server process: the app on a free loopback port, plus the benchmark's publisher.

    Prints ``URL <url>``, then ``PUBLISHING`` once ``clients`` streams are
    open and ``DONE <published>`` after ``seconds`` of publishing; exits when
    stdin closes.
    """
    from secperf.bus.memory import AsyncEventBus
    from secperf.events import AlertChanged, ViolationDetected
    from secperf.model import Alert, AlertState, Finding, MetricKind, Severity
    from secperf.store import Store
    from secperf.web.app import create_app
    from secperf.web.server import bind_socket, make_server, socket_url
    from secperf.web.sse import SseHub

    store = Store.open(db)
    bus = AsyncEventBus()
    app = create_app(store, bus)
    hub = app.state.sse_hub
    assert isinstance(hub, SseHub)
    sock = bind_socket("127.0.0.1", 0)
    server = make_server(app, log_level="error")
    finding = Finding(
        fingerprint="bench-fp",
        rule_id="B101",
        scanner="bandit",
        severity=Severity.HIGH,
        message="assert used",
        path="src/app.py",
        line=12,
    )
    alert = Alert(
        fingerprint="bench-alert",
        rule="HighCpu",
        state=AlertState.FIRING,
        severity=Severity.HIGH,
        kind=MetricKind.PERFORMANCE,
        labels={"alertname": "HighCpu", "host": "h1"},
        annotations={"summary": "CPU high"},
        value=91.0,
        active_since_ms=0,
        fired_at_ms=0,
        updated_ms=0,
    )

    async def publish(count: int) -> None:
        for i in range(count):
            if i % 2:
                await bus.publish(AlertChanged(alert=alert, previous_state=AlertState.PENDING))
            else:
                await bus.publish(ViolationDetected(scan_id="bench-scan", finding=finding))

    async def publisher() -> None:
        while hub.clients < clients:
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.3)  # every stream past its first bytes
        print("PUBLISHING", flush=True)
        loop = asyncio.get_running_loop()
        tick = 0.01  # publish in 10 ms steps, on an absolute schedule (no drift)
        per_tick = max(1, round(rate * tick))
        began = loop.time()
        published = 0
        step = 0
        try:
            while loop.time() - began < seconds:
                step += 1
                await publish(per_tick)
                published += per_tick
                await asyncio.sleep(max(0.0, began + step * tick - loop.time()))
        except Exception as exc:  # say so: the parent is waiting for DONE
            print(f"FAILED {type(exc).__name__}: {exc}", flush=True)
            return
        print(f"DONE {published}", flush=True)

    async def main() -> None:
        serving = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started:
            await asyncio.sleep(0.01)
        print(f"URL {socket_url(sock)}", flush=True)
        publishing = asyncio.create_task(publisher())
        # Ends when the parent closes stdin.
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
        publishing.cancel()
        server.should_exit = True
        await serving

    try:
        asyncio.run(main())
    finally:
        sock.close()
        store.close()


# --------------------------------------------------------------------------- client side


@dataclass
class _Client:
    """One stream: the lag of every event it received, in ms."""

    lags: list[float] = field(default_factory=list)
    error: str | None = None


async def _stream(url: str, client: _Client, connected: asyncio.Event, stop: asyncio.Event) -> None:
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    topics = TOPICS.replace(">", "%3E").replace(",", "%2C")
    writer.write(
        f"GET /api/v1/stream?topics={topics} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        "Accept: text/event-stream\r\n\r\n".encode()
    )
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        client.error = head.split(b"\r\n", 1)[0].decode(errors="replace")
        connected.set()
        return
    connected.set()
    pending = b""
    lags = client.lags
    try:
        while not stop.is_set():
            data = await reader.read(1 << 16)
            if not data:
                break
            arrived = time.time() * 1000
            pending += data
            # Only whole frames: a frame split across reads is finished next time.
            end = pending.rfind(b"\n\n")
            if end < 0:
                continue
            done, pending = pending[: end + 2], pending[end + 2 :]
            lags.extend(arrived - int(ts) for ts in TS_RE.findall(done))
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


@dataclass
class _Run:
    clients: list[_Client]
    published: int
    cpu_samples: list[float]


def _measure(clients: int, seconds: float) -> _Run:
    """Start a server process, connect ``clients`` streams, publish, measure."""
    with tempfile.TemporaryDirectory(prefix="secperf-bench-sse-") as tmp:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "benchmarks.bench_sse",
                "serve",
                "--db",
                str(Path(tmp) / "sse.db"),
                "--clients",
                str(clients),
                "--rate",
                str(RATE),
                "--seconds",
                str(seconds),
            ],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        try:
            return _drive(proc, clients, seconds)
        finally:
            if proc.stdin is not None:
                proc.stdin.close()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _drive(proc: subprocess.Popen[str], clients: int, seconds: float) -> _Run:
    assert proc.stdout is not None
    lines = proc.stdout
    first = lines.readline().split()
    if len(first) != 2 or first[0] != "URL":
        raise RuntimeError(f"the SSE benchmark server did not start (said {first!r})")
    url = first[1]
    server = psutil.Process(proc.pid)
    cpu: list[float] = []
    published = 0
    sampling = threading.Event()
    finished = threading.Event()

    def watch() -> None:
        # Reads the server's progress lines and samples its CPU while it publishes.
        nonlocal published
        line = lines.readline()
        if line.strip() != "PUBLISHING":
            failure.append(line.strip() or "the server exited")
            finished.set()
            return
        sampling.set()
        server.cpu_percent(None)
        reader = threading.Thread(target=lambda: done_line.append(lines.readline()), daemon=True)
        reader.start()
        while reader.is_alive():
            reader.join(CPU_SAMPLE_S)
            if reader.is_alive():
                cpu.append(server.cpu_percent(None))
        parts = done_line[0].split() if done_line else []
        if len(parts) == 2 and parts[0] == "DONE":
            published = int(parts[1])
        else:
            failure.append(done_line[0].strip() if done_line else "the server exited")
        finished.set()

    done_line: list[str] = []
    failure: list[str] = []
    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()

    async def run_clients() -> list[_Client]:
        stop = asyncio.Event()
        results = [_Client() for _ in range(clients)]
        events = [asyncio.Event() for _ in range(clients)]
        tasks = [
            asyncio.create_task(_stream(url, c, e, stop))
            for c, e in zip(results, events, strict=True)
        ]
        await asyncio.wait_for(asyncio.gather(*(e.wait() for e in events)), 30)
        loop = asyncio.get_running_loop()
        if not await loop.run_in_executor(None, finished.wait, seconds + 30):
            raise RuntimeError("the SSE benchmark server did not finish publishing")
        await asyncio.sleep(1.5)  # what is still in flight arrives (a lag over 1 s shows)
        stop.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        return results

    results = asyncio.run(run_clients())
    watcher.join(5)
    if failure:
        raise RuntimeError(f"the SSE benchmark server failed: {failure[0]}")
    errors = [c.error for c in results if c.error]
    if errors:
        raise RuntimeError(f"{len(errors)} stream(s) were refused: {errors[0]}")
    return _Run(results, published, cpu)


def _p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]


def run(quick: bool) -> list[Figure]:
    """The server's CPU and the clients' lag with many clients, beside one client."""
    clients, seconds = (10, 3.0) if quick else (50, 15.0)
    many = _measure(clients, seconds)
    one = _measure(1, seconds)
    many_lags = [lag for c in many.clients for lag in c.lags]
    one_lags = one.clients[0].lags
    if not many_lags or not one_lags:
        raise RuntimeError("no event reached the SSE benchmark clients")
    cpu_many = statistics.median(many.cpu_samples) if many.cpu_samples else float("nan")
    cpu_one = statistics.median(one.cpu_samples) if one.cpu_samples else float("nan")
    received = min(len(c.lags) for c in many.clients)
    rate = many.published / seconds
    where = f"{clients} clients, {rate:,.0f} events/s for {seconds:g} s"
    return [
        Figure(
            AREA,
            f"server CPU, {clients} SSE clients at {RATE:,} events/s",
            cpu_many,
            "% of a core",
            "<= 100 % (one core)",
            cpu_many <= 100,
            "same publisher, 1 client",
            cpu_one,
            f"{where}; median of {len(many.cpu_samples)} samples of {CPU_SAMPLE_S:g} s "
            "(uvicorn process, psutil)",
        ),
        Figure(
            AREA,
            f"lag behind the event, max over {clients} clients",
            max(many_lags),
            "ms",
            "<= 1,000 ms",
            max(many_lags) <= 1000,
            "same publisher, 1 client",
            max(one_lags),
            f"{where}; every client received at least {received:,} of {many.published:,} "
            f"events; median lag {statistics.median(many_lags):.1f} ms",
        ),
        Figure(
            AREA,
            f"lag behind the event, p99 over {clients} clients",
            _p99(many_lags),
            "ms",
            "",
            None,
            "same publisher, 1 client",
            _p99(one_lags),
            f"{len(many_lags):,} deliveries",
        ),
    ]


def _main() -> None:
    parser = argparse.ArgumentParser(description="The SSE benchmark's server process.")
    parser.add_argument("command", choices=["serve"])
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--clients", type=int, required=True)
    parser.add_argument("--rate", type=int, default=RATE)
    parser.add_argument("--seconds", type=float, required=True)
    args = parser.parse_args()
    _serve(args.db, args.clients, args.rate, args.seconds)


if __name__ == "__main__":
    _main()
