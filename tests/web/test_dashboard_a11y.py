"""Accessibility of the dashboard in a real browser: axe-core, phone width, keyboard.

Debian's Chromium, driven by Playwright, loads the built dashboard
(src/secperf/web/static) served with the real secperf app over a real SQLite
store holding scans, findings, series, alerts, a correlation run, advice,
gate runs and benchmark results. On every view, in the light and the dark
theme (``prefers-color-scheme``), at 1280 and 390 px wide, axe-core
(dashboard/node_modules/axe-core, a devDependency) finds no violation of
serious or critical impact, with an alert's and a finding's detail open, and
with the token form and the custom time range open; at 390 px no view scrolls
sideways; nothing that looks clickable is out of Tab's reach; and Tab alone
reaches the skip link, every navigation link (behind the menu button on a
phone), the scope controls and, on the alerts view, an alert's detail and its
acknowledge button, each showing a visible focus indicator.

One browser and one server serve the module; each theme and width has one
page, reused from view to view (the router changes views without a reload).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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

from secperf.model import (
    Alert,
    AlertState,
    BenchmarkResult,
    ConditionStatus,
    GateCondition,
    GateResult,
    GateVerdict,
    MetricKind,
    Severity,
)
from support.axe import axe_missing, blocking, describe, run_axe

__all__ = ["browser"]  # the shared Chromium fixture, used by the tests below

REQUIRE_SERVICES = os.environ.get("SECPERF_REQUIRE_SERVICES", "") not in ("", "0")

pytestmark = DASHBOARD_MARKS

expect = playwright_sync.expect
HOUR_MS = 3_600_000
WAIT_MS = 20_000

#: Every view, and what shows once it has rendered its data (tables, rows, charts).
VIEWS: dict[str, str] = {
    "overview": "[data-testid=firing-alerts] [data-testid=alert-row]",
    "fleet": "[data-testid=fleet-target-row]",
    "performance": "[data-testid=scan-detail]",  # with a scan's details open
    "alerts": "[data-testid=ack-author]",  # with a firing alert's detail open
    "correlations": "[data-testid=correlations-table] tbody tr",
    "findings": "[data-testid=triage-state]",  # with a finding's detail (triage form) open
    "gate": "[data-testid=gate-detail]",  # with a run's conditions open
    "advice": "[data-testid=advice-item]",
}
#: Views checked with a detail open: what to click (the first of) when it is not.
OPEN = {
    "alerts": "[data-testid=alerts-firing] [data-testid=alert-open]",
    "findings": "[data-testid=finding-open]",
    "performance": "[data-testid=scan-details]",
    "gate": "[data-testid=gate-open]",
}
THEMES = ("light", "dark")
WIDTHS = (1280, 390)


# --------------------------------------------------------------------------- data and server


def _more_data(store: Any, data: DashboardData) -> None:
    """Beyond the browser tests' data: more alerts, gate runs, benchmark results."""
    now = data.now_ms
    store.upsert_alert(
        Alert(
            fingerprint="alert-new-critical",
            rule="NewCriticalFinding",
            state=AlertState.FIRING,
            severity=Severity.CRITICAL,
            kind=MetricKind.SECURITY,
            labels={"alertname": "NewCriticalFinding", "target": "demo-repo"},
            annotations={"summary": "a new critical finding in demo-repo"},
            value=1.0,
            active_since_ms=now - 20 * 60_000,
            fired_at_ms=now - 20 * 60_000,
            updated_ms=now - 20 * 60_000,
        )
    )
    store.upsert_alert(
        Alert(
            fingerprint="alert-latency-resolved",
            rule="SlowResponses",
            state=AlertState.RESOLVED,
            severity=Severity.MEDIUM,
            kind=MetricKind.PERFORMANCE,
            labels={"alertname": "SlowResponses", "host": "web-1"},
            annotations={"summary": "p95 response time above 150 ms"},
            value=181.0,
            active_since_ms=now - 40 * 60_000,
            fired_at_ms=now - 35 * 60_000,
            resolved_at_ms=now - 30 * 60_000,
            updated_ms=now - 30 * 60_000,
        )
    )
    for k, verdict in enumerate((GateVerdict.PASS, GateVerdict.BLOCK, GateVerdict.PASS)):
        started = now - (k + 1) * 25 * 60_000
        store.add_gate_run(
            GateResult(
                run_id=f"gate-{k}",
                target="demo-repo",
                started_ms=started,
                finished_ms=started + 42_000,
                verdict=verdict,
                conditions=(
                    GateCondition(
                        "new_critical",
                        "security",
                        ConditionStatus.BLOCK
                        if verdict is GateVerdict.BLOCK
                        else ConditionStatus.PASS,
                        1 if verdict is GateVerdict.BLOCK else 0,
                        0,
                        "src/app/critical_0.py: R-critical-0",
                    ),
                    GateCondition(
                        "p95_latency", "performance", ConditionStatus.PASS, 92.5, 150, ""
                    ),
                ),
                commit=f"{k}a1b2c3d4e5f60718293a4b5c6d7e8f9001122334",
                summary="1 new critical finding" if verdict is GateVerdict.BLOCK else "passed",
            )
        )
    store.add_benchmark_results(
        [
            BenchmarkResult(
                name=name,
                source="pytest-benchmark",
                timestamp_ms=now - k * HOUR_MS // 4,
                machine="m1",
                commit=f"c{k}",
                stats={"median": base + k / 1000, "mean": base + k / 900},
            )
            for name, base in (("test_parse", 0.01), ("test_scan_repository", 0.2))
            for k in range(4)
        ]
    )


