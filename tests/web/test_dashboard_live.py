"""The dashboard's live state in a real browser: other users, outages, the clock, the token.

The real secperf app serves a real SQLite store with the in-memory bus and the
store's event log follower (so an acknowledgement or a triage made through the
API reaches every open page, as on ``secperf serve``); Debian's Chromium,
driven by Playwright, loads the built dashboard. The tests check that what one
user does shows in another user's page without a reload; that stopping the
server marks the page disconnected and its data stale (no scan claimed to be
running) and that a new server on the same port and store brings it back by
itself, with what was published meanwhile, including a metric sample the
stream never carried; that ages are computed on the server's clock whatever
the browser's says; that silenced alerts are not counted in the Alerts badge;
and that a server which wants a token for reads gets the token prompt, which
reloads everything once the token is saved.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from test_dashboard_browser import (
    DASHBOARD_MARKS,
    SEVERITY_MIX,
    STATIC,
    TOKEN,
    DashboardData,
    _fill_store,
    _make_data,
    browser,
    playwright_sync,
    uvicorn,
)

from secperf.bus.memory import AsyncEventBus
from secperf.config.sections.server import ServerConfig
from secperf.events import AlertChanged, Event, MetricsRecorded, ScanCompleted, ScanStarted
from secperf.model import Alert, AlertState, MetricKind, Sample, SecurityMetrics, Severity
from secperf.store import Store, StoreWriter
from secperf.store.follower import EventLogFollower
from secperf.web.app import create_app
from secperf.web.server import SecperfServer
from support.services import free_port

__all__ = ["browser"]  # the shared Chromium fixture, used by the tests below

pytestmark = DASHBOARD_MARKS

expect = playwright_sync.expect
#: Generous: the test machines are small and loaded.
WAIT_MS = 30_000
MIN = 60_000


def _now_ms() -> int:
    return int(time.time() * 1000)


# --------------------------------------------------------------------------- server


@dataclass
class LiveServer:
    """A secperf app on a fixed loopback port over one store file; stop and start it again."""

    db: Path
    port: int
    data: DashboardData
    reads_need_token: bool = False
    _stop: Callable[[], None] | None = None
    bus: AsyncEventBus | None = None
    generations: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Serve the store (again) on the same port, as a restarted ``secperf serve`` would."""
        assert self._stop is None, "the server is already running"
        store = Store.open(self.db)
        bus = AsyncEventBus()
        writer = StoreWriter(store, flush_interval_s=0.2)
        follower = EventLogFollower(
            store, bus, name="dashboard-live", writer=writer, poll_interval_s=0.2
        )
        # A non-loopback bind in the config is what makes reads need the token
        # (web/auth.py); the test still listens on loopback only.
        config = ServerConfig(host="0.0.0.0" if self.reads_need_token else "127.0.0.1")
        app = create_app(
            store,
            bus,
            config=config,
            token=TOKEN,
            writer=writer,
            manage_writer=True,
            follower=follower,
            static_dir=STATIC,
        )
        # secperf serve's own uvicorn server: it ends the live streams as soon
        # as shutdown begins, as a restarted secperf serve does.
        server = SecperfServer(
            uvicorn.Config(
                app,
                host="127.0.0.1",
                port=self.port,
                log_level="warning",
                lifespan="on",
                timeout_graceful_shutdown=5,
            ),
            app.state.sse_hub,
        )
        thread = threading.Thread(target=server.run, name="dashboard-live-server", daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                store.close()
                raise RuntimeError(f"the test server did not start on {self.base_url}")
            time.sleep(0.02)

        def stop() -> None:
            server.should_exit = True
            thread.join(timeout=20)
            assert not thread.is_alive(), "the test server did not stop"
            store.close()

        self._stop = stop
        self.bus = bus
        self.generations += 1

    def stop(self) -> None:
        stop, self._stop = self._stop, None
        if stop is not None:
            stop()

    def publish(self, event: Event) -> None:
        assert self.bus is not None
        self.bus.publish_threadsafe(event)

    def post(self, path: str, body: dict[str, Any]) -> httpx.Response:
        return httpx.post(
            self.base_url + path,
            json=body,
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=30,
        )


def _live_server(tmp_path: Path, *, reads_need_token: bool = False) -> Iterator[LiveServer]:
    data = _make_data(_now_ms())
    db = tmp_path / "secperf.db"
    store = Store.open(db)
    try:
        _fill_store(store, data)
    finally:
        store.close()
    server = LiveServer(db, free_port(), data, reads_need_token=reads_need_token)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[LiveServer]:
    yield from _live_server(tmp_path)


@pytest.fixture
def locked_server(tmp_path: Path) -> Iterator[LiveServer]:
    """A server whose reads need the token (as one reachable beyond its machine)."""
    yield from _live_server(tmp_path, reads_need_token=True)


@pytest.fixture
def new_page(browser: Any) -> Iterator[Callable[..., Any]]:
    """Pages in contexts of their own (optionally with a browser clock set); no page may raise."""
    contexts: list[Any] = []
    errors: list[str] = []

    def make(clock_ms: int | None = None, width: int = 1400) -> Any:
        context = browser.new_context(viewport={"width": width, "height": 900})
        context.set_default_timeout(WAIT_MS)
        contexts.append(context)
        pg = context.new_page()
        if clock_ms is not None:
            pg.clock.install(time=datetime.fromtimestamp(clock_ms / 1000, tz=UTC))
        pg.on("pageerror", lambda exc: errors.append(str(exc)))
        return pg

    try:
        yield make
    finally:
        for context in contexts:
            context.close()
    assert errors == [], f"a page raised: {errors}"


def _open(page: Any, server: LiveServer, view: str, *, token: str | None = None) -> None:
    page.goto(f"{server.base_url}/")
    if token is not None:
        page.evaluate("t => localStorage.setItem('secperf.token', t)", token)
    page.goto(f"{server.base_url}/#/{view}")
    page.reload()


def _wait_live(page: Any) -> None:
    expect(page.get_by_test_id("connection")).to_have_text("● live")


def _chart_last(page: Any) -> int:
    """The time of the chart's newest point (its ``data-x-last``)."""
    return int(page.get_by_test_id("chart").get_attribute("data-x-last") or "0")


def _wait_chart_last(page: Any, *, at_least: int) -> None:
    """Wait until the chart's newest point is at ``at_least`` or later (a bucket starts earlier)."""
    page.wait_for_function(
        """([least]) => {
            const chart = document.querySelector('[data-testid="chart"]');
            return chart !== null && Number(chart.getAttribute("data-x-last")) >= least;
        }""",
        arg=[at_least - 5000],
        timeout=WAIT_MS,
    )


def _firing(server: LiveServer, fingerprint: str, rule: str, host: str) -> Alert:
    now = _now_ms()
    return Alert(
        fingerprint=fingerprint,
        rule=rule,
        state=AlertState.FIRING,
        severity=Severity.HIGH,
        kind=MetricKind.PERFORMANCE,
        labels={"alertname": rule, "host": host},
        annotations={"summary": f"{rule} on {host}"},
        value=91.0,
        active_since_ms=now - 2 * MIN,
        fired_at_ms=now,
        updated_ms=now,
    )


# --------------------------------------------------------------------------- tests


def test_another_users_ack_and_triage_show_in_an_open_page(
    live_server: LiveServer, new_page: Callable[..., Any]
) -> None:
    """(a) Two pages: an acknowledgement and a triage appear in both, with a notice, no reload."""
    page_a, page_b = new_page(), new_page()
    _open(page_a, live_server, "overview", token=TOKEN)
    _open(page_b, live_server, "overview")
    total = sum(SEVERITY_MIX.values())
    for pg in (page_a, page_b):
        _wait_live(pg)
        expect(pg.get_by_test_id("violations-total")).to_have_text(str(total))
        pg.evaluate("window.__sameDocument = 'yes'")
    alert = live_server.data.alerts[0]
    row_b = page_b.get_by_test_id("firing-alerts").get_by_test_id("alert-row")
    expect(row_b).to_have_count(1)
    expect(row_b).not_to_contain_text("dana")

    # Page A's user acknowledges the alert (the API call the Alerts view makes).
    answer = page_a.evaluate(
        """async ([fp, token]) => {
            const r = await fetch(`/api/v1/alerts/${fp}/ack`, {
                method: "POST",
                headers: {"Content-Type": "application/json", Authorization: `Bearer ${token}`},
                body: JSON.stringify({author: "dana", note: "looking into it"}),
            });
            return r.status;
        }""",
        [alert.fingerprint, TOKEN],
    )
    assert answer == 200
    for pg in (page_a, page_b):
        notice = pg.get_by_test_id("notices").get_by_test_id("notice")
        expect(notice).to_contain_text(f"alert {alert.rule} acknowledged by dana")
    expect(row_b).to_contain_text("dana")
    expect(page_b.get_by_test_id("notices")).to_have_attribute("aria-live", "polite")

    # Someone triages a critical finding through the API (the CLI or a script would too).
    critical = next(f for f in live_server.data.findings if f.severity is Severity.CRITICAL)
    triaged = live_server.post(
        f"/api/v1/findings/{critical.fingerprint}/triage",
        {"state": "false_positive", "reason": "test fixture", "author": "lee"},
    )
    assert triaged.status_code == 200, triaged.text
    expect(page_b.get_by_test_id("notices")).to_contain_text(
        f"finding {critical.fingerprint[:12]}… triaged as false positive by lee"
    )
    expect(page_b.get_by_test_id("violations-total")).to_have_text(str(total - 1))
    expect(page_b.get_by_test_id("sev-critical").locator(".n")).to_have_text("0")

    # And a silence: the notice says who, the alert leaves the badge.
    silenced = live_server.post(
        "/api/v1/silences",
        {
            "matchers": [{"name": "alertname", "value": alert.rule}],
            "ends_ms": _now_ms() + 3_600_000,
            "author": "kim",
            "reason": "maintenance",
        },
    )
    assert silenced.status_code in (200, 201), silenced.text
    expect(page_b.get_by_test_id("notices")).to_contain_text(
        f"silence added by kim for alertname={alert.rule}"
    )
    expect(page_b.get_by_test_id("nav-alerts").locator(".badge")).to_have_count(0)
    for pg in (page_a, page_b):
        assert pg.evaluate("window.__sameDocument") == "yes"


def test_a_stopped_server_marks_the_page_stale_and_a_new_one_brings_it_back(
    live_server: LiveServer, new_page: Callable[..., Any]
) -> None:
    """(b) Disconnected + stale while the server is gone; live again, with what came meanwhile."""
    overview = new_page()
    perf = new_page()
    _open(overview, live_server, "overview")
    _open(perf, live_server, "performance?metric=cpu_percent&range=1h")
    for pg in (overview, perf):
        _wait_live(pg)
    chart = perf.get_by_test_id("chart")
    expect(chart).to_have_attribute("data-points", re.compile(r"^[1-9]\d*$"))
    last_before = _chart_last(perf)
    assert last_before < live_server.data.now_ms

    live_server.publish(ScanStarted(scan_id="scan-outage", target="demo-repo"))
    running = overview.get_by_test_id("scan-running")
    expect(running).to_contain_text("scanning demo-repo")

    live_server.stop()
    connection = overview.get_by_test_id("connection")
    expect(connection).to_contain_text("disconnected")
    expect(connection).to_have_text(re.compile(r"retrying (in \d+ s|now)"))
    expect(overview.get_by_test_id("stale-banner")).to_contain_text("Data may be stale")
    expect(overview.locator("body")).to_have_class(re.compile(r"\bstale\b"))
    # The running scan is no longer claimed to run: its state is unknown.
    expect(running).to_have_count(0)
    expect(overview.get_by_test_id("stale-scan")).to_contain_text("state unknown — disconnected")
    expect(overview.get_by_text(re.compile("scanning demo-repo"))).to_have_count(0)
    # Network failures go to the connection indicator, not the error banner.
    expect(overview.get_by_test_id("error-banner")).to_have_count(0)
    assert "Failed to fetch" not in overview.locator("body").inner_text()
    expect(perf.get_by_test_id("connection")).to_contain_text("disconnected")

    # A new server on the same port and store; right away (before any page is
    # back) the scan completes and a metric sample arrives.
    live_server.start()
    now = _now_ms()
    counts = {"critical": 9, "high": 0, "medium": 0, "low": 0, "info": 0}
    live_server.publish(
        ScanCompleted(
            metrics=SecurityMetrics(
                scan_id="scan-outage",
                target="demo-repo",
                started_ms=now - 5000,
                finished_ms=now,
                scan_duration_ms=5000.0,
                violations_found=9,
                false_positive_rate=0.0,
                vulnerability_severity_counts=counts,
                scan_coverage_percent=100.0,
                new_findings=9,
            )
        )
    )
    live_server.publish(
        MetricsRecorded(samples=(Sample("cpu_percent", {"host": "web-1"}, now, 55.0),))
    )
    # The sample is in the store before the page can ask (the writer flushes every 0.2 s).
    deadline = time.monotonic() + 20
    while True:
        answer = httpx.get(
            f"{live_server.base_url}/api/v1/metrics/query",
            params={"name": "cpu_percent", "start_ms": now, "end_ms": now + 1},
            timeout=10,
        ).json()
        if any(s["timestamps_ms"] for s in answer["series"]):
            break
        assert time.monotonic() < deadline, "the sample never reached the store"
        time.sleep(0.1)

    for pg in (overview, perf):
        expect(pg.get_by_test_id("connection")).to_have_text("● live", timeout=40_000)
        expect(pg.get_by_test_id("stale-banner")).to_have_count(0)
    expect(overview.locator("body")).not_to_have_class(re.compile(r"\bstale\b"))
    expect(overview.get_by_test_id("sev-critical").locator(".n")).to_have_text("9")
    expect(overview.get_by_test_id("scan-running")).to_have_count(0)
    # The stream never carried that sample (the page was away): the chart still has it.
    _wait_chart_last(perf, at_least=now)

    # And the stream works again: a sample published now joins the chart too.
    later = _now_ms() + 10_000
    live_server.publish(
        MetricsRecorded(samples=(Sample("cpu_percent", {"host": "web-1"}, later, 60.0),))
    )
    _wait_chart_last(perf, at_least=later)


@pytest.mark.parametrize("skew_min", [-10, 10], ids=["browser-behind", "browser-ahead"])
def test_ages_use_the_servers_clock(
    live_server: LiveServer, new_page: Callable[..., Any], skew_min: int
) -> None:
    """(c) A browser clock minutes off the server's: a fresh alert reads 'just now'."""
    page = new_page(clock_ms=_now_ms() + skew_min * MIN)
    _open(page, live_server, "overview")
    _wait_live(page)
    assert abs(page.evaluate("Date.now()") - _now_ms() - skew_min * MIN) < MIN
    fresh = _firing(live_server, "alert-fresh", "FreshAlert", "web-2")
    live_server.publish(AlertChanged(alert=fresh, previous_state=AlertState.PENDING))
    row = (
        page.get_by_test_id("firing-alerts")
        .get_by_test_id("alert-row")
        .filter(has_text="FreshAlert")
    )
    expect(row).to_have_count(1)
    expect(row).to_contain_text(re.compile(r"just now|\b\d s ago"))
    text = row.inner_text()
    assert "in the future" not in text and "min ago" not in text, text


def test_silenced_firing_alerts_are_not_counted_in_the_badge(
    live_server: LiveServer, new_page: Callable[..., Any]
) -> None:
    """(d) The Alerts badge counts firing alerts no silence covers, also after their events."""
    added = live_server.post(
        "/api/v1/silences",
        {
            "matchers": [{"name": "alertname", "value": "HighCpuDuringScan"}],
            "ends_ms": _now_ms() + 3_600_000,
            "author": "kim",
            "reason": "maintenance window",
        },
    )
    assert added.status_code in (200, 201), added.text
    page = new_page()
    _open(page, live_server, "overview")
    _wait_live(page)
    badge = page.get_by_test_id("nav-alerts").locator(".badge")
    expect(badge).to_have_count(0)

    other = _firing(live_server, "alert-disk", "DiskFull", "web-2")
    live_server.publish(AlertChanged(alert=other, previous_state=AlertState.PENDING))
    expect(badge).to_have_text("1")
    # The silenced alert changes (its value): still not counted. Events arrive
    # in order, so once a later alert is counted the silenced one was handled.
    silenced = replace(live_server.data.alerts[0], value=99.0, updated_ms=_now_ms())
    live_server.publish(AlertChanged(alert=silenced, previous_state=AlertState.FIRING))
    later = _firing(live_server, "alert-mem", "MemoryFull", "web-3")
    live_server.publish(AlertChanged(alert=later, previous_state=AlertState.PENDING))
    expect(badge).to_have_text("2")
    rows = page.get_by_test_id("firing-alerts").get_by_test_id("alert-row")
    expect(rows).to_have_count(2)
    expect(rows.filter(has_text="HighCpuDuringScan")).to_have_count(0)


def test_a_server_that_wants_a_token_gets_the_prompt(
    locked_server: LiveServer, new_page: Callable[..., Any]
) -> None:
    """(e) Reads refused for want of a token open the prompt; saving reloads everything."""
    page = new_page()
    _open(page, locked_server, "overview", token="")
    prompt = page.get_by_test_id("token-prompt")
    expect(prompt).to_be_visible()
    expect(page.get_by_test_id("token-reason")).to_contain_text("needs its API token")
    token_input = page.get_by_test_id("token-input")
    expect(token_input).to_be_focused()
    expect(page.get_by_test_id("connection")).to_have_text("○ token needed")
    button = page.get_by_test_id("token-button")
    expect(button).to_have_text("token")

    # Escape closes it; the button opens it again, from the keyboard.
    page.keyboard.press("Escape")
    expect(prompt).to_have_count(0)
    expect(button).to_be_focused()
    page.keyboard.press("Enter")
    expect(prompt).to_be_visible()
    expect(token_input).to_be_focused()

    page.keyboard.type(TOKEN)
    page.keyboard.press("Enter")
    expect(prompt).to_have_count(0)
    expect(button).to_have_text("token set ✓")
    expect(page.get_by_test_id("violations-total")).to_have_text(str(sum(SEVERITY_MIX.values())))
    _wait_live(page)
    # The views reloaded with the token: the stream is live and events arrive.
    locked_server.publish(ScanStarted(scan_id="scan-after-token", target="demo-repo"))
    expect(page.get_by_test_id("scan-running")).to_contain_text("scanning demo-repo")

    # "forget" removes it: the button says so at once.
    button.click()
    page.get_by_test_id("token-forget").click()
    expect(button).to_have_text("token")
    assert page.evaluate("localStorage.getItem('secperf.token')") is None


def _inside_width(page: Any, test_id: str, width: int) -> None:
    box = page.get_by_test_id(test_id).bounding_box()
    assert box is not None, f"{test_id} is not shown"
    assert box["x"] >= 0 and box["x"] + box["width"] <= width + 0.5, (test_id, box)


def test_the_live_state_fits_a_phone(live_server: LiveServer, new_page: Callable[..., Any]) -> None:
    """The token form, the stale banner and the notices stay inside 390 px, usable by keyboard."""
    page = new_page(width=390)
    _open(page, live_server, "overview")
    _wait_live(page)
    button = page.get_by_test_id("token-button")
    button.focus()
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("token-input")).to_be_focused()
    _inside_width(page, "token-prompt", 390)
    page.keyboard.press("Escape")
    expect(page.get_by_test_id("token-prompt")).to_have_count(0)

    alert = live_server.data.alerts[0]
    answer = live_server.post(f"/api/v1/alerts/{alert.fingerprint}/ack", {"author": "dana"})
    assert answer.status_code == 200, answer.text
    expect(page.get_by_test_id("notice")).to_contain_text("acknowledged by dana")
    _inside_width(page, "notice", 390)

    live_server.stop()
    expect(page.get_by_test_id("stale-banner")).to_be_visible()
    _inside_width(page, "stale-banner", 390)
    _inside_width(page, "connection", 390)
    # "retry now" is a real button, reachable from the keyboard.
    retry = page.get_by_test_id("retry-now")
    retry.focus()
    expect(retry).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("connection")).to_contain_text("disconnected")


