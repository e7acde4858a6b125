"""``secperf up``: the main job on one machine.

Scans the project, watches it and rescans what changes (the content cache
makes a rescan cost only the changed files), collects system and process
metrics, evaluates alerts and serves the dashboard — all on one in-process bus
into one store. Ctrl-C stops everything cleanly: the bus drains and the writer
flushes before the store closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from secperf.alerts.engine import AlertEngine
from secperf.bus.factory import make_bus
from secperf.bus.interface import EventBus
from secperf.commands.pacing import ScanPacing
from secperf.commands.scanning import ScanCostRecorder
from secperf.commands.summary import LiveSummary, SummaryPoller, summary_series
from secperf.config import LoadedConfig, ServerConfig
from secperf.events import local_host, now_ms
from secperf.model import AlertState
from secperf.perf.collectors.factory import build_collectors
from secperf.perf.collectors.runner import CollectorRunner
from secperf.runtime import event_log_retention, scan_interruptibly
from secperf.security.factory import (
    ScanOptions,
    load_project_baseline,
    make_validator,
    scan_paths,
)
from secperf.security.pacing.prediction import record_prediction, try_predict
from secperf.security.pacing.schedule import (
    PeriodicScans,
    Settings,
    configured_guards,
    measure_host_cpu,
)
from secperf.security.validator import Progress, ScanReport, SecurityValidator
from secperf.siem.forwarder import SiemForwarder
from secperf.store import Store, StoreWriter
from secperf.store.follower import EventLogFollower, cursor_name
from secperf.store.maintenance import StoreMaintenance
from secperf.web.app import create_app
from secperf.web.providers import analysis_providers
from secperf.web.routes_report import ReportSettings
from secperf.web.routes_schedule import attach_schedule
from secperf.web.server import bind_socket, check_bind, run_app, socket_url

log = logging.getLogger(__name__)

#: How often the tree is checked for edits; a change is rescanned within a second.
WATCH_INTERVAL_S = 0.5
#: How often a due periodic scan looks at the guards again.
PERIODIC_POLL_S = 10.0


@dataclass(frozen=True, slots=True)
class UpOptions:
    """What the command line may change of the configuration."""

    root: Path
    host: str | None = None
    port: int | None = None
    scan: bool = True
    monitor: bool = True
    watch: bool = True


Snapshot = dict[str, tuple[int, int]]


class ScanWatcher:
    """Scans once, then rescans whenever a file's size or mtime changes."""

    def __init__(
        self,
        validator: SecurityValidator,
        root: Path,
        paths: list[str],
        *,
        on_report: Callable[[ScanReport], None],
        after_scan: Callable[[], Awaitable[object]] | None = None,
        interval_s: float = WATCH_INTERVAL_S,
        store: Store | None = None,
        periodic: PeriodicScans | None = None,
        pacing: ScanPacing | None = None,
        periodic_poll_s: float = PERIODIC_POLL_S,
    ) -> None:
        self.validator = validator
        # Low priority and the impact budget for every scan (None: full speed).
        self.pacing = pacing
        # Each scan is predicted from the store's history and its prediction stored there.
        self.store = store
        # ``[scan] every``: periodic scans besides the watching, started at quiet times.
        self.periodic = periodic
        self.periodic_poll_s = periodic_poll_s
        self.after_scan = after_scan
        self.root = root
        self.paths = paths
        self.on_report = on_report
        self.interval_s = interval_s
        self.scans = 0

    def _snapshot(self) -> Snapshot:
        found = self.validator.discovery.discover(self.root, self.paths)
        return {f.relpath: (f.size, f.mtime_ns) for f in found.files}

    async def scan(self) -> ScanReport:
        """Scan once; cancelled (the server stops), the scan is recorded as interrupted."""
        started = now_ms()
        prediction = None
        if self.store is not None:
            prediction = await asyncio.to_thread(
                try_predict, self.store, self.validator, self.root, self.paths, host=local_host()
            )
        if self.periodic is not None:
            # The next scan reads the same tree: it is planned by this one's prediction.
            self.periodic.scanned(
                started, prediction.duration_ms if prediction is not None else None
            )
        try:
            if self.pacing is not None:
                report = await self.pacing.scan(
                    self.validator,
                    self.root,
                    self.paths,
                    predicted_ms=prediction.duration_ms if prediction is not None else None,
                    prediction_basis=prediction.basis if prediction is not None else None,
                )
            else:
                report = await scan_interruptibly(self.validator, self.root, self.paths)
        finally:
            if self.after_scan is not None:
                await self.after_scan()
        if prediction is not None and self.store is not None:
            await asyncio.to_thread(
                record_prediction,
                self.store,
                report.scan_id,
                prediction,
                target=report.target,
                started_ms=report.metrics.started_ms,
            )
        self.scans += 1
        self.on_report(report)
        return report

    async def run(self, *, watch: bool) -> None:
        previous = await asyncio.to_thread(self._snapshot)
        await self.scan()
        polled = asyncio.get_running_loop().time()
        while watch or self.periodic is not None:
            await asyncio.sleep(self.interval_s)
            due = False
            if self.periodic is not None and (
                asyncio.get_running_loop().time() - polled >= self.periodic_poll_s
            ):
                polled = asyncio.get_running_loop().time()
                why = await asyncio.to_thread(self.periodic.poll, now_ms())
                if why is not None:
                    log.info("periodic scan of %s: %s", self.root, why)
                    due = True
            if watch:
                current = await asyncio.to_thread(self._snapshot)
                if current != previous:
                    previous = current
                    due = True
            if due:
                try:
                    await self.scan()
                except Exception:  # a failed rescan must not stop the watch
                    log.exception("rescan of %s failed", self.root)


