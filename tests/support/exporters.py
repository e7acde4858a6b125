"""Real scrape targets for the collector tests: the node exporter and small local servers.

Import the fixtures into a test module (``from support.exporters import ...``).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, Summary, generate_latest

from support.services import free_port

NODE_EXPORTER = "/usr/bin/prometheus-node-exporter"
# Collectors that are slow, noisy or need things a test machine lacks.
NODE_EXPORTER_FLAGS = (
    "--no-collector.systemd",
    "--no-collector.logind",
    "--no-collector.textfile",
    "--no-collector.hwmon",
    "--no-collector.thermal_zone",
    "--no-collector.rapl",
    "--no-collector.powersupplyclass",
)


def _node_exporter_binary() -> str | None:
    if Path(NODE_EXPORTER).exists():
        return NODE_EXPORTER
    return shutil.which("prometheus-node-exporter") or shutil.which("node_exporter")


@pytest.fixture(scope="session")
def node_exporter() -> Iterator[str]:
    """The /metrics URL of a real node exporter on a free loopback port."""
    binary = _node_exporter_binary()
    if binary is None:
        pytest.skip(f"{NODE_EXPORTER} is not installed (apt-get install prometheus-node-exporter)")
    port = free_port()
    proc = subprocess.Popen(
        [binary, f"--web.listen-address=127.0.0.1:{port}", *NODE_EXPORTER_FLAGS],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        deadline = time.monotonic() + 15
        while True:
            if proc.poll() is not None:
                err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
                pytest.fail(f"node exporter exited with {proc.returncode}: {err[-2000:]}")
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"node exporter did not answer on {url} within 15 s")
            time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stderr:
            proc.stderr.close()


def _exposition() -> bytes:
    """A real exposition with a counter, a histogram and a summary."""
    registry = CollectorRegistry()
    requests = Counter("app_requests", "Requests", ["method"], registry=registry)
    requests.labels(method="GET").inc(7)
    latency = Histogram("app_latency_seconds", "Latency", buckets=(0.1, 1.0), registry=registry)
    latency.observe(0.05)
    latency.observe(0.5)
    size = Summary("app_size_bytes", "Size", registry=registry)
    size.observe(100)
    return generate_latest(registry)


class _Handler(BaseHTTPRequestHandler):
    """Answers by path: /ok, /labels, /500, /garbage, /html, /big, /many, /stamped."""

    def do_GET(self) -> None:
        routes = {
            "/ok": (200, _exposition()),
            "/labels": (200, b'clash{job="theirs",instance="x",zone="a"} 1\n'),
            "/500": (500, b"internal error\n"),
            "/garbage": (200, b"\x00\x01 this is { not metrics\n"),
            "/html": (200, b"<html><body><h1>Welcome</h1></body></html>\n"),
            "/big": (200, b"# padding\n" * 200_000),
            "/many": (200, b"".join(b"m_%d 1\n" % i for i in range(500))),
            "/stamped": (200, b"stamped 1 1700000000123\nplain 2\n"),
        }
        status, body = routes.get(self.path, (404, b"not found\n"))
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass  # keep test output quiet


@pytest.fixture(scope="session")
def exposition_server() -> Iterator[str]:
    """Base URL (no trailing slash) of a local HTTP server with fixed answers."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture()
def silent_server() -> Iterator[str]:
    """URL of a server that accepts connections and never answers."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.1)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            held.append(conn)  # hold it open, say nothing

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/metrics"
    finally:
        stop.set()
        thread.join(timeout=2)
        for conn in held:
            conn.close()
        listener.close()
