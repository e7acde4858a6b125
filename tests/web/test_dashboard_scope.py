"""The scope bar, the time range and the fleet view in a real browser.

The real secperf app serves a real SQLite store holding two targets ("api"
and "web", each with a finished scan and its findings) and two hosts (one
reporting, one silent for twenty minutes), written through the Store API.
Debian's Chromium, driven by Playwright, picks a target and checks that the
URL, the views, a reload and moving between views keep it; that the fleet
lists both targets with the counts the API gives and opens a target's
overview by click and by Enter; that the time-range presets, pan, zoom out,
a custom range (refused when reversed) and live/paused change the URL as
they should; and that the fleet fits a 390 px wide screen.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from test_dashboard_browser import (
    DASHBOARD_MARKS,
    STATIC,
    TOKEN,
    _start,
    browser,
    playwright_sync,
)

from secperf.model import (
    Alert,
    AlertState,
    Finding,
    GateResult,
    GateVerdict,
    MetricKind,
    Sample,
    SecurityMetrics,
    Severity,
    make_fingerprint,
)

__all__ = ["browser"]  # the shared Chromium fixture, used by the tests below

pytestmark = DASHBOARD_MARKS

expect = playwright_sync.expect
MIN = 60_000
HOUR = 60 * MIN
#: Each target's findings by severity: different totals, so a view of one is told from the other.
TARGETS: dict[str, dict[str, int]] = {
    "api": {"critical": 1, "high": 2},
    "web": {"medium": 1, "low": 4},
}
FRESH_HOST = "host-a"
STALE_HOST = "host-b"


@dataclass
class Fleet:
    """A running server over the two-target, two-host store."""

    base_url: str
    now_ms: int


def _findings(target: str, counts: dict[str, int]) -> list[Finding]:
    out = []
    for sev, n in counts.items():
        for i in range(n):
            rule = f"R-{target}-{sev}-{i}"
            path = f"src/{target}_svc/{sev}_{i}.py"
            out.append(
                Finding(
                    fingerprint=make_fingerprint(rule, path, f"{target} {sev} {i}"),
                    rule_id=rule,
                    scanner="bandit",
                    severity=Severity(sev),
                    message=f"{sev} problem {i} in {target}",
                    path=path,
                    line=5 + i,
                )
            )
    return out


def _fill(store: Any, now: int) -> None:
    """Two targets with a finished scan each and two hosts' samples, through the Store API."""
    for n, (target, counts) in enumerate(TARGETS.items()):
        scan_id = f"scan-{target}"
        start = now - (10 + 20 * n) * MIN
        end = start + 2 * MIN
        store.record_scan_started(scan_id, target, start, ["bandit"])
        findings = _findings(target, counts)
        store.record_scan_completed(
            SecurityMetrics(
                scan_id=scan_id,
                target=target,
                started_ms=start,
                finished_ms=end,
                scan_duration_ms=float(end - start),
                violations_found=len(findings),
                false_positive_rate=0.0,
                vulnerability_severity_counts={s.value: counts.get(s.value, 0) for s in Severity},
                scan_coverage_percent=100.0,
                files_scanned=10,
                new_findings=len(findings),
            ),
            "ok",
        )
        store.add_findings(scan_id, findings, {f.fingerprint for f in findings})
    # "api" is blocked by the gate and has a firing alert; "web" has neither.
    store.add_gate_run(
        GateResult("gate-api", "api", now - 9 * MIN, now - 9 * MIN + 500, GateVerdict.BLOCK)
    )
    store.upsert_alert(
        Alert(
            fingerprint="alert-api-critical",
            rule="CriticalFinding",
            state=AlertState.FIRING,
            severity=Severity.CRITICAL,
            kind=MetricKind.SECURITY,
            labels={"alertname": "CriticalFinding", "target": "api"},
            annotations={"summary": "a critical finding in api"},
            value=1.0,
            active_since_ms=now - 9 * MIN,
            fired_at_ms=now - 9 * MIN,
            updated_ms=now - 9 * MIN,
        )
    )
    samples = []
    for host, last in ((FRESH_HOST, now - 5_000), (STALE_HOST, now - 20 * MIN)):
        for step in range(6):
            ts = last - step * 10_000
            samples.append(Sample("cpu_percent", {"host": host}, ts, 42.0))
            samples.append(Sample("memory_percent", {"host": host}, ts, 55.0))
            samples.append(Sample("load_1m", {"host": host}, ts, 1.5))
    store.write_samples(samples)


