"""The dashboard's fleet view with 200 targets, in real headless Chromium.

The store is the fleet area's (bench_fleet.py): 200 targets, each scanned a
few times with findings, a gate verdict, a scan cost, a firing alert per ten
targets and 20 hosts, written through the store's API and served by the real
app under uvicorn.

* fleet view first load (cold): navigation start until the fleet table shows
  all 200 targets (a row each, with the link that opens the target's
  overview), median of cold loads (a new browser context each, nothing
  cached; after one load not counted, which warms the server), target
  <= 1 s; anchor: a bare page fetching the view's ``/api/v1/fleet/targets``
  answer alone and rendering nothing.
"""

from __future__ import annotations

import math
import statistics
import tempfile
from pathlib import Path
from typing import Any

from benchmarks import bench_fleet
from benchmarks.bench_dashboard import (
    WAIT_MS,
    Load,
    NotReady,
    Server,
    bare_fetch_ms,
    can_run,
    chromium,
    cold_load,
    machine_load,
    timing_note,
)
from benchmarks.common import Figure
from secperf.store import Store

AREA = "dashboard_fleet"
TARGETS = bench_fleet.TARGETS
TARGET_MS = 1000.0

#: Rows of the fleet view's targets table (``fleet-target-row``; in a build without
#: that test id, a fleet view's rows holding a link to a target's view).
ROWS = """() => {
  const rows = document.querySelectorAll('[data-testid=fleet-target-row]');
  if (rows.length) return rows.length;
  if (!document.querySelector('[data-testid=fleet-view]')) return 0;
  return [...document.querySelectorAll('tr, [role=row]')]
    .filter(r => r.querySelector('a[href*="target="]')).length;
}"""

#: The row count once it has not changed for ``ms`` (the event stream keeps the network busy).
STABLE_ROWS = (
    "(ms) => { const n = ("
    + ROWS
    + ")(); if (window.__n !== n) { window.__n = n; window.__t = performance.now(); return null; }"
    + " return performance.now() - window.__t >= ms ? String(n) : null; }"
)

FLEET_READY = (
    "(want) => { const n = (" + ROWS + ")(); return n >= want ? performance.now() : null; }"
)


def _fleet_targets_url(base: str, load: Load) -> str:
    """The targets list the view fetched (the plain list when it fetched none)."""
    asked = [u for u in load.api_urls if "/api/v1/fleet/targets" in u]
    return asked[0] if asked else f"{base}/api/v1/fleet/targets"


def _rows_shown(browser: Any, base: str) -> int:
    """How many target rows the fleet view shows once it stops changing (for a miss's note)."""
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(f"{base}/#/fleet")
        return int(
            page.wait_for_function(STABLE_ROWS, arg=2000, polling=100, timeout=WAIT_MS).json_value()
        )
    finally:
        context.close()


def run(quick: bool) -> list[Figure]:
    """The fleet view's first load with 200 targets (nothing without Chromium or a build)."""
    if not can_run():
        return []
    scans = 1 if quick else 3
    runs = 3 if quick else 7
    setting = (
        f"{TARGETS} targets x {scans} scans x {bench_fleet.FINDINGS_PER_SCAN} findings,"
        f" {bench_fleet.HOSTS} hosts"
    )

    def fill(store: Store, now: int) -> None:
        bench_fleet._fill(store, scans)

    with tempfile.TemporaryDirectory(prefix="secperf-bench-dfleet-") as tmp, chromium() as browser:
        srv = Server(Path(tmp), fill)
        try:
            loads: list[Load] = []
            bare: list[float] = []
            try:
                cold_load(browser, f"{srv.url}/#/fleet", FLEET_READY, TARGETS)  # warm-up
                for _ in range(runs):
                    load = cold_load(browser, f"{srv.url}/#/fleet", FLEET_READY, TARGETS)
                    loads.append(load)
                    bare.append(
                        bare_fetch_ms(browser, srv.url, [_fleet_targets_url(srv.url, load)])
                    )
                busy_at = machine_load()
            except NotReady:
                shown = _rows_shown(browser, srv.url)
                anchor = bare_fetch_ms(browser, srv.url, [f"{srv.url}/api/v1/fleet/targets"])
                return [
                    Figure(
                        AREA,
                        f"fleet view first load (cold), {TARGETS} targets",
                        math.nan,
                        "ms",
                        f"<= {TARGET_MS:,.0f} ms",
                        False,
                        "bare page fetching /api/v1/fleet/targets alone (cold)",
                        anchor,
                        note=(
                            f"not measured: the fleet view showed {shown} target rows, not"
                            f" {TARGETS}, within {WAIT_MS / 1000:.0f} s; {setting}"
                        ),
                    )
                ]
        finally:
            srv.stop()
    app_ms = statistics.median(x.ready_ms for x in loads)
    return [
        Figure(
            AREA,
            f"fleet view first load (cold), {TARGETS} targets",
            app_ms,
            "ms",
            f"<= {TARGET_MS:,.0f} ms",
            app_ms <= TARGET_MS,
            "bare page fetching /api/v1/fleet/targets alone (cold)",
            statistics.median(bare),
            note=(
                f"median of {runs} loads after one warm-up, each in a new browser context,"
                f" navigation start until"
                f" the table shows {TARGETS} target rows; {setting}; {timing_note(loads)};"
                f" {busy_at}"
            ),
        )
    ]
