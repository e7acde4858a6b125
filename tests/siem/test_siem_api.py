"""SIEM outputs in ``GET /api/v1/integrations`` and ``/metrics``."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from secperf.bus.memory import AsyncEventBus
from secperf.siem.forwarder import SiemOutputStats
from secperf.store import Store
from secperf.web.app import create_app


def _stats(**overrides: object) -> SiemOutputStats:
    values: dict[str, object] = {
        "name": "soc",
        "address": "tcp://127.0.0.1:10514",
        "format": "cef",
        "queued": 37,
        "queued_bytes": 21_904,
        "sent": 120,
        "failed": 9,
        "dropped": 2,
        "duplicates": 1,
        "connected": False,
        "last_error": "cannot connect to 127.0.0.1:10514: Connection refused",
        "last_error_ms": 1_765_094_460_123,
        "last_sent_ms": 1_765_094_400_456,
    }
    values.update(overrides)
    return SiemOutputStats(**values)  # type: ignore[arg-type]


def test_integrations_without_siem_outputs(tmp_path: Path) -> None:
    with Store.open(f"sqlite:///{tmp_path / 's.db'}") as store:
        client = TestClient(create_app(store, AsyncEventBus()))
        answer = client.get("/api/v1/integrations")
        assert answer.status_code == 200
        assert answer.json() == {"siem": {"enabled": False, "outputs": []}}
        assert "secperf_siem_" not in client.get("/metrics").text


def test_an_unreachable_siem_shows_in_the_api_and_the_metrics(tmp_path: Path) -> None:
    outputs = [_stats(), _stats(name="elastic", queued=0, last_sent_ms=1_765_094_500_000)]
    with Store.open(f"sqlite:///{tmp_path / 's.db'}") as store:
        client = TestClient(create_app(store, AsyncEventBus(), siem_stats=lambda: outputs))
        body = client.get("/api/v1/integrations").json()["siem"]
        assert body["enabled"] is True
        soc, elastic = body["outputs"]
        assert soc["healthy"] is False and elastic["healthy"] is True
        assert soc["queued"] == 37 and soc["last_error"].startswith("cannot connect")
        assert soc["last_error_ms"] == 1_765_094_460_123
        metrics = client.get("/metrics").text
        assert 'secperf_siem_queue_depth{output="soc"} 37.0' in metrics
        assert 'secperf_siem_failed_total{output="soc"} 9.0' in metrics
        assert 'secperf_siem_dropped_total{output="soc"} 2.0' in metrics
        assert 'secperf_siem_connected{output="soc"} 0.0' in metrics
        assert (
            'secperf_siem_last_error_timestamp_seconds{output="soc"} 1.765094460123e+09' in metrics
        )
