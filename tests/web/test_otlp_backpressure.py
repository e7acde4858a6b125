"""OTLP exports while a bus subscriber is behind: 503 with Retry-After, which SDKs honour."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from fastapi.testclient import TestClient
from google.protobuf import json_format
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)

from secperf.bus import AsyncEventBus
from secperf.events import Event
from secperf.store import Store, StoreWriter
from secperf.web import create_app

TOKEN = "otlp-backpressure-token-0123456789"
HEADERS = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/x-protobuf"}
QUEUE = 10


def _export(value: int) -> bytes:
    payload = {
        "resourceMetrics": [
            {
                "scopeMetrics": [
                    {
                        "metrics": [
                            {
                                "name": "otlp_backpressure",
                                "gauge": {
                                    "dataPoints": [
                                        {"timeUnixNano": str(time.time_ns()), "asInt": str(value)}
                                    ]
                                },
                            }
                        ]
                    }
                ]
            }
        ]
    }
    return json_format.ParseDict(payload, ExportMetricsServiceRequest()).SerializeToString()


def test_a_subscriber_behind_gets_exports_a_503_with_retry_after(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s.db") as store:
        bus = AsyncEventBus()
        writer = StoreWriter(store, flush_interval_s=0.05)
        app = create_app(store, bus, token=TOKEN, writer=writer, manage_writer=True)
        with TestClient(app) as client:
            portal = client.portal
            assert portal is not None
            gate: dict[str, asyncio.Event] = {}

            async def stuck_subscriber() -> None:
                gate["open"] = asyncio.Event()

                async def handler(_: Event) -> None:
                    await gate["open"].wait()

                await bus.subscribe("metrics.>", handler, name="stuck", maxsize=QUEUE)

            portal.call(stuck_subscriber)
            statuses = []
            for value in range(3 * QUEUE):
                answer = client.post("/v1/metrics", content=_export(value), headers=HEADERS)
                statuses.append(answer.status_code)
                if answer.status_code != 200:
                    break
            assert statuses[-1] == 503, statuses
            assert 200 in statuses
            assert answer.headers["retry-after"] == "1"
            assert answer.headers["content-type"] == "application/x-protobuf"
            # google.rpc.Status: code 14 (UNAVAILABLE), then the message.
            assert answer.content.startswith(b"\x08\x0e\x12")
            assert b"writing behind" in answer.content
            portal.call(lambda: gate["open"].set())
            accepted = statuses.count(200)
        assert len(store.latest("otlp_backpressure")) == 1
        stored = store.query("otlp_backpressure", None, 0, time.time_ns() // 1_000_000 + 1)
        assert stored[0].values.size == accepted


def test_an_export_that_finds_no_free_slot_gets_a_503(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s.db") as store:
        app = create_app(store, AsyncEventBus(), token=TOKEN)
        with TestClient(app) as client:
            portal = client.portal
            assert portal is not None
            # Every slot taken, as by four long exports in flight.
            portal.call(lambda: setattr(app.state, "otlp_slots", asyncio.Semaphore(0)))
            answer = client.post("/v1/metrics", content=_export(1), headers=HEADERS)
            assert answer.status_code == 503
            assert answer.headers["retry-after"] == "1"
            assert b"busy with other exports" in answer.content
            exposition = client.get("/metrics").text
            assert 'secperf_http_requests_shed_total{reason="queue_timeout"} 1.0' in exposition
        assert store.list_metric_names() == []
