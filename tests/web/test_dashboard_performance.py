"""The Performance view in a real browser: range, zoom, several series, exports, 390 px.

The real secperf app over a real SQLite store (the browser tests' server,
with two hosts and per-core CPU series added to its data) serves the built
dashboard; Debian's Chromium, driven by Playwright, checks that the x axis
spans exactly the chosen range and follows the clock when live, that a
drag-to-zoom sets an absolute range in the URL which streamed samples do not
undo, that two series of different units get two axes and a legend naming
both, that the default CPU series is the host total, that the chart saves as
PNG and its points as CSV, and that the view fits 390 px and works by keyboard.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from test_dashboard_browser import (
    DASHBOARD_MARKS,
    HOUR_MS,
    Served,
    _make_data,
    _open,
    _real_server,
    _wait_live,
    browser,
    playwright_sync,
)

from secperf.events import MetricsRecorded
from secperf.model import Sample

__all__ = ["browser"]  # the shared Chromium fixture, used by the tests below

pytestmark = DASHBOARD_MARKS

expect = playwright_sync.expect
MIN_MS = 60_000
#: Per-core readings far from the host total, so a chart of a core is told apart at once.
CORE_VALUE = 97.0


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    """The browser tests' data plus per-core CPU series on web-1 and a second host, web-2."""
    data = _make_data(int(time.time() * 1000))
    extra: list[Sample] = []
    for step in range(0, 360, 3):
        ts = data.now_ms - HOUR_MS + step * 10_000
        for core in ("0", "1"):
            extra.append(Sample("cpu_percent", {"host": "web-1", "cpu": core}, ts, CORE_VALUE))
        extra.append(Sample("cpu_percent", {"host": "web-2"}, ts, 40.0))
        extra.append(Sample("cpu_percent", {"host": "web-2", "cpu": "0"}, ts, CORE_VALUE))
    data.samples.extend(extra)
    real = _real_server(tmp_path, data)
    if real is None:
        pytest.skip("secperf.web.app.create_app is not available")
    result, stop = real
    try:
        yield result
    finally:
        stop()


def _new_page(browser: Any, *, width: int = 1400, scheme: str = "light") -> tuple[Any, list[str]]:
    context = browser.new_context(
        viewport={"width": width, "height": 900}, color_scheme=scheme, accept_downloads=True
    )
    context.set_default_timeout(20_000)
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    return pg, errors


@pytest.fixture
def page(browser: Any, served: Served) -> Iterator[Any]:
    pg, errors = _new_page(browser)
    try:
        yield pg
    finally:
        pg.context.close()
    assert errors == [], f"the page raised: {errors}"


def _x_range(page: Any) -> tuple[int, int]:
    chart = page.get_by_test_id("chart")
    lo = chart.get_attribute("data-x-min")
    hi = chart.get_attribute("data-x-max")
    assert lo and hi, f"the chart does not say its x range: {lo!r} {hi!r}"
    return int(lo), int(hi)


def _wait_span(page: Any, span_ms: int) -> None:
    page.wait_for_function(
        """span => { const c = document.querySelector('[data-testid=chart]');
        if (!c || !c.dataset.xMin || !c.dataset.xMax) return false;
        return Math.abs(Number(c.dataset.xMax) - Number(c.dataset.xMin) - span) <= 1000; }""",
        arg=span_ms,
    )


def _hash_params(page: Any) -> dict[str, str]:
    text = page.evaluate("() => location.hash")
    query = text.split("?", 1)[1] if "?" in text else ""
    out: dict[str, str] = {}
    for part in query.split("&"):
        if "=" in part:
            key, value = part.split("=", 1)
            out[key] = unquote(value.replace("+", " "))
    return out


def _publish_cpu(served: Served, value: float, *, cpu: str | None = None) -> int:
    """Stream one CPU sample of web-1 stamped now; returns its time (ms)."""
    labels = {"host": "web-1"} if cpu is None else {"host": "web-1", "cpu": cpu}
    sample = Sample("cpu_percent", labels, int(time.time() * 1000), value)
    served.publish(MetricsRecorded(samples=(sample,)))
    return sample.timestamp_ms


def _batches(page: Any) -> int:
    return int(page.get_by_test_id("performance").get_attribute("data-stream-batches") or 0)


# --------------------------------------------------------------------------- tests


