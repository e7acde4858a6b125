"""``secperf demo``: the service, its load, periodic scans and correlations, under ``up``.

Everything lives under ``<project>/.secperf/demo/`` and starts fresh each run:

- ``project/``: the sample vulnerable project (``secperf.demo.sample``);
- ``osv/``: OSV records matching its pinned dependencies (scanned offline);
- ``secperf.toml`` and ``alert-rules.toml``: the configuration the demo runs
  with, written for this run (the service's scrape target included), readable
  as an example;
- ``secperf.db``: the demo's own store, so a real project's store is untouched.

The order service (``secperf.demo.service``) and the load generator
(``secperf.demo.load``) run as child processes, as a real service and its
clients would: the scans' CPU use competes with the service for the machine,
which is what the demo shows. ``commands.up.run_up`` does the rest - scan and
watch, collectors (the service is a Prometheus scrape target), alert engine
and dashboard. The scan cache is off, so the rescan that follows each
periodic edit of the project is a full scan. Every ``correlate_every_s`` the
correlation of scans with the stored series is computed and stored, and the
latest scan is judged by the quality gate, so the Correlations and Gate views
fill without anyone running ``secperf correlate`` or ``secperf gate``.

With ``duration_s`` the demo runs one last correlation and gate, then stops the way
Ctrl-C does (SIGINT to itself: the server shuts down gracefully, the bus
drains, the store flushes).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from secperf.analysis.correlate_store import CorrelationRun, run_correlation
from secperf.analysis.correlation import CorrelationOptions
from secperf.commands.gate import GateOptions, run_gate
from secperf.commands.up import UpOptions, run_up
from secperf.config import LoadedConfig, load_config
from secperf.events import now_ms
from secperf.model import GateResult
from secperf.security.validator import ScanReport
from secperf.store import Store

log = logging.getLogger(__name__)

DEMO_DIR = Path(".secperf") / "demo"
SERVICE_JOB = "acme-shop"
#: The file the periodic edit touches; any change makes ``up`` rescan.
EDITED_FILE = Path("shop") / "__init__.py"
SERVICE_START_TIMEOUT_S = 15.0
CHILD_STOP_TIMEOUT_S = 5.0


class DemoError(RuntimeError):
    """The demo cannot start (its service, its files); the message says what and where."""


@dataclass(frozen=True, slots=True)
class DemoOptions:
    """What the command line sets; ``root`` is the project the demo works under."""

    root: Path
    host: str | None = None
    port: int | None = None
    duration_s: float | None = None
    scan_every_s: float = 30.0
    correlate_every_s: float = 60.0
    rps: float = 50.0
    clients: int = 4
    modules: int = 40
    scrape_interval_s: float = 1.0

    def __post_init__(self) -> None:
        for name in ("scan_every_s", "correlate_every_s", "rps", "scrape_interval_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if self.duration_s is not None and not self.duration_s > 0:
            raise ValueError(f"duration_s must be > 0, got {self.duration_s}")
        if self.clients < 1:
            raise ValueError(f"clients must be at least 1, got {self.clients}")
        if self.modules < 0:
            raise ValueError(f"modules must be 0 or more, got {self.modules}")

    @property
    def workdir(self) -> Path:
        return self.root / DEMO_DIR


@dataclass(frozen=True, slots=True)
class DemoLayout:
    """Where the demo's files are."""

    workdir: Path

    @property
    def project(self) -> Path:
        return self.workdir / "project"

    @property
    def osv(self) -> Path:
        return self.workdir / "osv"

    @property
    def config(self) -> Path:
        return self.workdir / "secperf.toml"

    @property
    def rules(self) -> Path:
        return self.workdir / "alert-rules.toml"

    @property
    def store(self) -> Path:
        return self.workdir / "secperf.db"


def prepare(options: DemoOptions) -> DemoLayout:
    """Write the sample project and the OSV records; remove the previous run's store."""
    from secperf.demo.sample import write_osv_records, write_sample_project

    layout = DemoLayout(options.workdir)
    try:
        layout.workdir.mkdir(parents=True, exist_ok=True)
        write_sample_project(layout.project, modules=options.modules)
        write_osv_records(layout.osv)
        for suffix in ("", "-wal", "-shm"):
            Path(f"{layout.store}{suffix}").unlink(missing_ok=True)
    except OSError as exc:
        raise DemoError(f"cannot prepare the demo in {layout.workdir}: {exc}") from None
    return layout


def _toml_string(value: str) -> str:
    # A JSON string is a valid TOML basic string.
    return json.dumps(value)


