"""A paced scan end to end: real validator and workers, real SQLite store, bus and writer.

Here the guard series reaches the scan through the store (as for a ``secperf
scan`` in a terminal while ``secperf up`` scrapes): the test writes it there.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from secperf.bus.memory import AsyncEventBus
from secperf.commands.pacing import ScanPacing
from secperf.config.sections.impact import ImpactConfig, parse_selector
from secperf.events import ScanThrottled, now_ms
from secperf.model import Sample
from secperf.security.pacing.controller import SLOW_START_REASON
from secperf.security.validator import ScanReport, SecurityValidator
from secperf.store import Store
from secperf.store.writer import StoreWriter
from secperf.web.app import create_app
from support.pacing import (
    GUARD_LABELS,
    GUARD_NAME,
    GUARD_SELECTOR,
    SlowScanner,
    stopped,
    write_project,
)

LEVEL = 10.0


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with contextlib.closing(Store.open(tmp_path / "store.db")) as opened:
        yield opened


def _guard_sample(value: float, ts_ms: int) -> Sample:
    return Sample(GUARD_NAME, dict(GUARD_LABELS), ts_ms, value)


async def _paced_scan(
    store: Store,
    project: Path,
    impact: ImpactConfig,
    *,
    guard_value: float | None,
    predicted_ms: float | None = None,
) -> tuple[ScanReport, list[int]]:
    """Scan ``project`` at low priority; the guard is written to the store meanwhile."""
    bus = AsyncEventBus()
    writer = StoreWriter(store)
    await writer.attach(bus)
    validator = SecurityValidator(
        [SlowScanner(0.1)],
        jobs=2,
        publish=bus.publish_threadsafe,
        publish_many=bus.publish_many_threadsafe,
    )
    pacing = ScanPacing(impact, priority="low", store=store, bus=bus)
    pacing.configure(validator)
    paused_seen: list[int] = []

    async def scrape() -> None:
        while guard_value is not None:
            # At ``guard_value`` while a worker runs, else at its level: the scan's doing.
            workers = validator.worker_pids()
            value = guard_value if len(stopped(workers)) < len(workers) else LEVEL
            await asyncio.to_thread(store.write_samples, [_guard_sample(value, now_ms())])
            paused_seen.extend(stopped(validator.worker_pids()))
            await asyncio.sleep(0.2)

    task = asyncio.create_task(scrape())
    try:
        report = await pacing.scan(validator, project, ["."], predicted_ms=predicted_ms)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        workers = validator.worker_pids()
        assert stopped(workers) == [], "a worker stayed paused after the scan"
        validator.close()
        await bus.close(drain=True)
        await writer.close()
    return report, paused_seen


def _api_scan(store: Store, scan_id: str) -> dict[str, Any]:
    with TestClient(create_app(store, AsyncEventBus())) as client:
        response = client.get(f"/api/v1/scans/{scan_id}")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


def test_a_scan_over_budget_is_paused_until_its_deadline_then_completes(
    store: Store, tmp_path: Path
) -> None:
    # 4 s of work for two workers: held as it is, it runs past its deadline.
    project = write_project(tmp_path / "project", 80)
    start = now_ms()
    store.write_samples([_guard_sample(LEVEL, start - s * 1000) for s in range(30, 0, -2)])
    impact = ImpactConfig(
        guard=[parse_selector(GUARD_SELECTOR)], max_slowdown=2.0, stale_after="30s"
    )
    # Predicted 2 s: throttled at most until 4 s after the start, then it runs.
    report, paused = asyncio.run(
        _paced_scan(store, project, impact, guard_value=LEVEL * 2, predicted_ms=2000)
    )
    assert report.status == "ok" and report.metrics.files_scanned == 80
    assert paused, "the workers were never seen paused"
    pacing = report.pacing
    assert pacing is not None
    assert pacing["priority"] == "low"
    assert pacing["budget"]["state"] == "on"
    assert pacing["deadline_reached"] is True
    assert pacing["throttled_ms"] > 500
    assert pacing["within_budget"] is False
    assert {s["action"] for s in pacing["stretches"]} <= {"fewer_workers", "pause"}
    # It began with one worker (slow start) once the pool had forked its workers; a
    # reading over budget paused it. On a loaded machine that reading can come
    # before the pool has forked, and then it is the first stretch.
    reasons = [s["reason"] for s in pacing["stretches"]]
    assert reasons[0] == SLOW_START_REASON or "+100 %" in reasons[0], reasons
    assert any("+100 %" in reason for reason in reasons), reasons
    # Past the deadline the workers are raised back where the OS allows it.
    assert pacing["priority_applied"]["nice"] == (0 if os.geteuid() == 0 else 19)
    assert pacing["deadline_reached_ms"] >= pacing["deadline_ms"]
    stored = store.scan(report.scan_id)
    assert stored is not None and stored.pacing == pacing
    assert _api_scan(store, report.scan_id)["pacing"] == pacing
    # ScanThrottled travelled the event log with the scan's other events.
    logged = [e for e in store.read_event_log(0, limit=10_000) if e.topic == ScanThrottled.topic]
    assert len(logged) >= 2  # throttled, then resumed at the deadline


def test_a_guard_matching_no_series_leaves_the_scan_at_low_priority_without_budget(
    store: Store, tmp_path: Path
) -> None:
    project = write_project(tmp_path / "project", 30)
    impact = ImpactConfig(guard=[parse_selector('response_time_ms{job="nowhere"}')])
    report, paused = asyncio.run(_paced_scan(store, project, impact, guard_value=None))
    assert report.status == "ok" and report.metrics.files_scanned == 30
    assert paused == []
    pacing = report.pacing
    assert pacing is not None
    assert pacing["budget"]["state"] == "off"
    assert pacing["budget"]["reason"] == 'guard response_time_ms{job="nowhere"} matches no series'
    assert pacing["within_budget"] is None
    assert pacing["throttled_ms"] == 0
    assert pacing["priority_applied"]["io_class"] == "idle"
    assert _api_scan(store, report.scan_id)["pacing"]["budget"]["state"] == "off"
