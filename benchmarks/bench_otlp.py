"""OpenTelemetry in: samples per second through ``POST /v1/metrics`` beside the JSON ingest.

One server (the real uvicorn over a real SQLite store with the store writer
attached, as ``bench_web``) takes, one after the other, the same samples as
JSON batches to ``/api/v1/ingest/metrics`` (the anchor) and as OTLP/HTTP
protobuf exports to ``/v1/metrics`` (plain, then gzip): batches of 5,000
samples (one gauge, 50 series), one client, each phase timed until the
writer has committed its last sample. Bodies are encoded before the clock
starts: what is measured is the server's work, not the client's.
"""

from __future__ import annotations

import gzip
import json
import tempfile
import time
from pathlib import Path

import httpx
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)

from benchmarks.bench_web import TOKEN
from benchmarks.bench_web import _serve as serve
from benchmarks.common import Figure
from secperf.store import Store, StoreWriter

AREA = "otlp"
BATCH = 5_000
SERIES = 50
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _json_bodies(name: str, total: int, start_ms: int) -> list[bytes]:
    bodies = []
    for first in range(0, total, BATCH):
        rows = [
            {
                "name": name,
                "labels": {"host": "h1", "series": str(i % SERIES)},
                "timestamp_ms": start_ms + i // SERIES * 1000,
                "value": float(i % 977) / 10,
            }
            for i in range(first, min(first + BATCH, total))
        ]
        bodies.append(json.dumps({"samples": rows}).encode())
    return bodies


def _otlp_bodies(name: str, total: int, start_ms: int) -> list[bytes]:
    bodies = []
    for first in range(0, total, BATCH):
        request = ExportMetricsServiceRequest()
        metric = request.resource_metrics.add().scope_metrics.add().metrics.add()
        metric.name = name
        points = metric.gauge.data_points
        for i in range(first, min(first + BATCH, total)):
            point = points.add()
            point.time_unix_nano = (start_ms + i // SERIES * 1000) * 1_000_000
            point.as_double = float(i % 977) / 10
            host = point.attributes.add()
            host.key = "host"
            host.value.string_value = "h1"
            series = point.attributes.add()
            series.key = "series"
            series.value.string_value = str(i % SERIES)
        bodies.append(request.SerializeToString())
    return bodies


def _phase(
    client: httpx.Client,
    writer: StoreWriter,
    path: str,
    bodies: list[bytes],
    headers: dict[str, str],
    expected_written: int,
) -> float:
    """Seconds from the first POST until the writer has committed ``expected_written``."""
    began = time.perf_counter()
    for body in bodies:
        response = client.post(path, content=body, headers=headers)
        while response.status_code == 503:  # back-pressure: retry, as a client should
            time.sleep(0.05)
            response = client.post(path, content=body, headers=headers)
        response.raise_for_status()
    while writer.samples_written < expected_written:
        time.sleep(0.005)
    return time.perf_counter() - began


def _measure(tmp: Path, total: int) -> list[Figure]:
    start_ms = time.time_ns() // 1_000_000 - total // SERIES * 1000 - 60_000
    json_bodies = _json_bodies("bench_ingest_json", total, start_ms)
    otlp_bodies = _otlp_bodies("bench_ingest_otlp", total, start_ms)
    gzip_bodies = [
        gzip.compress(b, compresslevel=6) for b in _otlp_bodies("bench_ingest_gz", total, start_ms)
    ]
    store = Store.open(tmp / "otlp.db")
    writer = StoreWriter(store, flush_interval_s=0.2)
    rates: dict[str, float] = {}
    with serve(store, writer) as url, httpx.Client(base_url=url, timeout=60) as client:
        phases: list[tuple[str, str, list[bytes], dict[str, str]]] = [
            ("json", "/api/v1/ingest/metrics", json_bodies, {"Content-Type": "application/json"}),
            ("otlp", "/v1/metrics", otlp_bodies, {"Content-Type": "application/x-protobuf"}),
            (
                "otlp_gzip",
                "/v1/metrics",
                gzip_bodies,
                {"Content-Type": "application/x-protobuf", "Content-Encoding": "gzip"},
            ),
        ]
        written = 0
        for key, path, bodies, headers in phases:
            written += total
            elapsed = _phase(client, writer, path, bodies, {**AUTH, **headers}, written)
            rates[key] = total / elapsed
    store.close()

    def note(bodies: list[bytes]) -> str:
        return (
            f"{total:,} samples in batches of {BATCH:,} ({len(bodies[0]):,} bytes a body; "
            f"JSON {len(json_bodies[0]):,}), one client, {SERIES} series"
        )

    return [
        Figure(
            AREA,
            "OTLP/HTTP protobuf ingest (to committed)",
            rates["otlp"],
            "samples/s",
            "",
            None,
            "JSON ingest, same server and run",
            rates["json"],
            note(otlp_bodies),
        ),
        Figure(
            AREA,
            "OTLP/HTTP protobuf+gzip ingest (to committed)",
            rates["otlp_gzip"],
            "samples/s",
            "",
            None,
            "JSON ingest, same server and run",
            rates["json"],
            note(gzip_bodies),
        ),
    ]


def run(quick: bool) -> list[Figure]:
    """Measure OTLP ingest beside the JSON ingest, on one server."""
    with tempfile.TemporaryDirectory(prefix="secperf-bench-otlp-") as name:
        return _measure(Path(name), 20_000 if quick else 200_000)
