"""The dashboard in real headless Chromium, served by the real secperf app.

The store: 20 targets (three scans each, with findings) and 24 h of 50 series
per host on four hosts at one sample a minute, plus one 1 s series, written
through the store's API. Figures, each beside an anchor measured in the same
run:
* event to visible: a ScanCompleted published on the bus until the overview's
  critical count shows it (p95 over many events); anchor: the same events
  arriving at a bare EventSource in the same page (transport only);
* first load of the overview: navigation start until the security counts and
  the three performance sparklines are drawn, median of cold loads (a new
  browser context each, so nothing is cached; after one load not counted,
  which warms the server); anchor: a bare page fetching
  the same API answers the dashboard fetched (recorded from its load) and
  rendering nothing. The note says where the time goes (resource timing, the
  renderer's script and style/layout time, API calls made twice);
* bytes transferred by a cold first load of the overview (headers and bodies
  as the server sends them, compressed or not); anchor: the same responses
  uncompressed;
* chart: switching the performance view to 24 h of a 1 s series (86,400
  points, downsampled by the server to 1,000) with the scan windows and
  finding markers, until the overlays are drawn; anchor: a bare uPlot page
  fetching the same query and annotations and drawing the same band chart;
* frame rate while MetricsRecorded batches stream into a chart of three
  series (one-series chart when the view cannot show three: the figure says
  which); anchor: the frame rate of the same page idle;
* the JavaScript bundle, gzipped; anchor: uPlot alone, gzipped.

The fleet view's figures are the ``dashboard_fleet`` area
(bench_dashboard_fleet.py), which reuses the browser helpers here.
"""

from __future__ import annotations

import gzip
import json
import os
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from benchmarks.common import Figure
from secperf.bus.memory import AsyncEventBus
from secperf.events import MetricsRecorded, ScanCompleted
from secperf.model import Finding, Sample, SecurityMetrics, Severity, make_fingerprint
from secperf.store import Store, StoreWriter

AREA = "dashboard"
ROOT = Path(__file__).resolve().parent.parent
STATIC = ROOT / "src" / "secperf" / "web" / "static"
UPLOT_JS = ROOT / "dashboard" / "node_modules" / "uplot" / "dist" / "uPlot.iife.min.js"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VIEWPORT = {"width": 1400, "height": 900}
DAY_MS = 86_400_000
BIG_METRIC = "bench_latency_ms"
TARGETS = 20
SCANS_PER_TARGET = 3
HOSTS = 4
SERIES_PER_HOST = 50
OVERVIEW_TARGET_MS = 500.0
#: How long a load may take before the benchmark gives up on it (a loaded 2-core box).
WAIT_MS = 60_000


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def host_series(host: str) -> list[tuple[str, dict[str, str]]]:
    """A host's 50 series, labelled as the collectors label them."""
    out: list[tuple[str, dict[str, str]]] = [("cpu_percent", {"host": host})]
    out += [("cpu_percent", {"host": host, "cpu": str(c)}) for c in range(8)]
    out += [(n, {"host": host}) for n in ("memory_percent", "load_1m", "load_5m", "load_15m")]
    out += [
        ("response_time_ms", {"host": host, "endpoint": f"/api/{k}"})
        for k in range(SERIES_PER_HOST - len(out))
    ]
    return out