@dataclass
class A11yServer:
    base_url: str
    data: DashboardData


@pytest.fixture(scope="module")
def a11y_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[A11yServer]:
    """The real app over a real SQLite store with data for every view, providers included."""
    from secperf.analysis.advice import advice_json, build_advice
    from secperf.analysis.correlate_store import correlations_json, latest_run, run_correlation
    from secperf.bus.memory import AsyncEventBus
    from secperf.store import Store, StoreWriter
    from secperf.web.app import create_app

    data = _make_data(int(time.time() * 1000))
    store = Store.open(tmp_path_factory.mktemp("a11y") / "secperf.db")
    _fill_store(store, data)
    _more_data(store, data)
    run_correlation(store, data.now_ms - HOUR_MS, data.now_ms, now_ms=data.now_ms)

    def correlations() -> dict[str, Any]:
        return correlations_json(latest_run(store))

    def advice() -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = advice_json(build_advice(store, data.now_ms))["advice"]
        return items

    writer = StoreWriter(store, flush_interval_s=0.2)
    app = create_app(
        store,
        AsyncEventBus(),
        token=TOKEN,
        writer=writer,
        manage_writer=True,
        correlations=correlations,
        advice=advice,
        static_dir=STATIC,
    )
    url, stop = _start(app, "on")
    try:
        yield A11yServer(url, data)
    finally:
        stop()
        store.close()


@pytest.fixture(scope="module")
def axe_path() -> Path:
    from support.axe import AXE_JS

    missing = axe_missing()
    if missing is not None:
        if REQUIRE_SERVICES:
            pytest.fail(missing)
        pytest.skip(missing)
    return AXE_JS