def _serve(tmp: Path, fill: bool) -> Iterator[Fleet]:
    from secperf.bus.memory import AsyncEventBus
    from secperf.store import Store, StoreWriter
    from secperf.web.app import create_app

    now = int(time.time() * 1000)
    store = Store.open(tmp / "secperf.db")
    if fill:
        _fill(store, now)
    writer = StoreWriter(store, flush_interval_s=0.2)
    app = create_app(
        store, AsyncEventBus(), token=TOKEN, writer=writer, manage_writer=True, static_dir=STATIC
    )
    url, stop = _start(app, "on")
    try:
        yield Fleet(url, now)
    finally:
        stop()
        store.close()


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    yield from _serve(tmp_path, fill=True)


@pytest.fixture
def empty_fleet(tmp_path: Path) -> Iterator[Fleet]:
    yield from _serve(tmp_path, fill=False)


def _page(browser: Any, width: int = 1400) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": width, "height": 900})
    context.set_default_timeout(15_000)
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        yield pg
    finally:
        context.close()
    assert errors == [], f"the page raised: {errors}"


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    yield from _page(browser)


@pytest.fixture
def phone(browser: Any) -> Iterator[Any]:
    yield from _page(browser, width=390)


def _open(page: Any, base_url: str, hash_: str) -> None:
    page.goto(f"{base_url}/")
    page.evaluate("t => localStorage.setItem('secperf.token', t)", TOKEN)
    page.goto(f"{base_url}/#/{hash_}")
    page.reload()
    expect(page.get_by_test_id("scopebar")).to_be_visible()


def _query(page: Any) -> dict[str, str]:
    """The hash's query parameters of the page's URL."""
    fragment = urlsplit(page.url).fragment
    query = fragment.split("?", 1)[1] if "?" in fragment else ""
    return {k: v[0] for k, v in parse_qs(query).items()}


def _wait_query(page: Any, check: Any, what: str) -> dict[str, str]:
    """Wait until the URL's query satisfies ``check`` (the router updates it on a click)."""
    deadline = time.monotonic() + 15
    while True:
        q = _query(page)
        if check(q):
            return q
        if time.monotonic() > deadline:
            raise AssertionError(f"the URL never showed {what}: {page.url}")
        page.wait_for_timeout(50)


def _api_hosts(fleet: Fleet) -> list[str]:
    """The hosts the server lists (ours, and the machine the scans ran on)."""
    doc = httpx.get(
        f"{fleet.base_url}/api/v1/fleet/hosts", headers={"Authorization": f"Bearer {TOKEN}"}
    ).json()
    return [h["host"] for h in doc["hosts"]]


def _total(target: str) -> int:
    return sum(TARGETS[target].values())


def _span(q: dict[str, str]) -> int:
    return int(q["to"]) - int(q["from"])


# --------------------------------------------------------------------------- scope


def test_target_picker_scopes_the_views_and_the_url_keeps_it(page: Any, fleet: Fleet) -> None:
    _open(page, fleet.base_url, "overview")
    picker = page.get_by_test_id("scope-target")
    expect(picker.locator("option")).to_have_count(1 + len(TARGETS))
    expect(picker.locator("option").first).to_have_text("all targets")
    hosts = _api_hosts(fleet)
    assert {FRESH_HOST, STALE_HOST} <= set(hosts)
    expect(page.get_by_test_id("scope-host").locator("option")).to_have_count(1 + len(hosts))

    picker.select_option("api")
    _wait_query(page, lambda q: q.get("target") == "api", "target=api")
    main = page.locator("main")
    expect(page.get_by_test_id("violations-total")).to_have_text(str(_total("api")))
    expect(main).to_contain_text("api")

    page.reload()
    expect(page.get_by_test_id("scope-target")).to_have_value("api")
    expect(page.get_by_test_id("violations-total")).to_have_text(str(_total("api")))

    page.get_by_test_id("nav-findings").click()
    q = _wait_query(page, lambda q: "target" in q and page.url.count("#/findings"), "findings")
    assert q["target"] == "api"
    expect(page.get_by_test_id("finding-row")).to_have_count(_total("api"))
    expect(main).to_contain_text("api")

    page.get_by_test_id("scope-target").select_option("web")
    _wait_query(page, lambda q: q.get("target") == "web", "target=web")
    expect(page.get_by_test_id("finding-row")).to_have_count(_total("web"))
    assert _total("web") != _total("api")

    page.get_by_test_id("nav-overview").click()
    _wait_query(page, lambda q: q.get("target") == "web" and "#/overview" in page.url, "overview")
    expect(page.get_by_test_id("violations-total")).to_have_text(str(_total("web")))

    # "all targets" takes the target out of the URL again.
    page.get_by_test_id("scope-target").select_option("")
    _wait_query(page, lambda q: "target" not in q, "no target")