def config_text(layout: DemoLayout, service_url: str, options: DemoOptions) -> str:
    """The demo's ``secperf.toml``: its store, scanners, scrape target and rule file."""
    interval = f"{round(options.scrape_interval_s * 1000)}ms"
    return f"""\
# Written by `secperf demo` for this run; it is rewritten on the next run.
# Read it as an example: a scan without a cache, a Prometheus target and a rule file.

[store]
url = {_toml_string(str(layout.store))}

[scan]
scanners = ["bandit", "secrets", "deps"]
# Every rescan is a full scan (as in CI), so each one costs real CPU.
cache = false
respect_gitignore = false

[scan.deps]
osv_db = {_toml_string(str(layout.osv))}

[scan.impact]
# The scans share the machine with the order service: their workers run at low
# priority. To throttle them while the service's p95 latency is more than 10 %
# over its level before the scan (and see the stretches in the dashboard):
# guard = ['response_time_ms{{job="{SERVICE_JOB}",quantile="0.95"}}']

[monitor]
interval = "1s"

[[monitor.prometheus.targets]]
name = "{SERVICE_JOB}"
url = {_toml_string(service_url + "/metrics")}
interval = "{interval}"
timeout = "{interval}"

[alerts]
evaluation_interval = "5s"
rule_files = [{_toml_string(str(layout.rules))}]
"""


RULES_TEXT = f"""\
# Written by `secperf demo`: alert rules on the demo service's latency.

[[rules]]
name = "OrdersSlow"
metric = "response_time_ms"
matchers = ['job="{SERVICE_JOB}"', 'quantile="0.95"']
aggregation = "avg"
window = "15s"
op = ">"
threshold = 20.0
resolve_threshold = 10.0
severity = "high"
annotations = {{ summary = "p95 of orders at {{{{ $value }}}} ms" }}
"""


# --------------------------------------------------------------------------- children


def _read_first_line(proc: subprocess.Popen[str], timeout_s: float) -> str:
    """The child's first line of output within ``timeout_s`` ("" if none came)."""
    if proc.stdout is None:
        raise ValueError("the child's output must be a pipe")
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.1)
        if ready:
            return proc.stdout.readline().strip()
        if proc.poll() is not None:
            return ""
    return ""


def start_service(options: DemoOptions) -> tuple[subprocess.Popen[str], str]:
    """Start the order service on a free loopback port; returns the process and its URL."""
    command = [
        sys.executable,
        "-m",
        "secperf.demo.service",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--parent-pid",
        str(os.getpid()),
    ]
    # Its own session: a Ctrl-C in the terminal reaches secperf, which stops it in order.
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, start_new_session=True)
    line = _read_first_line(proc, SERVICE_START_TIMEOUT_S)
    prefix = "listening on "
    if not line.startswith(prefix):
        stop_child(proc)
        raise DemoError(
            f"the demo service did not start within {SERVICE_START_TIMEOUT_S:g} s "
            f"(exit code {proc.returncode}, output {line!r}); run `{' '.join(command[:3])}` "
            "to see why"
        )
    return proc, line.removeprefix(prefix)


def start_load(options: DemoOptions, service_url: str) -> subprocess.Popen[str]:
    """Start the load generator against ``service_url``."""
    command = [
        sys.executable,
        "-m",
        "secperf.demo.load",
        service_url,
        "--rps",
        f"{options.rps:g}",
        "--clients",
        str(options.clients),
        "--parent-pid",
        str(os.getpid()),
    ]
    return subprocess.Popen(command, text=True, start_new_session=True)


