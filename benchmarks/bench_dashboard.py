"""The dashboard in real headless Chromium, served by the real secperf app.

Figures, each beside an anchor measured in the same run:
* event to visible: a ScanCompleted published on the bus until the overview's
  critical count shows it (p95 over many events); anchor: the same events
  arriving at a bare EventSource in the same page (transport only);
* overview render with 24 h of 50 series in the store: navigation until the
  security counts and the three performance sparklines are drawn; anchor: a
  bare page fetching the same four API answers, rendering nothing;
* chart: switching the performance view to 24 h of a 1 s series (86,400
  points, downsampled by the server to 1,000) with 24 scan windows and
  finding markers, until the overlays are drawn; anchor: a bare uPlot page
  fetching the same query and annotations and drawing the same band chart;
* frame rate while MetricsRecorded batches stream into the visible chart;
  anchor: the frame rate of the same page idle;
* the JavaScript bundle, gzipped; anchor: uPlot alone, gzipped.
"""

from __future__ import annotations

import gzip
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

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
DAY_MS = 86_400_000
BIG_METRIC = "bench_latency_ms"


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def _fill(store: Store, now: int) -> None:
    """24 h of 50 series at 1 min, one 1 s series, 24 scans with findings."""
    batch: list[Sample] = []
    start = now - DAY_MS
    names = ["cpu_percent"] * 10 + ["memory_percent"] * 10 + ["load_1m"] * 10
    names += ["response_time_ms"] * 20
    for i, name in enumerate(names):
        labels = {"host": f"host-{i % 10}"} if i < 30 else {"endpoint": f"/api/{i}"}
        for k in range(0, DAY_MS // 60_000):
            batch.append(Sample(name, labels, start + k * 60_000, 10.0 + (k * 7 + i) % 50))
    store.write_samples(batch)
    big = [
        Sample(BIG_METRIC, {"host": "host-0"}, start + k * 1000, 50.0 + (k * 13) % 97)
        for k in range(DAY_MS // 1000)
    ]
    store.write_samples(big)
    for s in range(24):
        scan_id = f"bench-scan-{s:02d}"
        begin = start + s * 3_600_000 + 600_000
        end = begin + 300_000
        findings = [
            Finding(
                fingerprint=make_fingerprint(f"R{j}", f"src/m{s}.py", f"code {s} {j}"),
                rule_id=f"R{j}",
                scanner="bandit",
                severity=[Severity.HIGH, Severity.MEDIUM, Severity.LOW][j % 3],
                message="bench finding",
                path=f"src/m{s}.py",
                line=j + 1,
            )
            for j in range(3)
        ]
        store.record_scan_started(scan_id, "bench-repo", begin, ["bandit"])
        store.record_scan_completed(
            _metrics(scan_id, begin, end, {"critical": 0, "high": 1, "medium": 1, "low": 1}),
            "ok",
        )
        store.add_findings(scan_id, findings, [f.fingerprint for f in findings])


def _metrics(scan_id: str, begin: int, end: int, counts: dict[str, int]) -> SecurityMetrics:
    return SecurityMetrics(
        scan_id=scan_id,
        target="bench-repo",
        started_ms=begin,
        finished_ms=end,
        scan_duration_ms=float(end - begin),
        violations_found=sum(counts.values()),
        false_positive_rate=0.0,
        vulnerability_severity_counts=counts,
        scan_coverage_percent=100.0,
        new_findings=sum(counts.values()),
    )


class _Server:
    """The real app over a filled store, on a free loopback port, in a thread."""

    def __init__(self, tmp: Path) -> None:
        import uvicorn

        from secperf.web.app import create_app

        self.now = int(time.time() * 1000)
        self.store = Store.open(tmp / "bench.db")
        _fill(self.store, self.now)
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


def _bundle_sizes() -> tuple[float, float | None]:
    js = sum(len(gzip.compress(p.read_bytes(), 9)) for p in (STATIC / "assets").glob("*.js"))
    anchor = len(gzip.compress(UPLOT_JS.read_bytes(), 9)) / 1000 if UPLOT_JS.exists() else None
    return js / 1000, anchor


BARE_FETCH = """<!doctype html><html><body><script>
const end = Date.now(), start = end - 3600000;
const q = n => fetch(`/api/v1/metrics/query?name=${n}&start_ms=${start}&end_ms=${end}&points=60`)
  .then(r => r.json());
Promise.all([fetch('/api/v1/overview').then(r => r.json()),
  q('cpu_percent'), q('memory_percent'), q('load_1m')])
  .then(() => { window.__done = performance.now(); });
</script></body></html>"""

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


def _route_bare(page: Any, base: str) -> None:
    page.route(
        f"{base}/bench-fetch.html", lambda r: r.fulfill(body=BARE_FETCH, content_type="text/html")
    )
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


OVERVIEW_READY = """() => {
  const n = document.querySelector('[data-testid=sev-high] .n');
  const sparks = document.querySelectorAll('[data-testid=performance-status] polyline');
  return n && sparks.length === 3 ? performance.now() : null;
}"""


def _overview_ms(page: Any, base: str) -> tuple[float, float]:
    page.goto("about:blank")
    page.goto(f"{base}/#/overview")
    app = float(page.wait_for_function(OVERVIEW_READY, polling=5).json_value())
    page.goto("about:blank")
    page.goto(f"{base}/bench-fetch.html")
    bare = float(page.wait_for_function("() => window.__done || null", polling=5).json_value())
    return app, bare


CHART_READY = """(t0) => {
  const c = document.querySelector('[data-testid=chart]');
  return c && Number(c.dataset.points) >= 900 && Number(c.dataset.scanWindows) >= 20
    && Number(c.dataset.findingMarkers) > 0 ? performance.now() - t0 : null;
}"""


def _chart_ms(page: Any, base: str) -> tuple[float, float]:
    page.goto("about:blank")
    page.goto(f"{base}/#/performance?metric={BIG_METRIC}&range=15m")
    page.wait_for_selector("[data-testid=chart] canvas")
    t0 = float(page.evaluate("() => performance.now()"))
    page.get_by_role("button", name="24h").click()
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


def _latency(page: Any, srv: _Server, events: int) -> tuple[list[float], list[float]]:
    page.goto("about:blank")
    page.goto(f"{srv.url}/#/overview")
    page.wait_for_selector("[data-testid=sev-critical]")
    page.wait_for_function(
        "() => document.querySelector('[data-testid=connection]').textContent.includes('live')"
    )
    page.evaluate(LATENCY_SETUP)
    ui: list[float] = []
    raw: list[float] = []
    for i in range(events):
        count = 1000 + i
        now = int(time.time() * 1000)
        event = ScanCompleted(
            metrics=_metrics(f"live-{i}", now - 1000, now, {"critical": count, "high": 0})
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


def _fps(page: Any, srv: _Server, seconds: float) -> tuple[float, float]:
    page.goto("about:blank")
    page.goto(f"{srv.url}/#/performance?metric=cpu_percent&range=15m")
    page.wait_for_selector("[data-testid=chart] canvas")
    idle = float(page.evaluate(FPS, seconds * 1000))
    stop = threading.Event()

    def feed() -> None:
        while not stop.is_set():
            now = int(time.time() * 1000)
            samples = tuple(
                Sample("cpu_percent", {"host": f"host-{h}"}, now, 20.0 + (now % 50))
                for h in range(10)
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
    return busy, idle


def _median_pairs(runs: int, measure: Callable[[], tuple[float, float]]) -> tuple[float, float]:
    pairs = [measure() for _ in range(runs)]
    return statistics.median(p[0] for p in pairs), statistics.median(p[1] for p in pairs)


def run(quick: bool) -> list[Figure]:
    """Measure the dashboard figures (empty when Chromium or the build is missing)."""
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
    if not CHROMIUM.exists() or not (STATIC / "index.html").exists():
        return figures
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        srv = _Server(Path(tmp))
        pw = sync_playwright().start()
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.set_default_timeout(30_000)
            _route_bare(page, srv.url)
            ui, raw = _latency(page, srv, 10 if quick else 60)
            figures.append(
                Figure(
                    AREA,
                    "event published -> visible in the page, p95",
                    _p95(ui),
                    "ms",
                    "<= 150 ms",
                    _p95(ui) <= 150,
                    "bare EventSource receipt, p95",
                    _p95(raw),
                    note=f"{len(ui)} ScanCompleted events; median {statistics.median(ui):.1f} ms",
                )
            )
            runs = 1 if quick else 5
            app, bare = _median_pairs(runs, lambda: _overview_ms(page, srv.url))
            figures.append(
                Figure(
                    AREA,
                    "overview render, 24 h of 50 series stored",
                    app,
                    "ms",
                    "<= 1,000 ms",
                    app <= 1000,
                    "bare page fetching the same API answers",
                    bare,
                    note=f"median of {runs}, from navigation start",
                )
            )
            app, bare = _median_pairs(runs, lambda: _chart_ms(page, srv.url))
            figures.append(
                Figure(
                    AREA,
                    "chart 24 h (86,400 points -> 1,000) with 24 scan windows + markers",
                    app,
                    "ms",
                    "",
                    None,
                    "bare uPlot page, same query and data",
                    bare,
                    note=f"median of {runs}, from the range click until overlays are drawn",
                )
            )
            busy, idle = _fps(page, srv, 1.0 if quick else 5.0)
            figures.append(
                Figure(
                    AREA,
                    "frame rate while 50 metric batches/s stream into the chart",
                    busy,
                    "fps",
                    "",
                    None,
                    "same page idle",
                    idle,
                )
            )
        finally:
            browser.close()
            pw.stop()
            srv.stop()
    return figures