def test_host_picker_puts_the_host_in_the_url(page: Any, fleet: Fleet) -> None:
    _open(page, fleet.base_url, "performance")
    host = page.get_by_test_id("scope-host")
    expect(host.locator("option")).to_have_count(1 + len(_api_hosts(fleet)))
    host.select_option(FRESH_HOST)
    _wait_query(page, lambda q: q.get("host") == FRESH_HOST, f"host={FRESH_HOST}")
    page.get_by_test_id("nav-alerts").click()
    q = _wait_query(page, lambda q: "#/alerts" in page.url, "alerts")
    assert q["host"] == FRESH_HOST
    expect(page.get_by_test_id("scope-host")).to_have_value(FRESH_HOST)


# --------------------------------------------------------------------------- fleet


def test_fleet_lists_targets_and_hosts_as_the_api_counts_them(page: Any, fleet: Fleet) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    doc = httpx.get(f"{fleet.base_url}/api/v1/fleet/targets", headers=headers).json()
    api_counts = {
        t["target"]: sum(t["findings"]["severity_counts"].values()) for t in doc["targets"]
    }
    assert api_counts == {name: _total(name) for name in TARGETS}

    _open(page, fleet.base_url, "fleet")
    rows = page.get_by_test_id("fleet-target-row")
    expect(rows).to_have_count(len(TARGETS))
    for name, count in api_counts.items():
        row = page.locator(f'[data-testid="fleet-target-row"][data-target="{name}"]')
        expect(row.get_by_test_id("fleet-open-findings")).to_have_text(str(count))
        expect(row.get_by_test_id("fleet-target-link")).to_have_text(name)
    api_row = page.locator('[data-testid="fleet-target-row"][data-target="api"]')
    web_row = page.locator('[data-testid="fleet-target-row"][data-target="web"]')
    expect(api_row.get_by_test_id("fleet-sev-critical")).to_contain_text("1")
    expect(api_row.get_by_test_id("fleet-sev-high")).to_contain_text("2")
    expect(api_row.get_by_test_id("fleet-gate")).to_have_text("block")
    expect(web_row.get_by_test_id("fleet-gate")).to_have_text("—")
    expect(api_row.get_by_test_id("fleet-target-alerts")).to_have_text("1 firing")
    expect(web_row.get_by_test_id("fleet-target-alerts")).to_have_text("0")
    expect(api_row).to_contain_text("ok")
    expect(api_row).to_contain_text("2m 00s")

    hosts = page.get_by_test_id("fleet-host-row")
    expect(hosts).to_have_count(len(_api_hosts(fleet)))
    fresh = page.locator(f'[data-testid="fleet-host-row"][data-host="{FRESH_HOST}"]')
    stale = page.locator(f'[data-testid="fleet-host-row"][data-host="{STALE_HOST}"]')
    expect(fresh).to_contain_text("42.0%")
    expect(fresh).to_contain_text("55.0%")
    expect(fresh.get_by_test_id("fleet-host-stale")).to_have_count(0)
    expect(stale.get_by_test_id("fleet-host-stale")).to_have_text("stale")

    # Sorting by findings puts the target with the critical finding first, and says so.
    page.get_by_test_id("fleet-sort-findings").click()
    header = page.locator("th", has=page.get_by_test_id("fleet-sort-findings"))
    expect(header).to_have_attribute("aria-sort", "descending")
    expect(rows.first).to_have_attribute("data-target", "api")
    page.get_by_test_id("fleet-sort-findings").click()
    expect(header).to_have_attribute("aria-sort", "ascending")
    expect(rows.first).to_have_attribute("data-target", "web")
    assert _query(page).get("sort") == "findings"

    # The export holds every target the table shows, with its counts.
    with page.expect_download() as info:
        page.get_by_test_id("export-fleet-targets-csv").click()
    lines = Path(info.value.path()).read_text(encoding="utf-8").strip().splitlines()
    assert lines[0].startswith("target,last_scan_id,last_scan_status,last_scan_ms,open_findings,")
    assert [line.split(",")[0] for line in lines[1:]] == ["web", "api"]
    assert [int(line.split(",")[4]) for line in lines[1:]] == [_total("web"), _total("api")]

    # The filter narrows both tables and is kept in the URL.
    page.get_by_test_id("fleet-filter").fill("we")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-target", "web")
    expect(hosts).to_have_count(0)
    _wait_query(page, lambda q: q.get("q") == "we", "q=we")
    page.reload()
    expect(page.get_by_test_id("fleet-filter")).to_have_value("we")
    expect(rows).to_have_count(1)


