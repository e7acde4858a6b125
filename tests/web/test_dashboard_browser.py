"""The dashboard in a real browser: Debian's Chromium driven by Playwright.

The built dashboard (src/secperf/web/static) is served with the v1 API on a
loopback port by uvicorn; the tests load it, check what the views show, and
publish events to see the page update over Server-Sent Events without a
reload. The API is the real secperf app over a real SQLite store holding
data written through the Store API, with the in-memory bus.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from secperf.events import Event, ScanCompleted, ScanStarted
from secperf.model import (
    Alert,
    AlertState,
    Finding,
    MetricKind,
    Sample,
    SecurityMetrics,
    Severity,
    make_fingerprint,
)
from support.paths import REPO
from support.services import free_port

playwright_sync = pytest.importorskip("playwright.sync_api")
uvicorn = pytest.importorskip("uvicorn")


CHROMIUM = Path("/usr/bin/chromium")
STATIC = REPO / "src" / "secperf" / "web" / "static"
TOKEN = "dashboard-test-token"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

#: Skips shared by every dashboard browser test module: Chromium and the built dashboard.
DASHBOARD_MARKS = [
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="Chromium is not installed at /usr/bin/chromium (apt-get install chromium)",
    ),
    pytest.mark.skipif(
        not (STATIC / "index.html").exists(),
        reason="the dashboard is not built (run scripts/check-dashboard)",
    ),
]
pytestmark = DASHBOARD_MARKS


@dataclass
class DashboardData:
    """The test data: one scan, its findings, samples, scan windows, alerts."""

    now_ms: int
    metrics: SecurityMetrics
    findings: list[Finding]
    new_fingerprints: set[str]
    samples: list[Sample]
    windows: list[tuple[str, int, int, int, int]]  # scan_id, start, end, violations, new
    alerts: list[Alert]


# --------------------------------------------------------------------------- data

HOUR_MS = 3_600_000
SEVERITY_MIX = {"critical": 1, "high": 2, "medium": 1, "low": 1}


def _make_data(now_ms: int) -> DashboardData:
    """One scan with findings of several severities, 1 h of two series, two scan windows."""
    findings: list[Finding] = []
    for sev, count in SEVERITY_MIX.items():
        for i in range(count):
            rule = f"R-{sev}-{i}"
            path = f"src/app/{sev}_{i}.py"
            findings.append(
                Finding(
                    fingerprint=make_fingerprint(rule, path, f"code {sev} {i}"),
                    rule_id=rule,
                    scanner="bandit" if sev != "low" else "secrets",
                    severity=Severity(sev),
                    message=f"{sev} problem number {i} <b>not html</b>",
                    path=path,
                    line=10 + i,
                )
            )
    windows = [
        ("scan-one", now_ms - 50 * 60_000, now_ms - 45 * 60_000, 4, 4),
        ("scan-two", now_ms - 20 * 60_000, now_ms - 15 * 60_000, 5, 2),
    ]
    metrics = SecurityMetrics(
        scan_id="scan-two",
        target="demo-repo",
        started_ms=windows[1][1],
        finished_ms=windows[1][2],
        scan_duration_ms=float(windows[1][2] - windows[1][1]),
        violations_found=len(findings),
        false_positive_rate=0.1,
        vulnerability_severity_counts={**SEVERITY_MIX, "info": 0},
        scan_coverage_percent=97.5,
        files_scanned=40,
        new_findings=2,
        existing_findings=3,
    )
    samples: list[Sample] = []
    for step in range(0, 360):
        ts = now_ms - HOUR_MS + step * 10_000
        inside = any(s <= ts <= e for _, s, e, _, _ in windows)
        samples.append(
            Sample("cpu_percent", {"host": "web-1"}, ts, (70.0 if inside else 20.0) + step % 7)
        )
        samples.append(
            Sample(
                "response_time_ms", {"host": "web-1"}, ts, (180.0 if inside else 90.0) + step % 5
            )
        )
    alert = Alert(
        fingerprint="alert-cpu-high",
        rule="HighCpuDuringScan",
        state=AlertState.FIRING,
        severity=Severity.HIGH,
        kind=MetricKind.PERFORMANCE,
        labels={"alertname": "HighCpuDuringScan", "host": "web-1"},
        annotations={"summary": "CPU above 60% for 5 minutes"},
        value=77.0,
        active_since_ms=now_ms - 10 * 60_000,
        fired_at_ms=now_ms - 5 * 60_000,
        updated_ms=now_ms - 5 * 60_000,
    )
    new = {f.fingerprint for f in findings if f.severity >= Severity.HIGH}
    return DashboardData(now_ms, metrics, findings, new, samples, windows, [alert])


# --------------------------------------------------------------------------- server


@dataclass
class Served:
    """A running server: where it listens, how to publish to it, which API it is."""

    base_url: str
    publish: Callable[[Event], None]
    api: str
    data: DashboardData


def _start(app: Any, lifespan: str) -> tuple[str, Callable[[], None]]:
    """Run ``app`` under uvicorn on a free loopback port in a thread; returns (url, stop).

    The server is ``secperf serve``'s own: it ends the live streams as soon as
    shutdown begins. uvicorn's plain server waited on a page's open stream
    until ``stop`` gave up on it, ten seconds after every browser test.
    """
    from secperf.web.server import GRACEFUL_SHUTDOWN_S, SecperfServer

    port = free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan=lifespan,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
    )
    server = SecperfServer(config, getattr(getattr(app, "state", None), "sse_hub", None))
    thread = threading.Thread(target=server.run, name="dashboard-test-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the test server did not start on 127.0.0.1:{port}")
        time.sleep(0.02)

    def stop() -> None:
        server.should_exit = True
        thread.join(timeout=30)
        assert not thread.is_alive(), "the test server did not stop"

    return f"http://127.0.0.1:{port}", stop


def _fill_store(store: Any, data: DashboardData) -> None:
    """Write the test data through the Store API, as the scanners and collectors would."""
    for scan_id, start, end, violations, new in data.windows:
        store.record_scan_started(scan_id, "demo-repo", start, ["bandit", "secrets"])
        metrics = replace(
            data.metrics,
            scan_id=scan_id,
            started_ms=start,
            finished_ms=end,
            scan_duration_ms=float(end - start),
            violations_found=violations,
            new_findings=new,
        )
        if scan_id == data.metrics.scan_id:
            metrics = data.metrics
        store.record_scan_completed(metrics, "ok")
    store.add_findings(data.metrics.scan_id, data.findings, data.new_fingerprints)
    store.write_samples(data.samples)
    for alert in data.alerts:
        store.upsert_alert(alert)


def _real_server(tmp: Path, data: DashboardData) -> tuple[Served, Callable[[], None]] | None:
    """The real secperf app over a real SQLite store and the in-memory bus, when available."""
    try:
        from secperf.bus.memory import AsyncEventBus
        from secperf.store import Store, StoreWriter
        from secperf.web.app import create_app
    except ImportError:
        return None
    store = Store.open(tmp / "secperf.db")
    _fill_store(store, data)
    bus = AsyncEventBus()
    writer = StoreWriter(store, flush_interval_s=0.2)
    app = create_app(store, bus, token=TOKEN, writer=writer, manage_writer=True, static_dir=STATIC)
    url, stop_server = _start(app, "on")

    def stop() -> None:
        stop_server()
        store.close()

    return Served(url, bus.publish_threadsafe, "secperf", data), stop


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    # One server per test: a live scan published by one test must not become
    # the latest scan another test reads.
    data = _make_data(int(time.time() * 1000))
    real = _real_server(tmp_path, data)
    if real is None:
        pytest.skip("secperf.web.app.create_app is not available")
    result, stop = real
    try:
        yield result
    finally:
        stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    pw = playwright_sync.sync_playwright().start()
    try:
        chromium = pw.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
    except Exception as exc:  # a broken Chromium install: say so instead of erroring
        pw.stop()
        pytest.skip(f"Chromium at {CHROMIUM} could not be launched: {exc}")
    try:
        yield chromium
    finally:
        chromium.close()
        pw.stop()


@pytest.fixture
def page(browser: Any, served: Served) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.set_default_timeout(10_000)
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        yield pg
    finally:
        context.close()
    assert errors == [], f"the page raised: {errors}"


def _open(page: Any, served: Served, view: str, *, token: str | None = None) -> None:
    page.goto(f"{served.base_url}/")
    if token is not None:
        page.evaluate("t => localStorage.setItem('secperf.token', t)", token)
    page.goto(f"{served.base_url}/#/{view}")
    page.reload()


def _wait_live(page: Any) -> None:
    playwright_sync.expect(page.get_by_test_id("connection")).to_have_text("● live")


# --------------------------------------------------------------------------- tests

expect = playwright_sync.expect


def test_overview_shows_severity_counts_and_firing_alert(page: Any, served: Served) -> None:
    _open(page, served, "overview")
    for sev, count in {**SEVERITY_MIX, "info": 0}.items():
        expect(page.get_by_test_id(f"sev-{sev}").locator(".n")).to_have_text(str(count))
    expect(page.get_by_test_id("violations-total")).to_have_text(str(sum(SEVERITY_MIX.values())))
    # Counted from the scan's stored findings (one count for the widget and the chart).
    new = len(served.data.new_fingerprints)
    expect(page.get_by_test_id("new-findings")).to_contain_text(f"{new} new")
    firing = page.get_by_test_id("firing-alerts").get_by_test_id("alert-row")
    expect(firing).to_have_count(1)
    expect(firing).to_contain_text("HighCpuDuringScan")
    expect(page.get_by_test_id("cpu-latest")).not_to_have_text("—")


def test_chart_draws_both_scan_windows_and_finding_markers(page: Any, served: Served) -> None:
    _open(page, served, "performance?metric=cpu_percent&range=1h")
    chart = page.get_by_test_id("chart")
    expect(chart.locator("canvas")).to_have_count(1)
    expect(chart).to_have_attribute("data-scan-windows", "2")
    new_count = len(served.data.new_fingerprints)
    expect(chart).to_have_attribute("data-finding-markers", str(new_count))
    expect(page.get_by_test_id("legend-scans")).to_have_text("scan windows (2)")
    # Hovering inside the second scan window names that scan beside the value.
    box = chart.locator("canvas").bounding_box()
    assert box is not None
    start, end = served.data.windows[1][1], served.data.windows[1][2]
    first = served.data.now_ms - HOUR_MS
    frac = ((start + end) / 2 - first) / HOUR_MS
    # uPlot's plot area starts after the y axis (64 px) and ends at the right edge.
    x = box["x"] + 64 + frac * (box["width"] - 64)
    page.mouse.move(x, box["y"] + box["height"] / 2)
    expect(page.get_by_test_id("chart-hover")).to_contain_text("scan scan-two running")


def test_findings_filter_by_severity(page: Any, served: Served) -> None:
    _open(page, served, "findings")
    rows = page.get_by_test_id("finding-row")
    expect(rows).to_have_count(sum(SEVERITY_MIX.values()))
    page.get_by_test_id("filter-severity").select_option("high")
    expect(rows).to_have_count(SEVERITY_MIX["critical"] + SEVERITY_MIX["high"])
    severities = {rows.nth(i).get_attribute("data-severity") for i in range(rows.count())}
    assert severities == {"critical", "high"}
    # Messages are shown as text, never parsed as HTML.
    expect(rows.first).to_contain_text("<b>not html</b>")
    page.get_by_test_id("filter-severity").select_option("critical")
    expect(rows).to_have_count(SEVERITY_MIX["critical"])
    assert "severity=critical" in page.url


def test_scan_arrives_live_over_sse_without_reload(page: Any, served: Served) -> None:
    _open(page, served, "overview")
    _wait_live(page)
    page.evaluate("window.__sameDocument = 'yes'")
    served.publish(ScanStarted(scan_id="scan-live", target="demo-repo", scanners=("bandit",)))
    expect(page.get_by_test_id("scan-running")).to_contain_text("scanning demo-repo")
    now = int(time.time() * 1000)
    counts = {"critical": 7, "high": 3, "medium": 0, "low": 0, "info": 0}
    served.publish(
        ScanCompleted(
            metrics=SecurityMetrics(
                scan_id="scan-live",
                target="demo-repo",
                started_ms=now - 2000,
                finished_ms=now,
                scan_duration_ms=2000.0,
                violations_found=10,
                false_positive_rate=0.0,
                vulnerability_severity_counts=counts,
                scan_coverage_percent=100.0,
                new_findings=5,
            )
        )
    )
    expect(page.get_by_test_id("sev-critical").locator(".n")).to_have_text("7")
    expect(page.get_by_test_id("scan-running")).to_have_count(0)
    assert page.evaluate("window.__sameDocument") == "yes"


def test_ack_alert_and_triage_finding_with_token(page: Any, served: Served) -> None:
    _open(page, served, "alerts", token=TOKEN)
    page.get_by_test_id("alerts-firing").get_by_test_id("alert-item").first.click()
    page.get_by_test_id("ack-author").fill("dana")
    page.get_by_test_id("ack-note").fill("looking into it")
    page.get_by_test_id("ack-submit").click()
    expect(page.get_by_test_id("ack-by")).to_contain_text("dana: looking into it")

    page.goto(f"{served.base_url}/#/findings?severity=critical")
    page.get_by_test_id("finding-row").first.click()
    page.get_by_test_id("triage-state").select_option("accepted_risk")
    page.get_by_test_id("triage-expires").fill("2031-01-31")
    page.get_by_test_id("triage-reason").fill("test fixture, not shipped")
    page.get_by_test_id("triage-submit").click()
    expect(page.get_by_test_id("finding-state").first).to_have_text("accepted risk")


def test_a_triage_in_the_dashboard_changes_the_overview_at_once(page: Any, served: Served) -> None:
    total = sum(SEVERITY_MIX.values())
    _open(page, served, "overview", token=TOKEN)
    expect(page.get_by_test_id("violations-total")).to_have_text(str(total))
    page.goto(f"{served.base_url}/#/findings?severity=critical")
    page.get_by_test_id("finding-row").first.click()
    page.get_by_test_id("triage-state").select_option("false_positive")
    page.get_by_test_id("triage-reason").fill("test fixture, not shipped")
    page.get_by_test_id("triage-author").fill("dana")
    page.get_by_test_id("triage-submit").click()
    expect(page.get_by_test_id("finding-state").first).to_have_text("false positive")
    page.goto(f"{served.base_url}/#/overview")
    expect(page.get_by_test_id("sev-critical").locator(".n")).to_have_text("0")
    expect(page.get_by_test_id("violations-total")).to_have_text(str(total - 1))
    expect(page.get_by_test_id("set-aside")).to_contain_text("1 false positive")


def test_write_without_token_shows_the_error_banner(page: Any, served: Served) -> None:
    _open(page, served, "findings?severity=high", token="")
    page.get_by_test_id("finding-row").first.click()
    page.get_by_test_id("triage-reason").fill("no token given")
    page.get_by_test_id("triage-submit").click()
    expect(page.get_by_test_id("error-banner")).to_contain_text("401")
