"""The agent: one host's collectors and scheduled scans, published to a central bus.

``secperf agent`` runs this on every host of a fleet. It owns no store: what
it collects and finds goes onto the bus (NATS JetStream in practice) and the
central ``secperf serve`` stores it. Every event leaves with the agent's
``host`` and every sample with a ``host`` label of the same value, so the
server, its API and its dashboard can tell hosts apart.

Having no store, it keeps what its scans' planning reads in memory
(``security.pacing.live_history``): its guard series as collected and its own
scans. From those it decides when a due scan starts (quiet now, the quietest
hour once it has a day of history, at the latest ``max_delay``), feeds the
impact budget and predicts each scan; each ``ScanCompleted`` carries the
scan's prediction and pacing documents for the server to store.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from secperf.bus.interface import BusStats, EventBus, Handler, Subscription
from secperf.commands.pacing import ScanPacing
from secperf.config import LoadedConfig
from secperf.events import Event, MetricsRecorded, ScanCompleted, now_ms
from secperf.model import Sample
from secperf.perf.collectors.factory import build_collectors
from secperf.perf.collectors.interface import Collector
from secperf.perf.collectors.runner import CollectorRunner
from secperf.security.factory import (
    ScanOptions,
    load_project_baseline,
    make_validator,
    scan_paths,
)
from secperf.security.pacing.controller import PacingController
from secperf.security.pacing.live_history import LiveHistory
from secperf.security.pacing.prediction import ScanPrediction, record_prediction, try_predict
from secperf.security.pacing.schedule import (
    QuietWaiter,
    SchedulePlan,
    Settings,
    configured_guards,
    measure_host_cpu,
)
from secperf.security.validator import SecurityValidator
from secperf.store import Store

log = logging.getLogger(__name__)

#: How often a due scan looks at the guards again while it waits for a quiet moment.
QUIET_POLL_S = 10.0


def stamp_host(event: Event, host: str) -> Event:
    """``event`` with ``host`` as its host and, for metric batches, every sample's host label."""
    if isinstance(event, MetricsRecorded):
        samples = event.samples
        if any(s.labels.get("host") != host for s in samples):
            samples = tuple(
                s
                if s.labels.get("host") == host
                else Sample(s.name, {**s.labels, "host": host}, s.timestamp_ms, s.value)
                for s in samples
            )
            return dataclasses.replace(event, samples=samples, host=host)
    if event.host == host:
        return event
    return dataclasses.replace(event, host=host)


#: Sees (and may complete) every event an agent publishes, after its host is stamped.
PublishHook = Callable[[Event], Event]


class HostBus(EventBus):
    """A view of a bus that stamps this host on everything published through it.

    ``hook`` sees each stamped event before it leaves and returns what leaves.
    """

    def __init__(self, inner: EventBus, host: str, *, hook: PublishHook | None = None) -> None:
        if not host:
            raise ValueError("the agent's host label must not be empty")
        self.inner = inner
        self.host = host
        self.hook = hook

    def _outgoing(self, event: Event) -> Event:
        stamped = stamp_host(event, self.host)
        return self.hook(stamped) if self.hook is not None else stamped

    async def start(self) -> None:
        await self.inner.start()

    async def subscribe(
        self,
        pattern: str,
        handler: Handler,
        *,
        name: str | None = None,
        maxsize: int | None = None,
    ) -> Subscription:
        return await self.inner.subscribe(pattern, handler, name=name, maxsize=maxsize)

    async def publish(self, event: Event) -> None:
        await self.inner.publish(self._outgoing(event))

    def publish_threadsafe(self, event: Event, timeout: float | None = None) -> None:
        self.inner.publish_threadsafe(self._outgoing(event), timeout)

    async def close(self, *, drain: bool = True, timeout: float | None = 10.0) -> None:
        await self.inner.close(drain=drain, timeout=timeout)

    def stats(self) -> BusStats:
        return self.inner.stats()


@dataclass
class AgentStats:
    """What an agent has done so far."""

    scans_started: int = 0
    scans_failed: int = 0
    last_scan_error: str | None = None
    collectors: dict[str, int] = field(default_factory=dict)  # samples per collector


