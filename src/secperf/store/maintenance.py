"""Store maintenance: roll samples up into the tiers every minute, apply retention every hour.

``serve``, ``up`` and ``monitor`` start one ``StoreMaintenance`` beside their
store writer. It runs in a daemon thread of its own, so a long catch-up (a
store that was not maintained for a month) never delays ingest or requests;
every step is a short transaction (``Store.rollup``), so other processes on
the same SQLite file keep writing. What it did is logged at debug level, a
failure at warning level, and the next period tries again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from secperf.config.sections.store import StoreConfig
from secperf.events import now_ms
from secperf.store.store import RetentionResult, Store
from secperf.store.tiers import RollupResult, TierRetention

log = logging.getLogger(__name__)

ROLLUP_EVERY_MS = 60_000
RETENTION_EVERY_MS = 3_600_000
TRANSACTIONS_PER_SLICE = 20


def tier_retention(config: StoreConfig) -> TierRetention:
    """The retention of ``[store]``: retention_raw, retention_1m, retention_1h, retention."""
    return TierRetention(
        config.retention_raw, config.retention_1m, config.retention_1h, config.retention or None
    )


def _added(a: RollupResult, b: RollupResult) -> RollupResult:
    def merged(x: dict[int, int], y: dict[int, int]) -> dict[int, int]:
        return {k: x.get(k, 0) + y.get(k, 0) for k in {*x, *y}}

    return RollupResult(
        merged(a.buckets, b.buckets),
        merged(a.series, b.series),
        a.rerolled + b.rerolled,
        a.conflicts + b.conflicts,
        a.transactions + b.transactions,
    )


@dataclass(frozen=True, slots=True)
class MaintenanceResult:
    """What one maintenance step did (retention is None when it was not due)."""

    rollup: RollupResult
    retention: RetentionResult | None


class StoreMaintenance:
    """Periodic rollup and retention of one store, in a background thread."""

    def __init__(
        self,
        store: Store,
        retention: TierRetention,
        *,
        rollup_every_ms: int = ROLLUP_EVERY_MS,
        retention_every_ms: int = RETENTION_EVERY_MS,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        if rollup_every_ms <= 0 or retention_every_ms <= 0:
            raise ValueError("maintenance periods must be positive")
        self.store = store
        self.retention = retention
        self.rollup_every_ms = rollup_every_ms
        self.retention_every_ms = retention_every_ms
        self._clock = clock
        self._last_retention: int | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.runs = 0
        self.failures = 0

    @classmethod
    def from_config(cls, store: Store, config: StoreConfig) -> StoreMaintenance:
        """Built from the ``[store]`` section's retention keys."""
        return cls(store, tier_retention(config))

    def run_once(
        self, now: int | None = None, *, force_retention: bool = False
    ) -> MaintenanceResult:
        """Roll up what is complete; apply retention when an hour has passed since the last.

        Retention is left for the next step when this one was stopped before the
        rollup caught up (its result's ``retention`` is None then).
        """
        at = self._clock() if now is None else now
        rolled = RollupResult()
        complete = False
        while True:  # in slices, so that stop() need not wait for a long catch-up
            part = self.store.rollup(
                at, retention=self.retention, max_transactions=TRANSACTIONS_PER_SLICE
            )
            rolled = _added(rolled, part)
            complete = part.transactions < TRANSACTIONS_PER_SLICE
            if complete or self._stop.is_set():
                break
        if rolled.total_buckets or rolled.conflicts:
            log.debug(
                "store rollup: %d 1m and %d 1h buckets for %d series in %d transactions"
                " (%d re-rolled, %d left to another process)",
                rolled.buckets.get(60_000, 0),
                rolled.buckets.get(3_600_000, 0),
                rolled.series.get(60_000, 0),
                rolled.transactions,
                rolled.rerolled,
                rolled.conflicts,
            )
        retained = None
        due = self._last_retention is None or at - self._last_retention >= self.retention_every_ms
        # Retention waits for a whole catch-up: a pass stopped half-way has not yet
        # rolled into the tiers what retention would delete from their sources.
        if complete and (force_retention or due):
            retained = self.store.apply_tiered_retention(at, self.retention)
            self._last_retention = at
            tiers = retained.tiers
            log.debug(
                "store retention: raw before %d: %d chunks deleted, %d trimmed;"
                " rollup rows deleted %s; %d scans removed",
                retained.cutoff_ms,
                retained.chunks.chunks_deleted,
                retained.chunks.chunks_trimmed,
                tiers.deleted if tiers is not None else {},
                retained.records.scans,
            )
        self.runs += 1
        return MaintenanceResult(rolled, retained)

    def start(self) -> None:
        """Run ``run_once`` now and then every ``rollup_every_ms`` until ``stop``."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(
            target=self._loop, name="secperf-store-maintenance", daemon=True
        )
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Ask the thread to stop and wait for it (a step under way finishes first)."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout_s)

    def _loop(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self.run_once()
            except Exception as exc:  # the next period tries again
                self.failures += 1
                log.warning("store maintenance failed (retried in a minute): %s", exc)
            elapsed = time.monotonic() - started
            self._stop.wait(max(0.0, self.rollup_every_ms / 1000 - elapsed))