class Pages:
    """One browser context and page per (theme, width, CSP), opened on first use.

    axe-core goes in as a script tag, which the app's Content-Security-Policy
    (script-src 'self') refuses: the axe pages bypass it. The keyboard tests
    use pages under the real policy, so what they drive runs as users get it.
    """

    def __init__(self, browser: Any, server: A11yServer) -> None:
        self.browser = browser
        self.server = server
        self.contexts: list[Any] = []
        self.pages: dict[tuple[str, int, bool], Any] = {}
        self.errors: dict[tuple[str, int, bool], list[str]] = {}

    def get(self, theme: str, width: int, *, bypass_csp: bool = True) -> Any:
        key = (theme, width, bypass_csp)
        if key not in self.pages:
            context = self.browser.new_context(
                viewport={"width": width, "height": 900},
                color_scheme=theme,
                bypass_csp=bypass_csp,
            )
            context.set_default_timeout(WAIT_MS)
            # Signed in, so that the write controls (ack, silence, triage) show too.
            context.add_init_script(f"localStorage.setItem('secperf.token', {TOKEN!r})")
            page = context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(f"{self.server.base_url}/#/overview")
            self.contexts.append(context)
            self.pages[key] = page
            self.errors[key] = errors
        return self.pages[key]

    def close(self) -> None:
        for context in self.contexts:
            context.close()


@pytest.fixture(scope="module")
def pages(browser: Any, a11y_server: A11yServer) -> Iterator[Pages]:
    opened = Pages(browser, a11y_server)
    try:
        yield opened
    finally:
        opened.close()


def _show(page: Any, server: A11yServer, view: str) -> None:
    """Go to ``view`` (no reload) and wait until it shows its data."""
    page.goto(f"{server.base_url}/#/{view}")
    expect(page.locator(f"main[data-view={view}]")).to_have_count(1)
    if view in OPEN:
        opener = page.locator(OPEN[view]).first
        opener.wait_for(state="visible", timeout=WAIT_MS)
        if not page.locator(VIEWS[view]).first.is_visible():
            opener.click()
    page.locator(VIEWS[view]).first.wait_for(state="visible", timeout=WAIT_MS)


# --------------------------------------------------------------------------- axe-core


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("theme", THEMES)
@pytest.mark.parametrize("view", list(VIEWS))
def test_no_serious_or_critical_axe_violations(
    pages: Pages, a11y_server: A11yServer, axe_path: Path, view: str, theme: str, width: int
) -> None:
    page = pages.get(theme, width)
    _show(page, a11y_server, view)
    dark = page.evaluate("matchMedia('(prefers-color-scheme: dark)').matches")
    assert dark == (theme == "dark"), f"the page did not get the {theme} colour scheme"
    found = blocking(run_axe(page, axe_path))
    assert not found, (
        f"axe-core: {len(found)} serious or critical violation(s) on the {view} view, "
        f"{theme} theme, {width} px wide:\n{describe(found)}"
    )
    errors = pages.errors[(theme, width, True)]
    assert errors == [], f"the page raised: {errors}"


#: Forms that open over or under the bar: what opens each, and what then shows.
FORMS = {
    "token": ("[data-testid=token-button]", "[data-testid=token-input]"),
    "custom-range": ("[data-testid=custom-toggle]", "[data-testid=custom-from]"),
}


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("theme", THEMES)
@pytest.mark.parametrize("form", list(FORMS))
def test_open_forms_have_no_serious_or_critical_axe_violations(
    pages: Pages, a11y_server: A11yServer, axe_path: Path, form: str, theme: str, width: int
) -> None:
    page = pages.get(theme, width)
    _show(page, a11y_server, "overview")
    opener, shown = FORMS[form]
    page.locator(opener).click()
    expect(page.locator(shown)).to_be_visible()
    try:
        found = blocking(run_axe(page, axe_path))
    finally:
        page.keyboard.press("Escape")  # closes the form (the next test starts without it)
        page.reload()
    assert not found, (
        f"axe-core with the {form} form open, {theme} theme, {width} px wide:\n{describe(found)}"
    )


# --------------------------------------------------------------------------- phone width