class Agent:
    """Runs collectors and, every ``scan_interval_s``, a scan of ``scan_root``; publishes both."""

    def __init__(
        self,
        loaded: LoadedConfig,
        bus: EventBus,
        *,
        host: str,
        collectors: Sequence[Collector] | None = None,
        scan_root: Path | None = None,
        scan_interval_s: float | None = None,
        store: Store | None = None,
        quiet_poll_s: float = QUIET_POLL_S,
    ) -> None:
        if scan_interval_s is not None and scan_interval_s <= 0:
            raise ValueError(f"scan interval must be positive, got {scan_interval_s} s")
        if quiet_poll_s <= 0:
            raise ValueError(f"quiet poll interval must be positive, got {quiet_poll_s} s")
        self.loaded = loaded
        self.host = host
        self.quiet_poll_s = quiet_poll_s
        self.guards = configured_guards(loaded.config.scan, host)
        #: This host's guard series and scans, in memory: what plans, paces and predicts
        #: its scans when no store is given.
        self.history = LiveHistory(self.guards)
        self.bus = HostBus(bus, host, hook=self._on_publish)
        if collectors is None:
            collectors = build_collectors(loaded.config.monitor, host=host).collectors
        self.collectors = list(collectors)
        self.scan_root = scan_root
        self.scan_interval_s = scan_interval_s
        self.stats = AgentStats()
        # Read only: the quiet hours and the scan history the plans and predictions learn
        # from (the central store, when this host can read it); None: host CPU now only.
        self.store = store
        #: The current plan of the next scan (quiet-time scheduling).
        self.next_scan: SchedulePlan | None = None
        #: The last scan's predicted duration: the next scan, of the same tree, is planned by it.
        self.expected_ms: float | None = None
        self._pacing: ScanPacing | None = None
        # The scan under way: its validator (whose pacer is its controller) and prediction.
        self._scanning: tuple[SecurityValidator, ScanPrediction | None] | None = None
        self._runner = CollectorRunner(self.bus, self.collectors)

    @property
    def source(self) -> Store | LiveHistory:
        """What plans, paces and predicts the scans: the store when given, else the history."""
        return self.store if self.store is not None else self.history

    def _on_publish(self, event: Event) -> Event:
        """Keep the guards' samples; give a scan's end its prediction and pacing documents."""
        if isinstance(event, MetricsRecorded):
            self.history.offer(event.samples)
        elif isinstance(event, ScanCompleted) and self._scanning is not None:
            validator, prediction = self._scanning
            pacer = validator.pacer
            # The validator publishes the end after its pacer heard it: the document is whole.
            pacing = pacer.document().to_document() if isinstance(pacer, PacingController) else None
            return dataclasses.replace(
                event,
                prediction=prediction.to_document() if prediction is not None else None,
                pacing=pacing,
            )
        return event

    async def run(self, stop: asyncio.Event) -> None:
        """Collect (and scan on schedule) until ``stop`` is set; then stop the collectors."""
        await self.bus.start()
        await self._runner.start()
        scans: asyncio.Task[None] | None = None
        if self.scan_root is not None and self.scan_interval_s is not None:
            scans = asyncio.create_task(self._scan_periodically(stop), name="agent-scans")
        try:
            await stop.wait()
        finally:
            await self._runner.stop()
            if scans is not None:
                scans.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await scans
            self.stats.collectors = {n: s.samples for n, s in self._runner.stats().items()}

    async def _scan_periodically(self, stop: asyncio.Event) -> None:
        assert self.scan_interval_s is not None
        while not stop.is_set():
            await self.scan_once()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.scan_interval_s)
            await self._wait_for_quiet(stop)

    async def _wait_for_quiet(self, stop: asyncio.Event) -> None:
        """Hold a due scan until the guards are quiet (``[scan.schedule]``), at most max_delay."""
        scan_cfg = self.loaded.config.scan
        waiter = QuietWaiter(
            self.source,
            Settings.from_config(scan_cfg, every_ms=round((self.scan_interval_s or 0) * 1000)),
            self.guards,
            due_ms=now_ms(),
            measure=measure_host_cpu,
            expected_ms=self.expected_ms,
        )
        held = False
        while not stop.is_set():
            start, plan, why = await asyncio.to_thread(waiter.check, now_ms())
            self.next_scan = plan
            if start:
                log.info("agent scan of %s: %s", self.scan_root, why)
                return
            if not held:
                held = True
                log.info("agent scan of %s held: %s", self.scan_root, why)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.quiet_poll_s)

    async def scan_once(self) -> None:
        """Scan ``scan_root`` once, publishing the scan's events; failures are logged.

        Cancelled (the agent stops), the scan is published as interrupted first.
        """
        assert self.scan_root is not None
        self.stats.scans_started += 1
        try:
            root = self.scan_root.resolve()
            options = ScanOptions(root=root)
            baseline = load_project_baseline(root)
            # Triage lives on the server; the agent reports everything it finds.
            validator = make_validator(
                self.loaded.config.scan, options, baseline, {}, self.bus.publish_threadsafe, None
            )
            try:
                paths = scan_paths(self.loaded.config.scan, root)
                source = self.source
                prediction = await asyncio.to_thread(
                    try_predict, source, validator, root, paths, host=self.host
                )
                # A host's workload comes first: low priority and the impact budget
                # by default. Stopping the agent mid-scan publishes the scan as interrupted.
                # The guards read this host's own series (the bus carries every host's).
                if self._pacing is None:
                    self._pacing = ScanPacing.for_command(
                        self.loaded.config.scan.impact,
                        "low",
                        store=source,
                        bus=self.bus,
                        feed_from_bus=False,
                    )
                self._pacing.configure(validator)
                self._scanning = (validator, prediction)
                if prediction is not None:
                    self.expected_ms = prediction.duration_ms
                report = await self._pacing.scan(
                    validator,
                    root,
                    paths,
                    predicted_ms=prediction.duration_ms if prediction is not None else None,
                    prediction_basis=prediction.basis if prediction is not None else None,
                )
                if prediction is not None:
                    await asyncio.to_thread(
                        record_prediction,
                        source,
                        report.scan_id,
                        prediction,
                        target=report.target,
                        started_ms=report.metrics.started_ms,
                    )
                # The cost model learns from this host's own scans.
                self.history.remember_scan(report.metrics, report.status, host=self.host)
            finally:
                self._scanning = None
                validator.close()
                if validator.cache is not None:
                    validator.cache.close()
        except Exception as exc:
            self.stats.scans_failed += 1
            self.stats.last_scan_error = f"{type(exc).__name__}: {exc}"
            log.exception("agent scan of %s failed", self.scan_root)