def _fill(store: Store, now: int) -> None:
    """20 targets with scans and findings; 24 h of 50 series a host at 1 min; one 1 s series."""
    start = now - DAY_MS
    for h in range(HOSTS):
        batch: list[Sample] = []
        for i, (name, labels) in enumerate(host_series(f"host-{h}")):
            for k in range(0, DAY_MS // 60_000):
                batch.append(Sample(name, labels, start + k * 60_000, 10.0 + (k * 7 + i) % 50))
        store.write_samples(batch)
    big = [
        Sample(BIG_METRIC, {"host": "host-0"}, start + k * 1000, 50.0 + (k * 13) % 97)
        for k in range(DAY_MS // 1000)
    ]
    store.write_samples(big)
    scans = TARGETS * SCANS_PER_TARGET
    for s in range(scans):
        target = f"project-{s % TARGETS:02d}"
        scan_id = f"bench-scan-{s:02d}"
        begin = start + s * (DAY_MS // scans) + 600_000
        end = begin + 300_000
        findings = [
            Finding(
                fingerprint=make_fingerprint(f"R{j}", f"{target}/m{j}.py", f"code {target} {j}"),
                rule_id=f"R{j}",
                scanner="bandit",
                severity=[Severity.HIGH, Severity.MEDIUM, Severity.LOW][j % 3],
                message="bench finding",
                path=f"{target}/m{j}.py",
                line=j + 1,
            )
            for j in range(3 + s % 4)
        ]
        counts = {"critical": 0, "high": 0, "medium": 0, "low": 0}
        for f in findings:
            counts[f.severity.value] += 1
        store.record_scan_started(scan_id, target, begin, ["bandit"])
        store.record_scan_completed(
            _metrics(scan_id, begin, end, counts, target), "ok", host=f"host-{s % HOSTS}"
        )
        store.add_findings(scan_id, findings, [f.fingerprint for f in findings])


def _metrics(
    scan_id: str, begin: int, end: int, counts: dict[str, int], target: str = "project-00"
) -> SecurityMetrics:
    return SecurityMetrics(
        scan_id=scan_id,
        target=target,
        started_ms=begin,
        finished_ms=end,
        scan_duration_ms=float(end - begin),
        violations_found=sum(counts.values()),
        false_positive_rate=0.0,
        vulnerability_severity_counts=counts,
        scan_coverage_percent=100.0,
        new_findings=sum(counts.values()),
    )


class Server:
    """The real app over a filled store, on a free loopback port, in a thread."""

    def __init__(self, tmp: Path, fill: Callable[[Store, int], None] = _fill) -> None:
        import uvicorn

        from secperf.web.app import create_app

        self.now = int(time.time() * 1000)
        self.store = Store.open(tmp / "bench.db")
        fill(self.store, self.now)
        self.bus = AsyncEventBus()
        writer = StoreWriter(self.store, flush_interval_s=0.5)
        app = create_app(self.store, self.bus, writer=writer, manage_writer=True)
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the benchmark server did not start")
            time.sleep(0.02)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.store.close()


@contextmanager
def chromium() -> Iterator[Any]:
    """Debian's Chromium, headless, through Playwright."""
    from playwright.sync_api import sync_playwright

    pw = sync_playwright().start()
    try:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()
    finally:
        pw.stop()


def can_run() -> bool:
    """Whether Chromium and the dashboard's build are there."""
    return CHROMIUM.exists() and (STATIC / "index.html").exists()


def _bundle_sizes() -> tuple[float, float | None]:
    js = sum(len(gzip.compress(p.read_bytes(), 9)) for p in (STATIC / "assets").glob("*.js"))
    anchor = len(gzip.compress(UPLOT_JS.read_bytes(), 9)) / 1000 if UPLOT_JS.exists() else None
    return js / 1000, anchor


# --------------------------------------------------------------------------- cold loads

BARE_FETCH = """<!doctype html><html><body><script>
const urls = %s;
Promise.all(urls.map(u => fetch(u).then(r => r.arrayBuffer())))
  .then(() => { window.__done = performance.now(); });
</script></body></html>"""

#: Where a load's time goes, from the page's own timing entries (ms from navigation start).
TIMINGS = """() => {
  const nav = performance.getEntriesByType('navigation')[0];
  const res = performance.getEntriesByType('resource');
  const js = res.filter(r => r.name.endsWith('.js'));
  const api = res.filter(r => r.name.includes('/api/') && !r.name.includes('/stream'));
  const max = (xs, f) => xs.length ? Math.max(...xs.map(f)) : 0;
  const min = (xs, f) => xs.length ? Math.min(...xs.map(f)) : 0;
  return {html: nav.responseEnd, js: max(js, r => r.responseEnd),
    dcl: nav.domContentLoadedEventEnd, api_first: min(api, r => r.startTime),
    api_last: max(api, r => r.responseEnd), api_count: api.length,
    api_slowest: max(api, r => r.responseEnd - r.startTime),
    slowest_path: api.length ? new URL(api.reduce((a, b) =>
      b.responseEnd - b.startTime > a.responseEnd - a.startTime ? b : a).name).pathname : ''};
}"""

TIMING_KEYS = ("html", "js", "dcl", "api_first", "api_last", "api_slowest", "script", "layout")


@dataclass
class Load:
    """One cold load: when the view was ready, its API requests and its resource timings."""

    ready_ms: float
    api_urls: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    slowest_path: str = ""
    repeats: int = 0  # API calls asking again what an earlier call of the load asked


def repeated_calls(urls: list[str]) -> int:
    """How many of ``urls`` ask again what an earlier one asked (the time range aside)."""
    from urllib.parse import parse_qsl, urlencode, urlsplit

    def asked(url: str) -> str:
        parts = urlsplit(url)
        query = [(k, v) for k, v in parse_qsl(parts.query) if k not in ("start_ms", "end_ms")]
        return f"{parts.path}?{urlencode(sorted(query))}"

    return len(urls) - len({asked(u) for u in urls})


def _is_api(url: str) -> bool:
    return "/api/" in url and "/api/v1/stream" not in url


class NotReady(RuntimeError):
    """A view never showed what a benchmark waits for; says what the page did instead."""


def cold_load(browser: Any, url: str, ready: str, arg: Any = None, attempts: int = 3) -> Load:
    """Open ``url`` in a new browser context (empty cache) and wait for ``ready`` (JS).

    ``ready`` returns ``performance.now()`` (ms since navigation start) once the view
    shows what is measured, else null. The context has no request routing (routing
    would slow every request). A load whose static files were missing (the build
    being replaced while it ran) is tried again, up to ``attempts`` loads.
    """
    for attempt in range(1, attempts + 1):
        try:
            return _cold_load(browser, url, ready, arg)
        except NotReady as exc:
            if "/assets/" not in str(exc) or attempt == attempts:
                raise
    raise AssertionError("unreachable")


def _cold_load(browser: Any, url: str, ready: str, arg: Any) -> Load:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    context = browser.new_context(viewport=VIEWPORT)
    try:
        context.set_default_timeout(WAIT_MS)
        page = context.new_page()
        cdp = context.new_cdp_session(page)
        cdp.send("Performance.enable")
        api: list[str] = []
        problems: list[str] = []
        page.on("request", lambda r: api.append(r.url) if _is_api(r.url) else None)
        page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
        page.on(
            "response",
            lambda r: problems.append(f"{r.status} {r.url}") if r.status >= 400 else None,
        )
        page.goto(url)
        try:
            ready_ms = float(page.wait_for_function(ready, arg=arg, polling=5).json_value())
        except PlaywrightTimeout:
            text = page.evaluate("() => document.body.innerText.slice(0, 300)")
            raise NotReady(
                f"{url}: not drawn within {WAIT_MS / 1000:.0f} s; problems: "
                f"{problems or 'none seen'}; the page reads: {text!r}"
            ) from None
        found = page.evaluate(TIMINGS)
        slowest = str(found.pop("slowest_path"))
        timings = {k: float(v) for k, v in found.items()}
        # The renderer's main thread so far (seconds, summed over the load).
        metrics = cdp.send("Performance.getMetrics")["metrics"]
        thread = {m["name"]: float(m["value"]) for m in metrics}
        timings["script"] = thread.get("ScriptDuration", 0.0) * 1000
        timings["layout"] = (
            thread.get("LayoutDuration", 0.0) + thread.get("RecalcStyleDuration", 0.0)
        ) * 1000
        return Load(ready_ms, list(dict.fromkeys(api)), timings, slowest, repeated_calls(api))
    finally:
        context.close()


def bare_fetch_ms(browser: Any, base: str, urls: list[str]) -> float:
    """A bare page (cold context) fetching ``urls`` at once: navigation start until all arrived."""
    context = browser.new_context(viewport=VIEWPORT)
    try:
        context.set_default_timeout(WAIT_MS)
        page = context.new_page()
        html = BARE_FETCH % json.dumps(urls)
        page.route(
            f"{base}/bench-fetch.html", lambda r: r.fulfill(body=html, content_type="text/html")
        )
        page.goto(f"{base}/bench-fetch.html")
        return float(page.wait_for_function("() => window.__done || null", polling=5).json_value())
    finally:
        context.close()


def machine_load() -> str:
    """The 1-minute load average beside the CPU count (what else the machine was doing)."""
    return f"1-min load average {os.getloadavg()[0]:.1f} on {os.cpu_count() or 0} CPUs"


def timing_note(loads: list[Load]) -> str:
    """Medians of where the loads' time went, for a figure's note."""
    med = {k: statistics.median(x.timings.get(k, 0.0) for x in loads) for k in TIMING_KEYS}
    calls = statistics.median(x.timings.get("api_count", 0.0) for x in loads)
    paths = [x.slowest_path for x in loads if x.slowest_path]
    slowest = max(set(paths), key=paths.count) if paths else "none"
    after = statistics.median(x.ready_ms - x.timings.get("api_last", 0.0) for x in loads)
    repeats = statistics.median(x.repeats for x in loads)
    return (
        f"median ms from navigation start: HTML {med['html']:.0f}, JS+CSS {med['js']:.0f},"
        f" first API request {med['api_first']:.0f}, last API answer {med['api_last']:.0f}"
        f" ({calls:.0f} API calls, {repeats:.0f} of them asking again what one asked before,"
        f" slowest {med['api_slowest']:.0f}, most often {slowest}),"
        f" drawn {after:.0f}"
        f" after the last answer; main thread busy with script {med['script']:.0f},"
        f" style + layout {med['layout']:.0f}"
    )


OVERVIEW_READY = """() => {
  const n = document.querySelector('[data-testid=sev-high] .n');
  const panel = document.querySelector('[data-testid=performance-status]');
  if (!n || !n.textContent.trim() || !panel) return null;
  const drawn = [...panel.querySelectorAll('polyline, canvas')]
    .filter(e => e.tagName === 'CANVAS' || (e.getAttribute('points') || '').length > 0);
  return drawn.length >= 3 ? performance.now() : null;
}"""


def _overview_loads(browser: Any, base: str, runs: int) -> tuple[list[Load], list[float]]:
    loads: list[Load] = []
    bare: list[float] = []
    cold_load(browser, f"{base}/#/overview", OVERVIEW_READY)  # warms the server, not counted
    for _ in range(runs):
        load = cold_load(browser, f"{base}/#/overview", OVERVIEW_READY)
        loads.append(load)
        bare.append(bare_fetch_ms(browser, base, load.api_urls))
    return loads, bare


@dataclass
class Bytes:
    """What a cold first load transferred."""

    wire: int = 0  # headers + bodies as sent
    raw: int = 0  # headers + decoded bodies
    packed: int = 0  # headers + gzip -9 of each body
    api_wire: int = 0  # the API answers' share of ``wire``
    responses: int = 0


def _wire_bytes(browser: Any, base: str) -> Bytes:
    """A cold first load of the overview: the bytes its responses took.

    Every response finished by the time the overview is drawn and its requests are done
    (the event stream, which never finishes, is left out): headers plus bodies as sent,
    beside headers plus the decoded bodies, and what gzip -9 would make of the bodies.
    """
    context = browser.new_context(viewport=VIEWPORT)
    try:
        context.set_default_timeout(WAIT_MS)
        page = context.new_page()
        pending: set[Any] = set()
        done: list[Any] = []
        page.on("request", lambda r: pending.add(r) if "/api/v1/stream" not in r.url else None)

        def finished(request: Any) -> None:
            pending.discard(request)
            done.append(request)

        page.on("requestfinished", finished)
        page.on("requestfailed", lambda r: pending.discard(r))
        page.goto(f"{base}/#/overview")
        page.wait_for_function(OVERVIEW_READY, polling=5)
        deadline = time.monotonic() + WAIT_MS / 1000
        while pending and time.monotonic() < deadline:
            page.wait_for_timeout(50)  # lets Playwright deliver the requests' events
        out = Bytes()
        for request in done:
            if "/api/v1/stream" in request.url:
                continue
            sizes = request.sizes()
            response = request.response()
            body = response.body() if response is not None else b""
            headers = int(sizes["responseHeadersSize"])
            wire = headers + int(sizes["responseBodySize"])
            out.wire += wire
            out.raw += headers + len(body)
            out.packed += headers + len(gzip.compress(body, 9))
            out.api_wire += wire if _is_api(request.url) else 0
            out.responses += 1
        return out
    finally:
        context.close()


# --------------------------------------------------------------------------- chart and stream

BARE_UPLOT = """<!doctype html><html><head><link rel="stylesheet" href="/bench-uplot.css">
<script src="/bench-uplot.js"></script></head><body><div id="c" style="width:1200px"></div><script>
window.__draw = async (name) => {
  const t0 = performance.now();
  const end = Date.now(), start = end - 86400000;
  const [q, a] = await Promise.all([
    fetch(`/api/v1/metrics/query?name=${name}&start_ms=${start}&end_ms=${end}&points=1000`)
      .then(r => r.json()),
    fetch(`/api/v1/annotations?start_ms=${start}&end_ms=${end}`).then(r => r.json())]);
  const s = q.series[0];
  const data = [s.timestamps_ms.map(t => t / 1000), s.min, s.max, s.avg];
  document.getElementById('c').innerHTML = '';
  new uPlot({width: 1200, height: 260, series: [{}, {}, {}, {stroke: 'blue'}],
    bands: [{series: [2, 1], fill: 'rgba(0,0,255,0.1)'}]}, data, document.getElementById('c'));
  return performance.now() - t0 + a.scans.length * 0;
};
</script></body></html>"""


def _route_uplot(page: Any, base: str) -> None:
    page.route(
        f"{base}/bench-uplot.html", lambda r: r.fulfill(body=BARE_UPLOT, content_type="text/html")
    )
    page.route(
        f"{base}/bench-uplot.js",
        lambda r: r.fulfill(path=str(UPLOT_JS), content_type="text/javascript"),
    )
    css = UPLOT_JS.with_name("uPlot.min.css")
    page.route(
        f"{base}/bench-uplot.css", lambda r: r.fulfill(path=str(css), content_type="text/css")
    )


CHART_READY = """(t0) => {
  const c = document.querySelector('[data-testid=chart]');
  return c && Number(c.dataset.points) >= 900 && Number(c.dataset.scanWindows) >= 20
    && Number(c.dataset.findingMarkers) > 0 ? performance.now() - t0 : null;
}"""


def _perf_hash(metric: str, span: str) -> str:
    """The performance view of ``metric`` over the last ``span`` (the shared range params,
    and the view's former own ``range`` param, for a build from before the shared range)."""
    return f"#/performance?metric={metric}&from=now-{span}&to=now&range={span}"


def _chart_ms(page: Any, base: str) -> tuple[float, float]:
    page.goto("about:blank")
    page.goto(f"{base}/{_perf_hash(BIG_METRIC, '15m')}")
    page.wait_for_selector("[data-testid=chart] canvas")
    t0 = float(page.evaluate("() => performance.now()"))
    # The range changes in the page (as a range button does), not by a reload.
    page.evaluate("(h) => { location.hash = h; }", _perf_hash(BIG_METRIC, "24h"))
    app = float(page.wait_for_function(CHART_READY, arg=t0, polling=5).json_value())
    page.goto(f"{base}/bench-uplot.html")
    bare = float(page.evaluate(f"() => window.__draw('{BIG_METRIC}')"))
    return app, bare


LATENCY_SETUP = """() => {
  window.__seen = {}; window.__raw = {};
  const target = document.querySelector('[data-testid=sev-critical] .n');
  new MutationObserver(() => { window.__seen[target.textContent] = Date.now(); })
    .observe(target, {characterData: true, childList: true, subtree: true});
  const es = new EventSource('/api/v1/stream?topics=security.>');
  es.addEventListener('ScanCompleted', (m) => {
    const c = JSON.parse(m.data).event.metrics.vulnerability_severity_counts.critical;
    window.__raw[c] = Date.now();
  });
  return new Promise((ok) => { es.onopen = () => ok(true); });
}"""


def _latency(page: Any, srv: Server, events: int) -> tuple[list[float], list[float]]:
    page.goto("about:blank")
    page.goto(f"{srv.url}/#/overview")
    page.wait_for_selector("[data-testid=sev-critical]")
    page.wait_for_function(
        "() => document.querySelector('[data-testid=connection]').textContent.includes('live')"
    )
    # The overview shows the most recently scanned target; the events are that target's.
    target = str(
        page.evaluate("() => fetch('/api/v1/overview').then(r => r.json()).then(j => j.target)")
    )
    page.evaluate(LATENCY_SETUP)
    ui: list[float] = []
    raw: list[float] = []
    for i in range(events):
        count = 1000 + i
        now = int(time.time() * 1000)
        event = ScanCompleted(
            metrics=_metrics(f"live-{i}", now - 1000, now, {"critical": count, "high": 0}, target)
        )
        srv.bus.publish_threadsafe(event)
        page.wait_for_function(
            f"() => window.__seen['{count}'] && window.__raw['{count}']", polling=5
        )
        seen, got = page.evaluate(f"() => [window.__seen['{count}'], window.__raw['{count}']]")
        ui.append(float(seen) - event.ts_ms)
        raw.append(float(got) - event.ts_ms)
        time.sleep(0.05)
    return ui, raw


FPS = """(ms) => new Promise((ok) => {
  let frames = 0; const t0 = performance.now();
  const tick = (t) => { frames++; if (t - t0 < ms) requestAnimationFrame(tick);
    else ok(frames * 1000 / (t - t0)); };
  requestAnimationFrame(tick);
})"""

#: The three series streamed into one chart: host-0's CPU and memory (%) and one
#: endpoint's latency (ms), so the chart has two y axes.
STREAMED: tuple[tuple[str, dict[str, str]], ...] = (
    ("cpu_percent", {"host": "host-0"}),
    ("memory_percent", {"host": "host-0"}),
    ("response_time_ms", {"host": "host-0", "endpoint": "/api/0"}),
)

#: The lines a chart draws (as it states them, else its uPlot legend), 0 when unknown.
CHART_SERIES = """() => {
  const c = document.querySelector('[data-testid=chart]');
  if (!c) return 0;
  if (c.dataset.lines) return Number(c.dataset.lines);
  return Math.max(0, c.querySelectorAll('.u-legend .u-series').length - 1);
}"""


def three_series_hash() -> str:
    """The performance view with the three STREAMED series on one chart, the last 15 min.

    The view's ``series`` parameter: ``;``-separated selectors ``name{label="value",...}``.
    """
    specs = ";".join(
        name + "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"
        for name, labels in STREAMED
    )
    return f"#/performance?series={quote(specs, safe='')}&from=now-15m&to=now"


def _fps(page: Any, srv: Server, seconds: float) -> tuple[float, float, int]:
    """Frame rate streaming, idle, and how many series the chart drew."""
    page.goto("about:blank")
    page.goto(f"{srv.url}/{three_series_hash()}")
    page.wait_for_selector("[data-testid=chart] canvas")
    drawn = int(page.evaluate(CHART_SERIES))
    if drawn < 3:  # a build without several series on one chart: the one-series chart
        page.goto("about:blank")
        page.goto(f"{srv.url}/{_perf_hash('cpu_percent', '15m')}")
        page.wait_for_selector("[data-testid=chart] canvas")
        drawn = 1
    idle = float(page.evaluate(FPS, seconds * 1000))
    stop = threading.Event()

    def feed() -> None:
        while not stop.is_set():
            now = int(time.time() * 1000)
            samples = tuple(
                Sample(name, labels, now, 20.0 + (now % 50)) for name, labels in STREAMED
            ) + tuple(
                Sample("cpu_percent", {"host": f"host-{h}"}, now, 20.0 + (now % 50))
                for h in range(1, HOSTS)
            )
            srv.bus.publish_threadsafe(MetricsRecorded(samples=samples))
            time.sleep(0.02)  # 50 batches/s

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    try:
        busy = float(page.evaluate(FPS, seconds * 1000))
    finally:
        stop.set()
        feeder.join()
    return busy, idle, drawn


def _median_pairs(runs: int, measure: Callable[[], tuple[float, float]]) -> tuple[float, float]:
    pairs = [measure() for _ in range(runs)]
    return statistics.median(p[0] for p in pairs), statistics.median(p[1] for p in pairs)


def _kb(n: float) -> str:
    return f"{n / 1000:,.1f} kB"


def run(quick: bool) -> list[Figure]:
    """Measure the dashboard figures (only the bundle's when Chromium or the build is missing)."""
    js_kb, uplot_kb = _bundle_sizes()
    figures = [
        Figure(
            AREA,
            "JavaScript bundle, gzipped",
            js_kb,
            "kB",
            "<= 250 kB",
            js_kb <= 250,
            "uPlot alone, gzipped",
            uplot_kb,
        ),
    ]
    if not can_run():
        return figures
    setting = (
        f"{TARGETS} targets x {SCANS_PER_TARGET} scans with findings,"
        f" 24 h of {SERIES_PER_HOST} series x {HOSTS} hosts at 1/min"
    )
    with tempfile.TemporaryDirectory() as tmp, chromium() as browser:
        srv = Server(Path(tmp))
        try:
            runs = 3 if quick else 7
            loads, bare = _overview_loads(browser, srv.url, runs)
            busy_at = machine_load()
            app_ms = statistics.median(x.ready_ms for x in loads)
            figures.append(
                Figure(
                    AREA,
                    "overview first load (cold), 20 targets, 24 h of 50 series a host",
                    app_ms,
                    "ms",
                    f"<= {OVERVIEW_TARGET_MS:.0f} ms",
                    app_ms <= OVERVIEW_TARGET_MS,
                    "bare page fetching the same API answers (cold)",
                    statistics.median(bare),
                    note=(
                        f"median of {runs} loads after one warm-up, each in a new browser"
                        f" context, navigation start until the severity counts and 3"
                        f" sparklines are drawn;"
                        f" {setting}; {timing_note(loads)}; {busy_at}"
                    ),
                )
            )
            sent = _wire_bytes(browser, srv.url)
            figures.append(
                Figure(
                    AREA,
                    "bytes transferred, overview first load (cold)",
                    sent.wire / 1000,
                    "kB",
                    "",
                    None,
                    "the same responses uncompressed",
                    sent.raw / 1000,
                    note=(
                        f"{sent.responses} responses, headers + bodies as served (the event"
                        f" stream left out); of which the API's JSON {_kb(sent.api_wire)}"
                        f" (served uncompressed), the static files (gzip) the rest; gzip -9 of"
                        f" every body would make {_kb(sent.packed)}"
                    ),
                )
            )
            page = browser.new_page(viewport=VIEWPORT)
            page.set_default_timeout(WAIT_MS)
            _route_uplot(page, srv.url)
            ui, raw_ms = _latency(page, srv, 10 if quick else 60)
            figures.append(
                Figure(
                    AREA,
                    "event published -> visible in the page, p95",
                    _p95(ui),
                    "ms",
                    "<= 150 ms",
                    _p95(ui) <= 150,
                    "bare EventSource receipt, p95",
                    _p95(raw_ms),
                    note=f"{len(ui)} ScanCompleted events; median {statistics.median(ui):.1f} ms",
                )
            )
            chart_runs = 1 if quick else 5
            app, bare_ms = _median_pairs(chart_runs, lambda: _chart_ms(page, srv.url))
            figures.append(
                Figure(
                    AREA,
                    "chart 24 h (86,400 points -> 1,000) with scan windows + markers",
                    app,
                    "ms",
                    "",
                    None,
                    "bare uPlot page, same query and data",
                    bare_ms,
                    note=f"median of {chart_runs}, from the range change until overlays are drawn",
                )
            )
            busy, idle, drawn = _fps(page, srv, 1.0 if quick else 5.0)
            what = (
                "three series"
                if drawn >= 3
                else "ONE series (this build cannot show three on one chart)"
            )
            figures.append(
                Figure(
                    AREA,
                    f"frame rate while 50 metric batches/s stream into a chart of {what}",
                    busy,
                    "fps",
                    "",
                    None,
                    "same page idle",
                    idle,
                    note=f"the chart drew {drawn} series; {1 if quick else 5} s each",
                )
            )
        finally:
            srv.stop()
    return figures