def test_a_fleet_link_opens_the_overview_of_its_target(page: Any, fleet: Fleet) -> None:
    _open(page, fleet.base_url, "fleet?from=now-6h&to=now")
    page.get_by_test_id("fleet-target-link").filter(has_text="api").click()
    q = _wait_query(page, lambda q: "#/overview" in page.url, "the overview")
    assert q["target"] == "api"
    assert q["from"] == "now-6h", "the link keeps the time range"
    expect(page.get_by_test_id("scope-target")).to_have_value("api")
    expect(page.get_by_test_id("violations-total")).to_have_text(str(_total("api")))

    # By keyboard: focus the other target's link and press Enter.
    page.get_by_test_id("nav-fleet").click()
    link = page.get_by_test_id("fleet-target-link").filter(has_text="web")
    link.focus()
    page.keyboard.press("Enter")
    q = _wait_query(page, lambda q: q.get("target") == "web", "target=web")
    assert "#/overview" in page.url
    expect(page.get_by_test_id("violations-total")).to_have_text(str(_total("web")))

    # A host's link opens the performance view of that host.
    page.get_by_test_id("nav-fleet").click()
    page.get_by_test_id("fleet-host-link").filter(has_text=FRESH_HOST).click()
    q = _wait_query(page, lambda q: "#/performance" in page.url, "performance")
    assert q["host"] == FRESH_HOST


def test_the_fleet_shows_200_targets_from_whole_page_reads(browser: Any, tmp_path: Path) -> None:
    from secperf.bus.memory import AsyncEventBus
    from secperf.store import Store
    from secperf.web.app import create_app

    now = int(time.time() * 1000)
    store = Store.open(tmp_path / "secperf.db")
    names = [f"svc-{i:03d}" for i in range(200)]
    for i, name in enumerate(names):
        start = now - (i + 5) * MIN
        store.record_scan_started(f"scan-{name}", name, start, ["bandit"])
        store.record_scan_completed(
            SecurityMetrics(
                scan_id=f"scan-{name}",
                target=name,
                started_ms=start,
                finished_ms=start + 1000,
                scan_duration_ms=1000.0,
                violations_found=i % 7,
                false_positive_rate=0.0,
                vulnerability_severity_counts={"low": i % 7},
                scan_coverage_percent=100.0,
            ),
            "ok",
        )
    app = create_app(store, AsyncEventBus(), static_dir=STATIC)
    url, stop = _start(app, "on")
    try:
        asked: list[str] = []

        def note(request: Any) -> None:
            if "/api/" in request.url:
                asked.append(request.url)

        for page in _page(browser):
            page.on("request", note)
            page.goto(f"{url}/#/fleet")
            rows = page.get_by_test_id("fleet-target-row")
            expect(rows).to_have_count(200, timeout=30_000)
            expect(page.get_by_test_id("fleet-targets-count")).to_have_text("200")
            # Sorted by name, then by last scan (newest first): a reorder, no new reads.
            expect(rows.first).to_have_attribute("data-target", "svc-000")
            page.get_by_test_id("fleet-sort-last_scan").click()
            expect(rows.first).to_have_attribute("data-target", "svc-000")
            page.get_by_test_id("fleet-sort-last_scan").click()
            expect(rows.first).to_have_attribute("data-target", "svc-199")
            per_row = [u for u in asked if "svc-" in u]
            assert per_row == [], f"the fleet read per target: {per_row[:5]}"
            lists = [u for u in asked if "/api/v1/fleet/targets" in u]
            # The scope bar and the view share a read under way; the stream's
            # first connection may ask for one more. Not one per target.
            assert 1 <= len(lists) <= 3, f"the targets list was read {len(lists)} times: {lists}"
    finally:
        stop()
        store.close()


