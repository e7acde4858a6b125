"""OpenTelemetry in: the real OpenTelemetry SDK exports to a running ``secperf serve``.

One ``secperf serve`` process (real port, real token, real SQLite store) takes
exports from the SDK's OTLP/HTTP exporter and hand-written requests; the
samples are read back from the store file the server writes.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from google.protobuf import json_format
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource

from secperf.store import Store
from secperf.store.samples import LatestSample

TOKEN = "otlp-receiver-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
#: Bounds of the served config: small, so the 413 tests send little.
MAX_BODY = 64 * 1024
MAX_INFLATED = 1024 * 1024

T = TypeVar("T")


def _poll(condition: Callable[[], T | None], limit_s: float = 30.0) -> T:
    """Poll until ``condition`` returns something truthy (bounded: a bug fails, never hangs)."""
    deadline = time.monotonic() + limit_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        time.sleep(0.05)


@dataclass
class Served:
    """``secperf serve`` in its own process, and its store."""

    url: str
    store: Store
    stderr_path: Path

    @property
    def endpoint(self) -> str:
        return f"{self.url}/v1/metrics"

    def latest(self, name: str) -> list[LatestSample]:
        return self.store.latest(name)

    def by_labels(self, name: str) -> dict[frozenset[tuple[str, str]], float]:
        return {frozenset(s.labels.items()): s.value for s in self.latest(name)}

    def post(
        self, body: bytes, content_type: str, *, content_encoding: str | None = None
    ) -> httpx.Response:
        headers = {**AUTH, "Content-Type": content_type}
        if content_encoding is not None:
            headers["Content-Encoding"] = content_encoding
        return httpx.post(self.endpoint, content=body, headers=headers, timeout=30)

    def wait_for_marker(self, marker: str) -> None:
        """Send a sample named ``marker`` and wait until it is stored (the writer is in order)."""
        now = time.time_ns()
        payload = _gauge_request(marker, now, 1.0)
        assert self.post(json.dumps(payload).encode(), "application/json").status_code == 200
        _poll(lambda: self.latest(marker))


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("otlp")
    (root / "secperf.toml").write_text(
        textwrap.dedent(
            f"""
            [server]
            otlp_max_request_bytes = {MAX_BODY}
            otlp_max_decompressed_bytes = {MAX_INFLATED}
            """
        )
    )
    db = root / "otlp.db"
    stderr_path = root / "serve.stderr"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SECPERF_")}
    env["SECPERF_TOKEN"] = TOKEN
    with stderr_path.open("wb") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "secperf", "serve", "--port", "0", "--store", str(db)],
            cwd=root,
            stdout=subprocess.PIPE,
            stderr=err,
            env=env,
        )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().decode(errors="replace")
        found = re.search(r"http://127\.0\.0\.1:\d+", line)
        assert found is not None, f"secperf serve did not start: {line!r} {stderr_path.read_text()}"
        with Store.open(db) as store:
            yield Served(found.group(0), store, stderr_path)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    assert "Traceback" not in stderr_path.read_text(errors="replace")


def _gauge_request(name: str, time_ns: int, value: float) -> dict[str, Any]:
    return {
        "resourceMetrics": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": "markers"}}]
                },
                "scopeMetrics": [
                    {
                        "metrics": [
                            {
                                "name": name,
                                "gauge": {
                                    "dataPoints": [
                                        {"timeUnixNano": str(time_ns), "asDouble": value}
                                    ]
                                },
                            }
                        ]
                    }
                ],
            }
        ]
    }


def _provider(served: Served, compression: Compression) -> tuple[MeterProvider, Any]:
    exporter = OTLPMetricExporter(
        endpoint=served.endpoint, headers=dict(AUTH), compression=compression, timeout=30
    )
    # A long interval: the test exports with force_flush, when it chooses.
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
    resource = Resource.create(
        {
            "service.name": "checkout",
            "service.namespace": "shop",
            "host.name": "web-1",
            "deployment.environment": "test",
        }
    )
    return MeterProvider(resource=resource, metric_readers=[reader]), reader


@pytest.mark.parametrize("compression", [Compression.Gzip, Compression.NoCompression])
def test_the_sdk_exporter_stores_gauges_counters_and_histograms(
    served: Served, compression: Compression
) -> None:
    provider, _ = _provider(served, compression)
    region = f"eu-{compression.value}"
    try:
        meter = provider.get_meter("shop.orders", "1.2.0")
        orders = meter.create_counter("orders", unit="{order}")
        orders.add(3, {"region": region})
        orders.add(2, {"region": region})
        queue = meter.create_up_down_counter("queue.items", unit="{item}")
        queue.add(5, {"region": region})
        queue.add(-2, {"region": region})
        # Unit "1": a count on an up-down counter, a ratio on a gauge.
        depth = meter.create_up_down_counter("queue.depth", unit="1")
        depth.add(4, {"region": region})
        latency = meter.create_histogram(
            "http.server.request.duration",
            unit="s",
            explicit_bucket_boundaries_advisory=[0.1, 0.5, 1.0],
        )
        for seconds in (0.05, 0.3, 0.4, 2.0):
            latency.record(seconds, {"http.route": "/pay", "region": region})

        def memory(_: CallbackOptions) -> list[Observation]:
            return [Observation(1234, {"region": region})]

        meter.create_observable_gauge("process.memory.usage", [memory], unit="By")

        def busy(_: CallbackOptions) -> list[Observation]:
            return [Observation(0.25, {"region": region})]

        meter.create_observable_gauge("cpu.busy", [busy], unit="1")
        started = time.time_ns() // 1_000_000
        assert provider.force_flush(timeout_millis=30_000)
    finally:
        provider.shutdown()

    identity = {
        "job": "shop/checkout",
        "host": "web-1",
        "deployment_environment": "test",
        "region": region,
    }
    key = frozenset(identity.items())
    # Counters end in _total; telemetry.sdk.* attributes are no labels.
    counted = _poll(lambda: served.by_labels("orders_total").get(key))
    assert counted == 5.0
    assert served.by_labels("queue_items")[key] == 3.0
    assert served.by_labels("process_memory_usage_bytes")[key] == 1234.0
    assert served.by_labels("queue_depth")[key] == 4.0
    assert served.by_labels("cpu_busy_ratio")[key] == 0.25
    assert key not in served.by_labels("queue_depth_ratio")
    route = frozenset({**identity, "http_route": "/pay"}.items())
    buckets = {
        dict(s.labels)["le"]: s.value
        for s in served.latest("http_server_request_duration_seconds_bucket")
        if frozenset((k, v) for k, v in s.labels.items() if k != "le") == route
    }
    assert buckets == {"0.1": 1.0, "0.5": 3.0, "1.0": 3.0, "+Inf": 4.0}
    assert served.by_labels("http_server_request_duration_seconds_count")[route] == 4.0
    total = served.by_labels("http_server_request_duration_seconds_sum")[route]
    assert total == pytest.approx(2.75)
    stamped = served.latest("orders_total")[0].timestamp_ms
    assert abs(stamped - started) < 60_000


def test_a_hand_written_json_request_gzipped_is_stored(served: Served) -> None:
    now = time.time_ns()
    request = {
        "resourceMetrics": [
            {
                "resource": {
                    "attributes": [
                        {"key": "service.name", "value": {"stringValue": "billing"}},
                        {"key": "service.instance.id", "value": {"stringValue": "pod-7"}},
                        {"key": "telemetry.sdk.language", "value": {"stringValue": "go"}},
                    ]
                },
                "scopeMetrics": [
                    {
                        "scope": {"name": "billing"},
                        "metrics": [
                            {
                                "name": "invoices.sent",
                                "sum": {
                                    # OTLP/JSON: camelCase, enums as integers, int64 as strings.
                                    "aggregationTemporality": 2,
                                    "isMonotonic": True,
                                    "dataPoints": [
                                        {
                                            "timeUnixNano": str(now),
                                            "asInt": "9007199254740993",
                                            "attributes": [
                                                {"key": "paid", "value": {"boolValue": True}}
                                            ],
                                        }
                                    ],
                                },
                                "unknownFieldFromANewerSdk": 1,
                            },
                            {
                                "name": "batch.latency",
                                "unit": "ms",
                                "summary": {
                                    "dataPoints": [
                                        {
                                            "timeUnixNano": str(now),
                                            "count": "10",
                                            "sum": 125.5,
                                            "quantileValues": [
                                                {"quantile": 0.5, "value": 11.0},
                                                {"quantile": 0.99, "value": 40.0},
                                            ],
                                        }
                                    ]
                                },
                            },
                        ],
                    }
                ],
            }
        ]
    }
    answer = served.post(
        gzip.compress(json.dumps(request).encode()),
        "application/json",
        content_encoding="gzip",
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("application/json")
    assert answer.json() == {}
    labels = {"job": "billing", "instance": "pod-7", "paid": "true"}
    sent = _poll(lambda: served.latest("invoices_sent_total"))
    assert [(s.labels, s.value, s.timestamp_ms) for s in sent] == [
        (labels, 9007199254740992.0, now // 1_000_000)
    ]
    quantiles = {s.labels["quantile"]: s.value for s in served.latest("batch_latency_milliseconds")}
    assert quantiles == {"0.5": 11.0, "0.99": 40.0}
    assert served.latest("batch_latency_milliseconds_count")[0].value == 10.0


def test_points_secperf_cannot_store_are_a_partial_success_in_protobuf(served: Served) -> None:
    now = time.time_ns()
    request = json_format.ParseDict(
        {
            "resourceMetrics": [
                {
                    "scopeMetrics": [
                        {
                            "metrics": [
                                {
                                    "name": "pool.size",
                                    "gauge": {
                                        "dataPoints": [
                                            {"timeUnixNano": str(now), "asDouble": 4},
                                            {"timeUnixNano": str(now), "asDouble": "NaN"},
                                        ]
                                    },
                                },
                                {
                                    "name": "rpc.duration",
                                    "exponentialHistogram": {
                                        "aggregationTemporality": 2,
                                        "dataPoints": [{"timeUnixNano": str(now), "count": "1"}],
                                    },
                                },
                            ]
                        }
                    ]
                }
            ]
        },
        ExportMetricsServiceRequest(),
    )
    answer = served.post(request.SerializeToString(), "application/x-protobuf")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/x-protobuf"
    response = ExportMetricsServiceResponse.FromString(answer.content)
    assert response.partial_success.rejected_data_points == 2
    message = response.partial_success.error_message
    assert "metrics[0].gauge.dataPoints[1].asDouble: NaN" in message
    assert "exponential histograms are not supported" in message
    stored = _poll(lambda: served.latest("pool_size"))
    assert [s.value for s in stored] == [4.0]


def test_names_over_the_bounds_are_a_partial_success(served: Served) -> None:
    now = time.time_ns()
    point = {"timeUnixNano": str(now), "asDouble": 1.0}
    long_key = {
        "timeUnixNano": str(now),
        "asDouble": 2.0,
        "attributes": [{"key": "k" * 200_000, "value": {"stringValue": "v"}}],
    }
    request = {
        "resourceMetrics": [
            {
                "scopeMetrics": [
                    {
                        "metrics": [
                            {"name": "n" * 300_000, "gauge": {"dataPoints": [point]}},
                            {"name": "otlp_bounded", "gauge": {"dataPoints": [point, long_key]}},
                        ]
                    }
                ]
            }
        ]
    }
    answer = served.post(
        gzip.compress(json.dumps(request).encode()), "application/json", content_encoding="gzip"
    )
    assert answer.status_code == 200, answer.text
    partial = answer.json()["partialSuccess"]
    assert int(partial["rejectedDataPoints"]) == 2
    message = partial["errorMessage"]
    assert "metrics[0].name: the metric name is 300000 characters long; at most 200" in message
    assert "attributes[0].key: the attribute key is 200000 characters long" in message
    assert len(message) < 1_000
    stored = _poll(lambda: served.latest("otlp_bounded"))
    assert [(s.labels, s.value) for s in stored] == [({}, 1.0)]
    assert all(len(name) <= 200 for name in served.store.list_metric_names())


def test_a_malformed_request_is_refused_whole_naming_the_field(served: Served) -> None:
    now = time.time_ns()
    good = _gauge_request("otlp_refused_good", now, 1.0)["resourceMetrics"][0]
    bad_point = {
        "timeUnixNano": str(now),
        "count": "3",
        "bucketCounts": ["1", "2"],
        "explicitBounds": [0.1, 0.5],
    }
    bad = {
        "scopeMetrics": [
            {"metrics": []},
            {
                "metrics": [
                    {"name": "otlp_refused_a", "gauge": {"dataPoints": []}},
                    {"name": "otlp_refused_b", "gauge": {"dataPoints": []}},
                    {
                        "name": "otlp.refused.latency",
                        "histogram": {"aggregationTemporality": 2, "dataPoints": [bad_point]},
                    },
                ]
            },
        ]
    }
    payload = json.dumps({"resourceMetrics": [good, bad]}).encode()
    answer = served.post(payload, "application/json")
    assert answer.status_code == 400
    field = "resourceMetrics[1].scopeMetrics[1].metrics[2].histogram.dataPoints[0].bucketCounts"
    body = answer.json()
    assert body["code"] == 3  # google.rpc.Code INVALID_ARGUMENT
    assert body["message"].startswith(f"{field}: 2 counts for 2 bounds")
    assert body["error"]["where"] == f"body.{field}"
    # The same request in protobuf: a google.rpc.Status naming the field.
    proto = json_format.Parse(payload, ExportMetricsServiceRequest()).SerializeToString()
    answer = served.post(proto, "application/x-protobuf")
    assert answer.status_code == 400
    assert answer.headers["content-type"] == "application/x-protobuf"
    assert field.encode() in answer.content
    # Not JSON at all, and not protobuf at all.
    answer = served.post(b'{"resourceMetrics": [', "application/json")
    assert answer.status_code == 400
    assert "the body is not JSON" in answer.json()["message"]
    answer = served.post(b'"AAA"', "application/json")
    assert answer.status_code == 400
    assert "must be a JSON object" in answer.json()["message"]
    answer = served.post(b'{"resourceMetrics": "x"}', "application/json")
    assert answer.status_code == 400
    assert "not an OTLP/JSON" in answer.json()["message"]
    assert served.post(b"\x0a\xff\xff", "application/x-protobuf").status_code == 400
    # Nothing of the refused requests was stored, not even their valid part.
    served.wait_for_marker("otlp_refused_marker")
    names = served.store.list_metric_names()
    assert "otlp_refused_good" not in names
    assert not [n for n in names if n.startswith("otlp_refused_latency")]


def test_writes_need_the_token(served: Served) -> None:
    payload = json.dumps(_gauge_request("otlp_unauthorised", time.time_ns(), 1.0)).encode()
    anonymous = httpx.post(
        served.endpoint, content=payload, headers={"Content-Type": "application/json"}, timeout=30
    )
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"] == "Bearer"
    assert anonymous.json()["code"] == 16  # UNAUTHENTICATED
    wrong = httpx.post(
        served.endpoint,
        content=payload,
        headers={
            "Content-Type": "application/json",
            "Authorization": "Bearer not-the-token-at-all",
        },
        timeout=30,
    )
    assert wrong.status_code == 403
    assert TOKEN not in wrong.text
    served.wait_for_marker("otlp_unauthorised_marker")
    assert "otlp_unauthorised" not in served.store.list_metric_names()


def test_bodies_over_the_bounds_get_413_and_odd_encodings_415(served: Served) -> None:
    big = b"\x00" * (MAX_BODY + 1)
    assert served.post(big, "application/x-protobuf").status_code == 413
    # A gzip bomb: a small body inflating past the bound is refused, not inflated whole.
    bomb = gzip.compress(b"\x00" * (16 * MAX_INFLATED), compresslevel=9)
    assert len(bomb) < MAX_BODY
    answer = served.post(bomb, "application/x-protobuf", content_encoding="gzip")
    assert answer.status_code == 413
    assert b"inflates to more than" in answer.content
    truncated = gzip.compress(b"hello")[:-6]
    answer = served.post(truncated, "application/json", content_encoding="gzip")
    assert answer.status_code == 400
    answer = served.post(b"{}", "text/plain")
    assert answer.status_code == 415
    assert answer.json()["error"]["where"] == "header.content-type"
    answer = served.post(b"{}", "application/json", content_encoding="br")
    assert answer.status_code == 415
    assert "'br'" in answer.json()["message"]
    # The server is still well: an ordinary export goes through.
    served.wait_for_marker("otlp_after_refusals")
