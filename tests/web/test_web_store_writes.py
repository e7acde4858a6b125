"""The overview tells the dashboard when the store refused writes (its banner reads it)."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from secperf.bus import AsyncEventBus
from secperf.events import ScanStarted
from secperf.store import Store, StoreWriter
from secperf.store import engine as engine_module
from secperf.web import create_app


def test_the_overview_counts_writes_the_store_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine_module, "BUSY_TIMEOUT_MS", 50)  # give up waiting fast
    db = tmp_path / "secperf.db"
    store = Store.open(db)
    bus = AsyncEventBus()
    writer = StoreWriter(store, flush_interval_s=0.05, retry_delay_s=0.01)
    app = create_app(store, bus, writer=writer, manage_writer=True)
    other = sqlite3.connect(db, isolation_level=None)
    try:
        with TestClient(app) as client:
            before = client.get("/api/v1/overview").json()["store_writes"]
            assert before == {"failures": 0, "lost_events": 0, "lost_samples": 0, "kept_events": 0}
            other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
            bus.publish_threadsafe(ScanStarted(scan_id="locked-out", target="/repo"), 10)
            deadline = time.monotonic() + 30
            while True:
                now = client.get("/api/v1/overview").json()["store_writes"]
                if now["failures"] >= 1:
                    break
                assert time.monotonic() < deadline, now
                time.sleep(0.05)
            assert now["kept_events"] == 1 and now["lost_events"] == 0
            other.execute("COMMIT")
    finally:
        other.close()
        store.close()


def test_no_writer_no_store_writes(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "secperf.db")
    try:
        with TestClient(create_app(store, AsyncEventBus())) as client:
            assert client.get("/api/v1/overview").json()["store_writes"] is None
    finally:
        store.close()