#: The outermost elements that stick out past the viewport's right edge, not
#: inside a container that scrolls or clips them (what widens the page).
OVERFLOWING_JS = """() => {
    const width = window.innerWidth;
    const clips = (el) => {
        for (let p = el.parentElement; p && p !== document.body; p = p.parentElement) {
            if (getComputedStyle(p).overflowX !== "visible") return true;
        }
        return false;
    };
    const sticking = (el) => el.getBoundingClientRect().right > width + 0.5;
    const out = [];
    for (const el of document.body.querySelectorAll("*")) {
        if (!sticking(el) || clips(el)) continue;
        if (el.parentElement && el.parentElement !== document.body && sticking(el.parentElement)
            && !clips(el.parentElement)) continue;
        const id = el.getAttribute("data-testid");
        const names = typeof el.className === "string" ? el.className.trim() : "";
        const cls = names ? "." + names.split(/\\s+/).join(".") : "";
        out.push(`${el.tagName.toLowerCase()}${id ? `[data-testid=${id}]` : ""}${cls} `
            + `(right edge ${Math.round(el.getBoundingClientRect().right)} px)`);
    }
    return {
        scrollWidth: document.documentElement.scrollWidth,
        innerWidth: width,
        offenders: out.slice(0, 12),
    };
}"""


@pytest.mark.parametrize("view", list(VIEWS))
def test_no_view_scrolls_sideways_at_390px(
    pages: Pages, a11y_server: A11yServer, view: str
) -> None:
    page = pages.get("light", 390)
    _show(page, a11y_server, view)
    found = page.evaluate(OVERFLOWING_JS)
    assert found["scrollWidth"] <= found["innerWidth"], (
        f"the {view} view is {found['scrollWidth']} px wide in a {found['innerWidth']} px "
        f"window; what sticks out: {found['offenders']}"
    )


# --------------------------------------------------------------------------- keyboard

#: What looks clickable (a pointer cursor) in the view but Tab cannot reach: not
#: a control itself, not inside one, holding none (a clickable row passes with a
#: button or link in it, as its main cell should). A scrolling region's
#: tabindex does not count: it lets the keyboard scroll, not act.
POINTER_ONLY_JS = """() => {
    const WIDGETS = ["button", "link", "row", "gridcell", "option", "tab", "menuitem",
        "menuitemcheckbox", "menuitemradio", "checkbox", "radio", "switch", "treeitem"]
        .map((r) => `[tabindex]:not([tabindex="-1"])[role=${r}]`).join(", ");
    const FOCUSABLE = 'a[href], button:not([disabled]), input:not([disabled]), '
        + 'select:not([disabled]), textarea:not([disabled]), summary, ' + WIDGETS;
    const pointer = (el) => getComputedStyle(el).cursor === "pointer";
    const out = [];
    for (const el of document.querySelectorAll("main *")) {
        if (!pointer(el) || el.closest("label") || el.closest(FOCUSABLE)) continue;
        if (el.querySelector(FOCUSABLE)) continue;
        const parent = el.parentElement;
        // Report the outermost of nested clickable things only.
        if (parent && pointer(parent) && !parent.closest(FOCUSABLE)) continue;
        const id = el.getAttribute("data-testid");
        const text = (el.innerText || "").trim().replace(/\\s+/g, " ").slice(0, 40);
        out.push(`${el.tagName.toLowerCase()}${id ? `[data-testid=${id}]` : ""} "${text}"`);
    }
    return out;
}"""


@pytest.mark.parametrize("view", list(VIEWS))
def test_everything_clickable_is_reachable_by_keyboard(
    pages: Pages, a11y_server: A11yServer, view: str
) -> None:
    page = pages.get("light", 1280)
    _show(page, a11y_server, view)
    click_only = page.evaluate(POINTER_ONLY_JS)
    assert click_only == [], (
        f"the {view} view has things to click that Tab cannot reach (make the row's main "
        f"cell a <button class=row-button> or <a>, or give it tabindex=0, a role and "
        f"Enter/Space handlers): {click_only}"
    )


