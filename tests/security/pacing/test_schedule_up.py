"""``secperf up``'s periodic scans (``[scan] every``): real scans of real files into a
real SQLite store, each predicted and its prediction stored, and the next scan in
the live summary."""

from __future__ import annotations

import asyncio
import dataclasses
import io
from pathlib import Path

from rich.console import Console

from secperf.cli.live_summary import render_live_summary
from secperf.commands.summary import build_summary
from secperf.commands.up import ScanWatcher
from secperf.config import ScanConfig
from secperf.security.factory import ScanOptions, make_validator
from secperf.security.pacing.schedule import PeriodicScans, Settings, host_cpu_guard
from secperf.security.validator import ScanReport
from secperf.store import Store
from support.waiting import wait_for


def test_periodic_scans_run_without_edits_and_store_their_predictions(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    root.mkdir()
    (root / "app.py").write_text("def add(a, b):\n    return a + b\n", encoding="utf-8")
    store = Store.open(f"sqlite:///{tmp_path / 'store.db'}")
    scan_cfg = ScanConfig(scanners=["bandit", "secrets"])
    validator = make_validator(scan_cfg, ScanOptions(root=root, jobs=1), None, {}, None, None)
    # max_delay 0: a due scan starts at once (the schedule itself is tested elsewhere).
    periodic = PeriodicScans(
        store, Settings(every_ms=300, max_delay_ms=0), [host_cpu_guard("nowhere")]
    )
    reports: list[ScanReport] = []

    def record(report: ScanReport) -> None:
        # The watcher publishes nothing here: the test stores what the store writer would.
        store.record_scan_completed(report.metrics, report.status)
        reports.append(report)

    watcher = ScanWatcher(
        validator,
        root,
        ["."],
        on_report=record,
        store=store,
        periodic=periodic,
        periodic_poll_s=0.05,
    )

    async def run() -> None:
        task = asyncio.create_task(watcher.run(watch=False))
        try:
            await wait_for(lambda: len(reports) >= 2, limit_s=60)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    asyncio.run(run())
    validator.close()
    stored = {r.scan_id: r for r in store.scans(limit=20)}
    assert all(stored[r.scan_id].prediction is not None for r in reports)
    later = stored[reports[1].scan_id].prediction or {}
    assert later["basis"] == "history"
    assert later["inputs"]["expected_misses"] == 0  # nothing edited: all cached

    summary = build_summary(store, alerts=[])
    store.close()
    shown = dataclasses.replace(summary, next_scan=periodic.describe())
    assert shown.next_scan is not None and "next periodic scan due" in shown.next_scan
    out = io.StringIO()
    Console(file=out, width=80, color_system=None).print(render_live_summary(shown, title="up"))
    assert any(line.startswith("next scan") for line in out.getvalue().splitlines())
