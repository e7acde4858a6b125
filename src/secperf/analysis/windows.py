"""Scan windows, and the quiet windows each one is compared with.

A scan window is ``[start_ms, end_ms)``: the time a scan ran. For each scan we
choose quiet windows of the same length in which no scan ran, as a baseline
that differs from the scan window only by the scan's absence:

1. Every scan window, widened by ``guard_ms`` on both sides, is blocked: a scan's
   effect may start a little early (start-up) and linger (caches, queues).
2. Scans are matched in time order. For each, same-time-of-day windows are tried
   first: the scan window shifted by +-1, +-2, ... days (up to ``max_days``),
   nearest day first, so that daily load patterns cancel out. This only finds
   windows when the data spans more than a day around the scan.
3. The remaining slots are filled with the nearest free windows before and after
   the scan, nearest first, skipping over blocked time.
4. Quiet windows lie wholly inside ``[data_start_ms, data_end_ms]``, never overlap
   a blocked interval, and never overlap each other, so no sample is counted
   twice. Each scan gets up to ``per_scan`` of them; fewer when the data is too
   short or too busy.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass

DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class ScanWindow:
    """The time one scan ran, ``[start_ms, end_ms)`` in UTC milliseconds.

    The one model of a scan's time for correlation and for the alert rules. A
    scan still running has ``running`` set and ``end_ms`` at the moment it was
    looked at (``ScanWindow.still_running``): the end is always an integer, so
    correlation never meets an open window, and the rules that must not count an
    unfinished scan ask ``running``.
    """

    start_ms: int
    end_ms: int
    scan_id: str = ""
    scanners: tuple[str, ...] = ()
    running: bool = False

    @classmethod
    def still_running(
        cls, scan_id: str, start_ms: int, now_ms: int, scanners: tuple[str, ...] = ()
    ) -> ScanWindow:
        """A scan that has not finished, as seen at ``now_ms`` (its end so far)."""
        return cls(start_ms, now_ms, scan_id, scanners, running=True)

    @property
    def duration_ms(self) -> int:
        return self.end_ms - self.start_ms


@dataclass(frozen=True, slots=True)
class QuietWindow:
    """A stretch of time without scans matched to one scan window."""

    start_ms: int
    end_ms: int
    scan_id: str  # the scan it stands in for
    kind: str  # "time_of_day" (same clock time, another day) or "nearest"


ScanWindowLike = ScanWindow | tuple[int, int, str] | tuple[int, int]


def as_scan_windows(windows: Iterable[ScanWindowLike], *, lag_ms: int = 0) -> list[ScanWindow]:
    """Validated scan windows sorted by start, each shifted by ``lag_ms``.

    Accepts ``ScanWindow`` objects or ``(start_ms, end_ms[, scan_id])`` tuples;
    raises ValueError naming the bad window and why.
    """
    out: list[ScanWindow] = []
    for i, w in enumerate(windows):
        scanners: tuple[str, ...] = ()
        running = False
        if isinstance(w, ScanWindow):
            start, end, scan_id = w.start_ms, w.end_ms, w.scan_id
            scanners, running = w.scanners, w.running
        elif isinstance(w, tuple) and len(w) in (2, 3):
            start, end = w[0], w[1]
            scan_id = str(w[2]) if len(w) == 3 else f"#{i}"
        else:
            raise ValueError(
                f"scan window {i}: expected ScanWindow or (start_ms, end_ms, scan_id), got {w!r}"
            )
        for label, value in (("start_ms", start), ("end_ms", end)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(
                    f"scan window {i} ({scan_id}): {label} must be integer milliseconds, "
                    f"got {value!r}"
                )
        if end <= start:
            raise ValueError(
                f"scan window {i} ({scan_id}): end_ms {end} is not after start_ms {start}"
            )
        out.append(ScanWindow(start + lag_ms, end + lag_ms, scan_id, scanners, running))
    out.sort(key=lambda w: (w.start_ms, w.end_ms))
    return out


class _Blocked:
    """Disjoint, sorted half-open intervals with an overlap query."""

    def __init__(self, intervals: Iterable[tuple[int, int]]) -> None:
        merged: list[list[int]] = []
        for start, end in sorted(intervals):
            if merged and start <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], end)
            else:
                merged.append([start, end])
        self.starts = [s for s, _ in merged]
        self.ends = [e for _, e in merged]

    def blocker(self, start: int, end: int) -> tuple[int, int] | None:
        """The blocked interval overlapping ``[start, end)`` nearest its end, if any."""
        # Intervals are disjoint and sorted, so the last one starting before ``end``
        # has the largest end of all that do: it overlaps iff any does.
        i = bisect.bisect_left(self.starts, end) - 1
        if i >= 0 and self.ends[i] > start:
            return self.starts[i], self.ends[i]
        return None

    def first_blocker(self, start: int, end: int) -> tuple[int, int] | None:
        """The blocked interval overlapping ``[start, end)`` nearest its start, if any."""
        i = bisect.bisect_right(self.ends, start)
        if i < len(self.starts) and self.starts[i] < end:
            return self.starts[i], self.ends[i]
        return None

    def add(self, start: int, end: int) -> None:
        # Only free intervals are added, so the list stays disjoint.
        i = bisect.bisect_left(self.starts, start)
        self.starts.insert(i, start)
        self.ends.insert(i, end)


def _nearest(
    scan: ScanWindow, blocked: _Blocked, lo: int, hi: int, guard_ms: int, want: int
) -> list[tuple[int, int]]:
    """Up to ``want`` free windows on each side of ``scan``, nearest first."""
    length = scan.duration_ms
    before: list[tuple[int, int]] = []
    cursor = scan.start_ms - guard_ms
    while len(before) < want and cursor - length >= lo:
        hit = blocked.blocker(cursor - length, cursor)
        if hit is not None:
            cursor = hit[0]
            continue
        before.append((cursor - length, cursor))
        cursor -= length
    after: list[tuple[int, int]] = []
    cursor = scan.end_ms + guard_ms
    while len(after) < want and cursor + length <= hi:
        hit = blocked.first_blocker(cursor, cursor + length)
        if hit is not None:
            cursor = hit[1]
            continue
        after.append((cursor, cursor + length))
        cursor += length
    both = before + after
    both.sort(key=lambda w: min(abs(w[1] - scan.start_ms), abs(w[0] - scan.end_ms)))
    return both[:want]


def match_quiet_windows(
    scans: list[ScanWindow],
    *,
    data_start_ms: int,
    data_end_ms: int,
    guard_ms: int = 60_000,
    per_scan: int = 3,
    max_days: int = 7,
) -> list[QuietWindow]:
    """Quiet windows for ``scans`` (sorted, as from ``as_scan_windows``); see the module doc."""
    if guard_ms < 0:
        raise ValueError(f"guard_ms must not be negative, got {guard_ms}")
    if per_scan < 1:
        raise ValueError(f"per_scan must be at least 1, got {per_scan}")
    lo, hi = data_start_ms, data_end_ms + 1  # the last sample's instant is inside
    blocked = _Blocked((s.start_ms - guard_ms, s.end_ms + guard_ms) for s in scans)
    out: list[QuietWindow] = []
    for scan in scans:
        chosen = 0
        for days in range(1, max_days + 1):
            for sign in (-1, 1):
                if chosen >= per_scan:
                    break
                start = scan.start_ms + sign * days * DAY_MS
                end = start + scan.duration_ms
                if start < lo or end > hi or blocked.blocker(start, end) is not None:
                    continue
                blocked.add(start, end)
                out.append(QuietWindow(start, end, scan.scan_id, "time_of_day"))
                chosen += 1
        if chosen < per_scan:
            for start, end in _nearest(scan, blocked, lo, hi, guard_ms, per_scan - chosen):
                blocked.add(start, end)
                out.append(QuietWindow(start, end, scan.scan_id, "nearest"))
    return out
