"""Alerts, Correlations, Troubleshooting and the Overview in a real browser.

The real secperf app (no alert engine: the alert context is built from the
store) over a real SQLite store filled through the Store API, served with the
built dashboard; Debian's Chromium driven by Playwright. Checked: the alert
detail reads as sections with working links (no raw JSON unless asked), an
alert is acknowledged from the keyboard alone, the overview names its target
and leaves a silenced alert out of its firing list, the correlation axis
carries a unit and per-process series wait behind a button, an empty store's
Troubleshooting says "no data yet", and the four views fit 390 px.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from test_dashboard_browser import (
    DASHBOARD_MARKS,
    STATIC,
    TOKEN,
    DashboardData,
    _fill_store,
    _make_data,
    _start,
    browser,
    playwright_sync,
)

from secperf.alerts import operator
from secperf.bus.memory import AsyncEventBus
from secperf.model import Alert, AlertState, MetricKind, Sample, Severity
from secperf.store import Store, StoreWriter
from secperf.web.app import create_app

__all__ = ["browser"]  # the shared Chromium fixture, used by the tests below

pytestmark = DASHBOARD_MARKS

expect = playwright_sync.expect
MIN = 60_000
TARGET = "demo-repo"
#: The alert about the target: its context names the target's last scan and web-1's state.
TARGET_ALERT = "alert-vulns-demo"
SILENCED_ALERT = "alert-disk-silenced"
CPU_ALERT = "alert-cpu-high"  # from test_dashboard_browser's data


def _alerts(now: int) -> list[Alert]:
    return [
        Alert(
            fingerprint=TARGET_ALERT,
            rule="NewCriticalFindings",
            state=AlertState.FIRING,
            severity=Severity.CRITICAL,
            kind=MetricKind.SECURITY,
            labels={"alertname": "NewCriticalFindings", "target": TARGET, "host": "web-1"},
            annotations={"summary": "critical findings appeared", "runbook": "see the wiki"},
            value=1.0,
            active_since_ms=now - 12 * MIN,
            fired_at_ms=now - 12 * MIN,
            updated_ms=now - 12 * MIN,
        ),
        Alert(
            fingerprint=SILENCED_ALERT,
            rule="DiskAlmostFull",
            state=AlertState.FIRING,
            severity=Severity.MEDIUM,
            kind=MetricKind.PERFORMANCE,
            labels={"alertname": "DiskAlmostFull", "host": "web-1"},
            annotations={"summary": "disk above 90%"},
            value=93.0,
            active_since_ms=now - 30 * MIN,
            fired_at_ms=now - 30 * MIN,
            updated_ms=now - 30 * MIN,
        ),
    ]


def _quantiles(lo: float, hi: float) -> list[float]:
    step = (hi - lo) / 4
    return [lo + i * step for i in range(5)]


def _correlation(name: str, labels: dict[str, str], effect: float) -> dict[str, Any]:
    return {
        "name": name,
        "labels": labels,
        "effect_pct": effect,
        "q_value": 0.002,
        "ks_p": 0.001,
        "mw_p": 0.001,
        "volume_score": 1.0,
        "onset_lag_ms": 20_000,
        "direction": "up" if effect > 0 else "down",
        "significant": abs(effect) > 10,
        "n_inside": 40,
        "n_quiet": 80,
        "inside_median": 6.0,
        "quiet_median": 3.0,
        # A duration whose smallest quantile came out a hair below zero.
        "inside_quantiles": [-0.000445, 3.0, 6.0, 9.0, 11.6],
        "quiet_quantiles": _quantiles(0.5, 5.0),
    }


def _correlations() -> dict[str, Any]:
    results = [_correlation("response_time_ms", {"host": "web-1"}, 55.0)]
    for pid, name, effect in (("101", "python", 30.0), ("102", "python", 12.0), ("7", "node", 4.0)):
        results.append(
            _correlation("process_cpu_percent", {"host": "web-1", "pid": pid, "name": name}, effect)
        )
    return {"computed_ms": int(time.time() * 1000), "results": results}


def _serve(tmp: Path, fill: Callable[[Store], None]) -> Iterator[str]:
    store = Store.open(tmp / "secperf.db")
    fill(store)
    bus = AsyncEventBus()
    writer = StoreWriter(store, flush_interval_s=0.2)
    app = create_app(
        store,
        bus,
        token=TOKEN,
        writer=writer,
        manage_writer=True,
        static_dir=STATIC,
        correlations=_correlations,
    )
    url, stop = _start(app, "on")
    try:
        yield url
    finally:
        stop()
        store.close()


@pytest.fixture
def data() -> DashboardData:
    made = _make_data(int(time.time() * 1000))
    return replace(made, alerts=[*made.alerts, *_alerts(made.now_ms)])


@pytest.fixture
def base_url(tmp_path: Path, data: DashboardData) -> Iterator[str]:
    def fill(store: Store) -> None:
        _fill_store(store, data)
        # The host's memory and load around the alerts (the CPU is in the shared data).
        store.write_samples(
            [
                Sample(name, {"host": "web-1"}, data.now_ms - 20 * MIN + i * 10_000, value)
                for i in range(120)
                for name, value in (("memory_percent", 41.0), ("load_1m", 1.5))
            ]
        )
        operator.add_silence(
            store,
            [{"name": "alertname", "op": "=", "value": "DiskAlmostFull"}],
            None,
            data.now_ms + 3_600_000,
            "ops",
            "disk being replaced",
            data.now_ms,
        )

    yield from _serve(tmp_path, fill)


@pytest.fixture
def empty_url(tmp_path: Path) -> Iterator[str]:
    yield from _serve(tmp_path, lambda store: None)


def _page(browser: Any, width: int = 1400) -> Any:
    context = browser.new_context(viewport={"width": width, "height": 900})
    context.set_default_timeout(15_000)
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.errors = errors
    return pg


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    pg = _page(browser)
    try:
        yield pg
    finally:
        pg.context.close()
    assert pg.errors == [], f"the page raised: {pg.errors}"


def _open(page: Any, base: str, view: str, token: str = TOKEN) -> None:
    page.goto(f"{base}/")
    page.evaluate("t => localStorage.setItem('secperf.token', t)", token)
    page.goto(f"{base}/#/{view}")
    page.reload()


def _query(href: str) -> dict[str, str]:
    assert "?" in href, href
    return {k: v[0] for k, v in parse_qs(href.split("?", 1)[1]).items()}


# --------------------------------------------------------------------------- tests


def test_alert_context_reads_as_sections_with_links(page: Any, base_url: str) -> None:
    _open(page, base_url, f"alerts?fp={TARGET_ALERT}")
    detail = page.get_by_test_id("alert-detail")
    scan = detail.get_by_test_id("context-scan")
    expect(scan.get_by_role("heading", name="Last scan")).to_be_visible()
    expect(scan).to_contain_text("scan-two")
    expect(scan).to_contain_text(TARGET)
    expect(detail.get_by_test_id("context-findings").get_by_role("heading")).to_contain_text(
        "New findings"
    )
    expect(detail.get_by_test_id("context-findings").locator(".sev").first).to_be_visible()
    expect(detail.get_by_test_id("context-cpu")).not_to_have_text("—")
    expect(detail.get_by_test_id("context-labels")).to_contain_text("target")

    findings = _query(detail.get_by_test_id("context-findings-link").get_attribute("href"))
    assert findings["target"] == TARGET
    assert findings["scan"] == "scan-two"

    perf_href = detail.get_by_test_id("context-performance-link").get_attribute("href")
    assert perf_href.startswith("#/performance?")
    perf = _query(perf_href)
    assert perf["host"] == "web-1"
    start, end = int(perf["from"]), int(perf["to"])
    fired = page.evaluate("() => Date.now()") - 12 * MIN
    assert start < fired < end, (start, fired, end)

    # No raw JSON unless asked for: the raw section is closed.
    raw = detail.get_by_test_id("context-raw")
    expect(raw.locator("pre")).to_be_hidden()
    assert '"security"' not in detail.inner_text()
    assert '{"' not in detail.inner_text()
    raw.locator("summary").click()
    expect(raw.locator("pre")).to_contain_text('"security"')

    # The link opens Performance for the host, paused on the range around the alert.
    detail.get_by_test_id("context-performance-link").click()
    page.wait_for_function("() => location.hash.startsWith('#/performance')")
    assert "host=web-1" in page.url


def test_an_alert_is_acknowledged_from_the_keyboard(page: Any, base_url: str) -> None:
    _open(page, base_url, "alerts")
    row = page.locator(f"[data-testid=alert-item][data-fingerprint={TARGET_ALERT}]")
    row.get_by_test_id("alert-open").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("alert-detail")).to_contain_text("NewCriticalFindings")
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.dataset.testid") == "alert-ack"
    # No author known yet: the ack button asks for one, the form acknowledges on Enter.
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("ack-author")).to_be_focused()
    page.keyboard.type("dana")
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("ack-by")).to_contain_text("dana")
    expect(row.get_by_test_id("alert-status")).to_have_text("ack: dana")

    listed = httpx.get(
        f"{base_url}/api/v1/alerts", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10
    ).json()["alerts"]
    acked = next(a for a in listed if a["fingerprint"] == TARGET_ALERT)
    assert acked["acknowledged_by"] == "dana"

    # A silenced alert's status reads with a space between its parts.
    silenced = page.locator(f"[data-testid=alert-item][data-fingerprint={SILENCED_ALERT}]")
    expect(silenced.get_by_test_id("alert-status")).to_have_text("silenced")


def test_overview_names_its_target_and_leaves_silenced_alerts_out(page: Any, base_url: str) -> None:
    _open(page, base_url, "overview")
    about = page.get_by_test_id("overview-target")
    expect(about).to_contain_text(TARGET)
    expect(about).to_contain_text("last scanned")
    firing = page.get_by_test_id("firing-alerts")
    rows = firing.get_by_test_id("alert-row")
    expect(rows).to_have_count(2)
    expect(firing).not_to_contain_text("DiskAlmostFull")
    expect(firing.get_by_test_id("firing-count")).to_have_text("2")
    expect(firing.get_by_test_id("silenced-count")).to_have_text("1 silenced")


def test_correlation_axis_has_units_and_per_process_series_wait(page: Any, base_url: str) -> None:
    _open(page, base_url, "correlations")
    table = page.get_by_test_id("correlations-table")
    expect(table.get_by_test_id("correlation-row")).to_have_count(1)
    expect(table.get_by_test_id("process-row")).to_have_count(0)
    expect(table.get_by_test_id("process-group")).to_have_count(0)
    toggle = page.get_by_test_id("toggle-processes")
    expect(toggle).to_have_text("show 3 per-process series")
    expect(toggle).to_have_attribute("aria-pressed", "false")

    axis = page.get_by_test_id("evidence-axis")
    ticks = axis.locator("text")
    expect(ticks.first).to_have_text("0 ms")
    labels = ticks.all_text_contents()
    assert all(t.endswith(" ms") for t in labels), labels
    assert not any("e-" in t for t in labels), labels

    toggle.focus()
    page.keyboard.press("Enter")
    expect(toggle).to_have_attribute("aria-pressed", "true")
    groups = table.get_by_test_id("process-group")
    expect(groups).to_have_count(2)
    expect(groups.first).to_contain_text("python")
    expect(groups.first).to_contain_text("2 PIDs")
    groups.first.get_by_role("button").focus()
    page.keyboard.press("Enter")
    expect(table.get_by_test_id("process-row")).to_have_count(2)
    # A process row opens its evidence from the keyboard; percentages read as such.
    table.get_by_test_id("process-row").first.get_by_role("button").focus()
    page.keyboard.press("Space")
    expect(page.locator("#correlation-detail h2")).to_contain_text("pid=101")
    expect(ticks.first).to_have_text("0%")


def test_an_empty_store_says_no_data_yet(page: Any, empty_url: str) -> None:
    _open(page, empty_url, "advice")
    expect(page.get_by_test_id("advice-empty")).to_contain_text("no data yet")
    expect(page.get_by_test_id("advice-empty")).not_to_contain_text("nothing looks wrong")


@pytest.mark.parametrize(
    "view", ["overview", f"alerts?fp={TARGET_ALERT}", "correlations", "advice"]
)
def test_views_fit_a_phone(browser: Any, base_url: str, view: str) -> None:
    pg = _page(browser, width=390)
    try:
        _open(pg, base_url, view)
        ready = {
            "overview": "overview-target",
            "alerts": "alert-context",
            "correlations": "evidence-axis",
            "advice": "advice-empty",
        }[view.split("?")[0]]
        expect(pg.get_by_test_id(ready).first).to_be_visible()
        widths = pg.evaluate(
            "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
        )
        assert widths[0] <= widths[1], f"{view} scrolls sideways at 390 px: {widths}"
        assert pg.errors == []
    finally:
        pg.context.close()