def test_an_empty_store_says_how_to_get_targets(page: Any, empty_fleet: Fleet) -> None:
    _open(page, empty_fleet.base_url, "fleet")
    empty = page.get_by_test_id("fleet-empty")
    expect(empty).to_have_text("no targets yet: run secperf scan")
    expect(empty.locator("code")).to_have_text("secperf scan")
    expect(page.get_by_test_id("fleet-target-row")).to_have_count(0)


# --------------------------------------------------------------------------- time range


def test_presets_pan_zoom_out_and_live_change_the_range_in_the_url(page: Any, fleet: Fleet) -> None:
    _open(page, fleet.base_url, "overview")
    live = page.get_by_test_id("live-toggle")
    expect(live).to_have_attribute("aria-pressed", "true")
    expect(page.get_by_test_id("scope-range")).to_have_text("last 1 h")

    page.get_by_test_id("preset-6h").click()
    q = _wait_query(page, lambda q: q.get("from") == "now-6h", "from=now-6h")
    assert q["to"] == "now"
    expect(page.get_by_test_id("preset-6h")).to_have_attribute("aria-pressed", "true")
    expect(page.get_by_test_id("scope-range")).to_have_text("last 6 h")

    # Back half a span: an absolute range of the same length, ending 3 h ago; paused.
    before = int(time.time() * 1000)
    page.get_by_test_id("pan-back").click()
    q = _wait_query(page, lambda q: q.get("to", "now") != "now", "an absolute range")
    assert _span(q) == 6 * HOUR
    assert int(q["to"]) <= before - 3 * HOUR + 60_000
    expect(live).to_have_attribute("aria-pressed", "false")
    expect(page.get_by_test_id("scope-range")).to_contain_text("paused:")
    expect(page.get_by_test_id("preset-6h")).to_have_attribute("aria-pressed", "false")

    # Zoom out: twice the span around the same middle.
    middle = (int(q["from"]) + int(q["to"])) / 2
    page.get_by_test_id("zoom-out").click()
    q = _wait_query(page, lambda q: q.get("to", "now") != "now" and _span(q) == 12 * HOUR, "12 h")
    assert abs((int(q["from"]) + int(q["to"])) / 2 - middle) <= 1

    # Back and forward again: the same range.
    page.get_by_test_id("pan-back").click()
    back = _wait_query(page, lambda x: x.get("to") != q["to"], "a pan back")
    assert int(back["to"]) == int(q["to"]) - 6 * HOUR
    page.get_by_test_id("pan-forward").click()
    _wait_query(page, lambda x: x.get("to") == q["to"], "a pan forward")

    # Live again: a relative range of the same span.
    live.click()
    _wait_query(page, lambda q: q.get("from") == "now-12h" and q.get("to") == "now", "now-12h")
    expect(live).to_have_attribute("aria-pressed", "true")
    expect(page.get_by_test_id("pan-forward")).to_be_disabled()
    # Live, zoom out doubles the span and stays live.
    page.get_by_test_id("zoom-out").click()
    _wait_query(page, lambda q: q.get("from") == "now-1d", "now-1d")

    # Pausing freezes the range shown; the URL keeps it across a reload.
    live.click()
    q = _wait_query(page, lambda q: q.get("to", "now") != "now", "a paused range")
    assert _span(q) == 24 * HOUR
    page.reload()
    expect(page.get_by_test_id("live-toggle")).to_have_attribute("aria-pressed", "false")
    assert _query(page)["to"] == q["to"]


