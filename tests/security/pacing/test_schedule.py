"""Quiet-time scheduling over a real SQLite store whose series the test wrote, at
timestamps it chose: the hour-of-week profile, the plan and the waiter."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from secperf.model import Sample
from secperf.security.pacing.schedule import (
    HOST_CPU_LABEL,
    GuardSeries,
    PeriodicScans,
    QuietWaiter,
    Settings,
    host_cpu_guard,
    hour_of_week,
    hour_of_week_profile,
    plan_scan,
    quietest,
    span_level,
)
from secperf.store import Store

HOST = "web-1"
HOUR = 3_600_000
MIN = 60_000
#: Tuesday 1 December 2026, 01:30 UTC: "now" in these tests.
NOW = int(datetime(2026, 12, 1, 1, 30, tzinfo=UTC).timestamp() * 1000)
QUIET_HOUR = int(datetime(2026, 12, 1, 3, 0, tzinfo=UTC).timestamp() * 1000)


def _store(tmp_path: Path) -> Store:
    return Store.open(f"sqlite:///{tmp_path / 'store.db'}")


def _history(store: Store, *, busy: float = 60.0, quiet: float = 5.0, days: int = 14) -> None:
    """Host CPU every 10 minutes for ``days`` before NOW: busy, except Tuesdays 03:00-04:00.

    Per-core series (label ``cpu``) are written at 0 %: the profile must ignore them.
    """
    samples: list[Sample] = []
    start = (NOW - days * 24 * HOUR) // HOUR * HOUR
    for t in range(start, NOW - 10 * MIN, 10 * MIN):
        value = quiet if hour_of_week(t) == hour_of_week(QUIET_HOUR) else busy
        samples.append(Sample("cpu_percent", {"host": HOST}, t, value))
        samples.append(Sample("cpu_percent", {"host": HOST, "cpu": "0"}, t, 0.0))
        samples.append(Sample("cpu_percent", {"host": "other"}, t, 1.0))
    store.write_samples(samples)


def _now_level(store: Store, value: float, at: int = NOW) -> None:
    store.write_samples(
        [Sample("cpu_percent", {"host": HOST}, at - s * 1000, value) for s in range(0, 50, 5)]
    )


def test_hour_of_week_starts_on_monday() -> None:
    monday = int(datetime(2026, 11, 30, 0, 0, tzinfo=UTC).timestamp() * 1000)
    assert hour_of_week(monday) == 0
    assert hour_of_week(monday - 1) == 167
    assert hour_of_week(QUIET_HOUR) == 24 + 3


def test_the_profile_finds_the_quiet_hour_of_this_host_only(tmp_path: Path) -> None:
    store = _store(tmp_path)
    _history(store)
    profile = hour_of_week_profile(store, host_cpu_guard(HOST), NOW)
    store.close()
    assert profile.usable
    assert len(profile.buckets) == 168
    best = quietest(profile)
    assert best is not None
    assert best.hour_of_week == hour_of_week(QUIET_HOUR)
    assert best.level == pytest.approx(5.0)
    assert profile.level_at(NOW) == pytest.approx(60.0)
    assert best.samples == 2 * 6  # two weeks of six samples in that hour
    doc = profile.to_document()
    assert doc[0] == {"hour_of_week": 0, "level": 60.0, "samples": 12}


def test_a_busy_host_waits_for_the_quietest_hour_within_max_delay(tmp_path: Path) -> None:
    store = _store(tmp_path)
    _history(store)
    _now_level(store, 62.0)
    guards = [host_cpu_guard(HOST)]
    plan = plan_scan(store, Settings(max_delay_ms=2 * HOUR), guards, now_ms=NOW)
    assert not plan.quiet_now
    assert plan.next_scan_ms == QUIET_HOUR
    assert "quietest hour in the next 2 h: Tue 03:00 UTC" in plan.reason
    assert plan.deadline_ms == NOW + 2 * HOUR
    doc = plan.to_document()
    assert {"next_scan_ms", "reason", "quiet_now", "every_ms", "max_delay_ms", "profile"} <= set(
        doc
    )
    assert len(doc["profile"]) == 168

    # The quiet hour lies beyond a one-hour delay: the usual level is the best within reach.
    short = plan_scan(store, Settings(max_delay_ms=HOUR), guards, now_ms=NOW)
    assert short.quiet_now
    assert short.reason == "quiet now (host CPU 62 ≤ 72)"
    # Busier than usual: wait for the usual level, at the latest until the deadline.
    _now_level(store, 90.0)
    busy = plan_scan(store, Settings(max_delay_ms=HOUR), guards, now_ms=NOW)
    store.close()
    assert not busy.quiet_now
    assert busy.next_scan_ms == NOW + HOUR
    assert busy.reason == (
        "waiting for a quiet moment (host CPU 90 now, quiet at ≤ 72);"
        " at the latest 02:30 UTC (max delay 1 h)"
    )


def test_a_quiet_host_scans_at_once(tmp_path: Path) -> None:
    store = _store(tmp_path)
    _history(store)
    _now_level(store, 5.5)  # within 20 % of the 5 % expected at best
    plan = plan_scan(store, Settings(), [host_cpu_guard(HOST)], now_ms=NOW)
    store.close()
    assert plan.quiet_now
    assert plan.next_scan_ms == NOW
    assert plan.reason.startswith("quiet now (host CPU 5.5 ≤ 6")


def test_without_a_profile_the_scan_starts_and_says_why(tmp_path: Path) -> None:
    store = _store(tmp_path)
    _now_level(store, 90.0)
    plan = plan_scan(store, Settings(), [host_cpu_guard(HOST)], now_ms=NOW)
    store.close()
    assert plan.quiet_now
    assert plan.next_scan_ms == NOW
    assert "no hour-of-week profile of host CPU yet" in plan.reason
    assert plan.reason.endswith("scanning now")


def test_a_guard_without_data_falls_back_to_host_cpu(tmp_path: Path) -> None:
    store = _store(tmp_path)
    _history(store)
    _now_level(store, 62.0)
    latency = GuardSeries('response_time_ms{job="api"}', "response_time_ms", {"job": "api"})
    plan = plan_scan(store, Settings(), [latency], now_ms=NOW)
    store.close()
    assert [g.series for g in plan.guards] == [HOST_CPU_LABEL]
    assert plan.notes == (
        'guard response_time_ms{job="api"} matches no series: scheduling falls back to host CPU,'
        " and a low-priority scan's impact budget will be off (the guard matches no series)",
    )
    assert plan.next_scan_ms == QUIET_HOUR


def test_the_waiter_starts_at_the_planned_hour_or_the_deadline(tmp_path: Path) -> None:
    store = _store(tmp_path)
    _history(store)
    _now_level(store, 62.0)
    waiter = QuietWaiter(
        store, Settings(max_delay_ms=2 * HOUR, window_ms=MIN), [host_cpu_guard(HOST)], due_ms=NOW
    )
    start, plan, _ = waiter.check(NOW)
    assert not start and plan.next_scan_ms == QUIET_HOUR
    _now_level(store, 61.0, at=QUIET_HOUR - 10 * MIN)
    assert not waiter.check(QUIET_HOUR - 10 * MIN)[0]
    _now_level(store, 61.0, at=QUIET_HOUR + MIN)  # busy at the planned hour: it starts anyway
    start, _, why = waiter.check(QUIET_HOUR + MIN)
    assert start and why == "planned quiet hour Tue 03:00 UTC reached"

    short = QuietWaiter(
        store, Settings(max_delay_ms=10 * MIN, window_ms=MIN), [host_cpu_guard(HOST)], due_ms=NOW
    )
    _now_level(store, 90.0)  # busier than the usual 60 % the next ten minutes hold
    assert not short.check(NOW)[0]
    _now_level(store, 90.0, at=NOW + 10 * MIN)
    start, _, why = short.check(NOW + 10 * MIN)
    store.close()
    assert start and why == "max delay 10 min reached: scanning anyway"


def test_periodic_scans_are_due_a_period_after_the_last_one(tmp_path: Path) -> None:
    store = _store(tmp_path)
    _history(store)
    periodic = PeriodicScans(store, Settings(every_ms=HOUR, window_ms=MIN), [host_cpu_guard(HOST)])
    periodic.scanned(NOW - HOUR + 5 * MIN)
    assert periodic.poll(NOW) is None
    assert periodic.describe() == "01:35 UTC: next periodic scan due at 01:35 UTC (every 1 h)"
    _now_level(store, 5.0, at=NOW)
    periodic.scanned(NOW - HOUR)
    assert periodic.poll(NOW) is not None  # due and quiet
    with pytest.raises(ValueError, match=r"\[scan\] every"):
        PeriodicScans(store, Settings(), [host_cpu_guard(HOST)])
    store.close()


def _valleys(store: Store, days: int = 14) -> None:
    """Host CPU every 10 minutes: Tuesdays one deep quiet hour at 03:00 (5 %), a busy
    04:00 (60 %), then two shallower quiet hours at 05:00 and 06:00 (15 %); 60 % elsewhere."""
    levels = {
        hour_of_week(QUIET_HOUR): 5.0,
        hour_of_week(QUIET_HOUR + 2 * HOUR): 15.0,
        hour_of_week(QUIET_HOUR + 3 * HOUR): 15.0,
    }
    start = (NOW - days * 24 * HOUR) // HOUR * HOUR
    store.write_samples(
        [
            Sample("cpu_percent", {"host": HOST}, t, levels.get(hour_of_week(t), 60.0))
            for t in range(start, NOW - 10 * MIN, 10 * MIN)
        ]
    )


def test_a_long_scan_is_planned_where_its_whole_run_is_quiet(tmp_path: Path) -> None:
    store = _store(tmp_path)
    _valleys(store)
    _now_level(store, 62.0)
    guards = [host_cpu_guard(HOST)]
    settings = Settings(max_delay_ms=6 * HOUR)
    # Judged an hour at a time, the deep 03:00 hour wins.
    short = plan_scan(store, settings, guards, now_ms=NOW, expected_ms=20 * MIN)
    assert short.next_scan_ms == QUIET_HOUR
    assert short.reason.startswith(
        "quietest start in the next 6 h for a scan predicted to take 20 min: Tue 03:00 UTC"
    )
    # A two-hour scan started at 03:00 would run through the busy 04:00 hour:
    # (5 + 60) / 2 against 15 for the two shallower hours from 05:00.
    long = plan_scan(store, settings, guards, now_ms=NOW, expected_ms=2 * HOUR)
    assert long.next_scan_ms == QUIET_HOUR + 2 * HOUR
    assert "predicted to take 2 h: Tue 05:00 UTC" in long.reason
    assert long.to_document()["expected_ms"] == 2 * HOUR
    # Without a prediction, an hour at a time as before.
    unknown = plan_scan(store, settings, guards, now_ms=NOW)
    assert unknown.next_scan_ms == QUIET_HOUR and unknown.expected_ms is None
    assert unknown.to_document()["expected_ms"] is None

    # Periodic scans plan the next by the last scan's prediction, the waiter too.
    periodic = PeriodicScans(store, Settings(every_ms=HOUR, max_delay_ms=6 * HOUR), guards)
    periodic.scanned(NOW - HOUR, expected_ms=2 * HOUR)
    assert periodic.poll(NOW) is None
    assert periodic.plan is not None and periodic.plan.next_scan_ms == QUIET_HOUR + 2 * HOUR
    periodic.scanned(NOW - HOUR)  # no new prediction: the last one stands
    assert periodic.poll(NOW) is None
    assert periodic.expected_ms == 2 * HOUR
    store.close()


def test_a_stretch_level_weighs_each_hour_by_its_share(tmp_path: Path) -> None:
    store = _store(tmp_path)
    _valleys(store)
    profile = hour_of_week_profile(store, host_cpu_guard(HOST), NOW)
    store.close()
    # 02:30 for an hour: half of 02:00 (60 %), half of 03:00 (5 %).
    assert span_level(profile, QUIET_HOUR - 30 * MIN, HOUR) == pytest.approx(32.5)
    assert span_level(profile, QUIET_HOUR, None) == pytest.approx(5.0)
    # A sub-millisecond prediction (a warm scan of nothing) is one millisecond.
    assert span_level(profile, QUIET_HOUR + 10, 0.4) == pytest.approx(5.0)


def test_quiet_now_waits_when_a_long_scan_would_run_into_busier_hours(tmp_path: Path) -> None:
    store = _store(tmp_path)
    _valleys(store)
    at = QUIET_HOUR + 50 * MIN  # Tue 03:50: quiet, ten minutes before the busy 04:00 hour
    _now_level(store, 5.0, at=at)
    guards = [host_cpu_guard(HOST)]
    settings = Settings(max_delay_ms=4 * HOUR)
    # A short scan ends in the quiet hour: it starts now.
    short = plan_scan(store, settings, guards, now_ms=at, expected_ms=5 * MIN)
    assert short.quiet_now and short.next_scan_ms == at
    # Two hours from now run mostly through 04:00 (60 %); from 05:00 they hold 15 %.
    long = plan_scan(store, settings, guards, now_ms=at, expected_ms=2 * HOUR)
    assert not long.quiet_now
    assert long.next_scan_ms == QUIET_HOUR + 2 * HOUR
    assert long.reason == (
        "quiet now, but a scan predicted to take 2 h would run into busier hours:"
        " quietest start in the next 4 h: Tue 05:00 UTC"
    )
    store.close()


def test_a_prediction_that_is_not_a_usable_duration_is_judged_an_hour_at_a_time(
    tmp_path: Path,
) -> None:
    store = _store(tmp_path)
    _valleys(store)
    _now_level(store, 62.0)
    guards = [host_cpu_guard(HOST)]
    settings = Settings(max_delay_ms=6 * HOUR)
    for odd in (float("inf"), float("nan"), -5.0, 0.0):
        plan = plan_scan(store, settings, guards, now_ms=NOW, expected_ms=odd)
        assert plan.next_scan_ms == QUIET_HOUR and plan.expected_ms is None
    # A huge one is a week: every hour of the profile once, so no start is better.
    huge = plan_scan(store, settings, guards, now_ms=NOW, expected_ms=1e300)
    assert huge.expected_ms == 168 * HOUR
    assert huge.to_document()["expected_ms"] == 168 * HOUR
    store.close()


def test_a_due_periodic_scan_is_predicted_afresh(tmp_path: Path) -> None:
    store = _store(tmp_path)
    _valleys(store)
    _now_level(store, 62.0)
    asked: list[int] = []

    def predict() -> float | None:
        asked.append(1)
        return 20 * MIN  # warm now: a short scan, where the first one was long

    periodic = PeriodicScans(
        store,
        Settings(every_ms=HOUR, max_delay_ms=6 * HOUR),
        [host_cpu_guard(HOST)],
        predict=predict,
    )
    periodic.scanned(NOW - 2 * HOUR, expected_ms=2 * HOUR)  # the cold first scan
    assert periodic.poll(NOW) is None  # due: predicted again, then planned
    assert asked == [1]
    assert periodic.expected_ms == 20 * MIN
    assert periodic.plan is not None and periodic.plan.next_scan_ms == QUIET_HOUR

    def failing() -> float | None:
        raise RuntimeError("no store")

    periodic.predict = failing
    periodic.scanned(NOW - 2 * HOUR, expected_ms=2 * HOUR)
    assert periodic.poll(NOW) is None  # the last prediction stands
    assert periodic.plan is not None and periodic.plan.next_scan_ms == QUIET_HOUR + 2 * HOUR
    store.close()
