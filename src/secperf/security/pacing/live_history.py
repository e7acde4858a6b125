"""A bounded, in-memory history of a host's guard series and scans, read as a store.

``secperf agent`` has no store: what it collects goes onto the bus for a
central server. To plan its periodic scans (quiet now? the quietest hour of
the week?), pace them and predict their cost, it keeps what the pacing
modules read of a store here, in memory, and answers the same protocols
(``reading.SeriesStore`` and ``reading.PredictionStore``):

* the samples of the series its guards name (``offer`` them as they are
  collected): the last ``RAW_MINUTES`` minutes as they came, and one median
  per minute for ``MINUTES_KEPT`` minutes (7 days) in a ring buffer, so
  memory stays bounded however long the agent runs (about 240 KB a series,
  at most ``MAX_SERIES`` series);
* its own last ``SCANS_KEPT`` scans, with their prediction and pacing
  documents, from which the cost model learns.

What it holds is lost when the agent stops: an agent plans from a profile
again once it has run for a day (``schedule.MIN_PROFILE_HOURS``).
"""

from __future__ import annotations

import bisect
import dataclasses
import logging
import statistics
import threading
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from secperf.model import Sample, SecurityMetrics
from secperf.security.pacing.schedule import GuardSeries

log = logging.getLogger(__name__)

MINUTE_MS = 60_000
#: One median a minute for a week: the hour-of-week profile's span.
MINUTES_KEPT = 7 * 24 * 60
#: Samples kept as they came, in whole minutes (the schedule's window, the budget's
#: ``before_window`` and the guards' readings look no further back).
RAW_MINUTES = 15
#: A bound on samples kept as they came, per series (one a second for RAW_MINUTES).
RAW_KEPT = RAW_MINUTES * 60 + 60
#: Series kept at most (a selector matching many series must not grow without bound).
MAX_SERIES = 16
#: Scans kept for the cost model (it reads the newest ten usable ones).
SCANS_KEPT = 50
#: Documents recorded before their scan ended, kept until it does.
_PENDING_KEPT = 8


@dataclass(frozen=True, slots=True)
class LivePoints:
    """One series' points in a range (``store.samples.SeriesPoints``' shape)."""

    name: str
    labels: dict[str, str]
    timestamps: npt.NDArray[np.int64]
    values: npt.NDArray[np.float64]
    count: npt.NDArray[np.int64] | None = None


@dataclass(frozen=True, slots=True)
class LiveSeriesInfo:
    """A series held (``store.samples.SeriesInfo``' shape)."""

    name: str
    labels: dict[str, str]


@dataclass(frozen=True, slots=True)
class LiveScan:
    """One of the agent's own scans (``store.ScanRecord``' shape)."""

    scan_id: str
    target: str
    started_ms: int
    finished_ms: int | None
    status: str
    metrics: SecurityMetrics | None
    owner_host: str | None
    pacing: dict[str, Any] | None = None
    prediction: dict[str, Any] | None = None
    is_import: bool = False


