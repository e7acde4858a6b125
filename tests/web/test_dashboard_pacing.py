"""Scan pacing in the dashboard: throttled stretches, predictions, the schedule, reports.

A real ``secperf serve`` (its own process, a token set) serves a real SQLite
store in which the test recorded scans with pacing and prediction documents
through the Store API (``record_scan_pacing``, ``record_scan_prediction``), as
the pacing controller and the cost model write them. Debian's Chromium, driven
by Playwright, checks that the Performance chart hatches the throttled
stretches inside their scan windows, that the overview and the scans table
show predicted against actual, that the next planned scan shows (and hides on
an older server), that the compliance report downloads with the token, and
that the new controls work from the keyboard, at 390 px, in both themes.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from test_dashboard_browser import (
    DASHBOARD_MARKS,
    _wait_live,
    browser,
    playwright_sync,
)

from secperf.compliance.digest import data_sha256
from secperf.events import ScanThrottled
from secperf.model import Sample, SecurityMetrics
from secperf.store import Store

__all__ = ["browser"]  # the shared Chromium fixture, used by the tests below

pytestmark = DASHBOARD_MARKS

expect = playwright_sync.expect
TOKEN = "pacing-dashboard-token-0123456789"
TARGET = "webapp"
MIN = 60_000
HOUR = 60 * MIN
BUDGET_REASON = (
    'response_time_ms{job="api",quantile="0.95"} +23 % over its level before the scan (budget 10 %)'
)
OFF_REASON = 'guard response_time_ms{job="api"} matches no series'


# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class PacedScan:
    """One scan as recorded: its window, actual and predicted durations, its pacing."""

    scan_id: str
    start_ms: int
    end_ms: int
    predicted_ms: float
    pacing: dict[str, Any]

    @property
    def actual_ms(self) -> float:
        return float(self.end_ms - self.start_ms)


def _pacing_throttled(start: int, end: int) -> dict[str, Any]:
    """Low priority, budget on, two stretches (the second runs past the scan's end)."""
    return {
        "priority": "low",
        "budget": {
            "state": "on",
            "reason": None,
            "max_increase_pct": 10.0,
            "guards": [
                {
                    "series": 'response_time_ms{job="api",quantile="0.95"}',
                    "before": 90.0,
                    "quiet": 88.5,
                    "peak_increase_pct": 23.0,
                    "samples": 30,
                }
            ],
        },
        "throttled_ms": 180_000.0,
        "stretches": [
            {
                "start_ms": start + 30_000,
                "end_ms": start + 60_000,
                "action": "fewer_workers",
                "reason": "host CPU +15 % over its level before the scan (budget 10 %)",
            },
            {
                # 150 s of it inside the window: 30 + 150 s = throttled_ms.
                "start_ms": end - 150_000,
                "end_ms": end + 42_000,
                "action": "pause",
                "reason": BUDGET_REASON,
            },
        ],
        "deadline_ms": start + 20 * MIN,
        "deadline_reached": False,
        "within_budget": True,
    }


def _pacing_budget_off() -> dict[str, Any]:
    return {
        "priority": "normal",
        "budget": {"state": "off", "reason": OFF_REASON, "max_increase_pct": 10.0, "guards": []},
        "throttled_ms": 0.0,
        "stretches": [],
        "deadline_ms": None,
        "deadline_reached": False,
        "within_budget": None,
    }


def _scans(now: int) -> list[PacedScan]:
    """Three scans of one target in the last hour, oldest first; the newest was throttled."""
    first = now - 55 * MIN
    second = now - 40 * MIN
    third = now - 20 * MIN
    return [
        PacedScan("scan-a", first, first + 4 * MIN, 220_000.0, _pacing_budget_off()),
        PacedScan("scan-b", second, second + 4 * MIN, 260_000.0, _pacing_budget_off()),
        PacedScan(
            "scan-paced",
            third,
            third + 5 * MIN,
            250_000.0,
            _pacing_throttled(third, third + 5 * MIN),
        ),
    ]


def _prediction(scan: PacedScan) -> dict[str, Any]:
    return {
        "duration_ms": scan.predicted_ms,
        "cpu_s": 9.1,
        "basis": "history",
        "history_scans": 5,
        "per_scanner": {
            "bandit": {"duration_ms": scan.predicted_ms * 0.8, "cpu_s": 7.9},
            "secrets": {"duration_ms": scan.predicted_ms * 0.2, "cpu_s": 1.2},
        },
        "inputs": {"files": 120, "bytes": 830_000, "lines": 21_000, "expected_misses": 120},
        "made_ms": scan.start_ms - 1000,
    }


def _fill(store: Store, now: int) -> list[PacedScan]:
    """Write scans with their pacing and predictions, and an hour of two series (Store API)."""
    scans = _scans(now)
    base = SecurityMetrics(
        scan_id="",
        target=TARGET,
        started_ms=0,
        finished_ms=0,
        scan_duration_ms=0.0,
        violations_found=0,
        false_positive_rate=0.0,
        vulnerability_severity_counts={"critical": 0, "high": 0, "medium": 0, "low": 0, "info": 0},
        scan_coverage_percent=100.0,
        files_scanned=120,
    )
    for scan in scans:
        store.record_scan_started(scan.scan_id, TARGET, scan.start_ms, ["bandit", "secrets"])
        store.record_scan_prediction(
            scan.scan_id, _prediction(scan), target=TARGET, started_ms=scan.start_ms
        )
        store.record_scan_completed(
            replace(
                base,
                scan_id=scan.scan_id,
                started_ms=scan.start_ms,
                finished_ms=scan.end_ms,
                scan_duration_ms=scan.actual_ms,
                scanner_durations_ms={
                    "bandit": scan.actual_ms * 0.85,
                    "secrets": scan.actual_ms * 0.15,
                },
            ),
            "ok",
        )
        store.record_scan_pacing(scan.scan_id, scan.pacing)
    samples: list[Sample] = []
    for step in range(360):
        ts = now - HOUR + step * 10_000
        inside = any(s.start_ms <= ts <= s.end_ms for s in scans)
        samples.append(
            Sample("cpu_percent", {"host": "web-1"}, ts, (60.0 if inside else 20.0) + step % 5)
        )
        samples.append(
            Sample("response_time_ms", {"job": "api"}, ts, (110.0 if inside else 90.0) + step % 3)
        )
    store.write_samples(samples)
    return scans


# --------------------------------------------------------------------------- server


@dataclass
class Server:
    """``secperf serve`` in its own process over the filled store."""

    url: str
    now_ms: int
    scans: list[PacedScan]
    stderr_path: Path
    project: Path  # the server's working directory, with its secperf.toml

    def get(self, path: str) -> httpx.Response:
        return httpx.get(f"{self.url}{path}", timeout=60)


def _env() -> dict[str, str]:
    """The environment of the server and of the commands run beside it: the token set."""
    return {**os.environ, "SECPERF_TOKEN": TOKEN}


def _iso(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"


def _cli_report(server: Server, since: str, until: str) -> dict[str, Any]:
    """``secperf report`` as JSON over the served store, for ``TARGET`` and the period."""
    done = subprocess.run(
        [
            *(sys.executable, "-m", "secperf", "report", "--since", since, "--until", until),
            *("--target", TARGET, "-f", "json", "-o", "-"),
        ],
        cwd=server.project,
        env=_env(),
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    document: dict[str, Any] = json.loads(done.stdout)
    return document


@contextlib.contextmanager
def _serving(db: Path, now: int, scans: list[PacedScan]) -> Iterator[Server]:
    """``secperf serve`` over the store ``db``, with the token set, until the block ends."""
    project = db.parent / "project"
    project.mkdir(exist_ok=True)
    # The same configuration for the server and for `secperf report` run beside it.
    (project / "secperf.toml").write_text(f'[store]\nurl = "sqlite:///{db}"\n')
    stderr_path = db.parent / "serve.stderr"
    env = _env()
    with stderr_path.open("wb") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "secperf", "serve", "--port", "0", "--store", f"sqlite:///{db}"],
            cwd=project,
            stdout=subprocess.PIPE,
            stderr=err,
            env=env,
        )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().decode(errors="replace")
        found = re.search(r"http://127\.0\.0\.1:\d+", line)
        if found is None:
            raise AssertionError(f"secperf serve did not start: {line!r} {stderr_path.read_text()}")
        yield Server(found.group(0), now, scans, stderr_path, project)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    assert "Traceback" not in stderr_path.read_text(errors="replace")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The filled store served for the whole module (the tests only read it)."""
    db = tmp_path_factory.mktemp("pacing-dashboard") / "secperf.db"
    now = int(time.time() * 1000)
    with Store.open(db) as store:
        scans = _fill(store, now)
    with _serving(db, now, scans) as served:
        yield served


def _context(browser: Any, *, width: int = 1400, scheme: str = "light") -> Any:
    context = browser.new_context(
        viewport={"width": width, "height": 900}, color_scheme=scheme, accept_downloads=True
    )
    context.set_default_timeout(15_000)
    return context


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = _context(browser)
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        yield pg
    finally:
        context.close()
    assert errors == [], f"the page raised: {errors}"


def _open(page: Any, server: Server, view: str, *, token: str | None = None) -> None:
    page.goto(f"{server.url}/")
    if token is not None:
        page.evaluate("t => localStorage.setItem('secperf.token', t)", token)
    page.goto(f"{server.url}/#/{view}")
    page.reload()


def _tab_to(page: Any, test_id: str, limit: int = 80) -> None:
    """Press Tab until the element with ``test_id`` has the focus (bounded)."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("() => document.activeElement?.dataset?.testid ?? ''") == test_id:
            return
    raise AssertionError(f"Tab never reached {test_id}")


def _focus_ring(page: Any) -> str:
    return str(
        page.evaluate(
            "() => { const s = getComputedStyle(document.activeElement);"
            " return `${s.outlineStyle} ${s.outlineWidth}`; }"
        )
    )


# --------------------------------------------------------------------------- tests


def test_throttled_stretches_are_hatched_inside_their_scan_window(
    page: Any, server: Server
) -> None:
    _open(page, server, "performance?metric=response_time_ms&range=1h")
    chart = page.get_by_test_id("chart")
    expect(chart).to_have_attribute("data-scan-windows", "3")
    # Both stretches of the throttled scan; the other scans were not throttled.
    expect(chart).to_have_attribute("data-throttled-bands", "2")
    expect(page.get_by_test_id("legend-throttled")).to_have_text(
        "throttled by the impact budget (2)"
    )
    # Hovering inside the paused stretch names the action and the reason.
    paced = server.scans[-1]
    box = chart.locator("canvas").bounding_box()
    assert box is not None
    first = server.now_ms - HOUR
    moment = paced.end_ms - 75_000  # the middle of the pause inside the window
    x = box["x"] + 64 + (moment - first) / HOUR * (box["width"] - 64)
    page.mouse.move(x, box["y"] + box["height"] / 2)
    hover = page.get_by_test_id("chart-hover")
    expect(hover).to_contain_text("scan scan-paced running")
    expect(page.get_by_test_id("hover-throttled")).to_have_text(
        f"throttled here: paused — {BUDGET_REASON}"
    )
    expect(page.get_by_test_id("hover-pacing")).to_contain_text(
        "throttled 3m 00s in 2 stretches (paused: "
    )
    expect(page.get_by_test_id("hover-pacing")).to_contain_text(
        "priority low · budget on (max +10 %) · within budget"
    )


def test_scans_table_shows_predicted_against_actual_and_the_detail_by_keyboard(
    page: Any, server: Server
) -> None:
    _open(page, server, "performance?metric=response_time_ms&range=1h")
    rows = page.get_by_test_id("scan-window-row")
    expect(rows).to_have_count(3)
    paced = rows.filter(has_text="scan-paced")
    expect(paced.get_by_test_id("scan-took")).to_have_text("5m 00s (predicted 4m 10s, +20 %)")
    expect(paced.get_by_test_id("scan-throttled")).to_contain_text("throttled 3m 00s")
    plain = rows.filter(has_text="scan-a")
    expect(plain.get_by_test_id("scan-took")).to_have_text("4m 00s (predicted 3m 40s, +9 %)")
    expect(plain.get_by_test_id("scan-throttled")).to_have_text("not throttled")

    # The detail opens from the keyboard: Tab to the paced scan's button, Enter.
    page.get_by_test_id("metric-select").focus()
    for _ in range(80):
        page.keyboard.press("Tab")
        label = page.evaluate("() => document.activeElement?.getAttribute('aria-label') ?? ''")
        if label == "details of scan scan-paced":
            break
    else:
        seen = page.evaluate("() => document.activeElement?.outerHTML ?? ''")
        raise AssertionError(f"Tab never reached the paced scan's details button: {seen[:300]}")
    assert _focus_ring(page).startswith("solid"), _focus_ring(page)
    page.keyboard.press("Enter")
    detail = page.get_by_test_id("scan-detail")
    expect(detail).to_have_count(1)
    expect(detail.get_by_test_id("detail-pacing")).to_have_text(
        "priority low · budget on (max +10 %) · within budget"
    )
    expect(detail.get_by_test_id("stretch-row")).to_have_count(2)
    expect(detail.get_by_test_id("stretch-row").nth(1)).to_contain_text(BUDGET_REASON)
    scanners = detail.get_by_test_id("scanner-row")
    expect(scanners).to_have_count(2)
    # bandit: 85 % of 300 s against 80 % of 250 s predicted.
    expect(scanners.filter(has_text="bandit")).to_contain_text("4m 15s (predicted 3m 20s, +28 %)")
    page.keyboard.press("Enter")
    expect(detail).to_have_count(0)


def test_overview_shows_the_last_scan_against_its_prediction_and_its_pacing(
    page: Any, server: Server
) -> None:
    _open(page, server, "overview")
    expect(page.get_by_test_id("last-scan")).to_contain_text("5m 00s (predicted 4m 10s, +20 %)")
    pacing = page.get_by_test_id("last-scan-pacing")
    expect(pacing).to_contain_text(f"throttled 3m 00s in 2 stretches (paused: {BUDGET_REASON})")
    expect(pacing).to_contain_text("priority low · budget on (max +10 %) · within budget")
    chart = page.get_by_test_id("prediction-chart")
    expect(chart).to_have_attribute("data-points", "3")
    # Errors of 8.3 % (220 against 240 s), 8.3 % (260 against 240 s), 16.7 % (250 against 300 s).
    expect(page.get_by_test_id("prediction-error")).to_have_text("median error 8 % over 3 scans")


def test_next_planned_scan_follows_the_server_and_hides_without_a_plan(
    page: Any, server: Server
) -> None:
    answer = server.get(f"/api/v1/schedule?target={TARGET}")
    assert answer.status_code == 200, answer.text  # this server has the schedule
    _open(page, server, "overview")
    expect(page.get_by_test_id("scan-plan")).to_be_visible()
    plan = answer.json()
    if plan["quiet_now"]:
        expect(page.get_by_test_id("next-scan")).to_have_text("scans when quiet: now")
    elif plan["next_scan_ms"] is None:
        expect(page.get_by_test_id("next-scan")).to_have_count(0)
    else:
        expect(page.get_by_test_id("next-scan")).to_contain_text("next scan ")
    # An older server answers 404: no schedule, no error, the rest of the panel stays.
    page.route(
        re.compile(r".*/api/v1/schedule(\?.*)?$"),
        lambda route: route.fulfill(
            status=404,
            content_type="application/json",
            body=json.dumps({"error": {"code": "not_found", "message": "Not Found"}}),
        ),
    )
    _open(page, server, "overview")
    expect(page.get_by_test_id("scan-plan")).to_be_visible()
    expect(page.get_by_test_id("next-scan")).to_have_count(0)
    expect(page.get_by_test_id("schedule-error")).to_have_count(0)


def test_next_planned_scan_names_the_quiet_hour(page: Any, server: Server) -> None:
    # A planned slot needs days of history and a periodic scan; the answer
    # stands in for the schedule endpoint, in its documented shape.
    next_ms = (server.now_ms // HOUR + 2) * HOUR
    slot = time.strftime("%a %H:00 UTC", time.gmtime(next_ms / 1000))
    plan = {
        "next_scan_ms": next_ms,
        "reason": f"quietest hour in the next 2 h: {slot}",
        "quiet_now": False,
        "every_ms": HOUR,
        "max_delay_ms": 2 * HOUR,
        "profile": [],
    }
    page.route(
        re.compile(r".*/api/v1/schedule(\?.*)?$"),
        lambda route: route.fulfill(
            status=200, content_type="application/json", body=json.dumps(plan)
        ),
    )
    _open(page, server, "overview")
    text = page.get_by_test_id("next-scan")
    expect(text).to_contain_text(re.compile(r"^next scan in (\d+ min|1 h( \d\d min)?|2 h)"))
    expect(text).to_contain_text(f"({slot}, quietest hour in the next 2 h)")
    expect(page.get_by_test_id("next-scan-detail")).to_have_text(
        "every 1 h · waits at most 2 h for a quiet time"
    )


def test_report_downloads_with_the_token_from_the_keyboard(page: Any, server: Server) -> None:
    probe = server.get(f"/api/v1/report?since=30d&target={TARGET}&format=json")
    assert probe.status_code == 200, probe.text
    _open(page, server, "overview", token=TOKEN)
    _wait_live(page)
    expect(page.get_by_test_id("report-target")).to_have_value(TARGET)
    page.get_by_test_id("report-period").select_option("30")
    page.get_by_test_id("report-format").select_option("html")
    page.get_by_test_id("report-period").focus()
    _tab_to(page, "report-download")
    assert _focus_ring(page).startswith("solid"), _focus_ring(page)
    with (
        page.expect_request(re.compile(r".*/api/v1/report\?.*")) as sent,
        page.expect_download() as got,
    ):
        page.keyboard.press("Enter")
    request = sent.value
    assert request.headers.get("authorization") == f"Bearer {TOKEN}"
    assert "since=30d" in request.url and f"target={TARGET}" in request.url
    assert "format=html" in request.url
    download = got.value
    assert download.suggested_filename.endswith(".html"), download.suggested_filename
    body = Path(download.path()).read_text(encoding="utf-8")
    assert "<html" in body.lower()
    expect(page.get_by_test_id("report-status")).to_contain_text(
        f"saved {download.suggested_filename}"
    )

    # JSON: the same document secperf report writes. The period is pinned (the
    # dashboard's "30 days" ends at the moment of asking) so both cover the same one.
    until = server.now_ms
    since = until - 30 * 24 * HOUR
    pinned = f"since={_iso(since)}&until={_iso(until)}"
    page.route(
        re.compile(r".*/api/v1/report\?.*"),
        lambda route: route.continue_(url=route.request.url.replace("since=30d", pinned)),
    )
    page.get_by_test_id("report-format").select_option("json")
    with (
        page.expect_request(re.compile(r".*/api/v1/report\?.*")) as sent_json,
        page.expect_download() as got_json,
    ):
        page.get_by_test_id("report-download").click()
    # The dashboard's own request (since=30d) went out with the period pinned.
    assert pinned in sent_json.value.url and "format=json" in sent_json.value.url
    document = json.loads(Path(got_json.value.path()).read_text(encoding="utf-8"))
    cli = _cli_report(server, _iso(since), _iso(until))
    api_data = document["data"]
    assert document["sha256"] == data_sha256(api_data)
    assert api_data["scope"]["target"] == TARGET and api_data["cost"]["scans"]
    # The same data but for the moment each was written; with that one put equal,
    # the same data and the same hash.
    same = {**cli["data"], "generated_ms": api_data["generated_ms"]}
    assert same == api_data
    assert data_sha256(same) == document["sha256"]


def test_report_failure_reads_as_a_sentence(page: Any, server: Server) -> None:
    probe = server.get(f"/api/v1/report?since=30d&target={TARGET}&format=json")
    assert probe.status_code == 200, probe.text
    _open(page, server, "overview")
    page.get_by_test_id("report-format").select_option("pdf")
    status = page.get_by_test_id("report-status")
    with page.expect_response(re.compile(r".*/api/v1/report\?.*"), timeout=60_000) as answered:
        page.get_by_test_id("report-download").click()
    response = answered.value
    if response.ok:  # the PDF extra is installed here: the file arrives
        expect(status).to_contain_text("saved ")
        expect(status).to_contain_text(".pdf")
    else:  # e.g. 501 without the PDF extra: the server's own message, as a sentence
        message = response.json()["error"]["message"]
        expect(status).to_contain_text(f"the report could not be made: {response.status} ")
        expect(status).to_contain_text(message)


def test_a_running_scan_says_live_when_the_budget_holds_it_back(page: Any, tmp_path: Path) -> None:
    # A store of its own: the running scan must not change what the other tests read.
    db = tmp_path / "secperf.db"
    now = int(time.time() * 1000)
    with Store.open(db) as store:
        store.record_scan_started("scan-live", TARGET, now - 5000, ["bandit"])
        with _serving(db, now, []) as served:
            _open(page, served, "overview")
            _wait_live(page)
            expect(page.get_by_test_id("scan-running")).to_contain_text(f"scanning {TARGET}")
            expect(page.get_by_test_id("scan-running-throttle")).to_have_count(0)
            # What the pacing controller publishes, through the store's event log
            # (as a scan in another process reaches the server).
            store.append_events(
                [
                    ScanThrottled(
                        scan_id="scan-live",
                        target=TARGET,
                        action="pause",
                        reason=BUDGET_REASON,
                        throttled_ms=4200.0,
                        guard='response_time_ms{job="api",quantile="0.95"}',
                    )
                ]
            )
            live = page.get_by_test_id("scan-running-throttle")
            expect(live).to_have_text(
                f"held back (paused: {BUDGET_REASON}), throttled 4.20 s so far"
            )
            store.append_events(
                [
                    ScanThrottled(
                        scan_id="scan-live",
                        target=TARGET,
                        action="resume",
                        reason="guard recovered",
                        throttled_ms=9100.0,
                    )
                ]
            )
            expect(live).to_have_text("back to full pace, throttled 9.10 s so far")


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_new_parts_fit_390_px_in_both_themes(browser: Any, server: Server, scheme: str) -> None:
    context = _context(browser, width=390, scheme=scheme)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        _open(page, server, "overview")
        expect(page.get_by_test_id("last-scan-pacing")).to_be_visible()
        expect(page.get_by_test_id("report-download")).to_be_visible()
        expect(page.get_by_test_id("prediction-chart")).to_be_visible()
        _assert_no_page_scroll(page)
        page.goto(f"{server.url}/#/performance?metric=response_time_ms&range=1h")
        expect(page.get_by_test_id("chart")).to_have_attribute("data-throttled-bands", "2")
        page.get_by_test_id("scan-details").first.click()
        expect(page.get_by_test_id("scan-detail")).to_have_count(1)
        _assert_no_page_scroll(page)
        dark = page.evaluate("() => matchMedia('(prefers-color-scheme: dark)').matches")
        assert dark == (scheme == "dark")
    finally:
        context.close()
    assert errors == [], f"the page raised: {errors}"


def _assert_no_page_scroll(page: Any) -> None:
    widths = page.evaluate(
        "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    # What sticks out, to say where when it fails.
    wide = page.evaluate(
        """() => [...document.querySelectorAll('main *')]
        .filter(e => e.getBoundingClientRect().right > document.documentElement.clientWidth + 1)
        .slice(0, 8)
        .map(e => `${e.tagName}.${e.className} ${Math.round(e.getBoundingClientRect().right)}`)"""
    )
    assert widths[0] <= widths[1], f"the page scrolls sideways: {widths}: {wide}"
