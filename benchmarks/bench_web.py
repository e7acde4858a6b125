"""The HTTP API: ingest throughput and downsampled query latency over real HTTP.

The app runs under the real uvicorn (its own thread and event loop, as in
``secperf serve``) over a real SQLite store, with the store writer attached.

* ingest: JSON batches of 5,000 samples POSTed to ``/api/v1/ingest/metrics``
  by one client, timed until the store writer has committed every sample;
  anchor: ``Store.write_samples`` of the same samples, directly;
* query: 24 h of one 1 s series (86,400 points) downsampled to 1,000 points
  through ``GET /api/v1/metrics/query``; anchor: ``Store.query`` directly.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from benchmarks.common import Figure, serve_in_thread
from secperf.bus import AsyncEventBus
from secperf.model import Sample
from secperf.store import Store, StoreWriter
from secperf.web import create_app

AREA = "web"
TOKEN = "bench-token-0123456789abcdef"
BATCH = 5_000
DAY_S = 86_400


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


@contextmanager
def _serve(store: Store, writer: StoreWriter) -> Iterator[str]:
    app = create_app(store, AsyncEventBus(), token=TOKEN, writer=writer, manage_writer=True)
    with serve_in_thread(app) as url:
        yield url


def _batches(total: int, start_ms: int) -> list[list[dict[str, Any]]]:
    rows = [
        {
            "name": "bench_http_ingest",
            "labels": {"host": "h1", "series": str(i % 50)},
            "timestamp_ms": start_ms + i // 50 * 1000,
            "value": float(i % 977) / 10,
        }
        for i in range(total)
    ]
    return [rows[i : i + BATCH] for i in range(0, total, BATCH)]


def _ingest(tmp: Path, total: int) -> Figure:
    start_ms = _now_ms() - total // 50 * 1000 - 60_000
    batches = _batches(total, start_ms)
    store = Store.open(tmp / "http.db")
    writer = StoreWriter(store, flush_interval_s=0.2)
    with _serve(store, writer) as url, httpx.Client(base_url=url, timeout=60) as client:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        began = time.perf_counter()
        for batch in batches:
            response = client.post(
                "/api/v1/ingest/metrics", json={"samples": batch}, headers=headers
            )
            while response.status_code == 503:  # back-pressure: retry, as a client should
                time.sleep(0.05)
                response = client.post(
                    "/api/v1/ingest/metrics", json={"samples": batch}, headers=headers
                )
            response.raise_for_status()
        while writer.samples_written < total:
            time.sleep(0.005)
        elapsed = time.perf_counter() - began
    store.close()
    rate = total / elapsed

    direct = Store.open(tmp / "direct.db")
    samples = [
        Sample(r["name"], r["labels"], r["timestamp_ms"], r["value"]) for b in batches for r in b
    ]
    began = time.perf_counter()
    for i in range(0, len(samples), BATCH):
        direct.write_samples(samples[i : i + BATCH])
    anchor_rate = total / (time.perf_counter() - began)
    direct.close()
    return Figure(
        AREA,
        "ingest over HTTP (JSON batches to committed)",
        rate,
        "samples/s",
        "",
        None,
        "Store.write_samples directly",
        anchor_rate,
        f"{total:,} samples in batches of {BATCH:,}, one client, 50 series; "
        "validated twice (API and store), through the bus and the store writer",
    )


def _query(tmp: Path, runs: int) -> Figure:
    store = Store.open(tmp / "query.db")
    end = _now_ms() - 1000
    start = end - (DAY_S - 1) * 1000
    samples = [
        Sample("bench_query", {"host": "h1"}, start + i * 1000, (i % 600) / 6) for i in range(DAY_S)
    ]
    for i in range(0, DAY_S, 20_000):
        store.write_samples(samples[i : i + 20_000])
    store.compact()
    params: dict[str, str | int] = {
        "name": "bench_query",
        "start_ms": start,
        "end_ms": end,
        "points": 1000,
    }
    writer = StoreWriter(store)
    with _serve(store, writer) as url, httpx.Client(base_url=url, timeout=60) as client:
        client.get("/api/v1/metrics/query", params=params).raise_for_status()  # warm-up
        http_ms: list[float] = []
        for _ in range(runs):
            began = time.perf_counter()
            response = client.get("/api/v1/metrics/query", params=params)
            body = response.json()
            http_ms.append((time.perf_counter() - began) * 1000)
        points = len(body["series"][0]["timestamps_ms"])
    direct_ms: list[float] = []
    for _ in range(runs):
        began = time.perf_counter()
        store.query("bench_query", None, start, end, max_points=1000)
        direct_ms.append((time.perf_counter() - began) * 1000)
    store.close()
    return Figure(
        AREA,
        "query 86,400 points to 1,000 over HTTP",
        statistics.median(http_ms),
        "ms",
        "",
        None,
        "Store.query directly",
        statistics.median(direct_ms),
        f"{points} points returned (avg, min, max each); JSON decoded by the client; "
        f"median of {runs}",
    )


def run(quick: bool) -> list[Figure]:
    """Measure both figures beside their anchors."""
    with tempfile.TemporaryDirectory(prefix="secperf-bench-web-") as name:
        tmp = Path(name)
        return [
            _ingest(tmp, 20_000 if quick else 200_000),
            _query(tmp, 5 if quick else 30),
        ]