def test_a_custom_range_is_checked_before_it_changes_the_url(page: Any, fleet: Fleet) -> None:
    _open(page, fleet.base_url, "findings")
    page.get_by_test_id("custom-toggle").click()
    expect(page.get_by_test_id("custom-toggle")).to_have_attribute("aria-expanded", "true")
    before = page.url

    page.get_by_test_id("custom-from").fill("2026-12-07T11:00")
    page.get_by_test_id("custom-to").fill("2026-12-07T10:00")
    page.get_by_test_id("custom-apply").click()
    expect(page.get_by_test_id("custom-error")).to_have_text(
        "the end (to) must be after the start (from)"
    )
    expect(page.get_by_test_id("custom-to")).to_have_attribute("aria-invalid", "true")
    assert page.url == before

    page.get_by_test_id("custom-from").fill("")
    page.get_by_test_id("custom-apply").click()
    expect(page.get_by_test_id("custom-error")).to_have_text("choose a start (from)")
    assert page.url == before

    # A good range: absolute in the URL, said in words, paused; by keyboard (Enter submits).
    page.get_by_test_id("custom-from").fill("2026-12-07T10:00")
    page.get_by_test_id("custom-to").fill("2026-12-07T11:00")
    page.get_by_test_id("custom-to").focus()
    page.keyboard.press("Enter")
    q = _wait_query(page, lambda q: q.get("to", "now") != "now", "an absolute range")
    assert _span(q) == HOUR
    start = page.evaluate("() => new Date(2026, 11, 7, 10, 0).getTime()")
    assert int(q["from"]) == start
    expect(page.get_by_test_id("custom-range")).to_have_count(0)
    expect(page.get_by_test_id("scope-range")).to_have_text("paused: 7 Dec 10:00 \u2013 11:00")
    expect(page.get_by_test_id("live-toggle")).to_have_attribute("aria-pressed", "false")


# --------------------------------------------------------------------------- small screens


def test_the_fleet_fits_a_390_px_screen_and_the_menu_works_by_keyboard(
    phone: Any, fleet: Fleet
) -> None:
    _open(phone, fleet.base_url, "fleet")
    expect(phone.get_by_test_id("fleet-target-row")).to_have_count(len(TARGETS))
    expect(phone.get_by_test_id("fleet-host-row")).to_have_count(len(_api_hosts(fleet)))
    width = phone.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 390, f"the fleet view is {width} px wide at 390 px"

    # The custom range form fits too.
    phone.get_by_test_id("custom-toggle").click()
    expect(phone.get_by_test_id("custom-from")).to_be_visible()
    width = phone.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 390, f"the open custom range is {width} px wide at 390 px"

    # The views sit behind a menu button: Enter opens it, Enter on a link goes there.
    menu = phone.get_by_test_id("nav-menu")
    expect(menu).to_be_visible()
    expect(phone.get_by_test_id("nav-findings")).to_be_hidden()
    menu.focus()
    phone.keyboard.press("Enter")
    expect(menu).to_have_attribute("aria-expanded", "true")
    expect(phone.get_by_test_id("nav-findings")).to_be_visible()
    width = phone.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 390, f"the open menu is {width} px wide at 390 px"
    phone.get_by_test_id("nav-findings").focus()
    phone.keyboard.press("Enter")
    _wait_query(phone, lambda q: "#/findings" in phone.url, "findings")
    expect(menu).to_have_attribute("aria-expanded", "false")
    expect(menu).to_contain_text("Findings")
    # Escape closes the menu and gives focus back to its button.
    menu.click()
    expect(phone.get_by_test_id("nav-alerts")).to_be_visible()
    phone.get_by_test_id("nav-alerts").focus()
    phone.keyboard.press("Escape")
    expect(menu).to_have_attribute("aria-expanded", "false")
    expect(menu).to_be_focused()
    assert re.search(r"#/findings", phone.url)


@pytest.mark.parametrize(
    ("view", "query"),
    [
        ("gate", "from=1000000000000&to=8640000000000001"),
        ("overview", "from=1000000000000&to=9999999999999999"),
        ("alerts", "from=now-999999w"),
        ("gate", "from=now-999999d"),
    ],
)
def test_an_out_of_range_time_range_falls_back_to_the_default(
    page: Any, fleet: Fleet, view: str, query: str
) -> None:
    api_errors: list[str] = []
    page.on(
        "response",
        lambda r: (
            api_errors.append(f"{r.status} {r.url}")
            if "/api/" in r.url and r.status >= 400
            else None
        ),
    )
    _open(page, fleet.base_url, f"{view}?{query}")
    expect(page.get_by_test_id("scope-range")).to_have_text("last 1 h")
    expect(page.get_by_test_id("preset-1h")).to_have_attribute("aria-pressed", "true")
    expect(page.get_by_test_id("live-toggle")).to_have_attribute("aria-pressed", "true")
    expect(page.locator("main")).not_to_contain_text("NaN")
    assert api_errors == [], f"the view asked the API for a bad range: {api_errors}"