def test_the_x_axis_spans_the_chosen_range_and_follows_the_clock(page: Any, served: Served) -> None:
    _open(page, served, "performance?metric=cpu_percent&host=web-1&from=now-15m&to=now")
    _wait_span(page, 15 * MIN_MS)
    lo, hi = _x_range(page)
    # The range ends now, not at the last sample's time nor an hour of data's extent.
    assert abs(hi - time.time() * 1000) < 30_000, (lo, hi)
    expect(page.get_by_test_id("chart-mode")).to_contain_text("live")
    # Live: a streamed sample is drawn and the window moves on with the clock.
    _wait_live(page)
    sent_at = _publish_cpu(served, 55.0)
    page.wait_for_function(
        "t => Number(document.querySelector('[data-testid=chart]').dataset.xLast) === t",
        arg=sent_at,
    )
    page.wait_for_function(
        "hi => Number(document.querySelector('[data-testid=chart]').dataset.xMax) > hi", arg=hi
    )
    _wait_span(page, 15 * MIN_MS)
    # Another preset: the axis follows it.
    page.goto(f"{served.base_url}/#/performance?metric=cpu_percent&host=web-1&from=now-6h&to=now")
    _wait_span(page, 6 * 60 * MIN_MS)


def test_drag_to_zoom_sets_an_absolute_range_that_streamed_samples_keep(
    page: Any, served: Served
) -> None:
    _open(page, served, "performance?metric=cpu_percent&host=web-1&from=now-1h&to=now")
    _wait_live(page)
    _wait_span(page, HOUR_MS)
    canvas = page.get_by_test_id("chart").locator("canvas")
    box = canvas.bounding_box()
    assert box is not None
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + 64 + 0.3 * (box["width"] - 64), y)
    page.mouse.down()
    page.mouse.move(box["x"] + 64 + 0.45 * (box["width"] - 64), y, steps=5)
    page.mouse.move(box["x"] + 64 + 0.6 * (box["width"] - 64), y, steps=5)
    page.mouse.up()
    page.wait_for_function("() => /[?&]from=\\d{10,}&to=\\d{10,}/.test(location.hash)")
    params = _hash_params(page)
    start, end = int(params["from"]), int(params["to"])
    # About 30 % to 60 % of the hour: some 18 minutes.
    assert 12 * MIN_MS < end - start < 24 * MIN_MS, (start, end)
    expect(page.get_by_test_id("chart-mode")).to_contain_text("paused")
    page.wait_for_function(
        "r => { const c = document.querySelector('[data-testid=chart]');"
        " return Math.abs(Number(c.dataset.xMin) - r[0]) <= 1000"
        " && Math.abs(Number(c.dataset.xMax) - r[1]) <= 1000; }",
        arg=[start, end],
    )
    # Stream samples for more than 3 s, until the view has taken 8 batches (the
    # server thins a client's metric batches to 10/s: one thinned away is sent again).
    zoomed_at = time.monotonic()
    taken = _batches(page)
    first = taken
    deadline = time.monotonic() + 90
    while taken - first < 8 or time.monotonic() - zoomed_at < 3.5:
        assert time.monotonic() < deadline, "the page did not take the streamed samples"
        _publish_cpu(served, 80.0 + taken)
        with contextlib.suppress(playwright_sync.TimeoutError):
            page.wait_for_function(
                "n => Number(document.querySelector('[data-testid=performance]')"
                ".dataset.streamBatches) > n",
                arg=taken,
                timeout=2000,
            )
        taken = _batches(page)
    params = _hash_params(page)
    assert (int(params["from"]), int(params["to"])) == (start, end)
    lo, hi = _x_range(page)
    assert abs(lo - start) <= 1000 and abs(hi - end) <= 1000, (lo, hi, start, end)
    # Zoom out (double-click) widens the range around its middle.
    page.mouse.dblclick(box["x"] + box["width"] / 2, y)
    page.wait_for_function(
        "span => { const m = /from=(\\d+)&to=(\\d+)/.exec(location.hash);"
        " return m ? Number(m[2]) - Number(m[1]) >= span : /from=now-/.test(location.hash); }",
        arg=2 * (end - start) - 1000,
    )


def test_two_series_of_different_units_get_two_axes_and_a_legend(page: Any, served: Served) -> None:
    _open(page, served, "performance?metric=response_time_ms&host=web-1")
    chart = page.get_by_test_id("chart")
    expect(chart).to_have_attribute("data-lines", "1")
    expect(chart).to_have_attribute("data-axes", "1")
    page.get_by_test_id("add-series").click()
    page.get_by_test_id("series-metric").select_option("cpu_percent")
    expect(chart).to_have_attribute("data-lines", "2")
    expect(chart).to_have_attribute("data-axes", "2")
    legend = page.get_by_test_id("legend-series")
    expect(legend).to_have_count(2)
    expect(legend.nth(0)).to_contain_text("response_time_ms")
    expect(legend.nth(0)).to_contain_text("(ms, left axis)")
    expect(legend.nth(1)).to_contain_text("cpu_percent")
    expect(legend.nth(1)).to_contain_text("(%, right axis)")
    # The chosen series are in the view's URL, so the chart opens as it is.
    assert _hash_params(page)["series"] == "response_time_ms;cpu_percent"
    page.reload()
    expect(chart).to_have_attribute("data-axes", "2")
    expect(page.get_by_test_id("legend-series")).to_have_count(2)
    # Three series straight from the URL (memory shares the % axis with CPU).
    page.goto(
        f"{served.base_url}/#/performance?host=web-1&series="
        "response_time_ms%3Bcpu_percent%3Bcpu_percent%7Bcpu%3D%221%22%7D"
    )
    expect(chart).to_have_attribute("data-lines", "3")
    expect(chart).to_have_attribute("data-axes", "2")
    expect(page.get_by_test_id("legend-series").nth(2)).to_contain_text("cpu=1")


