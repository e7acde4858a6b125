"""Ingest over HTTP: metric batches (all or nothing) and SARIF uploads."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from secperf.bus import AsyncEventBus
from secperf.store import Store, StoreWriter
from secperf.web import create_app
from support.paths import FIXTURES as FIXTURES_DIR

TOKEN = "ingest-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SARIF_DIR = FIXTURES_DIR / "sarif"


def _now() -> int:
    return time.time_ns() // 1_000_000


@pytest.fixture()
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "s.db") as opened:
        yield opened


def _client(store: Store) -> TestClient:
    writer = StoreWriter(store, flush_interval_s=0.05)
    app = create_app(store, AsyncEventBus(), token=TOKEN, writer=writer, manage_writer=True)
    return TestClient(app)


def _post(client: TestClient, samples: list[dict[str, Any]]) -> Any:
    return client.post("/api/v1/ingest/metrics", json={"samples": samples}, headers=AUTH)


def test_a_batch_is_stored_through_the_bus(store: Store) -> None:
    now = _now()
    batch = [
        {"name": "app_latency_ms", "labels": {"route": "/a"}, "timestamp_ms": now - i, "value": i}
        for i in range(100)
    ]
    with _client(store) as client:
        response = _post(client, batch)
        assert response.status_code == 200
        assert response.json() == {"accepted": 100}
        # No timestamp: stamped on arrival.
        assert _post(client, [{"name": "app_up", "value": 1.0}]).json() == {"accepted": 1}
    # Leaving the client shuts the app down, which flushes the writer.
    points = store.query("app_latency_ms", {"route": "/a"}, now - 200, now)
    assert points[0].values.size == 100
    up = store.latest("app_up")
    assert up and abs(up[0].timestamp_ms - now) < 60_000


@pytest.mark.parametrize(
    ("bad", "where", "words"),
    [
        ({"name": "bad name", "value": 1}, "body.samples[2].name", "pattern"),
        ({"name": "m", "value": "1.5"}, "body.samples[2].value", "number"),
        ({"name": "m", "value": True}, "body.samples[2].value", "number"),
        ({"name": "m", "value": 1, "labels": {"bad-label": "x"}}, "body.samples[2].labels", ""),
        ({"name": "m", "value": 1, "labels": {"a": 1}}, "body.samples[2].labels.a", "string"),
        ({"name": "m", "value": 1, "timestamp_ms": -5}, "body.samples[2].timestamp_ms", ""),
        ({"name": "m", "value": 1, "timestamp_ms": 1.5}, "body.samples[2].timestamp_ms", ""),
        ({"name": "m", "value": 1, "extra": 1}, "body.samples[2].extra", "Extra"),
        ({"value": 1}, "body.samples[2].name", "required"),
        ({"name": "m", "value": 1, "timestamp_ms": 9_999_999_999_999}, "body.samples[2]", "future"),
    ],
)
def test_one_bad_sample_refuses_the_whole_batch_naming_it(
    store: Store, bad: dict[str, Any], where: str, words: str
) -> None:
    good = {"name": "fine_metric", "value": 1.0}
    with _client(store) as client:
        response = _post(client, [good, good, bad])
        assert response.status_code == 422, response.text
        error = response.json()["error"]
        assert error["where"].startswith(where), error
        assert words in error["message"]
    assert store.list_metric_names() == []


def test_non_finite_values_and_oversized_batches_are_refused(store: Store) -> None:
    with _client(store) as client:
        # Python's json writes NaN; the API must not take it.
        body = json.dumps({"samples": [{"name": "m", "value": float("nan")}]})
        headers = {**AUTH, "Content-Type": "application/json"}
        nan = client.post("/api/v1/ingest/metrics", content=body, headers=headers)
        assert nan.status_code == 422
        assert nan.json()["error"]["where"] == "body.samples[0].value"
        too_many = _post(client, [{"name": "m", "value": 1}] * 10_001)
        assert too_many.status_code == 422
        assert too_many.json()["error"]["where"] == "body.samples"
        not_json = client.post("/api/v1/ingest/metrics", content=b"{nope", headers=headers)
        assert not_json.status_code == 422
        assert client.post("/api/v1/ingest/metrics", json=[1], headers=AUTH).status_code == 422
    assert store.list_metric_names() == []


def test_a_sarif_upload_becomes_a_scan_with_findings(store: Store) -> None:
    content = (SARIF_DIR / "codeql.sarif").read_bytes()
    with _client(store) as client:
        response = client.post(
            "/api/v1/ingest/sarif?target=webapp",
            content=content,
            headers={**AUTH, "Content-Type": "application/sarif+json"},
        )
        assert response.status_code == 200, response.text
        result = response.json()
        assert result["findings"] > 0
        assert result["new_findings"] == result["findings"]
        scan = client.get(f"/api/v1/scans/{result['scan_id']}").json()
        assert scan["target"] == "webapp"
        assert scan["status"] == "ok"
        assert scan["metrics"]["violations_found"] == result["findings"]
        findings = client.get(f"/api/v1/findings?scan_id={result['scan_id']}").json()["findings"]
        assert len(findings) == result["findings"]
        assert all(f["scanner"] == "sarif" for f in findings)
        # The same log again: nothing is new any more.
        again = client.post(
            "/api/v1/ingest/sarif?target=webapp",
            content=content,
            headers={**AUTH, "Content-Type": "application/json"},
        ).json()
        assert again["new_findings"] == 0
        overview = client.get("/api/v1/overview").json()
        assert overview["security"]["last_scan"]["scan_id"] == again["scan_id"]


@pytest.mark.parametrize(
    ("content", "content_type", "status", "where"),
    [
        (b'{"version": "2.0.0", "runs": []}', "application/json", 422, "body.version"),
        (b'{"version": "2.1.0", "runs": {}}', "application/json", 422, "body.runs"),
        (b"{not json", "application/json", 422, "body"),
        (b"", "application/json", 422, "body"),
        (b"<sarif/>", "text/xml", 415, None),
    ],
)
def test_bad_sarif_gets_a_clear_4xx(
    store: Store, content: bytes, content_type: str, status: int, where: str | None
) -> None:
    with _client(store) as client:
        response = client.post(
            "/api/v1/ingest/sarif", content=content, headers={**AUTH, "Content-Type": content_type}
        )
        assert response.status_code == status, response.text
        assert response.json()["error"]["where"] == where
        assert response.json()["error"]["message"]
    assert store.scans() == []