class _Series:
    """One series: its recent samples and a ring of per-minute medians."""

    def __init__(self, name: str, labels: dict[str, str], capacity: int) -> None:
        self.name = name
        self.labels = labels
        self.raw: deque[tuple[int, float]] = deque(maxlen=RAW_KEPT)
        self.open_minute: int | None = None  # start of the minute still collecting
        self.open_values: list[float] = []
        self.capacity = capacity
        self.minute_ts = np.zeros(capacity, dtype=np.int64)
        self.minute_values = np.zeros(capacity, dtype=np.float64)
        self.minute_counts = np.zeros(capacity, dtype=np.int64)
        self.size = 0
        self.head = 0  # where the next closed minute goes

    def add(self, ts: int, value: float) -> None:
        minute = ts // MINUTE_MS * MINUTE_MS
        if self.open_minute is None or minute > self.open_minute:
            self._close_minute()
            self.open_minute = minute
        if minute == self.open_minute:
            self.open_values.append(value)
        # An older sample (out of order) is kept as it came only: its minute is closed.
        if not self.raw or ts >= self.raw[-1][0]:
            self.raw.append((ts, value))
        elif ts >= self.raw[0][0]:
            items = list(self.raw)
            bisect.insort(items, (ts, value))
            self.raw = deque(items, maxlen=RAW_KEPT)
        cutoff = minute - RAW_MINUTES * MINUTE_MS
        while self.raw and self.raw[0][0] < cutoff:
            self.raw.popleft()

    def _close_minute(self) -> None:
        if self.open_minute is None or not self.open_values:
            return
        i = self.head
        self.minute_ts[i] = self.open_minute
        self.minute_values[i] = statistics.median(self.open_values)
        self.minute_counts[i] = len(self.open_values)
        self.head = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)
        self.open_values = []

    def minutes(
        self,
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64], npt.NDArray[np.int64]]:
        """Every minute's (start, median, samples), oldest first, the open minute last."""
        if self.size < self.capacity:
            order = slice(0, self.size)
            ts, values, counts = (
                self.minute_ts[order],
                self.minute_values[order],
                self.minute_counts[order],
            )
        else:
            ts = np.concatenate((self.minute_ts[self.head :], self.minute_ts[: self.head]))
            values = np.concatenate(
                (self.minute_values[self.head :], self.minute_values[: self.head])
            )
            counts = np.concatenate(
                (self.minute_counts[self.head :], self.minute_counts[: self.head])
            )
        if self.open_minute is not None and self.open_values:
            ts = np.append(ts, np.int64(self.open_minute))
            values = np.append(values, statistics.median(self.open_values))
            counts = np.append(counts, np.int64(len(self.open_values)))
        return ts, values, counts

    def raw_between(self, start_ms: int, end_ms: int) -> tuple[list[int], list[float]]:
        """Samples as they came, whatever the minutes hold before the oldest of them."""
        first_raw = self.raw[0][0] // MINUTE_MS * MINUTE_MS if self.raw else None
        stamps: list[int] = []
        values: list[float] = []
        ts, medians, _ = self.minutes()
        keep = (ts >= start_ms) & (ts <= end_ms)
        if first_raw is not None:
            keep &= ts < first_raw
        stamps.extend(int(t) for t in ts[keep])
        values.extend(float(v) for v in medians[keep])
        for t, v in self.raw:
            if start_ms <= t <= end_ms:
                stamps.append(t)
                values.append(v)
        return stamps, values


def _matches(labels: Mapping[str, str], matchers: Mapping[str, str] | None) -> bool:
    return not matchers or all(labels.get(k) == v for k, v in matchers.items())