def stop_child(proc: subprocess.Popen[str]) -> None:
    """SIGTERM, then SIGKILL after ``CHILD_STOP_TIMEOUT_S``; never raises."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(OSError):
        proc.terminate()
    try:
        proc.wait(CHILD_STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(OSError):
            proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(CHILD_STOP_TIMEOUT_S)
    if proc.stdout is not None:
        proc.stdout.close()


# --------------------------------------------------------------------------- periodic work


def edit_project(project: Path) -> None:
    """Touch the edited file: ``up`` sees the change and rescans (in full: no cache)."""
    os.utime(project / EDITED_FILE)


async def rescan_every(project: Path, every_s: float) -> None:
    """Edit the project every ``every_s`` seconds until cancelled."""
    while True:
        await asyncio.sleep(every_s)
        try:
            await asyncio.to_thread(edit_project, project)
        except OSError as exc:  # the user removed the demo's files; say so once a period
            log.warning("cannot edit the demo project %s: %s", project, exc)


def guard_ms(scan_every_s: float) -> int:
    """The margin kept free of quiet windows around each scan, for scans this far apart.

    The default (60 s) suits scans minutes or hours apart; the demo scans every
    30 s, and its service recovers as soon as a scan's CPU use stops, so a sixth
    of the period (2 s to 60 s) keeps quiet windows clear of the scans while
    leaving room for them.
    """
    return int(min(60_000, max(2_000, scan_every_s * 1000 / 6)))


class Correlator:
    """Runs ``run_correlation`` over the demo's time so far, on its own store connection.

    The connection opens at the first run, when ``up`` has long created and
    migrated the store.
    """

    def __init__(self, store_url: str, since_ms: int, guard: int = 60_000) -> None:
        self.store_url = store_url
        self.since_ms = since_ms
        self.options = CorrelationOptions(guard_ms=guard)
        self.runs = 0
        self._store: Store | None = None

    def run(self) -> CorrelationRun:
        """Compute and store one run (blocking: call it in a thread)."""
        if self._store is None:
            self._store = Store.open(self.store_url)
        run = run_correlation(self._store, self.since_ms, now_ms(), options=self.options)
        if run.id is not None:
            self.runs += 1
        return run

    def latest_scan_id(self) -> str | None:
        """The newest scan that ended whole, by status (blocking: call it in a thread)."""
        if self._store is None:
            self._store = Store.open(self.store_url)
        finished = [s for s in self._store.scans(limit=10) if s.complete]
        return finished[0].scan_id if finished else None

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None


@dataclass(frozen=True, slots=True)
class Analysis:
    """What the periodic analysis reports to: one callback per correlation and gate run."""

    loaded: LoadedConfig
    project: Path
    on_correlation: Callable[[CorrelationRun], None]
    on_gate: Callable[[GateResult], None]


async def analyse(correlator: Correlator, analysis: Analysis) -> None:
    """Correlate scans with the series so far, then judge the latest scan with the gate.

    The gate run is stored like any ``secperf gate --scan-id`` run, so the
    Gate view shows whether this project would be released.
    """
    try:
        run = await asyncio.to_thread(correlator.run)
    except Exception:  # one failed run must not stop the demo
        log.exception("correlation run failed")
    else:
        analysis.on_correlation(run)
    try:
        scan_id = await asyncio.to_thread(correlator.latest_scan_id)
        if scan_id is None:
            return
        outcome = await run_gate(
            analysis.loaded, GateOptions(root=analysis.project, scan_id=scan_id)
        )
    except Exception:
        log.exception("gate run failed")
        return
    analysis.on_gate(outcome.result)


async def analyse_every(correlator: Correlator, every_s: float, analysis: Analysis) -> None:
    """Run ``analyse`` every ``every_s`` seconds until cancelled."""
    while True:
        await asyncio.sleep(every_s)
        await analyse(correlator, analysis)


async def stop_after(duration_s: float, last: Callable[[], Awaitable[None]]) -> None:
    """After ``duration_s``, run ``last`` then stop as Ctrl-C does."""
    await asyncio.sleep(duration_s)
    try:
        await last()
    except Exception:  # the demo stops all the same
        log.exception("the last analysis failed")
    # Not in a finally: cancelled (by a Ctrl-C already under way), it must not signal again.
    signal.raise_signal(signal.SIGINT)


# --------------------------------------------------------------------------- the run


async def run_demo(
    options: DemoOptions,
    *,
    say: Callable[[str], None],
    on_report: Callable[[ScanReport], None],
    on_correlation: Callable[[CorrelationRun], None],
    on_gate: Callable[[GateResult], None],
) -> None:
    """Run the demo until Ctrl-C, SIGTERM or ``duration_s``; the children always stop."""
    layout = await asyncio.to_thread(prepare, options)
    children: list[subprocess.Popen[str]] = []
    tasks: list[asyncio.Task[None]] = []
    correlator: Correlator | None = None
    try:
        service, url = await asyncio.to_thread(start_service, options)
        children.append(service)
        children.append(start_load(options, url))
        layout.rules.write_text(RULES_TEXT, "utf-8")
        layout.config.write_text(config_text(layout, url, options), "utf-8")
        loaded = load_config(layout.config, project_dir=layout.project)
        say(
            f"demo: order service {url} under {options.rps:g} requests/s"
            f" from {options.clients} clients"
        )
        say(
            f"demo: scanning {layout.project} every {options.scan_every_s:g} s (full scans),"
            f" correlating every {options.correlate_every_s:g} s"
        )
        say(f"demo: configuration {layout.config}")

        correlator = Correlator(loaded.config.store.url, now_ms(), guard_ms(options.scan_every_s))
        analysis = Analysis(loaded, layout.project, on_correlation, on_gate)
        active = correlator

        async def last_analysis() -> None:
            await analyse(active, analysis)

        tasks.append(asyncio.create_task(rescan_every(layout.project, options.scan_every_s)))
        tasks.append(
            asyncio.create_task(analyse_every(correlator, options.correlate_every_s, analysis))
        )
        if options.duration_s is not None:
            tasks.append(asyncio.create_task(stop_after(options.duration_s, last_analysis)))
        await run_up(
            loaded,
            UpOptions(root=layout.project, host=options.host, port=options.port),
            say=say,
            on_report=on_report,
        )
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for child in reversed(children):  # the load first, then the service
            stop_child(child)
        if correlator is not None:
            correlator.close()
