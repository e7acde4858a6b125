"""Guards: the series an impact budget watches while a scan runs, and their levels.

A ``SeriesGuard`` watches a stored or scraped series picked by a selector
(``[scan.impact] guard``). Its samples arrive through a ``GuardFeed``: from the
bus as they are published (``MetricsRecorded``, in the process that scrapes
them) and, where the bus does not carry them (a ``secperf scan`` in a terminal
while ``secperf up`` scrapes), by polling the store once a second. Several
series matching one selector read as the largest of their latest values.

``HostCpuGuard`` is the built-in default, ``host_cpu_others``: the share of
the host's CPU (all cores, 0-100 %) used by processes other than the scan's
(the secperf process running the scan and its workers), from
``psutil.cpu_times()`` deltas minus the scan processes' CPU time deltas, read
at most once a second. Other processes are harmed when they get *less*: the
guard is over budget when the host is busy (at least ``HOST_BUSY_PCT``) and the
others' share falls more than the budget below its level; while the host has
idle CPU, whatever the others use is what they asked for.

Levels: ``before`` is the guard's median over ``before_window`` before the
scan; ``quiet`` its learned quiet level: the median of its 1-minute averages
over the last 24 h outside every stored scan. The budget compares fresh values
with ``max(before, quiet)``; ``paused``, once the controller has found the
guard over budget with the scan paused, moves that level to what the guard
read while paused (up for a latency, down for the CPU left to others).
"""

from __future__ import annotations

import abc
import statistics
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import psutil

from secperf.config.sections.impact import SeriesSelector
from secperf.events import now_ms
from secperf.model import Sample
from secperf.security.pacing.reading import SeriesStore

#: The host counts as busy (other processes can be starved) from this CPU %.
HOST_BUSY_PCT = 90.0
#: How far back the quiet level is learned.
QUIET_WINDOW_MS = 24 * 3600 * 1000
QUIET_STEP_MS = 60_000
#: Samples a feed keeps (per guard): an hour at one a second.
MAX_KEPT = 3600
#: Below this many seconds of bus silence, a guard does not poll the store.
BUS_FRESH_S = 1.5
#: How often a guard fed by the store polls it.
POLL_EVERY_S = 1.0


def _host_busy_total() -> tuple[float, float]:
    """Busy and total CPU seconds of the host, summed over CPUs (as ``perf.impact`` counts)."""
    times = psutil.cpu_times()
    total = sum(times)
    # Guest time is already counted in user time on Linux; iowait is idle time.
    idle = times.idle + getattr(times, "iowait", 0.0)
    total -= getattr(times, "guest", 0.0) + getattr(times, "guest_nice", 0.0)
    return total - idle, total


@dataclass(frozen=True, slots=True)
class Reading:
    """A guard's value at a time (UTC ms)."""

    value: float
    ts_ms: int


class Guard(abc.ABC):
    """One guard of a scan's budget."""

    #: "up": more is worse (a latency); "down": less is worse (CPU left to others).
    direction = "up"

    def __init__(self, name: str) -> None:
        self.name = name
        self.before: float | None = None
        self.quiet: float | None = None
        self.paused: float | None = None

    @property
    def level(self) -> float | None:
        """What the budget compares with: ``max(before, quiet)`` (either when one is missing),
        moved to ``paused`` in the harmful direction once that is known."""
        known = [v for v in (self.before, self.quiet) if v is not None]
        if not known:
            return self.paused
        level = max(known)
        if self.paused is None:
            return level
        return max(level, self.paused) if self.direction == "up" else min(level, self.paused)

    @abc.abstractmethod
    def prepare(self, scan_start_ms: int, before_window_ms: int) -> str | None:
        """Learn ``before`` and ``quiet``; returns why the guard cannot be used, or None."""

    @abc.abstractmethod
    def read(self, now: int) -> Reading | None:
        """The newest reading (None: none yet)."""

    def increase_pct(self, value: float) -> float:
        """How far ``value`` is from the level, in % of it, counted in the harmful direction."""
        level = self.level
        if level is None or level <= 0:
            return 0.0 if value <= 0 else float("inf")
        change = (value - level) if self.direction == "up" else (level - value)
        return 100.0 * change / level