def test_the_overview_follows_the_scope(
    live_server: LiveServer, new_page: Callable[..., Any]
) -> None:
    """The overview is read for the target in the URL, and read again when it changes."""
    page = new_page()
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url) if "/api/v1/overview" in r.url else None)
    _open(page, live_server, "overview?target=never-scanned")
    _wait_live(page)
    expect(page.get_by_test_id("no-scan")).to_be_visible()
    assert any("target=never-scanned" in url for url in requests), requests
    page.evaluate("location.hash = '#/overview?target=demo-repo'")
    expect(page.get_by_test_id("violations-total")).to_have_text(str(sum(SEVERITY_MIX.values())))
    assert any("target=demo-repo" in url for url in requests), requests


def test_the_overview_of_another_scope_is_never_shown_for_this_one(
    live_server: LiveServer, new_page: Callable[..., Any]
) -> None:
    """A scope the server refuses, or a switch while disconnected, drops the old scope's numbers."""
    page = new_page()
    _open(page, live_server, "overview?target=demo-repo")
    _wait_live(page)
    total = page.get_by_test_id("violations-total")
    expect(total).to_have_text(str(sum(SEVERITY_MIX.values())))

    # A target name the server refuses (422: too long): its error, not demo-repo's numbers.
    page.evaluate("location.hash = '#/overview?target=' + 'x'.repeat(300)")
    expect(page.get_by_text("the overview could not be loaded")).to_be_visible()
    expect(total).to_have_count(0)
    expect(page.get_by_test_id("overview-target")).to_have_count(0)

    page.evaluate("location.hash = '#/overview?target=demo-repo'")
    expect(total).to_have_text(str(sum(SEVERITY_MIX.values())))

    # Disconnected: the same scope's overview stays, marked stale ...
    live_server.stop()
    expect(page.get_by_test_id("stale-banner")).to_contain_text("Data may be stale")
    expect(total).to_have_text(str(sum(SEVERITY_MIX.values())))
    # ... but another scope's is not shown as if it were this one's.
    page.evaluate("location.hash = '#/overview?target=never-scanned'")
    expect(page.get_by_text("the overview could not be loaded")).to_be_visible()
    expect(total).to_have_count(0)
    expect(page.get_by_test_id("overview-target")).to_have_count(0)

    # Back: the new scope's own overview.
    live_server.start()
    expect(page.get_by_test_id("connection")).to_have_text("● live", timeout=40_000)
    expect(page.get_by_test_id("no-scan")).to_be_visible()
    expect(total).to_have_count(0)