def test_the_custom_range_form_gives_focus_back_to_its_button(page: Any, fleet: Fleet) -> None:
    _open(page, fleet.base_url, "overview")
    toggle = page.get_by_test_id("custom-toggle")
    form = page.get_by_test_id("custom-range")

    # Escape closes the form; focus goes back to "custom…", not to the page.
    toggle.focus()
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("custom-from")).to_be_focused()
    page.keyboard.press("Escape")
    expect(form).to_have_count(0)
    expect(toggle).to_be_focused()
    expect(toggle).to_have_attribute("aria-expanded", "false")

    # Cancel, pressed from the keyboard.
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("custom-from")).to_be_focused()
    form.get_by_role("button", name="cancel").focus()
    page.keyboard.press("Enter")
    expect(form).to_have_count(0)
    expect(toggle).to_be_focused()

    # Apply with Enter in a field: the range is set and focus is back on the button.
    page.keyboard.press("Space")
    expect(page.get_by_test_id("custom-from")).to_be_focused()
    page.keyboard.press("Enter")
    expect(form).to_have_count(0)
    _wait_query(page, lambda q: q.get("from", "").isdigit(), "an absolute range")
    expect(toggle).to_be_focused()


def test_performance_with_a_target_keeps_host_series_and_hides_other_targets(
    page: Any, fleet: Fleet
) -> None:
    # The Overview's link to the charts, with a target chosen, lands on CPU.
    _open(page, fleet.base_url, "overview?target=web")
    page.get_by_role("link", name="charts with scan overlays →").click()
    _wait_query(
        page, lambda q: "#/performance" in page.url and q.get("target") == "web", "performance"
    )
    select = page.get_by_test_id("metric-select")
    expect(select).to_have_value("cpu_percent")
    options = select.locator("option")
    expect(options.filter(has_text=re.compile(r"^memory_percent$"))).to_have_count(1)
    expect(options.filter(has_text=re.compile(r"^load_1m$"))).to_have_count(1)
    expect(page.get_by_test_id("chart")).to_have_attribute("data-lines", "2")  # one per host

    # A security series shows the chosen target's line only, never the other's.
    _open(page, fleet.base_url, "performance?target=web&series=security_scan_time")
    expect(select).to_have_value("security_scan_time")
    expect(page.get_by_test_id("chart")).to_have_attribute("data-lines", "1")
    expect(page.get_by_test_id("chart")).to_be_visible()
    title = page.locator("h2.chart-title")
    expect(title).to_contain_text("target=web")
    expect(title).not_to_contain_text("api")
    expect(
        page.get_by_test_id("series-labels").locator("option", has_text="target=api")
    ).to_have_count(0)


def _alert(fingerprint: str, rule: str, labels: dict[str, str], now: int) -> Alert:
    return Alert(
        fingerprint=fingerprint,
        rule=rule,
        state=AlertState.FIRING,
        severity=Severity.HIGH,
        kind=MetricKind.PERFORMANCE,
        labels={"alertname": rule, **labels},
        annotations={"summary": f"{rule} firing"},
        value=91.0,
        active_since_ms=now - 5 * MIN,
        fired_at_ms=now - 4 * MIN,
        updated_ms=now - 4 * MIN,
    )