class GuardFeed:
    """The samples of one selector, from the bus (``offer``) and the store (``poll``)."""

    def __init__(self, selector: SeriesSelector, store: SeriesStore | None) -> None:
        self.selector = selector
        self.store = store
        self._lock = threading.Lock()
        # (ts_ms, value, series key): newest last.
        self._samples: deque[tuple[int, float, str]] = deque(maxlen=MAX_KEPT)
        self._latest: dict[str, tuple[int, float]] = {}
        self._last_offer = 0.0
        self._last_poll = 0.0
        self._polled_to: int | None = None

    def offer(self, samples: Iterable[Sample]) -> int:
        """Keep the samples this selector picks (a bus handler); returns how many."""
        kept = 0
        for sample in samples:
            if sample.name == self.selector.name and self.selector.matches(
                sample.name, sample.labels
            ):
                self._add(sample.timestamp_ms, sample.value, _key(sample.labels))
                kept += 1
        if kept:
            self._last_offer = time.monotonic()
        return kept

    def _add(self, ts: int, value: float, key: str) -> None:
        with self._lock:
            seen = self._latest.get(key)
            if seen is not None and ts <= seen[0]:
                if ts == seen[0]:
                    return  # the same sample from the bus and the store
            else:
                self._latest[key] = (ts, value)
            self._samples.append((ts, value, key))

    def poll(self, until_ms: int, since_ms: int | None = None) -> None:
        """Read the store's samples from ``since_ms`` (default: the last poll) to ``until_ms``."""
        if self.store is None:
            return
        start = since_ms if since_ms is not None else self._polled_to
        if start is None:
            start = until_ms - 10_000
        for points in self.store.query(
            self.selector.name, self.selector.equality_labels() or None, start, until_ms
        ):
            if not self.selector.matches(points.name, points.labels):
                continue
            key = _key(points.labels)
            for ts, value in zip(points.timestamps.tolist(), points.values.tolist(), strict=True):
                self._add(int(ts), float(value), key)
        self._polled_to = until_ms + 1
        self._last_poll = time.monotonic()

    def poll_due(self) -> bool:
        """Whether a second has passed since the store was last polled (one query a second)."""
        return time.monotonic() - self._last_poll >= POLL_EVERY_S

    def bus_fresh(self) -> bool:
        """Whether the bus delivered samples lately (then the store is not polled)."""
        return time.monotonic() - self._last_offer < BUS_FRESH_S

    def values_between(self, start_ms: int, end_ms: int) -> list[float]:
        with self._lock:
            return [v for ts, v, _ in self._samples if start_ms <= ts < end_ms]

    def latest(self, newer_than_ms: int) -> Reading | None:
        """The largest latest value of the series seen since ``newer_than_ms``."""
        with self._lock:
            recent = [(ts, v) for ts, v in self._latest.values() if ts >= newer_than_ms]
        if not recent:
            return None
        return Reading(max(v for _, v in recent), max(ts for ts, _ in recent))

    def stored_series(self) -> int:
        """How many stored series this selector matches (0 without a store)."""
        if self.store is None:
            return 0
        infos = self.store.series(self.selector.name, self.selector.equality_labels() or None)
        return sum(1 for info in infos if self.selector.matches(info.name, info.labels))


