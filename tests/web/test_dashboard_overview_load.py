"""The overview's first load: each API read once, the overview first, sparklines of one host total.

A real secperf app over a real SQLite store (the shared dashboard test data,
plus per-core CPU series and a total labelled by host only, as the system
collector writes them) is opened in Debian's Chromium. Every ``/api/v1/``
request of the first load is recorded: none is sent twice, the overview is
asked for before the secondary reads, and the CPU sparkline asks for one
host's series downsampled by the server and draws the host total.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from test_dashboard_browser import (
    DASHBOARD_MARKS,
    HOUR_MS,
    Served,
    _make_data,
    _real_server,
    browser,
    playwright_sync,
)

from secperf.model import Sample

__all__ = ["browser"]  # the shared Chromium fixture, used by the tests below

pytestmark = DASHBOARD_MARKS

expect = playwright_sync.expect
HOST = "web-1"
CORES = 4


@pytest.fixture
def served_cores(tmp_path: Path) -> Iterator[Served]:
    """The shared test data plus per-core CPU series of web-1, and its memory and load."""
    data = _make_data(int(time.time() * 1000))
    for step in range(0, 360):
        ts = data.now_ms - HOUR_MS + step * 10_000
        for core in range(CORES):
            data.samples.append(
                Sample("cpu_percent", {"host": HOST, "cpu": str(core)}, ts, 90.0 + core)
            )
        data.samples.append(Sample("memory_percent", {"host": HOST}, ts, 40.0 + step % 3))
        data.samples.append(Sample("load_1m", {"host": HOST}, ts, 1.0 + (step % 4) / 10))
    real = _real_server(tmp_path, data)
    if real is None:
        pytest.skip("secperf.web.app.create_app is not available")
    result, stop = real
    try:
        yield result
    finally:
        stop()


@pytest.fixture(params=["", "?host=web-1"], ids=["all-hosts", "one-host"])
def recorded(
    request: pytest.FixtureRequest, browser: Any, served_cores: Served
) -> Iterator[tuple[Any, list[str], list[Any]]]:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.set_default_timeout(20_000)
    pg = context.new_page()
    errors: list[str] = []
    urls: list[str] = []
    responses: list[Any] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        # The token first (an unauthenticated first load would repeat its reads after the prompt).
        pg.goto(f"{served_cores.base_url}/static-does-not-exist")
        pg.evaluate("t => localStorage.setItem('secperf.token', t)", "dashboard-test-token")
        pg.on("request", lambda req: urls.append(req.url) if "/api/v1/" in req.url else None)
        pg.on("response", lambda res: responses.append(res) if "/api/v1/" in res.url else None)
        pg.goto(f"{served_cores.base_url}/#/overview{request.param}")
        yield pg, urls, responses
    finally:
        context.close()
    assert errors == [], f"the page raised: {errors}"


def _params(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


def _path(url: str) -> str:
    return urlsplit(url).path


def test_first_load_reads_each_url_once_and_the_overview_first(
    recorded: tuple[Any, list[str], list[Any]], served_cores: Served
) -> None:
    page, urls, responses = recorded
    # The counts render.
    expect(page.get_by_test_id("violations-total")).to_have_text("5")
    expect(page.get_by_test_id("cpu-latest")).to_have_text(re.compile(r"\d"))
    # Every sparkline and the recent scans were asked for and answered.
    spark = page.get_by_test_id("performance-status").locator("svg.spark polyline")
    expect(spark).to_have_count(3)
    expect(page.get_by_test_id("connection")).to_have_text("● live")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        paths = [_path(u) for u in urls]
        if paths.count("/api/v1/metrics/query") >= 3 and "/api/v1/scans" in paths:
            break
        page.wait_for_timeout(100)  # polled until a deadline; the reads are async
    reads = [u for u in urls if _path(u) != "/api/v1/stream"]
    duplicates = sorted({u for u in reads if reads.count(u) > 1})
    assert duplicates == [], f"sent more than once on a first load: {duplicates}\nall: {reads}"

    # The overview is asked for before the secondary reads.
    paths = [_path(u) for u in reads]
    first_overview = paths.index("/api/v1/overview")
    for secondary in ("/api/v1/metrics/query", "/api/v1/scans", "/api/v1/schedule"):
        if secondary in paths:
            assert paths.index(secondary) > first_overview, (
                f"{secondary} before the overview: {paths}"
            )

    # The CPU sparkline asks for one host's series, downsampled by the server.
    queries = [u for u in reads if _path(u) == "/api/v1/metrics/query"]
    by_name = {_params(u)["name"][0]: _params(u) for u in queries}
    assert set(by_name) == {"cpu_percent", "memory_percent", "load_1m"}
    overview = next(r for r in responses if _path(r.url) == "/api/v1/overview").json()
    if overview["performance"]["host"]:
        host = overview["performance"]["host"]
    else:
        # All hosts (the test's web-1 and the server's own): the one with the newest sample.
        fleet = next(r for r in responses if _path(r.url) == "/api/v1/fleet/hosts").json()
        seen = [h for h in fleet["hosts"] if h["last_seen_ms"] is not None]
        host = max(seen, key=lambda h: h["last_seen_ms"])["host"]
    for name, params in by_name.items():
        assert params.get("host") == [host], f"{name} sparkline not of {host}: {params}"
        assert "step_ms" in params, f"{name} sparkline does not ask the server to downsample"
    cpu = next(r for r in responses if "/api/v1/metrics/query" in r.url and "cpu_percent" in r.url)
    series = cpu.json()["series"]
    assert {s["labels"]["host"] for s in series} == {host}
    totals = [s for s in series if s["labels"].get("cpu", "total") == "total"]
    assert len(totals) == 1, series
    assert len(totals[0]["avg"]) <= 200
    # The page says which host the lines are of.
    expect(page.get_by_test_id("spark-host")).to_contain_text(f"lines: {host}, whole host")
    if host == HOST:
        # Drawn: the host total (20..96 over the hour), not a core (90 and up all along).
        line = page.get_by_test_id("performance-status").locator("svg.spark polyline").first
        expect(line).to_have_attribute("points", re.compile(r"\S"))
        drawn = [
            tuple(float(v) for v in p.split(",")) for p in line.get_attribute("points").split()
        ]
        wanted = _spark_points(totals[0]["avg"])
        assert len(drawn) == len(wanted)
        for got, want in zip(drawn, wanted, strict=True):
            assert abs(got[0] - want[0]) < 0.06 and abs(got[1] - want[1]) < 0.06, (got, want)


def _spark_points(
    values: list[float], width: int = 120, height: int = 28
) -> list[tuple[float, float]]:
    """The points Sparkline.svelte draws for ``values`` (same arithmetic, unrounded)."""
    lo, hi = min(values), max(values)
    span = (hi - lo) or 1
    return [
        (
            (i / (len(values) - 1)) * (width - 2) + 1,
            height - 1 - ((y - lo) / span) * (height - 2),
        )
        for i, y in enumerate(values)
    ]