def test_a_refused_token_asks_for_the_token_and_does_not_say_disconnected(
    locked_server: LiveServer, new_page: Callable[..., Any]
) -> None:
    """A 401/403 is an answer: the token prompt, no stale banner, no 'no contact'."""
    page = new_page()
    refused: list[int] = []
    page.on(
        "response",
        lambda r: (
            refused.append(r.status)
            if "/api/v1/overview" in r.url and r.status in (401, 403)
            else None
        ),
    )
    _open(page, locked_server, "overview", token="")
    expect(page.get_by_test_id("token-prompt")).to_be_visible()
    expect(page.get_by_test_id("connection")).to_have_text("○ token needed")

    before = len(refused)
    page.get_by_test_id("token-input").fill("wrong-token-wrong-token")
    page.get_by_test_id("token-save").click()
    # The reload with the new token is refused, the stream too, and the retry that
    # follows the stream's failure is refused again: two more refused overview reads.
    deadline = time.monotonic() + WAIT_MS / 1000
    while len(refused) < before + 2:
        assert time.monotonic() < deadline, f"no retry of the overview was refused: {refused}"
        page.wait_for_timeout(100)
    expect(page.get_by_test_id("connection")).to_have_text("○ token needed")
    expect(page.get_by_test_id("token-prompt")).to_be_visible()
    expect(page.get_by_test_id("token-reason")).to_contain_text("refused the token")
    expect(page.get_by_test_id("stale-banner")).to_have_count(0)
    expect(page.locator("body")).not_to_have_class(re.compile(r"\bstale\b"))
    assert "Data may be stale" not in page.locator("body").inner_text()


