"""When a periodic scan starts: at once when the guards are quiet, else at the quietest hour.

Each guard (``[scan.impact] guard``; host CPU by default) has an
*hour-of-week profile*: 168 buckets (hour 0 is Monday 00:00 UTC), each the
median of the guard's hourly averages stored in that hour of the week over
``[scan.schedule] history``. An hour of the week with no data borrows the
median of the same hour of the day.

A scan is due at ``due_ms`` and may wait until ``due_ms + max_delay``. Over
that horizon the profile says how low each guard is expected to go (its
*quiet level*). A guard is *quiet now* when its current level, the median of
its samples over ``[scan.schedule] window`` (host CPU is measured on the spot
when no fresh sample is stored), is at most ``quiet_pct`` % above its quiet
level: waiting would not buy a clearly quieter moment. The scan starts at
once when every guard is quiet; otherwise it is planned at the start of the
hour where the guards are expected quietest (relative to their quiet levels)
and, whatever happens, never later than ``due_ms + max_delay``. With the
scan's predicted duration (``expected_ms``: the cost model's prediction, or
the last scan's when planning ahead), an hour is judged by the whole stretch
the scan would run, each hour it spans weighted by its share: a long scan
that would run from a quiet hour into a busy one does not count as quiet.
Without a profile (less than a day of samples) the scan starts when due and
says why. A guard with no stored data is replaced by host CPU, and the plan
says so.
"""

from __future__ import annotations

import logging
import math
import statistics
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from secperf.model import MetricType

if TYPE_CHECKING:
    from secperf.config import ScanConfig
    from secperf.config.sections.impact import SeriesSelector
    from secperf.config.sections.schedule import ScheduleConfig
    from secperf.security.pacing.reading import SeriesStore

log = logging.getLogger(__name__)

HOUR_MS = 3_600_000
WEEK_HOURS = 168
#: 1970-01-01 was a Thursday: hour 0 of the epoch is hour 72 of its week (Monday 00:00 = 0).
_EPOCH_HOUR_OF_WEEK = 72
#: A profile needs this many hourly values (a day) before it plans anything.
MIN_PROFILE_HOURS = 24
HOST_CPU_LABEL = "host CPU"
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
#: The host CPU measured on the spot when no fresh sample is stored.
MeasureHostCpu = Callable[[], float | None]


