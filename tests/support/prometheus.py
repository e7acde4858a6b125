"""Real servers for the web tests: secperf's app under uvicorn, and a Prometheus server.

``running_app`` serves an app with the real uvicorn on a free loopback port in
a background thread (its own event loop, as in production). ``start_prometheus``
runs Debian's ``/usr/bin/prometheus`` with a config that scrapes given targets
every second; tests skip with the reason when the binary is missing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from secperf.web.server import bind_socket, make_server, socket_url
from support.services import free_port

PROMETHEUS = "/usr/bin/prometheus"


@dataclass
class RunningApp:
    """An app served by uvicorn: its base URL and the loop it runs on."""

    url: str
    loop: asyncio.AbstractEventLoop

    def call(self, coro: Any, timeout: float = 10.0) -> Any:
        """Run a coroutine on the server's loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)


@contextlib.contextmanager
def running_app(app: FastAPI) -> Iterator[RunningApp]:
    """Serve ``app`` with uvicorn on a free loopback port until the block ends."""
    sock = bind_socket("127.0.0.1", 0)
    server = make_server(app, log_level="warning")
    loop = asyncio.new_event_loop()
    failure: list[BaseException] = []

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(server.serve(sockets=[sock]))
        except BaseException as exc:  # surfaced to the test below
            failure.append(exc)
        finally:
            loop.close()

    thread = threading.Thread(target=run, name="uvicorn-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if failure or not thread.is_alive():
            raise RuntimeError(f"uvicorn did not start: {failure!r}")
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start within 15 s")
        time.sleep(0.01)
    try:
        yield RunningApp(socket_url(sock), loop)
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()


def _get_json(url: str, timeout: float = 5.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read())


@dataclass
class PrometheusServer:
    """A running Prometheus: its base URL."""

    url: str

    def query(self, expr: str) -> list[dict[str, Any]]:
        """Instant query results (``data.result``) of a PromQL expression."""
        q = urllib.parse.urlencode({"query": expr})
        body = _get_json(f"{self.url}/api/v1/query?{q}")
        assert body["status"] == "success", body
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def targets(self) -> list[dict[str, Any]]:
        """The active scrape targets with their health and last error."""
        body = _get_json(f"{self.url}/api/v1/targets")
        active: list[dict[str, Any]] = body["data"]["activeTargets"]
        return active


def prometheus_binary() -> str | None:
    """The Prometheus server binary, or None when it is not installed."""
    if Path(PROMETHEUS).exists():
        return PROMETHEUS
    return shutil.which("prometheus")


@contextlib.contextmanager
def start_prometheus(
    tmp_path: Path, targets: list[str], *, bearer_token: str | None = None
) -> Iterator[PrometheusServer]:
    """Run Prometheus scraping ``targets`` (``host:port``) at /metrics every second."""
    binary = prometheus_binary()
    if binary is None:
        pytest.skip(f"{PROMETHEUS} is not installed (Debian package: prometheus)")
    port = free_port()
    job: dict[str, Any] = {
        "job_name": "secperf",
        "scrape_interval": "1s",
        "scrape_timeout": "1s",
        "metrics_path": "/metrics",
        "static_configs": [{"targets": targets}],
    }
    if bearer_token is not None:
        job["authorization"] = {"type": "Bearer", "credentials": bearer_token}
    config = {"global": {"scrape_interval": "1s"}, "scrape_configs": [job]}
    config_path = tmp_path / "prometheus.yml"
    # JSON is valid YAML, so no YAML library is needed to write the config.
    config_path.write_text(json.dumps(config, indent=2))
    data_dir = tmp_path / "prometheus-data"
    log_path = tmp_path / "prometheus.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [
                binary,
                f"--config.file={config_path}",
                f"--storage.tsdb.path={data_dir}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--storage.tsdb.retention.time=1h",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                pytest.fail(
                    f"prometheus exited with {proc.returncode}: "
                    f"{log_path.read_text(errors='replace')[-2000:]}"
                )
            try:
                with urllib.request.urlopen(f"{url}/-/ready", timeout=2) as response:
                    if response.status == 200:
                        break
            except (OSError, urllib.error.URLError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"prometheus was not ready on {url} within 30 s")
            time.sleep(0.1)
        yield PrometheusServer(url)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