def test_views_send_the_servers_time_not_the_browsers(
    live_server: LiveServer, new_page: Callable[..., Any]
) -> None:
    """A browser clock 2 h ahead: sparklines draw, ranges end at server now, 1 h silences last 1 h.

    Everything the page sends or compares with the server's times is on the server's clock.
    """
    page = new_page(clock_ms=_now_ms() + 120 * MIN)
    ends: list[int] = []

    def on_request(request: Any) -> None:
        if "/api/v1/alerts?" in request.url and "state=" in request.url:
            match = re.search(r"[?&]end_ms=(\d+)", request.url)
            if match:
                ends.append(int(match.group(1)))

    page.on("request", on_request)
    _open(page, live_server, "overview", token=TOKEN)
    _wait_live(page)
    # The last hour of CPU samples (the server's last hour) draws a line.
    cpu = page.get_by_role("img", name="CPU, last hour")
    expect(cpu.locator("polyline")).to_have_count(1)

    page.evaluate("location.hash = '#/alerts'")
    row = page.get_by_test_id("alert-item").filter(has_text="HighCpuDuringScan")
    expect(row).to_have_count(1)
    assert ends, "the alerts view sent no end_ms"
    assert abs(ends[-1] - _now_ms()) < 5 * MIN, (ends[-1], _now_ms())

    row.get_by_test_id("alert-silence").click()
    page.get_by_test_id("ack-author").fill("kim")
    page.get_by_test_id("alert-detail").locator("select").filter(has_text="7 d").select_option(
        label="1 h"
    )
    page.get_by_test_id("silence-reason").fill("clock check")
    page.get_by_role("button", name="silence", exact=True).click()
    expect(page.get_by_test_id("alert-message")).to_contain_text("active until")
    listed = httpx.get(
        f"{live_server.base_url}/api/v1/silences",
        params={"active": "true"},
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=30,
    ).json()["silences"]
    ours = [s for s in listed if s.get("reason") == "clock check"]
    assert len(ours) == 1, listed
    assert abs(ours[0]["ends_ms"] - (_now_ms() + 60 * MIN)) < 5 * MIN, ours[0]