#: The focused element: a name for it, whether it shows a focus indicator, and
#: the test ids of it and its ancestors. Marks it so a second visit ends the walk.
FOCUSED_JS = """(step) => {
    const el = document.activeElement;
    if (!el || el === document.body || el === document.documentElement) return null;
    const cs = getComputedStyle(el);
    const outline = cs.outlineStyle !== "none" && parseFloat(cs.outlineWidth) > 0;
    const shadow = cs.boxShadow && cs.boxShadow !== "none";
    const seen = el.getAttribute("data-a11y-tab");
    if (seen === null) el.setAttribute("data-a11y-tab", String(step));
    const ids = [];
    for (let p = el; p; p = p.parentElement) {
        const id = p.getAttribute && p.getAttribute("data-testid");
        if (id) ids.push(id);
    }
    const label = (el.getAttribute("aria-label") || el.textContent || "").trim().slice(0, 40);
    return {
        name: `${el.tagName.toLowerCase()}${ids.length ? `[${ids[0]}]` : ""} "${label}"`,
        ids,
        indicator: Boolean(outline || shadow),
        focusVisible: el.matches(":focus-visible"),
        again: seen !== null,
    };
}"""


@dataclass
class Walk:
    """What Tab reached, in order, and which of those showed no focus indicator."""

    reached: list[dict[str, Any]]

    def ids(self) -> set[str]:
        return {i for step in self.reached for i in step["ids"]}

    def without_indicator(self) -> list[str]:
        return [s["name"] for s in self.reached if not (s["indicator"] and s["focusVisible"])]


def _tab(page: Any, steps: int, *, until: str | None = None) -> Walk:
    """Press Tab up to ``steps`` times; stop at ``until``'s test id or a visited element."""
    page.evaluate(
        "() => document.querySelectorAll('[data-a11y-tab]')"
        ".forEach((e) => e.removeAttribute('data-a11y-tab'))"
    )
    reached: list[dict[str, Any]] = []
    for step in range(steps):
        page.keyboard.press("Tab")
        info = page.evaluate(FOCUSED_JS, step)
        if info is None:
            continue
        if info["again"]:
            break
        reached.append(info)
        if until is not None and until in info["ids"]:
            break
    return Walk(reached)


def _fresh(pages: Pages, server: A11yServer, view: str) -> Any:
    """A page loaded on ``view`` with focus at the top of the document."""
    page = pages.get("light", 1280, bypass_csp=False)
    page.goto(f"{server.base_url}/#/{view}")
    page.reload()
    ready = OPEN.get(view, VIEWS[view])
    page.locator(ready).first.wait_for(state="visible", timeout=WAIT_MS)
    return page


def test_skip_link_moves_focus_to_the_view(pages: Pages, a11y_server: A11yServer) -> None:
    page = _fresh(pages, a11y_server, "findings")
    hash_before = page.evaluate("location.hash")
    page.keyboard.press("Tab")
    skip = page.get_by_test_id("skip-link")
    expect(skip).to_be_focused()
    box = skip.bounding_box()
    assert box is not None and box["y"] >= 0, f"the focused skip link is off screen: {box}"
    page.keyboard.press("Enter")
    page.wait_for_function("document.activeElement && document.activeElement.tagName === 'MAIN'")
    assert page.evaluate("location.hash") == hash_before, "the skip link changed the view"
    expect(page.locator("main[data-view=findings]")).to_have_count(1)


def test_tab_reaches_navigation_and_scope_controls_with_visible_focus(
    pages: Pages, a11y_server: A11yServer
) -> None:
    page = _fresh(pages, a11y_server, "overview")
    walk = _tab(page, 120)
    assert walk.reached, "Tab focused nothing on the overview"
    assert walk.without_indicator() == [], (
        f"focused without a visible focus indicator: {walk.without_indicator()}"
    )
    wanted = {f"nav-{v}" for v in VIEWS} | {"scope-target", "scope-host", "live-toggle"}
    missing = wanted - walk.ids()
    assert not missing, (
        f"Tab never reached {sorted(missing)}; it reached: {[s['name'] for s in walk.reached]}"
    )