def test_the_fleet_counts_each_firing_alert_once_as_the_badge_does(
    page: Any, tmp_path: Path
) -> None:
    """Alerts of a host only, of a target on a host, and silenced: summary == badge == API."""
    from secperf.store import Store

    now = int(time.time() * 1000)
    store = Store.open(tmp_path / "secperf.db")
    try:
        # Besides "api"'s alert (target only): one of a host only (on no target's
        # row), one of a target on a host (on two rows), and one that a silence covers.
        store.upsert_alert(_alert("alert-host-cpu", "HighCpu", {"host": FRESH_HOST}, now))
        store.upsert_alert(
            _alert("alert-api-latency", "SlowApi", {"target": "api", "host": FRESH_HOST}, now)
        )
        store.upsert_alert(_alert("alert-muted", "Muted", {"host": STALE_HOST}, now))
    finally:
        store.close()
    served = _serve(tmp_path, fill=True)
    fleet = next(served)
    try:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        added = httpx.post(
            f"{fleet.base_url}/api/v1/silences",
            json={
                "matchers": [{"name": "alertname", "value": "Muted"}],
                "ends_ms": now + HOUR,
                "author": "kim",
                "reason": "maintenance",
            },
            headers=headers,
            timeout=30,
        )
        assert added.status_code in (200, 201), added.text
        answer = httpx.get(
            f"{fleet.base_url}/api/v1/alerts", params={"state": "firing"}, headers=headers
        ).json()
        firing = [a for a in answer["alerts"] if not a["silenced"]]
        assert len(firing) == 3, answer["alerts"]
        assert answer["counts"]["firing"] == 3, answer["counts"]

        _open(page, fleet.base_url, "fleet")
        summary = page.get_by_test_id("fleet-summary")
        expect(summary).to_contain_text("3 firing alerts")
        expect(page.get_by_test_id("nav-alerts").locator(".badge")).to_have_text("3")
        # The rows still say each target's and each host's own count.
        api_row = page.get_by_test_id("fleet-target-row").filter(has_text="api")
        expect(api_row.get_by_test_id("fleet-target-alerts")).to_have_text("2 firing")
        expect(summary).to_contain_text(re.compile(r"\b2 targets\b"))

    finally:
        next(served, None)


def test_the_fleet_summary_says_one_firing_alert_in_the_singular(page: Any, fleet: Fleet) -> None:
    _open(page, fleet.base_url, "fleet")
    summary = page.get_by_test_id("fleet-summary")
    expect(summary).to_contain_text(re.compile(r"\b1 firing alert\b(?!s)"))
    expect(summary).to_contain_text(re.compile(r"\b2 targets\b"))


def test_the_fleet_draws_its_targets_before_hosts_and_alerts_answer(
    page: Any, fleet: Fleet
) -> None:
    """The targets table waits on its own read only: hosts and the firing count fill in after."""
    held: list[Any] = []
    late = ("/api/v1/fleet/hosts", "/api/v1/alerts")
    page.context.add_init_script(f"localStorage.setItem('secperf.token', {TOKEN!r})")
    page.route(lambda url: urlsplit(url).path in late, lambda route: held.append(route))
    page.goto(f"{fleet.base_url}/#/fleet")

    rows = page.get_by_test_id("fleet-target-row")
    expect(rows).to_have_count(len(TARGETS))
    api_row = page.locator('[data-testid="fleet-target-row"][data-target="api"]')
    expect(api_row.get_by_test_id("fleet-open-findings")).to_have_text(str(_total("api")))
    summary = page.get_by_test_id("fleet-summary")
    expect(summary).to_contain_text(re.compile(r"\b2 targets\b"))
    expect(summary).not_to_contain_text("firing alert")
    expect(page.get_by_test_id("fleet-hosts")).to_contain_text("loading")
    deadline = time.monotonic() + 15
    while {urlsplit(r.request.url).path for r in held} != set(late):
        assert time.monotonic() < deadline, f"the held reads: {[r.request.url for r in held]}"
        page.wait_for_timeout(50)  # lets Playwright hand over the routed requests

    for route in held:
        route.continue_()
    expect(summary).to_contain_text(re.compile(r"\b1 firing alert\b(?!s)"))
    expect(page.get_by_test_id("fleet-host-row")).to_have_count(len(_api_hosts(fleet)))


def test_a_deep_link_opens_its_view_without_mounting_the_overview_first(
    page: Any, fleet: Fleet
) -> None:
    """#/fleet reads what the fleet needs: none of the overview's own reads on the way."""
    paths: list[str] = []
    page.on("request", lambda request: paths.append(urlsplit(request.url).path))
    page.context.add_init_script(f"localStorage.setItem('secperf.token', {TOKEN!r})")
    page.goto(f"{fleet.base_url}/#/fleet")
    expect(page.get_by_test_id("fleet-target-row")).to_have_count(len(TARGETS))
    expect(page.get_by_test_id("fleet-host-row")).to_have_count(len(_api_hosts(fleet)))
    overview_only = {"/api/v1/scans", "/api/v1/metrics/query", "/api/v1/schedule"}
    assert not overview_only & set(paths), f"reads of the overview on a fleet link: {paths}"
