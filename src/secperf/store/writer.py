"""``StoreWriter``: the bus subscriber that persists every event.

Metric batches are buffered and written in large transactions, when the buffer
reaches ``max_batch`` samples or every ``flush_interval_s``; every other event
is written as it arrives. Store calls are synchronous, so they run in a worker
thread (``asyncio.to_thread``), one at a time behind one lock, and the event
loop never blocks on the database. While one flush is being written the next
batch fills, so decoding events and writing to disk overlap.

A bad sample is counted and logged, never fatal. A write that fails on the
database (locked, disconnected, full) is retried with backoff; when it still
fails it is reported with ``logging.error`` (count and cause, counted in
``WriterStats.write_failures``) and kept for the next flush, up to a bound
past which the oldest data is dropped, counted and reported too. Nothing is
dropped silently.

Each event the writer persists goes to the store's event log in the same
transaction as its records (``Store.outbox``), marked with the writer's
``origin``, so servers following the log hear of it: a scan's start, its
new findings, its completion, baselines, gate verdicts, alert changes, and
one entry per flushed metric batch (its newest ``MAX_LOGGED_SAMPLES`` samples).

A scan's findings are held until the scan completes and stored as one set
(``Store.record_scan_findings``): a scan that found what the previous scan of
its target found shares that scan's rows instead of writing them again, and
only the findings the previous scan did not find (first seen) go to the event
log, so a warm scan of an unchanged repository writes one row and no entry per
finding. Findings held longer than ``HOLD_FINDINGS_S``, past
``MAX_HELD_FINDINGS``, or at a ``flush``/``commit`` are written as they are
(``Store.add_findings``), and the rest of that scan's findings after them.
Events that a follower republished onto this bus from the log
(``skip_replayed``) are stored already and are not written again. On a
durable bus (NATS) events travel between processes through NATS, so nothing
is appended there.

The writer also keeps the heartbeat of the scans its own process runs (see
``Store.touch_scans``), so other hosts sharing the store can tell them from
scans whose process died.

On a bus with durable delivery (NATS JetStream: the bus offers
``subscribe_durable``) the writer is a durable subscriber whose ``commit``
flushes the buffer: messages are acknowledged only once their samples are
committed, so a killed server loses nothing and a failed write is delivered
again instead of being lost (so the writer keeps nothing itself there).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import time
from collections import deque
from collections.abc import Callable, Set
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy.exc import DataError, IntegrityError, SQLAlchemyError

from secperf.bus.interface import EventBus, Subscription
from secperf.events import (
    AlertChanged,
    BaselineUpdated,
    Event,
    GateEvaluated,
    MetricsRecorded,
    ScanCompleted,
    ScanStarted,
    ScanThrottled,
    ViolationDetected,
    local_host,
    now_ms,
)
from secperf.model import Sample, sample_problem
from secperf.store.engine import is_corruption
from secperf.store.samples import WriteResult
from secperf.store.store import Store

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Findings of one scan held until it completes at the most; a larger scan's
#: findings are written in parts of this size before it completes.
MAX_HELD_FINDINGS = 20_000
#: Findings held longer than this without their scan's completion are written
#: by the periodic flush (a scan publishes them just before its completion).
HOLD_FINDINGS_S = 10.0
#: Scans whose findings were written in parts, remembered at the most.
MAX_SPILLED_SCANS = 1_000
#: Attempts of one write (each waits the store's busy timeout for its lock)
#: before it is reported and kept for the next flush.
WRITE_ATTEMPTS = 3
#: The first pause between attempts; it doubles each time.
RETRY_DELAY_S = 0.2
#: Non-metric writes kept for a later attempt at the most.
MAX_KEPT_WRITES = 10_000
#: How often the heartbeat of this process's running scans is refreshed.
HEARTBEAT_INTERVAL_S = 5.0
#: Ids of republished events remembered until they come by (bounded: a dropped
#: metric batch never comes by).
MAX_REPLAYED_IDS = 50_000


_NUMBERS = (int, float)
#: Samples of one flushed batch written to the event log at the most (the
#: newest): encoding a bulk import's whole batch would cost more than storing it.
MAX_LOGGED_SAMPLES = 2_000


def new_origin() -> str:
    """An id for one bus of one process: host, pid and random bits."""
    return f"{local_host()}:{os.getpid()}:{os.urandom(6).hex()}"


def _worth_retrying(exc: BaseException) -> bool:
    """A database failure that may pass (lock, connection, disk, schema being changed).

    Constraint and data errors, a damaged file and errors outside the database
    (bad values) fail the same way every time.
    """
    if not isinstance(exc, SQLAlchemyError):
        return False
    return not isinstance(exc, (IntegrityError, DataError)) and not is_corruption(exc)


def _cause(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).splitlines()
    return f"{type(orig or exc).__name__}: {text[0] if text else ''}"


@dataclass(frozen=True, slots=True)
class _Write:
    """One non-metric write, kept in order until it succeeds."""

    what: str
    count: int  # events it stands for
    run: Callable[[], None]


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
    write_retries: int = 0  # attempts that failed and were tried again
    write_failures: int = 0  # writes that failed every attempt (reported, kept or lost)
    kept_events: int = 0  # events waiting for the next attempt


class StoreWriter:
    """Subscribe to every topic and write what arrives into ``store``.

    ``write_attempts`` and ``retry_delay_s`` set how a failing write is retried;
    ``max_kept_samples`` (default four batches) bounds the samples kept for a
    later attempt.
    """

    def __init__(
        self,
        store: Store,
        flush_interval_s: float = 1.0,
        max_batch: int = 50_000,
        *,
        write_attempts: int = WRITE_ATTEMPTS,
        retry_delay_s: float = RETRY_DELAY_S,
        max_kept_samples: int | None = None,
    ) -> None:
        if flush_interval_s <= 0:
            raise ValueError(f"flush_interval_s must be positive, got {flush_interval_s}")
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {max_batch}")
        if write_attempts < 1:
            raise ValueError(f"write_attempts must be at least 1, got {write_attempts}")
        if retry_delay_s < 0:
            raise ValueError(f"retry_delay_s must not be negative, got {retry_delay_s}")
        self.store = store
        self.flush_interval_s = flush_interval_s
        self.max_batch = max_batch
        self.write_attempts = write_attempts
        self.retry_delay_s = retry_delay_s
        self.max_kept_samples = 4 * max_batch if max_kept_samples is None else max_kept_samples
        self.samples_written = 0
        self.samples_rejected = 0
        self.samples_failed = 0  # valid samples lost (never written)
        self.events_written = 0
        self.events_failed = 0  # events lost (never written)
        self.flushes = 0
        self.write_retries = 0
        self.write_failures = 0
        self._buffer: list[Sample] = []
        # A scan's findings are held until its completion and written as one set
        # (shared with the previous scan's when equal); when each was first held.
        self._findings: dict[str, list[ViolationDetected]] = {}
        self._held_since: dict[str, float] = {}
        # Scans whose findings were written in parts: the rest are parts too.
        self._spilled: dict[str, None] = {}
        # Writes that failed every attempt, retried in order before anything new.
        self._kept: deque[_Write] = deque()
        # Running scans this process owns, whose heartbeat the writer keeps.
        self._owned: set[str] = set()
        self._last_beat = time.monotonic()
        # On a durable bus the bus delivers a failed batch again: keep nothing.
        self._keep_failed = True
        self._lock = asyncio.Lock()
        self._inflight: asyncio.Task[None] | None = None
        self._timer: asyncio.Task[None] | None = None
        self._subscription: Subscription | None = None
        self._closed = False
        #: The id marking this writer's entries in the event log.
        self.origin = new_origin()
        # Whether persisted events go to the event log (not on a durable bus).
        self._log_events = True
        # Ids of events a follower republished from the log: stored already.
        self._replayed: dict[str, None] = {}
        self.events_replayed = 0  # republished events seen and not written again

    async def attach(self, bus: EventBus) -> None:
        """Subscribe to every topic (``>``) and start the periodic flush."""
        if self._subscription is not None:
            raise RuntimeError("StoreWriter is already attached to a bus")
        durable = getattr(bus, "subscribe_durable", None)
        if durable is not None:
            self._keep_failed = False
            self._log_events = False
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
            self.write_retries,
            self.write_failures,
            sum(w.count for w in self._kept),
        )

    def skip_replayed(self, event_id: str) -> None:
        """Do not write the event ``event_id`` when it comes by: it is stored already.

        The event log follower calls this before republishing an entry.
        """
        self._replayed[event_id] = None
        if len(self._replayed) > MAX_REPLAYED_IDS:
            del self._replayed[next(iter(self._replayed))]

    def _outbox(self, events: list[Event]) -> contextlib.AbstractContextManager[None]:
        """The store's outbox for ``events`` marked as this writer's (none on a durable bus)."""
        if not self._log_events:
            return contextlib.nullcontext()
        return self.store.outbox(events, origin=self.origin)

    async def handle(self, event: Event) -> None:
        """The bus handler: buffer samples, write anything else at once."""
        if event.id in self._replayed:
            del self._replayed[event.id]
            self.events_replayed += 1
            return
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
            if not pending:
                self._held_since[event.scan_id] = time.monotonic()
            pending.append(event)
            if len(pending) >= MAX_HELD_FINDINGS:
                batch = self._take_findings(event.scan_id)
                async with self._lock:
                    await asyncio.to_thread(self._run, [self._findings_write(batch, whole=False)])
            return
        writes: list[_Write] = []
        if isinstance(event, ScanCompleted):
            scan_id = event.metrics.scan_id
            self._owned.discard(scan_id)
            pending = self._take_findings(scan_id)
            spilled = scan_id in self._spilled
            self._spilled.pop(scan_id, None)
            if pending:
                writes.append(self._findings_write(pending, whole=not spilled))
        elif isinstance(event, ScanStarted) and self._owns(event):
            self._owned.add(event.scan_id)
        write = self._event_write(event)
        if write is not None:
            writes.append(write)
        if writes:
            async with self._lock:
                await asyncio.to_thread(self._run, writes)

    @staticmethod
    def _owns(event: ScanStarted) -> bool:
        return event.owner_pid == os.getpid() and event.owner_host == local_host()

    # ------------------------------------------------------------------ writing

    def _attempt(self, what: str, write: Callable[[], T]) -> T:
        """Run ``write``, retrying a database failure that may pass (worker thread)."""
        delay = self.retry_delay_s
        for attempt in range(1, self.write_attempts + 1):
            try:
                return write()
            except Exception as exc:
                if attempt == self.write_attempts or not _worth_retrying(exc):
                    raise
                self.write_retries += 1
                log.warning(
                    "store writer: %s failed (%s); attempt %d of %d in %.1f s",
                    what,
                    _cause(exc),
                    attempt + 1,
                    self.write_attempts,
                    delay,
                )
            time.sleep(delay)
            delay *= 2
        raise AssertionError("unreachable")  # pragma: no cover

    def _run(self, writes: list[_Write]) -> None:
        """Write what was kept, then ``writes``, in order (worker thread).

        The first write that fails every attempt stops the run: it and the
        writes after it are kept for the next flush, so they stay in order.
        """
        queue = self._kept
        queue.extend(writes)
        while queue:
            write = queue[0]
            try:
                self._attempt(write.what, write.run)
            except Exception as exc:
                if not (self._keep_failed and _worth_retrying(exc)):
                    queue.popleft()
                    self.events_failed += write.count
                    self.write_failures += 1
                    log.error(
                        "store writer: writing %s failed; %d event(s) lost: %s",
                        write.what,
                        write.count,
                        _cause(exc),
                        exc_info=not _worth_retrying(exc),
                    )
                    continue
                self.write_failures += 1
                kept = self._trim_kept()
                log.error(
                    "store writer: writing %s failed after %d attempts (%s); %d event(s)"
                    " kept for the next flush",
                    write.what,
                    self.write_attempts,
                    _cause(exc),
                    kept,
                )
                return
            queue.popleft()
            self.events_written += write.count

    def _trim_kept(self) -> int:
        """Drop the oldest kept writes beyond the bound (reported); returns what is kept."""
        kept = sum(w.count for w in self._kept)
        while kept > MAX_KEPT_WRITES and len(self._kept) > 1:
            lost = self._kept.popleft()
            kept -= lost.count
            self.events_failed += lost.count
            log.error(
                "store writer: the store has failed for too long; %s dropped (%d event(s) lost)",
                lost.what,
                lost.count,
            )
        return kept

    def _take_findings(self, scan_id: str) -> list[ViolationDetected]:
        """The findings held for ``scan_id``, no longer held."""
        self._held_since.pop(scan_id, None)
        return self._findings.pop(scan_id, [])

    def _findings_write(self, pending: list[ViolationDetected], *, whole: bool) -> _Write:
        """The write of a scan's findings: its whole set, or a part (``whole`` False).

        A whole set logs only the findings first seen; a part logs every one,
        as the writer cannot tell what the scan's previous scan lacked.
        """
        scan_id = pending[0].scan_id
        new = {e.finding.fingerprint for e in pending if e.is_new}
        found = [e.finding for e in pending]
        what = f"{len(pending)} findings of scan {scan_id}"
        if whole:
            log_events = self._log_events

            def announce(first_seen: Set[str]) -> list[Event]:
                return [e for e in pending if e.finding.fingerprint in first_seen]

            def run_whole() -> None:
                with self._outbox([]):
                    self.store.record_scan_findings(
                        scan_id, found, new, announce=announce if log_events else None
                    )

            return _Write(what, len(pending), run_whole)
        self._spilled[scan_id] = None
        while len(self._spilled) > MAX_SPILLED_SCANS:
            del self._spilled[next(iter(self._spilled))]
        events: list[Event] = list(pending)

        def run() -> None:
            with self._outbox(events):
                self.store.add_findings(scan_id, found, new)

        return _Write(what, len(pending), run)

    def _event_write(self, event: Event) -> _Write | None:
        store = self.store
        run: Callable[[], object]
        if isinstance(event, ScanStarted):
            e = event

            def run() -> None:
                with self._outbox([e]):
                    store.record_scan_started(
                        e.scan_id,
                        e.target,
                        e.ts_ms,
                        e.scanners,
                        owner_pid=e.owner_pid,
                        owner_host=e.owner_host,
                    )

        elif isinstance(event, ScanCompleted):
            done = event

            def run() -> None:
                with self._outbox([done]):
                    store.record_scan_completed(
                        done.metrics, done.status, done.error, host=done.host
                    )
                # An agent's scan carries the documents a local scan stores itself.
                scan = done.metrics
                if done.prediction is not None:
                    store.record_scan_prediction(
                        scan.scan_id,
                        done.prediction,
                        target=scan.target,
                        started_ms=scan.started_ms,
                    )
                if done.pacing is not None:
                    store.record_scan_pacing(scan.scan_id, done.pacing)

        elif isinstance(event, AlertChanged):
            changed = event

            def run() -> None:
                with self._outbox([changed]):
                    store.record_alert_transition(changed)

        elif isinstance(event, GateEvaluated):
            gate = event

            def run() -> None:
                with self._outbox([gate]):
                    store.add_gate_run(gate.result)

        elif isinstance(event, BaselineUpdated):
            # The baseline itself is saved by whoever changed it; this is the notice.
            log.info(
                "baseline %s updated: %d fingerprints (+%d, -%d)",
                event.baseline,
                event.fingerprints,
                event.added,
                event.removed,
            )
            if not self._log_events:
                return None
            notice = event

            def run() -> None:
                store.append_events([notice], origin=self.origin)

        elif isinstance(event, ScanThrottled):
            # Its record is the scan's pacing document; the log carries the notice.
            if not self._log_events:
                return None
            throttled = event

            def run() -> None:
                store.append_events([throttled], origin=self.origin)

        else:
            # People's actions (triage, acknowledgements, silences) are logged by
            # the store method that records them; nothing else is stored.
            return None
        return _Write(f"{type(event).__name__} {event.id}", 1, run)

    async def _flush_findings(self, *, held_too: bool) -> None:
        """Write held findings as parts: all of them, or (periodic) those held too long."""
        now = time.monotonic()
        for scan_id in list(self._findings):
            if not held_too and now - self._held_since.get(scan_id, now) < HOLD_FINDINGS_S:
                continue
            pending = self._take_findings(scan_id)
            if pending:
                await asyncio.to_thread(self._run, [self._findings_write(pending, whole=False)])

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
        """Write every buffered sample (one transaction), finding and kept write now."""
        await self._flush(held_too=True)

    async def _flush(self, *, held_too: bool) -> None:
        async with self._lock:
            if self._kept:
                await asyncio.to_thread(self._run, [])
            await self._flush_findings(held_too=held_too)
            if self._buffer:
                await self._flush_samples()

    async def _flush_samples(self) -> None:
        batch, self._buffer = self._buffer, []
        what = f"{len(batch)} samples"
        try:
            result = await asyncio.to_thread(self._attempt, what, lambda: self._write_batch(batch))
        except Exception as exc:
            self.write_failures += 1
            if self._keep_failed and _worth_retrying(exc):
                # In front of what arrived meanwhile, so samples stay in order.
                self._buffer = batch + self._buffer
                lost = len(self._buffer) - self.max_kept_samples
                if lost > 0:
                    del self._buffer[:lost]
                    self.samples_failed += lost
                log.error(
                    "store writer: writing %s failed after %d attempts (%s); %d samples kept"
                    " for the next flush%s",
                    what,
                    self.write_attempts,
                    _cause(exc),
                    len(self._buffer),
                    f", the {lost} oldest dropped (bound reached)" if lost > 0 else "",
                )
            else:
                self.samples_failed += len(batch)
                log.error(
                    "store writer: writing %s failed; they are lost: %s",
                    what,
                    _cause(exc),
                    exc_info=not _worth_retrying(exc),
                )
            return
        self.flushes += 1
        self.samples_written += result.accepted
        if result.rejected:
            self.samples_rejected += result.rejected
            log.warning(
                "store writer: rejected %d invalid samples; first: %s",
                result.rejected,
                "; ".join(result.errors[:3]),
            )

    def _write_batch(self, batch: list[Sample]) -> WriteResult:
        """Store a metric batch with one log entry for all of it (worker thread).

        The entry carries the newest ``MAX_LOGGED_SAMPLES`` samples a follower
        can decode and the store accepts (``sample_problem``, its own check):
        enough for live charts elsewhere, which read anything older from the
        store. A batch the store refuses whole logs nothing.
        """
        now = now_ms()
        # Only what the store accepts: others must not hear of samples never stored.
        logged = tuple(
            s
            for s in batch[-MAX_LOGGED_SAMPLES:]
            if type(s.value) in _NUMBERS
            and math.isfinite(s.value)
            and sample_problem(s, now) is None
        )
        if not logged:
            return self.store.write_samples(batch)
        with self._outbox([MetricsRecorded(samples=logged)]):
            return self.store.write_samples(batch)

    # ------------------------------------------------------------------ timers

    async def _heartbeat(self) -> None:
        """Tell the store this process's running scans are alive."""
        self._last_beat = time.monotonic()
        owned = list(self._owned)
        if not owned:
            return
        try:
            async with self._lock:
                await asyncio.to_thread(self.store.touch_scans, owned)
        except Exception as exc:  # the next beat tries again; a scan is not lost for it
            log.warning("store writer: refreshing the heartbeat of %s failed: %s", owned, exc)

    async def _flush_periodically(self) -> None:
        while True:
            await asyncio.sleep(self.flush_interval_s)
            # Shielded: cancelling the timer (close) must not leave a write running
            # in its thread without the lock, beside the final flush.
            if self._buffer or self._findings or self._kept:
                try:
                    await asyncio.shield(self._flush(held_too=False))
                except Exception:  # flush logs its own failures; keep the timer alive
                    log.exception("store writer: periodic flush failed")
            if time.monotonic() - self._last_beat >= HEARTBEAT_INTERVAL_S:
                await asyncio.shield(self._heartbeat())

    async def close(self) -> None:
        """Stop receiving (delivering what the bus queued), then flush what remains.

        What still cannot be written is reported as lost: the process is ending.
        """
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
        async with self._lock:  # a shielded periodic write still running ends first
            pass
        if self._inflight is not None:
            await self._inflight
        await self.flush()
        if self._log_events:
            # So the log stays bounded where no server runs to prune it.
            try:
                await asyncio.to_thread(self.store.prune_event_log_if_due)
            except Exception as exc:
                log.warning("store writer: pruning the event log failed: %s", _cause(exc))
        kept_events = sum(w.count for w in self._kept)
        if self._buffer or kept_events:
            self.samples_failed += len(self._buffer)
            self.events_failed += kept_events
            log.error(
                "store writer: closing with %d samples and %d event(s) the store would not"
                " take; they are lost",
                len(self._buffer),
                kept_events,
            )
            self._buffer = []
            self._kept.clear()