def _key(labels: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


class SeriesGuard(Guard):
    """A guard on a stored or scraped series (see the module doc)."""

    def __init__(self, feed: GuardFeed, *, stale_after_ms: int) -> None:
        super().__init__(str(feed.selector))
        self.feed = feed
        self.stale_after_ms = stale_after_ms
        self._started = 0

    def prepare(self, scan_start_ms: int, before_window_ms: int) -> str | None:
        start = scan_start_ms - before_window_ms
        self._started = scan_start_ms
        if self.feed.store is not None:
            self.feed.poll(scan_start_ms, since_ms=start)
            self.quiet = quiet_level(self.feed.store, self.feed.selector, scan_start_ms)
        values = self.feed.values_between(start, scan_start_ms + 1)
        if values:
            self.before = statistics.median(values)
        if self.level is not None:
            return None
        if self.feed.store is not None and self.feed.stored_series() == 0:
            return f"guard {self.name} matches no series"
        return (
            f"guard {self.name} has no sample in the {before_window_ms // 1000} s before the scan"
        )

    def read(self, now: int) -> Reading | None:
        if self.feed.store is not None and not self.feed.bus_fresh() and self.feed.poll_due():
            self.feed.poll(now)
        return self.feed.latest(newer_than_ms=now - self.stale_after_ms)


def quiet_level(store: SeriesStore, selector: SeriesSelector, now: int) -> float | None:
    """The median of the selector's 1-minute averages over 24 h outside stored scans."""
    start = now - QUIET_WINDOW_MS
    windows = [
        (scan.started_ms, scan.finished_ms or now)
        for scan in store.scans(limit=500)
        if (scan.finished_ms or now) >= start
    ]
    values: list[float] = []
    for points in store.query(
        selector.name, selector.equality_labels() or None, start, now, step_ms=QUIET_STEP_MS
    ):
        if not selector.matches(points.name, points.labels):
            continue
        for ts, value in zip(points.timestamps.tolist(), points.values.tolist(), strict=True):
            step_end = int(ts) + QUIET_STEP_MS
            if any(s < step_end and int(ts) < e for s, e in windows):
                continue
            values.append(float(value))
    return statistics.median(values) if values else None


class HostCpuGuard(Guard):
    """``host_cpu_others``: the host CPU % used by processes other than the scan's."""

    direction = "down"

    def __init__(self, own_pids: Callable[[], Iterable[int]], *, interval_s: float = 1.0) -> None:
        super().__init__("host_cpu_others")
        self.own_pids = own_pids
        self.interval_s = interval_s
        self._procs: dict[int, tuple[psutil.Process, float]] = {}
        self._host = _host_busy_total()
        self._since = time.monotonic()
        self._own_cpu_s = self._own_cpu_seconds(first=True)
        self._last: Reading | None = None
        self.host_busy_pct = 0.0

    def _own_cpu_seconds(self, *, first: bool = False) -> float:
        """CPU seconds the scan's processes used since the last call (all since start if new)."""
        used = 0.0
        alive: set[int] = set()
        for pid in set(self.own_pids()):
            entry = self._procs.get(pid)
            try:
                proc = entry[0] if entry else psutil.Process(pid)
                times = proc.cpu_times()
            except psutil.Error:
                continue
            total = times.user + times.system
            previous = entry[1] if entry else (total if first else 0.0)
            used += max(0.0, total - previous)
            self._procs[pid] = (proc, total)
            alive.add(pid)
        for pid in set(self._procs) - alive:
            del self._procs[pid]
        return used

    def _measure(self) -> Reading:
        busy, total = _host_busy_total()
        own = self._own_cpu_seconds()
        prev_busy, prev_total = self._host
        self._host = (busy, total)
        self._since = time.monotonic()
        span = total - prev_total
        if span <= 0:
            return self._last or Reading(0.0, now_ms())
        host_pct = min(100.0, 100.0 * max(0.0, busy - prev_busy) / span)
        # cpu_times() totals are summed over every CPU, like the processes' times.
        others = max(0.0, host_pct - 100.0 * own / span)
        self.host_busy_pct = host_pct
        self._last = Reading(others, now_ms())
        return self._last

    def prepare(self, scan_start_ms: int, before_window_ms: int) -> str | None:
        # Before: from this guard's creation (before the scan began) until now;
        # too short a span to say anything is lengthened a little.
        wait = 0.5 - (time.monotonic() - self._since)
        if wait > 0:
            time.sleep(wait)
        self.before = self._measure().value
        return None

    def read(self, now: int) -> Reading | None:
        if self._last is None or time.monotonic() - self._since >= self.interval_s:
            return self._measure()
        return self._last

    def increase_pct(self, value: float) -> float:
        # The others can only be starved while the host is busy.
        if self.host_busy_pct < HOST_BUSY_PCT:
            return 0.0
        return super().increase_pct(value)
