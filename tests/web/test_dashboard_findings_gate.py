"""The Findings and Gate & benchmarks views in a real browser.

The real secperf app serves a real SQLite store holding two targets' scans
and findings, gate runs inside and outside the time range and benchmark
results with pytest-benchmark's spread, written through the Store API.
Debian's Chromium, driven by Playwright, checks the findings' default order
(severity, then oldest first seen), sortable headers, the search kept in the
URL, a triage done from the keyboard alone reaching the store, the CSV export,
gate runs filtered by the shared time range, the benchmark chart's spread band
and commit labels, and that both views fit 390 px.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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

from secperf.bus.memory import AsyncEventBus
from secperf.model import (
    BenchmarkResult,
    ConditionStatus,
    Finding,
    GateCondition,
    GateResult,
    GateVerdict,
    SecurityMetrics,
    Severity,
    make_fingerprint,
)
from secperf.store import Store, StoreWriter
from secperf.web.app import create_app

__all__ = ["browser"]  # the shared Chromium fixture, used by the tests below

pytestmark = DASHBOARD_MARKS

expect = playwright_sync.expect
MIN = 60_000
HOUR = 60 * MIN
DAY = 24 * HOUR
AUTH = {"Authorization": f"Bearer {TOKEN}"}

# Rule, severity, path, scanner, message; "old" ones are in both scans of "api".
OLD = [
    ("R-crit-old", Severity.CRITICAL, "z/crit_old.py", "bandit", "hard-coded password"),
    ("R-high", Severity.HIGH, "m/high.py", "bandit", "shell injection risk"),
    ("R-med", Severity.MEDIUM, "c/med.py", "semgrep", "SQL built by string format"),
    ("R-low", Severity.LOW, "b/low.py", "secrets", "weak hash"),
]
NEW = [("R-crit-new", Severity.CRITICAL, "a/crit_new.py", "bandit", "eval of user input")]
# Severity, then the oldest first seen first: the old critical before the new one.
DEFAULT_ORDER = ["R-crit-old", "R-crit-new", "R-high", "R-med", "R-low"]
PATH_ORDER = ["R-crit-new", "R-low", "R-med", "R-high", "R-crit-old"]
COMMITS = ["1111111aaaaaaaa", "2222222bbbbbbbb", "3333333cccccccc"]


@dataclass
class Site:
    url: str
    now_ms: int


def _finding(rule: str, severity: Severity, path: str, scanner: str, message: str) -> Finding:
    return Finding(
        fingerprint=make_fingerprint(rule, path, f"code of {rule}"),
        rule_id=rule,
        scanner=scanner,
        severity=severity,
        message=message,
        path=path,
        line=7,
    )


def _scan(store: Store, scan_id: str, target: str, end_ms: int, found: list[Finding]) -> None:
    start = end_ms - MIN
    store.record_scan_started(scan_id, target, start, ["bandit", "semgrep", "secrets"])
    store.add_findings(scan_id, found, set())
    counts = {s.value: sum(1 for f in found if f.severity is s) for s in Severity}
    store.record_scan_completed(
        SecurityMetrics(
            scan_id=scan_id,
            target=target,
            started_ms=start,
            finished_ms=end_ms,
            scan_duration_ms=float(MIN),
            violations_found=len(found),
            false_positive_rate=0.0,
            vulnerability_severity_counts=counts,
            scan_coverage_percent=100.0,
            files_scanned=10,
            new_findings=0,
            existing_findings=len(found),
        ),
        "ok",
    )


def _fill(store: Store, now: int) -> None:
    old = [_finding(*f) for f in OLD]
    _scan(store, "api-1", "api", now - 3 * DAY, old)
    _scan(store, "api-2", "api", now - 30 * MIN, [*old, *(_finding(*f) for f in NEW)])
    _scan(
        store,
        "web-1",
        "web",
        now - 20 * MIN,
        [_finding("W-only", Severity.CRITICAL, "w.py", "bandit", "web")],
    )
    block = GateCondition("new_critical", "security", ConditionStatus.BLOCK, 1, 0, "R-crit-new")
    for run_id, target, age in (
        ("run-in", "api", 30 * MIN),
        ("run-out", "api", 3 * HOUR),
        ("run-web", "web", 10 * MIN),
    ):
        started = now - age
        store.add_gate_run(
            GateResult(
                run_id,
                target,
                started,
                started + 2000,
                GateVerdict.BLOCK,
                (block,),
                f"{run_id}-commit-0123",
                "1 new critical",
            )
        )
    store.add_benchmark_results(
        [
            BenchmarkResult(
                "test_parse",
                "pytest-benchmark",
                now - (40 - 10 * i) * MIN,
                "m1",
                commit=commit,
                stats={
                    "min": 0.008,
                    "q1": 0.009 + i * 0.001,
                    "median": 0.01 + i * 0.001,
                    "q3": 0.012 + i * 0.001,
                    "max": 0.02,
                },
            )
            for i, commit in enumerate(COMMITS)
        ]
    )


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    now = int(time.time() * 1000)
    store = Store.open(tmp_path / "secperf.db")
    _fill(store, now)
    writer = StoreWriter(store, flush_interval_s=0.2)
    app = create_app(
        store, AsyncEventBus(), token=TOKEN, writer=writer, manage_writer=True, static_dir=STATIC
    )
    url, stop = _start(app, "on")
    try:
        yield Site(url, now)
    finally:
        stop()
        store.close()


def _page(browser: Any, width: int = 1400) -> Any:
    context = browser.new_context(viewport={"width": width, "height": 900}, accept_downloads=True)
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
        errors = pg.errors
        pg.context.close()
        assert errors == [], f"the page raised: {errors}"


def _goto(page: Any, site: Site, hash_: str) -> None:
    page.goto(f"{site.url}/")
    page.evaluate("t => localStorage.setItem('secperf.token', t)", TOKEN)
    page.goto(f"{site.url}/#/{hash_}")
    page.reload()


def _rules(page: Any) -> list[str]:
    rows = page.get_by_test_id("finding-open")
    return [rows.nth(i).inner_text() for i in range(rows.count())]


def _expect_rules(page: Any, wanted: list[str]) -> None:
    """Wait until the table lists exactly ``wanted`` in that order."""
    expect(page.get_by_test_id("finding-open")).to_have_text(wanted)


# --------------------------------------------------------------------------- findings


def test_findings_order_by_severity_then_age_and_sort_by_header(page: Any, site: Site) -> None:
    _goto(page, site, "findings?target=api")
    _expect_rules(page, DEFAULT_ORDER)
    severity = page.get_by_test_id("sort-severity")
    path = page.get_by_test_id("sort-path")
    expect(severity).to_have_attribute("aria-sort", "descending")
    expect(path).to_have_attribute("aria-sort", "none")
    # The age column: the old critical was first seen 3 days ago, the new one 30 min ago.
    expect(page.get_by_test_id("finding-first-seen").first).to_have_text("3 d ago")

    path.get_by_role("button").click()
    expect(path).to_have_attribute("aria-sort", "ascending")
    expect(severity).to_have_attribute("aria-sort", "none")
    _expect_rules(page, PATH_ORDER)
    path.get_by_role("button").click()
    expect(path).to_have_attribute("aria-sort", "descending")
    _expect_rules(page, list(reversed(PATH_ORDER)))
    assert "sort=path" in page.url and "dir=desc" in page.url

    first_seen = page.get_by_test_id("sort-first_seen")
    first_seen.get_by_role("button").click()
    expect(first_seen).to_have_attribute("aria-sort", "ascending")
    assert _rules(page)[-1] == "R-crit-new"

    # Another target in the shared scope: its findings only.
    page.goto(f"{site.url}/#/findings?target=web")
    _expect_rules(page, ["W-only"])


def test_findings_search_narrows_rows_and_lives_in_the_url(page: Any, site: Site) -> None:
    _goto(page, site, "findings?target=api")
    _expect_rules(page, DEFAULT_ORDER)
    search = page.get_by_test_id("findings-search")
    search.fill("injection")  # the high's message and... only it
    _expect_rules(page, ["R-high"])
    page.wait_for_function("() => location.hash.includes('q=injection')")
    search.fill("semgrep string")  # every word, over scanner and message
    _expect_rules(page, ["R-med"])
    page.wait_for_function("() => location.hash.includes('q=semgrep+string')")
    # The URL brings the search back.
    page.goto(f"{site.url}/#/findings?target=api&q=crit_")
    page.reload()
    expect(page.get_by_test_id("findings-search")).to_have_value("crit_")
    _expect_rules(page, ["R-crit-old", "R-crit-new"])
    # "new in range": first seen inside the shared window (the last hour).
    page.get_by_test_id("findings-search").fill("")
    chip = page.get_by_test_id("filter-in-range")
    chip.click()
    expect(chip).to_have_attribute("aria-pressed", "true")
    _expect_rules(page, ["R-crit-new"])


def test_a_link_to_one_scan_lists_that_scans_findings(page: Any, site: Site) -> None:
    # As an alert's context links: the scan's target and the scan.
    _goto(page, site, "findings?target=api&scan=api-1")
    _expect_rules(page, ["R-crit-old", "R-high", "R-med", "R-low"])
    chip = page.get_by_test_id("filter-scan")
    expect(chip).to_contain_text("api-1")
    chip.get_by_role("button").click()
    _expect_rules(page, DEFAULT_ORDER)
    page.wait_for_function("() => !location.hash.includes('scan=')")


def test_a_finding_is_triaged_from_the_keyboard_alone(page: Any, site: Site) -> None:
    _goto(page, site, "findings?target=api")
    _expect_rules(page, DEFAULT_ORDER)
    page.get_by_test_id("findings-search").focus()
    triage = page.get_by_test_id("finding-triage").first
    for _ in range(60):
        if triage.evaluate("el => el === document.activeElement"):
            break
        page.keyboard.press("Tab")
    else:
        pytest.fail("Tab never reached the first finding's triage button")
    outline = page.evaluate("() => getComputedStyle(document.activeElement).outlineStyle")
    assert outline not in ("", "none"), "the focused triage button shows no focus ring"
    page.keyboard.press("Enter")
    decision = page.get_by_test_id("triage-state")
    expect(decision).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.get_by_test_id("triage-reason")).to_be_focused()
    page.keyboard.type("test fixture, not shipped")
    page.keyboard.press("Tab")
    page.keyboard.type("kim")
    page.keyboard.press("Tab")
    expect(page.get_by_test_id("triage-submit")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("finding-state").first).to_have_text("false positive")
    expect(page.get_by_test_id("triage-message")).to_be_focused()
    # Escape closes the detail and puts the keyboard back on the finding's row.
    page.keyboard.press("Escape")
    expect(page.get_by_test_id("triage-state")).to_have_count(0)
    expect(page.get_by_test_id("finding-open").first).to_be_focused()
    # The decision reached the store.
    deadline = time.monotonic() + 20
    while True:
        body = httpx.get(
            f"{site.url}/api/v1/findings", params={"target": "api"}, headers=AUTH, timeout=10
        ).json()
        states = {f["rule_id"]: (f["state"], f["triage"]) for f in body["findings"]}
        state, decided = states["R-crit-old"]
        if state == "false_positive":
            break
        assert time.monotonic() < deadline, f"the triage never reached the store: {states}"
        time.sleep(0.2)
    assert decided["author"] == "kim" and decided["reason"] == "test fixture, not shipped"


def test_findings_csv_export_holds_the_rows_shown(page: Any, site: Site) -> None:
    _goto(page, site, "findings?target=api&severity=high")
    _expect_rules(page, ["R-crit-old", "R-crit-new", "R-high"])
    with page.expect_download() as info:
        page.get_by_test_id("export-findings-csv").click()
    download = info.value
    assert download.suggested_filename.startswith("secperf-findings-")
    assert download.suggested_filename.endswith(".csv")
    with open(download.path(), newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["rule"] for r in rows] == ["R-crit-old", "R-crit-new", "R-high"]
    assert rows[2]["path"] == "m/high.py" and rows[2]["message"] == "shell injection risk"
    assert rows[0]["first_seen"] < rows[1]["first_seen"]


# --------------------------------------------------------------------------- gate & benchmarks


def test_gate_runs_follow_the_target_and_time_range(page: Any, site: Site) -> None:
    _goto(page, site, "gate?target=api&from=now-1h&to=now")
    rows = page.get_by_test_id("gate-row")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-run", "run-in")
    page.goto(f"{site.url}/#/gate?target=api&from=now-6h&to=now")
    expect(rows).to_have_count(2)
    expect(rows.nth(1)).to_have_attribute("data-run", "run-out")
    page.goto(f"{site.url}/#/gate?from=now-1h&to=now")
    # Newest first; wait for this range's answer, not the last one's rows.
    expect(rows.first).to_have_attribute("data-run", "run-web")
    expect(rows).to_have_count(2)
    expect(rows.nth(1)).to_have_attribute("data-run", "run-in")
    # A row opens by keyboard: its button, Enter, the conditions.
    opener = page.get_by_test_id("gate-open").first
    opener.focus()
    page.keyboard.press("Enter")
    expect(opener).to_have_attribute("aria-expanded", "true")
    expect(page.get_by_test_id("gate-detail")).to_contain_text("new_critical")
    page.keyboard.press("Space")
    expect(page.get_by_test_id("gate-detail")).to_have_count(0)
    # Absolute range holding nothing: the empty state offers a wider range.
    start = site.now_ms - 10 * DAY
    page.goto(f"{site.url}/#/gate?target=api&from={start}&to={start + HOUR}")
    expect(page.get_by_test_id("gate-empty")).to_contain_text("no gate runs of api")


def test_benchmark_chart_shows_the_spread_and_the_commits(page: Any, site: Site) -> None:
    _goto(page, site, "gate?from=now-1h&to=now")
    chart = page.get_by_test_id("bench-chart")
    expect(chart).to_have_count(1)
    expect(chart).to_have_attribute("data-points", "3")
    expect(chart).to_have_attribute("data-spread", "iqr")
    expect(chart).to_have_attribute("data-band-points", "3")
    expect(chart).to_have_attribute("data-range-points", "3")
    short = [c[:7] for c in COMMITS]
    expect(chart).to_have_attribute("data-labels", "|".join(short))
    expect(chart).to_have_attribute("data-axis-labels", "|".join(short))
    expect(chart.locator("canvas").first).to_be_visible()
    # Hover the newest run: its full commit and spread.
    box = chart.locator(".u-over").bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + box["width"] * 5 / 6, box["y"] + box["height"] / 2)
    expect(page.get_by_test_id("bench-hover")).to_contain_text(f"commit {COMMITS[2]}")
    expect(page.get_by_test_id("bench-hover")).to_contain_text("q1\N{EN DASH}q3")
    with page.expect_download() as info:
        chart.get_by_test_id("export-benchmark-png").click()
    assert info.value.suggested_filename.startswith("secperf-benchmark-test_parse-")
    assert info.value.suggested_filename.endswith(".png")
    assert Path(info.value.path()).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # Gate runs export as CSV too.
    with page.expect_download() as info:
        page.get_by_test_id("export-gate-runs-csv").click()
    assert info.value.suggested_filename.endswith(".csv")


# --------------------------------------------------------------------------- 390 px


@pytest.mark.parametrize("view", ["findings?target=api", "gate?target=api&from=now-6h&to=now"])
def test_views_fit_390_px_without_page_scroll(browser: Any, site: Site, view: str) -> None:
    pg = _page(browser, width=390)
    try:
        _goto(pg, site, view)
        ready = "finding-row" if view.startswith("findings") else "gate-row"
        expect(pg.get_by_test_id(ready).first).to_be_visible()
        if ready == "gate-row":
            pg.get_by_test_id("gate-open").first.click()
            expect(pg.get_by_test_id("gate-detail")).to_be_visible()
        else:
            pg.get_by_test_id("finding-open").first.click()
            expect(pg.get_by_test_id("triage-reason")).to_be_visible()
        widths = pg.evaluate(
            "() => ({scroll: document.documentElement.scrollWidth, inner: window.innerWidth})"
        )
        assert widths["scroll"] <= widths["inner"], f"{view} scrolls sideways at 390 px: {widths}"
        assert pg.errors == []
    finally:
        pg.context.close()


# --------------------------------------------------------------------------- a large list

MANY = 4500


@pytest.fixture
def big_site(tmp_path: Path) -> Iterator[Site]:
    now = int(time.time() * 1000)
    store = Store.open(tmp_path / "secperf.db")
    severities = list(Severity)
    found = [
        _finding(f"R{i % 40}", severities[i % 5], f"src/f{i}.py", "bandit", f"problem {i}")
        for i in range(MANY)
    ]
    _scan(store, "big-1", "big", now - HOUR, found)
    app = create_app(store, AsyncEventBus(), token=TOKEN, static_dir=STATIC)
    url, stop = _start(app, "on")
    try:
        yield Site(url, now)
    finally:
        stop()
        store.close()


def test_thousands_of_findings_render_in_pages(page: Any, big_site: Site) -> None:
    _goto(page, big_site, "findings?target=big")
    expect(page.get_by_test_id("findings-count")).to_contain_text(f"{MANY} findings")
    rows = page.get_by_test_id("finding-row")
    expect(rows).to_have_count(200)
    expect(rows.first).to_have_attribute("data-severity", "critical")
    page.get_by_test_id("findings-more").click()
    expect(rows).to_have_count(400)
    # The search runs over every finding, not only the rows rendered.
    page.get_by_test_id("findings-search").fill("src/f4499.py")
    expect(rows).to_have_count(1)
    expect(page.get_by_test_id("findings-count")).to_contain_text(f"1 finding of {MANY}")
    expect(page.get_by_test_id("findings-more")).to_have_count(0)