def _server_config(loaded: LoadedConfig, options: UpOptions) -> ServerConfig:
    overrides: dict[str, Any] = {}
    if options.host is not None:
        overrides["host"] = options.host
    if options.port is not None:
        overrides["port"] = options.port
    return ServerConfig.model_validate({**loaded.config.server.model_dump(), **overrides})


async def run_up(
    loaded: LoadedConfig,
    options: UpOptions,
    *,
    say: Callable[[str], None],
    on_report: Callable[[ScanReport], None],
    progress: Progress | None = None,
    on_summary: Callable[[LiveSummary], None] | None = None,
) -> None:
    """Run everything until the server is told to stop (Ctrl-C or SIGTERM).

    ``progress`` follows each scan; ``on_summary`` gets the live summary (last
    scan, the engine's firing alerts, trends) every second.
    """
    cfg = loaded.config
    server_cfg = _server_config(loaded, options)
    configured = server_cfg.token.get_secret_value() if server_cfg.token is not None else None
    # Without a configured token, this run makes one so the dashboard can write.
    token = configured or secrets.token_urlsafe(24)
    check_bind(server_cfg.host, token if configured else None)

    store = Store.open(cfg.store.url)
    store.configure_event_log(event_log_retention(cfg.store))
    bus: EventBus = make_bus(cfg.bus)
    await bus.start()
    writer = StoreWriter(store)
    await writer.attach(bus)
    # Security events to the SIEM outputs of [siem], subscribed before anything publishes.
    forwarder = SiemForwarder.from_config(cfg.siem, store, bus)
    if forwarder is not None:
        await forwarder.start()
    maintenance = StoreMaintenance.from_config(store, cfg.store)
    maintenance.start()  # rollup and retention, in its own thread
    sock = bind_socket(server_cfg.host, server_cfg.port)
    url = socket_url(sock)

    engine = AlertEngine.from_config(store, bus, cfg.alerts, external_url=url)
    await engine.start()
    runner: CollectorRunner | None = None
    if options.monitor:
        plan = build_collectors(cfg.monitor)
        runner = CollectorRunner(bus, plan.collectors)
        await runner.start()

    validator: SecurityValidator | None = None
    periodic: PeriodicScans | None = None
    watch_task: asyncio.Task[None] | None = None
    cost_pump: asyncio.Task[None] | None = None
    if options.scan:
        baseline = load_project_baseline(options.root)
        # Read at every scan (not once here), so triage made meanwhile counts.
        validator = make_validator(
            cfg.scan,
            ScanOptions(root=options.root),
            baseline,
            store.triage_all,
            bus.publish_threadsafe,
            progress,
        )
        # The scans share the machine with what it runs: low priority by default.
        pacing = ScanPacing.for_command(cfg.scan.impact, "low", store=store, bus=bus)
        pacing.configure(validator)
        recorder = ScanCostRecorder.from_config(cfg)
        after_scan: Callable[[], Awaitable[object]] | None = None
        if recorder is not None:
            # Each scan's cost is sampled, published as series and stored with it.
            validator.cost_probe = recorder.probe
            cost_pump = asyncio.create_task(recorder.pump(bus), name="scan-impact-publisher")

            async def finish_costs() -> None:
                await recorder.finish(store, bus)

            after_scan = finish_costs
        if cfg.scan.every > 0:
            scanned_paths = scan_paths(cfg.scan, options.root)

            def predict_due_scan(validator: SecurityValidator = validator) -> float | None:
                # Polled between scans (the watcher's loop), never beside one.
                found = try_predict(
                    store, validator, options.root, scanned_paths, host=local_host()
                )
                return found.duration_ms if found is not None else None

            periodic = PeriodicScans(
                store,
                Settings.from_config(cfg.scan),
                configured_guards(cfg.scan, local_host()),
                measure=measure_host_cpu,
                predict=predict_due_scan,
            )
        watcher = ScanWatcher(
            validator,
            options.root,
            scan_paths(cfg.scan, options.root),
            on_report=on_report,
            after_scan=after_scan,
            store=store,
            periodic=periodic,
            pacing=pacing,
        )
        watch_task = asyncio.create_task(watcher.run(watch=options.watch))

    app = create_app(
        store,
        bus,
        config=server_cfg,
        token=token,
        writer=writer,
        # What other processes store (a scan in a terminal, a triage) reaches this bus.
        follower=None
        if cfg.bus.is_nats
        else EventLogFollower(
            store, bus, name=cursor_name("up", url.split("://", 1)[1]), writer=writer
        ),
        alert_engine=engine,
        siem_stats=forwarder.stats if forwarder is not None else None,
        # The API report applies [report] (scanner versions are read on first use).
        report_settings=ReportSettings.from_config(cfg),
        **analysis_providers(store),
    )
    attach_schedule(
        app,
        Settings.from_config(cfg.scan),
        periodic,
        guards=configured_guards(cfg.scan, local_host()),
        target=str(options.root.resolve()),
    )

    def started() -> None:
        how = "from your configuration" if configured else f"for this run: {token}"
        say(f"secperf is up: dashboard {url}/")
        say(f"write token {how}")
        say("Ctrl-C stops")

    poller: SummaryPoller | None = None
    if on_summary is not None:
        if periodic is not None:
            show = on_summary

            def with_next_scan(summary: LiveSummary, periodic: PeriodicScans = periodic) -> None:
                show(dataclasses.replace(summary, next_scan=periodic.describe()))

            on_summary = with_next_scan
        poller = SummaryPoller(
            store,
            on_summary,
            alerts=lambda: engine.alerts([AlertState.FIRING]),
            series=summary_series(cfg),
        ).start()
    try:
        await run_app(app, [sock], on_started=started)
    finally:
        if poller is not None:
            await poller.stop()
        if cost_pump is not None:
            cost_pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await cost_pump
        if watch_task is not None:
            watch_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await watch_task
        if runner is not None:
            await runner.stop()
        await engine.stop()
        await asyncio.to_thread(maintenance.stop)  # its join must not hold the event loop
        if forwarder is not None:  # what it queued stays on disk for the next start
            await forwarder.stop()
        await bus.close(drain=True)
        await writer.close()
        if validator is not None:
            validator.close()
            if validator.cache is not None:
                validator.cache.close()
        store.close()
        sock.close()
