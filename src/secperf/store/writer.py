"""``StoreWriter``: the bus subscriber that persists every event.

Metric batches are buffered and written in large transactions, when the buffer
reaches ``max_batch`` samples or every ``flush_interval_s``; every other event
is written as it arrives. Store calls are synchronous, so they run in a worker
thread (``asyncio.to_thread``), one at a time behind one lock, and the event
loop never blocks on the database. While one flush is being written the next
batch fills, so decoding events and writing to disk overlap.

A bad sample is counted and logged, never fatal; a failing write is logged and
counted, and the writer keeps going.

On a bus with durable delivery (NATS JetStream: the bus offers
``subscribe_durable``) the writer is a durable subscriber whose ``commit``
flushes the buffer: messages are acknowledged only once their samples are
committed, so a killed server loses nothing and a failed write is delivered
again instead of being lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

from secperf.bus.interface import EventBus, Subscription
from secperf.events import (
    AlertChanged,
    BaselineUpdated,
    Event,
    GateEvaluated,
    MetricsRecorded,
    ScanCompleted,
    ScanStarted,
    ViolationDetected,
)
from secperf.model import Sample
from secperf.store.store import Store

log = logging.getLogger(__name__)

#: Findings of one scan written in one transaction at the most (a very large scan
#: is written in several before it completes).
FINDINGS_BATCH = 1000


@dataclass(frozen=True, slots=True)
class WriterStats:
    """Counters of one StoreWriter."""

    samples_written: int
    samples_rejected: int
    samples_failed: int
    events_written: int
    events_failed: int
    flushes: int
    buffered: int


class StoreWriter:
    """Subscribe to every topic and write what arrives into ``store``."""

    def __init__(
        self, store: Store, flush_interval_s: float = 1.0, max_batch: int = 50_000
    ) -> None:
        if flush_interval_s <= 0:
            raise ValueError(f"flush_interval_s must be positive, got {flush_interval_s}")
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {max_batch}")
        self.store = store
        self.flush_interval_s = flush_interval_s
        self.max_batch = max_batch
        self.samples_written = 0
        self.samples_rejected = 0
        self.samples_failed = 0  # valid samples lost to a failed write
        self.events_written = 0
        self.events_failed = 0
        self.flushes = 0
        self._buffer: list[Sample] = []
        # A scan's findings are written together (with its completion, usually):
        # one transaction per scan rather than one per finding.
        self._findings: dict[str, list[ViolationDetected]] = {}
        self._lock = asyncio.Lock()
        self._inflight: asyncio.Task[None] | None = None
        self._timer: asyncio.Task[None] | None = None
        self._subscription: Subscription | None = None
        self._closed = False

    async def attach(self, bus: EventBus) -> None:
        """Subscribe to every topic (``>``) and start the periodic flush."""
        if self._subscription is not None:
            raise RuntimeError("StoreWriter is already attached to a bus")
        durable = getattr(bus, "subscribe_durable", None)
        if durable is not None:
            self._subscription = await durable(
                ">", self.handle, name="store-writer", commit=self.commit
            )
        else:
            self._subscription = await bus.subscribe(">", self.handle, name="store-writer")
        self._timer = asyncio.create_task(self._flush_periodically(), name="store-writer-flush")

    def stats(self) -> WriterStats:
        """A snapshot of the counters."""
        return WriterStats(
            self.samples_written,
            self.samples_rejected,
            self.samples_failed,
            self.events_written,
            self.events_failed,
            self.flushes,
            len(self._buffer),
        )

    async def handle(self, event: Event) -> None:
        """The bus handler: buffer samples, write anything else at once."""
        if isinstance(event, MetricsRecorded):
            self._buffer.extend(event.samples)
            if len(self._buffer) >= self.max_batch:
                inflight = self._inflight
                if inflight is None or inflight.done():
                    self._inflight = asyncio.create_task(self.flush())
                elif len(self._buffer) >= 2 * self.max_batch:
                    # The disk is behind: hold this handler (the bus queues or
                    # drops metric batches) instead of growing without bound.
                    await asyncio.shield(inflight)
            return
        if isinstance(event, ViolationDetected):
            pending = self._findings.setdefault(event.scan_id, [])
            pending.append(event)
            if len(pending) >= FINDINGS_BATCH:
                async with self._lock:
                    await asyncio.to_thread(
                        self._write_findings, self._findings.pop(event.scan_id, [])
                    )
            return
        async with self._lock:
            if isinstance(event, ScanCompleted):
                pending = self._findings.pop(event.metrics.scan_id, [])
                await asyncio.to_thread(self._write_scan_end, pending, event)
            else:
                await asyncio.to_thread(self._write_event, event)

    def _write_findings(self, pending: list[ViolationDetected]) -> None:
        if not pending:
            return
        new = {e.finding.fingerprint for e in pending if e.is_new}
        try:
            self.store.add_findings(pending[0].scan_id, [e.finding for e in pending], new)
        except Exception:
            self.events_failed += len(pending)
            log.exception("store writer: writing %d findings failed", len(pending))
            return
        self.events_written += len(pending)

    def _write_scan_end(self, pending: list[ViolationDetected], event: ScanCompleted) -> None:
        self._write_findings(pending)
        self._write_event(event)

    async def _flush_findings(self) -> None:
        while self._findings:
            _, pending = self._findings.popitem()
            await asyncio.to_thread(self._write_findings, pending)

    async def commit(self) -> None:
        """Make everything handled so far durable; raise when any of it failed.

        The durable bus calls this before acknowledging a batch, so a raise
        makes it deliver the batch again.
        """
        samples_failed, events_failed = self.samples_failed, self.events_failed
        await self.flush()
        if self.samples_failed > samples_failed or self.events_failed > events_failed:
            raise RuntimeError(
                f"store writer: {self.samples_failed - samples_failed} sample(s) and"
                f" {self.events_failed - events_failed} event(s) were not written"
            )

    async def flush(self) -> None:
        """Write every buffered sample (one transaction) and finding now."""
        async with self._lock:
            await self._flush_findings()
            while self._buffer:
                batch, self._buffer = self._buffer, []
                try:
                    result = await asyncio.to_thread(self.store.write_samples, batch)
                except Exception:
                    self.samples_failed += len(batch)
                    log.exception("store writer: writing %d samples failed", len(batch))
                    continue
                self.flushes += 1
                self.samples_written += result.accepted
                if result.rejected:
                    self.samples_rejected += result.rejected
                    log.warning(
                        "store writer: rejected %d invalid samples; first: %s",
                        result.rejected,
                        "; ".join(result.errors[:3]),
                    )

    def _write_event(self, event: Event) -> None:
        store = self.store
        try:
            if isinstance(event, ScanStarted):
                store.record_scan_started(event.scan_id, event.target, event.ts_ms, event.scanners)
            elif isinstance(event, ScanCompleted):
                store.record_scan_completed(event.metrics, event.status, event.error)
            elif isinstance(event, AlertChanged):
                store.record_alert_transition(event)
            elif isinstance(event, GateEvaluated):
                store.add_gate_run(event.result)
            elif isinstance(event, BaselineUpdated):
                # The baseline itself is saved by whoever changed it; this is the notice.
                log.info(
                    "baseline %s updated: %d fingerprints (+%d, -%d)",
                    event.baseline,
                    event.fingerprints,
                    event.added,
                    event.removed,
                )
                return
            else:
                return
        except Exception:
            self.events_failed += 1
            log.exception("store writer: writing %s %s failed", type(event).__name__, event.id)
            return
        self.events_written += 1

    async def _flush_periodically(self) -> None:
        while True:
            await asyncio.sleep(self.flush_interval_s)
            if self._buffer or self._findings:
                try:
                    await self.flush()
                except Exception:  # flush logs its own failures; keep the timer alive
                    log.exception("store writer: periodic flush failed")

    async def close(self) -> None:
        """Stop receiving (delivering what the bus queued), then flush what remains."""
        if self._closed:
            return
        self._closed = True
        if self._subscription is not None:
            try:
                await self._subscription.unsubscribe()
            except Exception:
                log.exception("store writer: unsubscribing failed")
        if self._timer is not None:
            self._timer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._timer
        if self._inflight is not None:
            await self._inflight
        await self.flush()
