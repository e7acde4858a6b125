"""The impact budget's controller against real worker processes and a real bus.

The "workers" are real child processes; the guard series is published on a real
in-memory bus by the test, as the scraper would publish it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import Future
from typing import Any

import pytest

from secperf.bus.interface import EventBus
from secperf.bus.memory import AsyncEventBus
from secperf.commands.pacing import ScanPacing
from secperf.config.sections.impact import ImpactConfig, parse_selector
from secperf.events import (
    EVENT_TYPES,
    Event,
    ScanThrottled,
    decode_event,
    encode_event,
    now_ms,
)
from secperf.security.pacing.controller import (
    SLOW_START_REASON,
    FullSpeed,
    PacingController,
    _Publisher,
)
from secperf.security.pacing.document import PacingDocument
from support.pacing import GUARD_SELECTOR, guard_batch, stopped
from support.waiting import wait_for

LEVEL = 10.0


@contextlib.contextmanager
def child_processes(count: int) -> Iterator[list[int]]:
    procs = [
        subprocess.Popen([sys.executable, "-c", "import time\nwhile True: time.sleep(0.05)"])
        for _ in range(count)
    ]
    try:
        yield [p.pid for p in procs]
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


class Guard:
    """Publishes the guard series every 0.2 s at ``value`` (the test changes it)."""

    def __init__(self, bus: EventBus) -> None:
        self.bus = bus
        self.value = LEVEL
        self.publishing = True

    async def run(self) -> None:
        while True:
            if self.publishing:
                await self.bus.publish(guard_batch(self.value, now_ms()))
            await asyncio.sleep(0.2)


@contextlib.asynccontextmanager
async def paced(
    impact: ImpactConfig, *, predicted_ms: float | None = None, **settings: Any
) -> AsyncIterator[tuple[EventBus, Guard, ScanPacing, PacingController, list[Event]]]:
    async with AsyncEventBus() as bus:
        events: list[Event] = []

        async def record(event: Event) -> None:
            events.append(event)

        await bus.subscribe(ScanThrottled.topic, record)
        pacing = ScanPacing(impact, priority="low", store=None, bus=bus)
        await pacing.attach()
        start = now_ms()
        # The level before the scan: a minute of samples at LEVEL.
        for seconds in range(60, 0, -5):
            await bus.publish(guard_batch(LEVEL, start - seconds * 1000))
        await wait_for(lambda: len(pacing.feeds[0].values_between(start - 61_000, start)) == 12)
        guard = Guard(bus)
        task = asyncio.create_task(guard.run())
        controller = pacing.controller(None, "/project", predicted_ms=predicted_ms)
        controller.settings = dataclasses.replace(controller.settings, **settings)
        try:
            yield bus, guard, pacing, controller, events
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await pacing.detach()


def readings_evaluated(controller: PacingController) -> int:
    """Fresh guard readings the controller has read so far (the first guard's)."""
    return controller.document().guards[0].samples


async def after_readings(controller: PacingController, count: int) -> None:
    """Return once the controller has acted on ``count`` more fresh readings.

    A reading is counted as its tick begins; the one after it shows that its
    tick (and the decision it took) is over. So a test asserts that nothing
    happened over readings it knows were evaluated, not over a guessed sleep.
    """
    target = readings_evaluated(controller) + count + 1
    await wait_for(lambda: readings_evaluated(controller) >= target)


async def finish(controller: PacingController) -> None:
    """End the scan as the validator does, off the event loop: ``scan_finished`` joins the
    controller's thread, which may be publishing through this loop at that moment."""
    await asyncio.to_thread(controller.scan_finished)


IMPACT = ImpactConfig(guard=[parse_selector(GUARD_SELECTOR)], before_window="1m", stale_after="30s")


def test_over_budget_pauses_the_workers_and_recovery_resumes_them() -> None:
    async def main() -> PacingDocument:
        with child_processes(2) as pids:
            # Full speed is tried again as soon as the guard has recovered.
            async with paced(IMPACT, full_speed_retry_ms=0) as (_, guard, _, controller, events):
                controller.scan_started("scan-1", lambda: list(pids))
                # Slow start: one worker until a reading taken a second into the
                # scan is within budget, then all of them.
                await wait_for(lambda: len(stopped(pids)) == 1)
                await wait_for(lambda: stopped(pids) == [])
                assert [s.reason for s in controller.stretches] == [SLOW_START_REASON]
                await after_readings(controller, 2)
                # Two readings at its level, each evaluated: full speed.
                assert stopped(pids) == [] and len(controller.stretches) == 1
                guard.value = LEVEL * 1.5  # +50 %, budget 10 %
                # Half the workers first, then all of them while it stays over.
                await wait_for(lambda: len(stopped(pids)) == 1)
                await wait_for(lambda: len(stopped(pids)) == 2)
                guard.value = LEVEL * 1.02  # within half the budget
                # One step at a time: half the workers first, then all.
                await wait_for(lambda: len(stopped(pids)) == 1)
                await wait_for(lambda: stopped(pids) == [])
                await finish(controller)
                assert stopped(pids) == []
                await wait_for(lambda: any(getattr(e, "action", "") == "resume" for e in events))
                actions = [e.action for e in events if isinstance(e, ScanThrottled)]
                assert actions == [
                    "fewer_workers",
                    "resume",
                    "fewer_workers",
                    "pause",
                    "fewer_workers",
                    "resume",
                ]
                assert all(e.scan_id == "scan-1" for e in events if isinstance(e, ScanThrottled))
                return controller.document()

    document = asyncio.run(main())
    assert [s.action for s in document.stretches] == [
        "fewer_workers",
        "fewer_workers",
        "pause",
        "fewer_workers",
    ]
    assert document.throttled_ms > 0
    assert document.budget_state == "on"
    assert document.guards[0].before == LEVEL
    assert document.guards[0].peak_increase_pct is not None
    assert document.guards[0].peak_increase_pct >= 40
    assert "+50 %" in document.stretches[1].reason
    assert PacingDocument.from_document(document.to_document()) == document


def test_a_scan_over_budget_from_its_start_goes_from_one_worker_to_none() -> None:
    async def main() -> PacingDocument:
        with child_processes(2) as pids:
            async with paced(IMPACT) as (_, guard, _, controller, _):
                guard.value = LEVEL * 1.5
                controller.scan_started("scan-5", lambda: list(pids))
                # Held from the start: no reading has seen the scan yet.
                await wait_for(lambda: len(stopped(pids)) == 1)
                assert controller.stretches[0].reason == SLOW_START_REASON
                # The first reading a second into the scan is over: all of them.
                await wait_for(lambda: len(stopped(pids)) == 2)
                await finish(controller)
                assert stopped(pids) == []
                return controller.document()

    document = asyncio.run(main())
    assert [s.action for s in document.stretches] == ["fewer_workers", "pause"]
    assert "+50 %" in document.stretches[1].reason


def test_the_held_worker_changes_while_half_of_them_run() -> None:
    async def main() -> set[int]:
        with child_processes(2) as pids:
            async with paced(IMPACT) as (_, guard, _, controller, _):
                # No reading arrives, so the slow start lasts (until stale_after, 30 s).
                guard.publishing = False
                controller.scan_started("scan-6", lambda: list(pids))
                held: set[int] = set()

                def each_held_once() -> bool:
                    held.update(stopped(pids))
                    return held == set(pids)

                # One worker held at a time, and which one changes every half second.
                await wait_for(lambda: len(stopped(pids)) == 1)
                await wait_for(each_held_once)
                assert controller.stretches[0].reason == SLOW_START_REASON
                await finish(controller)
                assert stopped(pids) == []
                return held

    assert len(asyncio.run(main())) == 2


def test_once_full_speed_was_over_budget_recovery_stops_at_half_the_workers() -> None:
    async def main() -> None:
        with child_processes(2) as pids:
            # Full speed is not tried again within the test (10 s by default).
            settings = {"predicted_ms": 600_000, "full_speed_retry_ms": 600_000}
            async with paced(IMPACT, **settings) as (_, guard, _, controller, _):
                controller.scan_started("scan-8", lambda: list(pids))
                await wait_for(lambda: len(stopped(pids)) == 1)  # slow start
                await wait_for(lambda: stopped(pids) == [])
                guard.value = LEVEL * 1.5  # over at full speed
                await wait_for(lambda: len(stopped(pids)) == 2)
                guard.value = LEVEL
                await wait_for(lambda: controller._action == "fewer_workers")
                # Well within budget, reading after reading: still half of them.
                await after_readings(controller, 4)
                assert controller._action == "fewer_workers"
                assert "recovered" in controller.stretches[-1].reason
                await finish(controller)
                assert stopped(pids) == []

    asyncio.run(main())


def test_the_next_scan_of_the_target_keeps_to_half_the_workers_after_its_slow_start() -> None:
    async def main() -> PacingDocument:
        with child_processes(2) as pids:
            settings = {"predicted_ms": 600_000, "full_speed_retry_ms": 600_000}
            async with paced(IMPACT, **settings) as (_, guard, pacing, first, _):
                first.scan_started("scan-9", lambda: list(pids))
                await wait_for(lambda: len(first.stretches) == 1 and stopped(pids) == [])
                guard.value = LEVEL * 1.5  # full speed over budget
                await wait_for(lambda: len(stopped(pids)) >= 1)
                # The scan's ticks since then count as scanning time towards a new try.
                await wait_for(lambda: first.full_speed.scanned_ms > 0)
                await finish(first)
                guard.value = LEVEL
                # The next scan of the same target, with the guard at its level.
                second = pacing.controller(None, "/project", predicted_ms=600_000)
                assert second.full_speed is first.full_speed
                second.scan_started("scan-10", lambda: list(pids))
                await wait_for(lambda: len(second.stretches) == 2)
                await after_readings(second, 3)
                assert len(stopped(pids)) == 1
                await finish(second)
                assert stopped(pids) == []
                return second.document()

    document = asyncio.run(main())
    assert [s.action for s in document.stretches] == ["fewer_workers", "fewer_workers"]
    assert "as full speed was over budget" in document.stretches[1].reason


def test_full_speed_is_tried_again_after_scanning_time_not_clock_time() -> None:
    full = FullSpeed()
    assert not full.held()
    full.was_over(1_000, 60_000)
    full.scanning(59_000)
    assert full.held()
    full.scanning(1_000)
    assert not full.held()  # a minute of scanning since it was over
    # Over again, a day later by the clock: the day between scans does not count.
    full.was_over(86_400_000, 60_000)
    assert full.retry_ms == 120_000 and full.held()
    full.scanning(-5)  # a clock stepped back counts nothing
    assert full.scanned_ms == 0


def test_a_guard_over_budget_with_the_scan_paused_is_levelled_where_it_is() -> None:
    async def main() -> PacingDocument:
        with child_processes(2) as pids:
            # A long prediction: the deadline, not the cap on throttled time, bounds it.
            async with paced(IMPACT, predicted_ms=600_000) as (_, guard, pacing, controller, _):
                # +50 % from the start, whatever the scan does: another process's doing.
                guard.value = LEVEL * 1.5
                controller.scan_started("scan-7", lambda: list(pids))
                await wait_for(lambda: len(stopped(pids)) == 2)
                # Over budget in settled readings with the scan paused: half resume...
                await wait_for(lambda: len(stopped(pids)) == 1)
                # ...and at the new level the guard is within budget: all of them.
                await wait_for(lambda: stopped(pids) == [])
                await finish(controller)
                assert pacing.feeds and controller.guards[0].paused == LEVEL * 1.5
                return controller.document()

    document = asyncio.run(main())
    actions = [s.action for s in document.stretches]
    assert actions == ["fewer_workers", "pause", "fewer_workers"]
    assert "not the scan's doing" in document.stretches[2].reason
    assert "15" in document.stretches[2].reason
    # A pause of at least the settling time and two readings came first.
    pause = document.stretches[1]
    assert pause.end_ms - pause.start_ms >= 1_000


def test_the_deadline_ends_throttling_so_the_scan_finishes() -> None:
    async def main() -> PacingDocument:
        with child_processes(2) as pids:
            # Predicted 2.5 s, max_slowdown 2: no throttling after 5 s (time enough on a
            # loaded host to reach "pause" first).
            impact = IMPACT.model_copy(update={"max_slowdown": 2.0})
            async with paced(impact, predicted_ms=2500) as (_, guard, pacing, controller, _):
                guard.value = LEVEL * 3
                controller.scan_started("scan-2", lambda: list(pids))
                await wait_for(lambda: len(stopped(pids)) == 2)
                await wait_for(lambda: controller.deadline_reached)
                await wait_for(lambda: stopped(pids) == [])
                stretches = len(controller.stretches)
                # Past the deadline the loop reads no guard: fresh readings far over
                # budget arrive, and a step of the controller taken by hand on them
                # leaves the workers running.
                since = now_ms()
                feed = pacing.feeds[0]
                await wait_for(lambda: len(feed.values_between(since, now_ms() + 1000)) >= 2)
                controller._tick(now_ms())
                assert stopped(pids) == []
                assert len(controller.stretches) == stretches
                await finish(controller)
                return controller.document()

    document = asyncio.run(main())
    assert document.deadline_reached
    assert document.deadline_ms is not None
    assert document.deadline_reached_ms is not None
    assert document.deadline_reached_ms >= document.deadline_ms
    assert "; deadline passed after " in document.summary()
    assert document.within_budget is False
    assert document.stretches and document.stretches[-1].end_ms <= document.deadline_ms + 1000


def test_a_bus_that_does_not_take_the_throttle_events_never_holds_the_workers() -> None:
    async def main() -> tuple[PacingDocument, list[str]]:
        with child_processes(2) as pids:
            impact = IMPACT.model_copy(update={"max_slowdown": 2.0})
            async with paced(impact, predicted_ms=2500) as (_, guard, _, controller, _):
                # Every publish waits until the test lets it through: a bus whose
                # subscriber's queue stays full.
                room = threading.Event()
                offered: list[str] = []

                def publish(event: Event) -> None:
                    assert isinstance(event, ScanThrottled)
                    offered.append(event.action)
                    room.wait(60)

                controller.publish = publish
                guard.value = LEVEL * 3
                controller.scan_started("scan-6", lambda: list(pids))
                # The first event (the slow start) waits on the bus; the controller
                # goes on deciding: all workers paused, then the deadline runs them.
                await wait_for(lambda: len(stopped(pids)) == 2)
                await wait_for(lambda: controller.deadline_reached)
                await wait_for(lambda: stopped(pids) == [])
                assert offered == ["fewer_workers"]
                room.set()
                await finish(controller)
                return controller.document(), offered

    document, offered = asyncio.run(main())
    # Once the bus had room, every change went out, in order: each stretch, then the
    # resume at the deadline.
    assert offered == [s.action for s in document.stretches] + ["resume"]
    assert offered[:2] == ["fewer_workers", "pause"]
    assert document.deadline_reached


def test_throttle_events_keep_their_order_and_one_sent_after_the_end_is_not_lost() -> None:
    def event(action: str) -> ScanThrottled:
        return ScanThrottled(
            scan_id="s", target="/p", action=action, reason="r", throttled_ms=0.0, guard=None
        )

    published: list[Event] = []
    # A scan that sends nothing starts no thread.
    idle = _Publisher(published.append, "scan-pacing-events-idle")
    assert idle.close(1.0)
    assert all(t.name != "scan-pacing-events-idle" for t in threading.enumerate())
    publisher = _Publisher(published.append, "scan-pacing-events-s")
    publisher.send(event("fewer_workers"))
    publisher.send(event("pause"))
    assert publisher.close(10.0)
    # A controller thread that outlived the end of its scan still gets its event out.
    publisher.send(event("resume"))
    assert [e.action for e in published if isinstance(e, ScanThrottled)] == [
        "fewer_workers",
        "pause",
        "resume",
    ]


def test_a_guard_whose_data_stops_switches_the_budget_off() -> None:
    async def main() -> PacingDocument:
        with child_processes(2) as pids:
            impact = IMPACT.model_copy(update={"stale_after": 1000})
            async with paced(impact) as (_, guard, _, controller, _):
                guard.value = LEVEL * 3
                controller.scan_started("scan-3", lambda: list(pids))
                await wait_for(lambda: len(stopped(pids)) >= 1)
                guard.publishing = False
                await wait_for(lambda: controller.state == "off")
                assert stopped(pids) == []
                await finish(controller)
                return controller.document()

    document = asyncio.run(main())
    assert document.budget_state == "off"
    assert document.reason is not None and "no data for 1 s" in document.reason
    assert document.within_budget is None
    assert "impact budget off" in document.summary()


def test_a_scan_with_no_workers_pauses_between_batches() -> None:
    async def main() -> None:
        # A long prediction: its deadline, not the cap on throttled time (3x the
        # time run, under a second here), decides how long the scan may be held.
        async with paced(IMPACT, predicted_ms=600_000) as (_, guard, _, controller, _):
            guard.value = LEVEL * 2
            controller.scan_started("scan-4", list)
            never: Future[None] = Future()
            await wait_for(lambda: controller.stretches)
            assert controller.stretches[0].action == "batch_pause"
            entered, returned = threading.Event(), threading.Event()

            def hold() -> None:
                entered.set()
                controller.hold(never)
                returned.set()

            held = asyncio.create_task(asyncio.to_thread(hold))
            await wait_for(entered.is_set)
            # Held while over budget: three more readings evaluated, still held.
            await after_readings(controller, 3)
            assert not returned.is_set()
            guard.value = LEVEL
            await asyncio.wait_for(held, 15)
            await finish(controller)

    asyncio.run(main())


def test_normal_priority_has_no_budget() -> None:
    pacing = ScanPacing(IMPACT, priority="normal", store=None, bus=None)
    document = pacing.controller(None, "/p").document()
    assert document.budget_state == "not_configured"
    assert document.within_budget is None
    assert "full speed" in (document.reason or "")


def test_a_normal_priority_scan_past_its_prediction_has_no_deadline_to_warn_about(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Nothing is throttled or niced at normal priority: running long is not news."""
    pacing = ScanPacing(IMPACT, priority="normal", store=None, bus=None)
    controller = pacing.controller(None, "/p", predicted_ms=1.0)
    with child_processes(1) as pids, caplog.at_level(logging.WARNING):
        controller.scan_started("scan-normal", lambda: list(pids))
        # Well past what a low-priority scan's deadline would be (the floor of it).
        past = controller.started_ms + controller.settings.deadline_floor_ms + 1000
        controller._check_deadline(past)
        controller.scan_finished()
    document = controller.document()
    assert document.deadline_ms is None
    assert not document.deadline_reached
    assert "deadline" not in document.summary()
    assert not [r for r in caplog.records if "deadline" in r.getMessage()]
    # A low-priority scan with the same prediction does have one, and it is kept.
    low = ScanPacing(IMPACT, priority="low", store=None, bus=None)
    assert low.controller(None, "/p", predicted_ms=1.0).deadline_ms is not None


def test_scan_throttled_round_trips_as_json() -> None:
    event = ScanThrottled(
        scan_id="s",
        target="/p",
        action="pause",
        reason=f"{GUARD_SELECTOR} +23 % over its level before the scan (budget 10 %)",
        throttled_ms=1234.5,
        guard=GUARD_SELECTOR,
    )
    assert decode_event(encode_event(event)) == event
    assert ScanThrottled.topic == "security.scan.throttled"
    assert EVENT_TYPES["ScanThrottled"] is ScanThrottled
