"""Pacing the scans of one validator: its priority, its guards' feeds, each scan's controller.

``ScanPacing`` is what a command holds: ``configure`` sets the validator's
priority before its pool starts; ``attach`` subscribes the guards' feeds to
the bus (``MetricsRecorded``), where the scraped series arrive in ``up``, the
agent and the demo; ``scan`` runs one scan under a ``PacingController`` and
stores its pacing document (``Store.record_scan_pacing``), also when the scan
is interrupted. The budget runs whenever the priority is low. What a scan of
a target learned about full speed (over budget, and when to try it again:
``controller.FullSpeed``) is handed to the next scan of that target.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from secperf.bus.interface import EventBus, Subscription
from secperf.config.sections.impact import ImpactConfig, Priority
from secperf.events import Event, MetricsRecorded
from secperf.runtime import scan_interruptibly
from secperf.security.pacing.controller import BudgetSettings, FullSpeed, PacingController
from secperf.security.pacing.guards import Guard, GuardFeed, HostCpuGuard, SeriesGuard
from secperf.security.pacing.reading import SeriesStore
from secperf.security.validator import ScanReport, SecurityValidator

log = logging.getLogger(__name__)

NORMAL_PRIORITY_REASON = "normal priority: the scan runs at full speed"


class PacingStore(SeriesStore, Protocol):
    """What the pacing reads and writes of a store (a ``Store``, or an agent's live history)."""

    def record_scan_pacing(self, scan_id: str, pacing: Mapping[str, Any]) -> None: ...


class ScanPacing:
    """Low priority and the impact budget for every scan of one validator."""

    def __init__(
        self,
        impact: ImpactConfig,
        *,
        priority: Priority,
        store: PacingStore | None,
        bus: EventBus | None,
        feed_from_bus: bool = True,
    ) -> None:
        self.impact = impact
        self.priority: Priority = priority
        self.store = store
        self.bus = bus
        # False: the guards read ``store`` only (an agent's bus carries every host's metrics).
        self.feed_from_bus = feed_from_bus
        self.feeds = [
            GuardFeed(selector, store) for selector in impact.guard if not selector.builtin
        ]
        self._subscription: Subscription | None = None
        self._full_speed: dict[str, FullSpeed] = {}

    @classmethod
    def for_command(
        cls,
        impact: ImpactConfig,
        default: Priority,
        *,
        store: PacingStore | None,
        bus: EventBus | None,
        override: Priority | None = None,
        feed_from_bus: bool = True,
    ) -> ScanPacing:
        """Pacing at ``override``, else ``[scan.impact] priority``, else the command's default."""
        return cls(
            impact,
            priority=override or impact.effective_priority(default),
            store=store,
            bus=bus,
            feed_from_bus=feed_from_bus,
        )

    @property
    def budget_on(self) -> bool:
        return self.priority == "low" and bool(self.impact.guard)

    def configure(self, validator: SecurityValidator) -> None:
        """Set the validator's priority (before its first scan starts its pool)."""
        validator.priority = self.priority

    async def attach(self) -> None:
        """Feed the guards from the bus's metric batches (idempotent)."""
        if self._subscription is not None or self.bus is None or not self.feeds:
            return
        if not self.feed_from_bus:
            return
        if not self.budget_on:
            return
        self._subscription = await self.bus.subscribe(
            MetricsRecorded.topic, self._offer, name="scan-impact-guards"
        )

    async def detach(self) -> None:
        subscription, self._subscription = self._subscription, None
        if subscription is not None:
            with contextlib.suppress(Exception):
                await subscription.unsubscribe()

    async def _offer(self, event: Event) -> None:
        if isinstance(event, MetricsRecorded):
            for feed in self.feeds:
                feed.offer(event.samples)

    def controller(
        self,
        validator: SecurityValidator | None,
        target: str,
        *,
        predicted_ms: float | None = None,
        prediction_basis: str | None = None,
    ) -> PacingController:
        """A controller for the next scan of ``target`` by ``validator`` (its workers)."""
        guards: list[Guard] = []
        feeds = iter(self.feeds)
        for selector in self.impact.guard:
            if selector.builtin:
                guards.append(HostCpuGuard(lambda: _scan_pids(validator)))
            else:
                guards.append(SeriesGuard(next(feeds), stale_after_ms=self.impact.stale_after))
        not_configured = None
        if self.priority != "low":
            not_configured = NORMAL_PRIORITY_REASON
        elif not guards:
            not_configured = "no guard ([scan.impact] guard = [])"
        publish = self.bus.publish_threadsafe if self.bus is not None else None
        return PacingController(
            target=target,
            priority=self.priority,
            guards=guards if not_configured is None else [],
            settings=BudgetSettings(
                max_increase_pct=self.impact.max_increase_pct,
                max_slowdown=self.impact.max_slowdown,
                before_window_ms=self.impact.before_window,
                stale_after_ms=self.impact.stale_after,
            ),
            predicted_ms=predicted_ms,
            prediction_basis=prediction_basis,
            publish=publish,
            not_configured=not_configured,
            full_speed=self._full_speed.setdefault(target, FullSpeed()),
        )

    async def scan(
        self,
        validator: SecurityValidator,
        root: Path,
        paths: Sequence[str],
        *,
        predicted_ms: float | None = None,
        prediction_basis: str | None = None,
    ) -> ScanReport:
        """Scan under a fresh controller; the report carries (and the store keeps) its pacing."""
        await self.attach()
        controller = self.controller(
            validator,
            str(root.resolve()),
            predicted_ms=predicted_ms,
            prediction_basis=prediction_basis,
        )
        validator.pacer = controller
        report: ScanReport | None = None
        try:
            report = await scan_interruptibly(validator, root, paths)
        finally:
            validator.pacer = None
            document = controller.document().to_document()
            if report is not None:
                report.pacing = document
            # A scan whose every file was cached never started the controller.
            scan_id = controller.scan_id or (report.scan_id if report is not None else "")
            if self.store is not None and scan_id:
                try:
                    await asyncio.to_thread(self.store.record_scan_pacing, scan_id, document)
                except Exception:  # the scan's result stands without its pacing record
                    log.exception("storing the pacing of scan %s failed", scan_id)
        return report


def _scan_pids(validator: SecurityValidator | None) -> list[int]:
    """The scan's processes: this one and the validator's workers."""
    return [os.getpid(), *(validator.worker_pids() if validator is not None else [])]