def test_keyboard_alone_opens_an_alert_and_acknowledges_it(
    pages: Pages, a11y_server: A11yServer
) -> None:
    page = _fresh(pages, a11y_server, "alerts")
    to_row = _tab(page, 150, until="alert-open")
    assert "alert-open" in to_row.ids(), (
        f"Tab never reached an alert of the list; it reached: {[s['name'] for s in to_row.reached]}"
    )
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("alert-detail").get_by_test_id("ack-author")).to_be_visible()
    to_author = _tab(page, 80, until="ack-author")
    assert "ack-author" in to_author.ids(), (
        "Tab never reached the acknowledge form's author field; it reached: "
        f"{[s['name'] for s in to_author.reached]}"
    )
    page.keyboard.type("dana")
    to_button = _tab(page, 10, until="ack-submit")
    assert "ack-submit" in to_button.ids(), (
        "Tab never reached the acknowledge button; it reached: "
        f"{[s['name'] for s in to_button.reached]}"
    )
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("ack-by")).to_contain_text("dana")
    walked = to_row.reached + to_author.reached + to_button.reached
    blind = [s["name"] for s in walked if not (s["indicator"] and s["focusVisible"])]
    assert blind == [], f"focused without a visible focus indicator: {blind}"


def test_phone_width_menu_and_scope_by_keyboard(
    pages: Pages, a11y_server: A11yServer, axe_path: Path
) -> None:
    """At 390 px the views menu opens from the keyboard, fits, passes axe, and leads on."""
    page = pages.get("light", 390, bypass_csp=False)
    page.goto(f"{a11y_server.base_url}/#/overview")
    page.reload()
    page.locator(VIEWS["overview"]).first.wait_for(state="visible", timeout=WAIT_MS)
    to_menu = _tab(page, 20, until="nav-menu")
    assert "nav-menu" in to_menu.ids(), (
        f"Tab never reached the views menu; it reached: {[s['name'] for s in to_menu.reached]}"
    )
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("nav-menu")).to_have_attribute("aria-expanded", "true")
    expect(page.get_by_test_id("nav-findings")).to_be_visible()
    found = page.evaluate(OVERFLOWING_JS)
    assert found["scrollWidth"] <= found["innerWidth"], (
        f"with the menu open the page is {found['scrollWidth']} px wide: {found['offenders']}"
    )
    to_link = _tab(page, 20, until="nav-findings")
    assert "nav-findings" in to_link.ids(), (
        f"Tab never reached the menu's links; it reached: {[s['name'] for s in to_link.reached]}"
    )
    page.keyboard.press("Enter")
    expect(page.locator("main[data-view=findings]")).to_have_count(1)
    expect(page.get_by_test_id("nav-menu")).to_have_attribute("aria-expanded", "false")
    rest = _tab(page, 40, until="scope-target")
    assert "scope-target" in rest.ids(), (
        f"Tab never reached the scope bar; it reached: {[s['name'] for s in rest.reached]}"
    )
    walked = to_menu.reached + to_link.reached + rest.reached
    blind = [s["name"] for s in walked if not (s["indicator"] and s["focusVisible"])]
    assert blind == [], f"focused without a visible focus indicator: {blind}"

    # The open menu in axe's eyes (on the page that lets axe's script tag in).
    axe_page = pages.get("light", 390)
    _show(axe_page, a11y_server, "overview")
    axe_page.get_by_test_id("nav-menu").click()
    expect(axe_page.get_by_test_id("nav-findings")).to_be_visible()
    bad = blocking(run_axe(axe_page, axe_path))
    axe_page.keyboard.press("Escape")
    assert not bad, f"axe-core with the views menu open at 390 px:\n{describe(bad)}"