def test_the_default_cpu_series_is_the_host_total(page: Any, served: Served) -> None:
    _open(page, served, "performance?host=web-1")
    chart = page.get_by_test_id("chart")
    expect(page.get_by_test_id("metric-select")).to_have_value("cpu_percent")
    expect(chart).to_have_attribute("data-lines", "1")
    legend = page.get_by_test_id("legend-series")
    expect(legend).to_have_text("cpu_percent {host=web-1} (avg)")
    # Hover in the middle: the host total (20 to 77 %), not a core's constant reading.
    box = chart.locator("canvas").bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + 64 + 0.5 * (box["width"] - 64), box["y"] + box["height"] / 2)
    hover = page.get_by_test_id("chart-hover")
    expect(hover).to_contain_text("%")
    assert f"{CORE_VALUE:.1f}%" not in (hover.text_content() or "")
    # A streamed per-core sample does not join the total.
    _wait_live(page)
    points = int(chart.get_attribute("data-points") or 0)
    applied = _batches(page)
    _publish_cpu(served, CORE_VALUE, cpu="1")
    page.wait_for_function(
        "n => Number(document.querySelector('[data-testid=performance]')"
        ".dataset.streamBatches) > n",
        arg=applied,
    )
    assert int(chart.get_attribute("data-points") or 0) == points
    # All hosts: one line per host, each its total.
    page.goto(f"{served.base_url}/#/performance?metric=cpu_percent")
    expect(chart).to_have_attribute("data-lines", "2")
    expect(legend).to_have_count(2)
    expect(legend.nth(0)).to_have_text("cpu_percent host=web-1")
    expect(legend.nth(1)).to_have_text("cpu_percent host=web-2")


def test_the_chart_saves_as_png_and_its_points_as_csv(page: Any, served: Served) -> None:
    _open(page, served, "performance?metric=response_time_ms&host=web-1")
    expect(page.get_by_test_id("chart").locator("canvas")).to_have_count(1)
    with page.expect_download() as info:
        page.get_by_test_id("export-chart-png").click()
    download = info.value
    assert re.fullmatch(r"secperf-performance-[\dT-]+\.png", download.suggested_filename)
    png = Path(download.path()).read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(png) > 1000
    with page.expect_download() as info:
        page.get_by_test_id("export-performance-csv").click()
    text = Path(info.value.path()).read_text(encoding="utf-8")
    lines = text.strip().splitlines()
    assert lines[0] == "time_utc,timestamp_ms,series,metric,labels,unit,avg,min,max"
    assert len(lines) > 100
    assert ",response_time_ms,host=web-1,milliseconds," in lines[1]


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_view_fits_390_px_and_works_by_keyboard(
    browser: Any, served: Served, scheme: str
) -> None:
    page, errors = _new_page(browser, width=390, scheme=scheme)
    try:
        _open(page, served, "performance?series=response_time_ms%3Bcpu_percent&host=web-1")
        chart = page.get_by_test_id("chart")
        expect(chart).to_have_attribute("data-axes", "2")
        width = page.evaluate(
            "() => document.querySelector('[data-testid=chart] canvas').clientWidth"
        )
        assert 0 < width <= 390
        widths = page.evaluate(
            "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
        )
        assert widths[0] <= widths[1], f"the page scrolls sideways: {widths}"
        # Zoom in from the keyboard: Tab to the button, Enter; the range is absolute.
        page.get_by_test_id("metric-select").focus()
        for _ in range(30):
            page.keyboard.press("Tab")
            if page.evaluate("() => document.activeElement?.dataset?.testid ?? ''") == "zoom-in":
                break
        else:
            raise AssertionError("Tab never reached the zoom-in button")
        outline = page.evaluate("() => getComputedStyle(document.activeElement).outlineStyle")
        assert outline == "solid", outline
        page.keyboard.press("Enter")
        page.wait_for_function("() => /[?&]from=\\d{10,}&to=\\d{10,}/.test(location.hash)")
        _wait_span(page, 30 * MIN_MS)
        assert page.evaluate(
            "() => document.documentElement.scrollWidth <= document.documentElement.clientWidth"
        )
    finally:
        page.context.close()
    assert errors == [], f"the page raised: {errors}"