def hour_of_week(t_ms: int) -> int:
    """0..167, Monday 00:00 UTC being 0."""
    return (t_ms // HOUR_MS + _EPOCH_HOUR_OF_WEEK) % WEEK_HOURS


def hour_name(t_ms: int) -> str:
    """``Tue 03:00 UTC``: the hour of the week that holds ``t_ms``."""
    moment = datetime.fromtimestamp(t_ms / 1000, tz=UTC)
    return f"{_DAYS[moment.weekday()]} {moment.hour:02d}:00 UTC"


def clock(t_ms: int) -> str:
    """``03:41 UTC``."""
    moment = datetime.fromtimestamp(t_ms / 1000, tz=UTC)
    return f"{moment.hour:02d}:{moment.minute:02d} UTC"


def format_span(ms: int) -> str:
    """``2 h``, ``90 min``, ``45 s``."""
    if ms >= HOUR_MS and ms % HOUR_MS == 0:
        return f"{ms // HOUR_MS} h"
    if ms >= 60_000:
        return f"{round(ms / 60_000)} min"
    return f"{round(ms / 1000)} s"


# --------------------------------------------------------------------------- guards


@dataclass(frozen=True, slots=True)
class GuardSeries:
    """A series the schedule watches: a metric name and a test on its labels."""

    label: str
    name: str
    equality: dict[str, str] = field(default_factory=dict)
    accept: Callable[[Mapping[str, str]], bool] | None = None

    def picks(self, labels: Mapping[str, str]) -> bool:
        """Whether a stored series with ``labels`` is one of this guard's."""
        return self.accept is None or self.accept(labels)

    @property
    def is_host_cpu(self) -> bool:
        """Whether this is the built-in host CPU guard."""
        return self.label == HOST_CPU_LABEL


def host_cpu_guard(host: str | None = None) -> GuardSeries:
    """Host CPU: ``cpu_percent`` of ``host`` without the per-core ``cpu`` label."""
    return GuardSeries(
        HOST_CPU_LABEL,
        MetricType.CPU_PERCENT.value,
        {"host": host} if host else {},
        lambda labels: "cpu" not in labels,
    )


def configured_guards(scan: ScanConfig, host: str | None) -> list[GuardSeries]:
    """The guards of ``[scan.impact] guard`` (host CPU for the built-in one), or host CPU."""
    guards: list[GuardSeries] = []
    for selector in scan.impact.guard:
        if selector.builtin:
            guards.append(host_cpu_guard(host))
        else:
            guards.append(
                GuardSeries(
                    str(selector), selector.name, selector.equality_labels(), _picks(selector)
                )
            )
    return guards or [host_cpu_guard(host)]


def _picks(selector: SeriesSelector) -> Callable[[Mapping[str, str]], bool]:
    def picks(labels: Mapping[str, str]) -> bool:
        return selector.matches(selector.name, dict(labels))

    return picks


# --------------------------------------------------------------------------- profile


@dataclass(frozen=True, slots=True)
class ProfileBucket:
    """One hour of the week: the median of its hourly averages, and the samples behind it."""

    hour_of_week: int
    level: float
    samples: int


@dataclass(frozen=True, slots=True)
class HourProfile:
    """A guard's hour-of-week profile (see the module docstring)."""

    series: str
    buckets: dict[int, ProfileBucket]
    by_hour_of_day: dict[int, float]
    hours: int  # hourly values behind the whole profile

    @property
    def usable(self) -> bool:
        """Whether there is enough history (a day of hourly values) to plan with."""
        return self.hours >= MIN_PROFILE_HOURS

    def level_at(self, t_ms: int) -> float | None:
        """The expected level in the hour holding ``t_ms``, or None when unknown."""
        bucket = self.buckets.get(hour_of_week(t_ms))
        if bucket is not None:
            return bucket.level
        return self.by_hour_of_day.get((t_ms // HOUR_MS) % 24)

    def to_document(self) -> list[dict[str, Any]]:
        """``[{"hour_of_week", "level", "samples"}]`` for the hours with data, in order."""
        return [
            {"hour_of_week": b.hour_of_week, "level": round(b.level, 4), "samples": b.samples}
            for b in sorted(self.buckets.values(), key=lambda b: b.hour_of_week)
        ]


def hour_of_week_profile(
    store: SeriesStore,
    guard: GuardSeries,
    now_ms: int,
    *,
    history_ms: int = 28 * 24 * HOUR_MS,
) -> HourProfile:
    """The profile of ``guard`` over ``history_ms`` before ``now_ms``, from the store's tiers.

    Public for the advice rules: ``quietest`` on the result names the quietest hour.
    """
    start = (now_ms - history_ms) // HOUR_MS * HOUR_MS
    # The hour under way is left out: its samples are the present being judged
    # against the profile, and a busy present must not make itself look usual.
    end = now_ms // HOUR_MS * HOUR_MS - 1
    found = store.query(guard.name, guard.equality or None, start, end, step_ms=HOUR_MS)
    hourly: dict[int, list[float]] = defaultdict(list)
    counts: dict[int, int] = defaultdict(int)
    by_day_hour: dict[int, list[float]] = defaultdict(list)
    total = 0
    for points in found:
        if not guard.picks(points.labels):
            continue
        stamps = points.timestamps.tolist()
        values = points.values.tolist()
        numbers = points.count.tolist() if points.count is not None else [1] * len(stamps)
        for t, v, n in zip(stamps, values, numbers, strict=True):
            how = hour_of_week(int(t))
            hourly[how].append(float(v))
            counts[how] += int(n)
            by_day_hour[(int(t) // HOUR_MS) % 24].append(float(v))
            total += 1
    return HourProfile(
        series=guard.label,
        buckets={
            how: ProfileBucket(how, statistics.median(values), counts[how])
            for how, values in hourly.items()
        },
        by_hour_of_day={h: statistics.median(v) for h, v in by_day_hour.items()},
        hours=total,
    )


def quietest(profile: HourProfile) -> ProfileBucket | None:
    """The profile's quietest hour of the week (the earliest of equals), or None when empty."""
    if not profile.buckets:
        return None
    return min(profile.buckets.values(), key=lambda b: (b.level, b.hour_of_week))


def current_level(
    store: SeriesStore, guard: GuardSeries, now_ms: int, window_ms: int
) -> float | None:
    """The median of ``guard``'s samples over the last ``window_ms``, or None without any."""
    found = store.query(guard.name, guard.equality or None, now_ms - window_ms, now_ms)
    values: list[float] = []
    for points in found:
        if guard.picks(points.labels):
            values.extend(float(v) for v in points.values.tolist())
    return statistics.median(values) if values else None


def measure_host_cpu() -> float | None:
    """Host CPU % over half a second, measured here (when no fresh sample is stored)."""
    try:
        import psutil

        return float(psutil.cpu_percent(interval=0.5))
    except Exception:  # measuring is a fallback: no value is an answer too
        log.debug("cannot measure host CPU", exc_info=True)
        return None


# --------------------------------------------------------------------------- the plan


@dataclass(frozen=True, slots=True)
class Settings:
    """What the plan depends on: ``[scan] every`` and ``[scan.schedule]``."""

    max_delay_ms: int = 2 * HOUR_MS
    quiet_pct: float = 20.0
    window_ms: int = 60_000
    history_ms: int = 28 * 24 * HOUR_MS
    every_ms: int | None = None

    @classmethod
    def from_config(cls, scan: ScanConfig, *, every_ms: int | None = None) -> Settings:
        """From ``[scan]``; ``every_ms`` (the caller's period) before ``[scan] every``."""
        schedule: ScheduleConfig = scan.schedule
        period = every_ms if every_ms is not None else (scan.every or None)
        return cls(
            max_delay_ms=schedule.max_delay,
            quiet_pct=schedule.quiet_pct,
            window_ms=schedule.window,
            history_ms=schedule.history,
            every_ms=period,
        )


@dataclass(frozen=True, slots=True)
class GuardState:
    """One guard at planning time: its level now, its quiet level, whether it is quiet."""

    series: str
    current: float | None
    quiet_level: float | None
    quiet: bool | None  # None: not judged (no profile or no current level)
    profile: HourProfile
    note: str | None = None


@dataclass(frozen=True, slots=True)
class SchedulePlan:
    """When the next scan starts and why (the API's ``/api/v1/schedule`` document)."""

    next_scan_ms: int | None
    reason: str
    quiet_now: bool
    deadline_ms: int | None
    every_ms: int | None
    max_delay_ms: int | None
    guards: tuple[GuardState, ...] = ()
    notes: tuple[str, ...] = ()
    #: The scan's predicted duration the plan judged hours by (None: one hour each).
    expected_ms: float | None = None

    @property
    def profile(self) -> HourProfile | None:
        """The first guard's profile (the one the dashboard draws)."""
        return self.guards[0].profile if self.guards else None

    def to_document(self) -> dict[str, Any]:
        """``GET /api/v1/schedule``'s answer."""
        profile = self.profile
        return {
            "next_scan_ms": self.next_scan_ms,
            "reason": self.reason,
            "quiet_now": self.quiet_now,
            "every_ms": self.every_ms,
            "max_delay_ms": self.max_delay_ms,
            "deadline_ms": self.deadline_ms,
            "expected_ms": round(self.expected_ms) if self.expected_ms is not None else None,
            "guards": [
                {
                    "series": g.series,
                    "current": g.current,
                    "quiet_level": g.quiet_level,
                    "quiet": g.quiet,
                    "note": g.note,
                }
                for g in self.guards
            ],
            "notes": list(self.notes),
            "profile": profile.to_document() if profile is not None else [],
        }


def _figure(value: float) -> str:
    return f"{value:.3g}"


def _hour_starts(now_ms: int, deadline_ms: int) -> list[int]:
    """The starts of the hours after ``now_ms`` that begin before ``deadline_ms``."""
    first = (now_ms // HOUR_MS + 1) * HOUR_MS
    return list(range(first, deadline_ms, HOUR_MS))


def plan_scan(
    store: SeriesStore | None,
    settings: Settings,
    guards: Sequence[GuardSeries],
    *,
    now_ms: int,
    due_ms: int | None = None,
    measure: MeasureHostCpu | None = None,
    expected_ms: float | None = None,
) -> SchedulePlan:
    """Plan a scan due at ``due_ms`` (default now), looking no further than ``max_delay``.

    ``expected_ms``: how long the scan is predicted to run; hours are then
    judged over the stretch it would span (see the module docstring).
    """
    span = usable_span(expected_ms)
    plan = _plan_scan(store, settings, guards, now_ms, due_ms, measure, span)
    if span is not None:
        plan = replace(plan, expected_ms=span)
    return plan


def usable_span(expected_ms: float | None) -> float | None:
    """A predicted duration the plan can judge by: None unless finite and positive; at
    most a week (the profile repeats weekly: a week's stretch covers every hour)."""
    if expected_ms is None or not math.isfinite(expected_ms) or expected_ms <= 0:
        return None
    return min(float(expected_ms), float(WEEK_HOURS * HOUR_MS))


def _plan_scan(
    store: SeriesStore | None,
    settings: Settings,
    guards: Sequence[GuardSeries],
    now_ms: int,
    due_ms: int | None,
    measure: MeasureHostCpu | None,
    span: float | None,
) -> SchedulePlan:
    due = now_ms if due_ms is None else due_ms
    deadline = due + settings.max_delay_ms
    every, delay = settings.every_ms, settings.max_delay_ms
    if due > now_ms:
        # Not due yet: the plan is the due time, judged again when it comes.
        return SchedulePlan(
            due,
            f"next periodic scan due at {clock(due)} (every {format_span(every or 0)})",
            False,
            deadline,
            every,
            delay,
        )
    if delay <= 0:
        return SchedulePlan(
            now_ms,
            "scans start when due ([scan.schedule] max_delay = 0)",
            True,
            now_ms,
            every,
            delay,
        )
    if store is None:
        return SchedulePlan(
            now_ms, "no store to learn quiet hours from: scanning now", True, deadline, every, delay
        )
    notes: list[str] = []
    states: list[GuardState] = []
    for guard in guards:
        state = _guard_state(store, guard, settings, now_ms, deadline, measure)
        if state is None:  # no stored data at all: host CPU stands in
            fallback = host_cpu_guard(guard.equality.get("host"))
            notes.append(_unmatched_guard_note(store, guard))
            if any(g.is_host_cpu for g in guards):
                continue
            state = _guard_state(store, fallback, settings, now_ms, deadline, measure)
            if state is None:
                state = GuardState(
                    HOST_CPU_LABEL, None, None, None, HourProfile(HOST_CPU_LABEL, {}, {}, 0)
                )
        states.append(state)
    if not states:
        states.append(
            _guard_state(store, host_cpu_guard(), settings, now_ms, deadline, measure)
            or GuardState(HOST_CPU_LABEL, None, None, None, HourProfile(HOST_CPU_LABEL, {}, {}, 0))
        )
    judged = [s for s in states if s.quiet is not None]
    unjudged = [s for s in states if s.quiet is None]
    for state in unjudged:
        notes.append(state.note or f"{state.series}: not judged")
    if not judged:
        why = "; ".join(s.note or s.series for s in unjudged)
        return SchedulePlan(
            now_ms,
            f"{why}: scanning now",
            True,
            deadline,
            every,
            delay,
            tuple(states),
            tuple(notes),
        )
    quiet_now = all(s.quiet for s in judged)
    # Read only for a start that is quiet now: a busy one is planned below anyway.
    later = _later_quieter_start(judged, now_ms, deadline, span, settings) if quiet_now else None
    if later is not None:
        start, why = later
        return SchedulePlan(
            start,
            f"quiet now, but a scan predicted to take {format_span(round(span or 0))} would run"
            f" into busier hours: {why}",
            False,
            deadline,
            every,
            delay,
            tuple(states),
            tuple(notes),
        )
    if quiet_now:
        parts = ", ".join(
            f"{s.series} {_figure(s.current or 0.0)} ≤ {_figure(_limit(s, settings))}"
            for s in judged
        )
        return SchedulePlan(
            now_ms,
            f"quiet now ({parts})",
            True,
            deadline,
            every,
            delay,
            tuple(states),
            tuple(notes),
        )
    best = _quietest_hour_start(judged, now_ms, deadline, span)
    busy = ", ".join(
        f"{s.series} {_figure(s.current or 0.0)} now, quiet at ≤ {_figure(_limit(s, settings))}"
        for s in judged
        if not s.quiet
    )
    if best is None:
        reason = (
            f"waiting for a quiet moment ({busy}); at the latest {clock(deadline)}"
            f" (max delay {format_span(delay)})"
        )
        return SchedulePlan(
            deadline, reason, False, deadline, every, delay, tuple(states), tuple(notes)
        )
    horizon = format_span(deadline - now_ms)
    reason = f"quietest hour in the next {horizon}: {hour_name(best)} ({busy})"
    if span is not None:
        reason = (
            f"quietest start in the next {horizon} for a scan predicted to take"
            f" {format_span(round(span))}: {hour_name(best)} ({busy})"
        )
    return SchedulePlan(best, reason, False, deadline, every, delay, tuple(states), tuple(notes))


def _unmatched_guard_note(store: SeriesStore, guard: GuardSeries) -> str:
    """Why a guard without stored data is replaced, and what that means for the scan itself.

    The scan's impact budget (``guards.SeriesGuard.prepare``) switches off for
    the same guard, so the plan says both, in the budget's own words.
    """
    stored = sum(
        1 for info in store.series(guard.name, guard.equality or None) if guard.picks(info.labels)
    )
    fallback = "scheduling falls back to host CPU"
    if stored == 0:
        return (
            f"guard {guard.label} matches no series: {fallback}, and a low-priority scan's"
            " impact budget will be off (the guard matches no series)"
        )
    return (
        f"guard {guard.label} has no stored data in the schedule's history: {fallback};"
        " without a sample just before the scan its impact budget will be off too"
    )


def _limit(state: GuardState, settings: Settings) -> float:
    assert state.quiet_level is not None
    return state.quiet_level * (1 + settings.quiet_pct / 100)


def _guard_state(
    store: SeriesStore,
    guard: GuardSeries,
    settings: Settings,
    now_ms: int,
    deadline_ms: int,
    measure: MeasureHostCpu | None,
) -> GuardState | None:
    """The guard's state, or None when the store holds no data of it at all."""
    profile = hour_of_week_profile(store, guard, now_ms, history_ms=settings.history_ms)
    current = current_level(store, guard, now_ms, settings.window_ms)
    note: str | None = None
    if current is None and guard.is_host_cpu and measure is not None:
        current = measure()
        note = "host CPU measured now (no fresh sample stored)"
    if profile.hours == 0 and current is None:
        return None
    if not profile.usable:
        return GuardState(
            guard.label,
            current,
            None,
            None,
            profile,
            f"no hour-of-week profile of {guard.label} yet"
            f" ({profile.hours} of {MIN_PROFILE_HOURS} hourly values)",
        )
    if current is None:
        return GuardState(
            guard.label,
            None,
            None,
            None,
            profile,
            f"{guard.label}: no sample in the last {format_span(settings.window_ms)}",
        )
    expected = [
        level
        for t in (now_ms, *_hour_starts(now_ms, deadline_ms))
        if (level := profile.level_at(t)) is not None
    ]
    if not expected:
        return GuardState(guard.label, current, None, None, profile, note)
    quiet_level = min(expected)
    quiet = current <= quiet_level * (1 + settings.quiet_pct / 100)
    return GuardState(guard.label, current, quiet_level, quiet, profile, note)


def span_level(profile: HourProfile, start_ms: int, span_ms: float | None) -> float | None:
    """The expected level over ``[start_ms, start_ms + span_ms)``: each hour by its share.

    Without a span, the level of the hour holding ``start_ms``. None when an
    hour of the stretch has no expected level.
    """
    usable = usable_span(span_ms)
    if usable is None:
        return profile.level_at(start_ms)
    span = max(1, round(usable))  # whole milliseconds: every step moves on
    end = start_ms + span
    total = 0.0
    at = start_ms
    while at < end:
        until = min(end, (at // HOUR_MS + 1) * HOUR_MS)
        level = profile.level_at(at)
        if level is None:
            return None
        total += level * (until - at)
        at = until
    return total / span


def _later_quieter_start(
    states: Sequence[GuardState],
    now_ms: int,
    deadline_ms: int,
    span_ms: float | None,
    settings: Settings,
) -> tuple[int, str] | None:
    """A later start where a scan of ``span_ms`` is expected clearly quieter than now.

    Starting now, the rest of this hour is judged by the guards' current levels
    and the hours after it by their profiles; a later start by its profiles
    alone. "Clearly": by more than ``quiet_pct``. None without a span (a scan
    judged an hour at a time is quiet now when its hour is) or without such a start.
    """
    if span_ms is None:
        return None
    here_ratios: list[float] = []
    for state in states:
        if state.current is None or state.quiet_level is None:
            return None
        end_of_hour = (now_ms // HOUR_MS + 1) * HOUR_MS
        first = min(span_ms, end_of_hour - now_ms)
        rest = span_level(state.profile, end_of_hour, span_ms - first) if span_ms > first else 0.0
        if rest is None:
            return None
        level = (state.current * first + rest * (span_ms - first)) / span_ms
        here_ratios.append(level / state.quiet_level if state.quiet_level > 0 else level)
    here = max(here_ratios)
    best = _quietest_hour_start(states, now_ms, deadline_ms, span_ms, here=here)
    if best is None:
        return None
    best_score = _start_score(states, best, span_ms)
    if best_score is None or best_score * (1 + settings.quiet_pct / 100) >= here:
        return None
    return (
        best,
        f"quietest start in the next {format_span(deadline_ms - now_ms)}: {hour_name(best)}",
    )


def _start_score(states: Sequence[GuardState], t: int, span_ms: float | None) -> float | None:
    """How busy a start at ``t`` is expected to be: its worst guard's level over the
    stretch, relative to that guard's quiet level (guards in other units weigh alike)."""
    ratios: list[float] = []
    for state in states:
        level = span_level(state.profile, t, span_ms)
        if level is None or state.quiet_level is None:
            return None
        ratios.append(level / state.quiet_level if state.quiet_level > 0 else level)
    return max(ratios) if ratios else None


def _quietest_hour_start(
    states: Sequence[GuardState],
    now_ms: int,
    deadline_ms: int,
    span_ms: float | None = None,
    *,
    here: float | None = None,
) -> int | None:
    """The hour start before the deadline where the guards are expected quietest, if any.

    Each start scores as ``_start_score`` (over the scan's predicted
    ``span_ms`` when known). None when no later start is expected quieter than
    starting now (``here``: its score, by default from the profiles).
    """
    if here is None:
        here = _start_score(states, now_ms, span_ms)
    candidates = [
        (s, t)
        for t in _hour_starts(now_ms, deadline_ms)
        if (s := _start_score(states, t, span_ms)) is not None
    ]
    if not candidates:
        return None
    best_score, best_t = min(candidates)
    if here is not None and best_score >= here:
        return None
    return best_t


# --------------------------------------------------------------------------- waiting


class QuietWaiter:
    """Decides, poll after poll, when a due scan starts: quiet, planned hour or deadline.

    The first plan's hour is kept (a plan made again later could move it);
    quiet earlier starts earlier; the deadline always starts the scan.
    """

    def __init__(
        self,
        store: SeriesStore | None,
        settings: Settings,
        guards: Sequence[GuardSeries],
        *,
        due_ms: int,
        measure: MeasureHostCpu | None = None,
        expected_ms: float | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.guards = list(guards)
        self.due_ms = due_ms
        self.measure = measure
        self.expected_ms = expected_ms
        self.deadline_ms = due_ms + settings.max_delay_ms
        self.first: SchedulePlan | None = None
        self.last: SchedulePlan | None = None

    def check(self, now_ms: int) -> tuple[bool, SchedulePlan, str]:
        """(start now?, the current plan, why) at ``now_ms``."""
        plan = plan_scan(
            self.store,
            self.settings,
            self.guards,
            now_ms=now_ms,
            due_ms=self.due_ms,
            measure=self.measure,
            expected_ms=self.expected_ms,
        )
        if self.first is None:
            self.first = plan
        self.last = plan
        if plan.quiet_now:
            return True, plan, plan.reason
        if now_ms >= self.deadline_ms:
            return (
                True,
                plan,
                f"max delay {format_span(self.settings.max_delay_ms)} reached: scanning anyway",
            )
        planned = self.first.next_scan_ms
        if planned is not None and planned < self.deadline_ms and now_ms >= planned:
            return True, plan, f"planned quiet hour {hour_name(planned)} reached"
        return False, plan, plan.reason


class PeriodicScans:
    """``[scan] every``: when the next periodic scan is due, and when it may start.

    ``scanned`` after every scan (periodic or not) sets the next due time and
    how long the next scan is expected to run until it is due (this scan's
    prediction: the next one reads the same tree); once it is due, ``predict``
    (when given) predicts it afresh, cache and all. ``poll`` says whether a scan
    should start now (and why) and keeps the current plan for the live summary
    and the API.
    """

    def __init__(
        self,
        store: SeriesStore | None,
        settings: Settings,
        guards: Sequence[GuardSeries],
        *,
        measure: MeasureHostCpu | None = None,
        predict: Callable[[], float | None] | None = None,
    ) -> None:
        if not settings.every_ms or settings.every_ms <= 0:
            raise ValueError("periodic scans need a period: set [scan] every")
        self.store = store
        self.settings = settings
        self.guards = list(guards)
        self.measure = measure
        self.predict = predict
        self.next_due_ms: int | None = None
        self.expected_ms: float | None = None
        self.plan: SchedulePlan | None = None
        self._waiter: QuietWaiter | None = None

    @property
    def every_ms(self) -> int:
        """The period."""
        assert self.settings.every_ms is not None
        return self.settings.every_ms

    def scanned(self, started_ms: int, expected_ms: float | None = None) -> None:
        """A scan started at ``started_ms``: the next one is due a period later.

        ``expected_ms``: the scan's predicted duration, kept for planning the next.
        """
        self.next_due_ms = started_ms + self.every_ms
        if expected_ms is not None and expected_ms > 0:
            self.expected_ms = expected_ms
        self._waiter = None
        self.plan = plan_scan(
            self.store,
            self.settings,
            self.guards,
            now_ms=started_ms,
            due_ms=self.next_due_ms,
            expected_ms=self.expected_ms,
        )

    def poll(self, now_ms: int) -> str | None:
        """Why a periodic scan starts now, or None when it waits (blocking: reads the store)."""
        if self.next_due_ms is None:
            return None
        if now_ms < self.next_due_ms:
            self.plan = plan_scan(
                self.store,
                self.settings,
                self.guards,
                now_ms=now_ms,
                due_ms=self.next_due_ms,
                expected_ms=self.expected_ms,
            )
            return None
        if self._waiter is None:
            self._predict_due_scan()
            self._waiter = QuietWaiter(
                self.store,
                self.settings,
                self.guards,
                due_ms=self.next_due_ms,
                measure=self.measure,
                expected_ms=self.expected_ms,
            )
        start, plan, why = self._waiter.check(now_ms)
        self.plan = plan
        return why if start else None

    def _predict_due_scan(self) -> None:
        """The due scan's own prediction, when ``predict`` can make one (a failure keeps
        the last one: planning goes on without a better guess)."""
        if self.predict is None:
            return
        try:
            predicted = self.predict()
        except Exception:
            log.warning("the due periodic scan could not be predicted", exc_info=True)
            return
        if predicted is not None and usable_span(predicted) is not None:
            self.expected_ms = predicted

    def describe(self) -> str | None:
        """``04:00 UTC: quietest hour ...`` for the live summary, or None before the first scan."""
        plan = self.plan
        if plan is None or plan.next_scan_ms is None:
            return None
        return f"{clock(plan.next_scan_ms)}: {plan.reason}"