class LiveHistory:
    """What the pacing modules read of a store, kept in memory (see the module doc).

    ``guards`` name the series worth keeping; samples of other series offered
    are ignored. Thread-safe: collectors offer on the event loop while the
    schedule, the budget and the cost model read from worker threads.
    """

    def __init__(self, guards: Iterable[GuardSeries], *, minutes_kept: int = MINUTES_KEPT) -> None:
        if minutes_kept < 1:
            raise ValueError(f"minutes_kept must be at least 1, got {minutes_kept}")
        self.guards = list(guards)
        self.minutes_kept = minutes_kept
        self._series: dict[tuple[str, tuple[tuple[str, str], ...]], _Series] = {}
        self._scans: deque[LiveScan] = deque(maxlen=SCANS_KEPT)
        self._pending: dict[str, dict[str, dict[str, Any]]] = {}
        self._refused = 0
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ samples

    def wants(self, sample: Sample) -> bool:
        """Whether one of the guards names ``sample``'s series."""
        return any(
            sample.name == g.name and _matches(sample.labels, g.equality) and g.picks(sample.labels)
            for g in self.guards
        )

    def offer(self, samples: Iterable[Sample]) -> int:
        """Keep the samples of the guards' series; returns how many were kept."""
        kept = 0
        with self._lock:
            for sample in samples:
                if not self.wants(sample):
                    continue
                key = (sample.name, tuple(sorted(sample.labels.items())))
                series = self._series.get(key)
                if series is None:
                    if len(self._series) >= MAX_SERIES:
                        if self._refused == 0:
                            log.warning(
                                "live history: more than %d guard series, %s not kept",
                                MAX_SERIES,
                                sample.name,
                            )
                        self._refused += 1
                        continue
                    series = self._series[key] = _Series(
                        sample.name, dict(sample.labels), self.minutes_kept
                    )
                series.add(sample.timestamp_ms, float(sample.value))
                kept += 1
        return kept

    def query(
        self,
        name: str,
        matchers: dict[str, str] | None,
        start_ms: int,
        end_ms: int,
        *,
        step_ms: int | None = None,
        max_points: int | None = None,
    ) -> list[LivePoints]:
        """The held series named ``name`` whose labels equal ``matchers``, between the times.

        Without ``step_ms``: recent samples as they came, per-minute medians
        before them. With it: the average of the per-minute medians in each
        step (and how many samples they stand for); empty steps are left out.
        ``max_points`` keeps the newest points.
        """
        found: list[LivePoints] = []
        with self._lock:
            held = [s for s in self._series.values() if s.name == name]
            for series in held:
                if not _matches(series.labels, matchers):
                    continue
                if step_ms is None:
                    stamps, values = series.raw_between(start_ms, end_ms)
                    if not stamps:
                        continue
                    ts = np.asarray(stamps, dtype=np.int64)
                    vs = np.asarray(values, dtype=np.float64)
                    counts = None
                else:
                    if step_ms <= 0:
                        raise ValueError(f"step_ms must be positive, got {step_ms}")
                    ts, vs, counts = self._stepped(series, start_ms, end_ms, step_ms)
                    if not len(ts):
                        continue
                if max_points is not None and len(ts) > max_points:
                    ts, vs = ts[-max_points:], vs[-max_points:]
                    counts = counts[-max_points:] if counts is not None else None
                found.append(LivePoints(series.name, dict(series.labels), ts, vs, counts))
        return found

    @staticmethod
    def _stepped(
        series: _Series, start_ms: int, end_ms: int, step_ms: int
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64], npt.NDArray[np.int64]]:
        ts, values, counts = series.minutes()
        keep = (ts >= start_ms) & (ts <= end_ms)
        ts, values, counts = ts[keep], values[keep], counts[keep]
        if not len(ts):
            empty = np.zeros(0, dtype=np.int64)
            return empty, np.zeros(0, dtype=np.float64), empty
        steps = ts // step_ms * step_ms
        starts, inverse = np.unique(steps, return_inverse=True)
        sums = np.bincount(inverse, weights=values)
        minutes = np.bincount(inverse)
        samples = np.bincount(inverse, weights=counts).astype(np.int64)
        return starts.astype(np.int64), sums / minutes, samples

    def series(
        self, name: str | None = None, matchers: dict[str, str] | None = None
    ) -> list[LiveSeriesInfo]:
        """The series held, by name and label equality."""
        with self._lock:
            return [
                LiveSeriesInfo(s.name, dict(s.labels))
                for s in self._series.values()
                if (name is None or s.name == name) and _matches(s.labels, matchers)
            ]

    # ------------------------------------------------------------------ scans

    def scans(
        self, limit: int = 50, target: str | None = None, *, kind: str | None = None
    ) -> list[LiveScan]:
        """The agent's own scans, newest first (all are scans: ``kind`` "import" finds none)."""
        if kind == "import":
            return []
        with self._lock:
            newest = [s for s in reversed(self._scans) if target is None or s.target == target]
        return newest[:limit]

    def record_scan_prediction(
        self, scan_id: str, prediction: Mapping[str, Any], *, target: str = "", started_ms: int
    ) -> None:
        """Keep a scan's prediction (for its record, when the scan is remembered)."""
        self._attach(scan_id, "prediction", prediction)

    def record_scan_pacing(self, scan_id: str, pacing: Mapping[str, Any]) -> None:
        """Keep a scan's pacing document (for its record, when the scan is remembered)."""
        self._attach(scan_id, "pacing", pacing)

    def _attach(self, scan_id: str, what: str, document: Mapping[str, Any]) -> None:
        with self._lock:
            for index, scan in enumerate(self._scans):
                if scan.scan_id == scan_id:
                    fields: dict[str, Any] = {what: dict(document)}
                    self._scans[index] = dataclasses.replace(scan, **fields)
                    return
            self._pending.setdefault(scan_id, {})[what] = dict(document)
            while len(self._pending) > _PENDING_KEPT:
                del self._pending[next(iter(self._pending))]

    def remember_scan(self, metrics: SecurityMetrics, status: str, *, host: str | None) -> LiveScan:
        """Keep a scan that ended, with the documents recorded for it so far."""
        with self._lock:
            documents = self._pending.pop(metrics.scan_id, {})
            scan = LiveScan(
                scan_id=metrics.scan_id,
                target=metrics.target,
                started_ms=metrics.started_ms,
                finished_ms=metrics.finished_ms,
                status=status,
                metrics=metrics,
                owner_host=host,
                pacing=documents.get("pacing"),
                prediction=documents.get("prediction"),
            )
            self._scans.append(scan)
        return scan
