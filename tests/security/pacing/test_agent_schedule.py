"""``secperf agent`` plans, paces and predicts its scans without a store.

The live history is checked against a real SQLite store holding the same
samples (the same plan); the agent runs in-process on the in-memory bus with a
collector whose host CPU the test sets, real bandit scans of real files, and a
real store writer on the same bus standing for the central server.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest

from secperf.agent import Agent
from secperf.bus.memory import AsyncEventBus
from secperf.commands.pacing import ScanPacing
from secperf.config import load_config
from secperf.events import (
    Event,
    ScanCompleted,
    ScanStarted,
    decode_event,
    encode_event,
    now_ms,
)
from secperf.model import Sample
from secperf.perf.collectors.interface import Collector
from secperf.security.pacing.live_history import LiveHistory
from secperf.security.pacing.schedule import (
    Settings,
    host_cpu_guard,
    hour_of_week,
    hour_of_week_profile,
    plan_scan,
)
from secperf.store import Store
from secperf.store.writer import StoreWriter
from support.pacing import GUARD_SELECTOR, guard_batch
from support.waiting import wait_for

HOST = "agent-7"
HOUR = 3_600_000
MIN = 60_000
#: Tuesday 1 December 2026, 01:30 UTC.
NOW = int(datetime(2026, 12, 1, 1, 30, tzinfo=UTC).timestamp() * 1000)
QUIET_HOUR = int(datetime(2026, 12, 1, 3, 0, tzinfo=UTC).timestamp() * 1000)


def _week(*, days: int = 9, busy: float = 60.0, quiet: float = 5.0) -> list[Sample]:
    """Host CPU every 10 minutes for ``days`` before NOW, quiet on Tuesdays 03:00-04:00 only."""
    samples: list[Sample] = []
    start = (NOW - days * 24 * HOUR) // HOUR * HOUR
    for t in range(start, NOW - 10 * MIN, 10 * MIN):
        value = quiet if hour_of_week(t) == hour_of_week(QUIET_HOUR) else busy
        samples.append(Sample("cpu_percent", {"host": HOST}, t, value))
        samples.append(Sample("cpu_percent", {"host": HOST, "cpu": "0"}, t, 0.0))
    samples.extend(Sample("cpu_percent", {"host": HOST}, NOW - s * 1000, 55.0) for s in (70, 10))
    return samples


def test_the_live_history_plans_as_a_store_holding_the_same_samples(tmp_path: Path) -> None:
    samples = _week()
    store = Store.open(f"sqlite:///{tmp_path / 'store.db'}")
    store.write_samples(samples)
    # Nine days: a week back from NOW is the quiet hour's only earlier Tuesday.
    history = LiveHistory([host_cpu_guard(HOST)], minutes_kept=10 * 24 * 60)
    assert history.offer(samples) == len(samples) // 2 + 1  # per-core series are not kept
    settings = Settings(max_delay_ms=3 * HOUR)
    guards = [host_cpu_guard(HOST)]
    from_store = plan_scan(store, settings, guards, now_ms=NOW)
    live = plan_scan(history, settings, guards, now_ms=NOW)
    stored_profile = hour_of_week_profile(store, guards[0], NOW).to_document()
    store.close()
    assert hour_of_week_profile(history, guards[0], NOW).to_document() == stored_profile
    assert not live.quiet_now and live.next_scan_ms == QUIET_HOUR
    assert (live.next_scan_ms, live.reason, live.quiet_now) == (
        from_store.next_scan_ms,
        from_store.reason,
        from_store.quiet_now,
    )


def test_the_live_history_is_bounded() -> None:
    history = LiveHistory([host_cpu_guard(HOST)], minutes_kept=100)
    start = NOW - 1000 * MIN
    history.offer(
        Sample("cpu_percent", {"host": HOST}, t, float(t // MIN % 7))
        for t in range(start, NOW, 20_000)
    )
    (minutes,) = history.query("cpu_percent", {"host": HOST}, 0, NOW, step_ms=MIN)
    # 100 closed minutes and the one still collecting; three samples each.
    assert len(minutes.timestamps) == 101
    assert int(minutes.timestamps[0]) == NOW - 101 * MIN
    assert set(minutes.count.tolist() if minutes.count is not None else []) == {3}
    (raw,) = history.query("cpu_percent", {"host": HOST}, NOW - 5 * MIN, NOW)
    assert len(raw.timestamps) == 5 * 3
    assert history.query("cpu_percent", {"host": "elsewhere"}, 0, NOW) == []


class HostCpu(Collector):
    """Host CPU as the system collector names it, at the level the test sets."""

    def __init__(self) -> None:
        super().__init__("test-cpu", 0.05, None)
        self.level = 80.0

    def collect(self, now_ms: int) -> list[Sample]:
        return [Sample("cpu_percent", {}, now_ms, self.level)]


def _project(tmp_path: Path, max_delay: str) -> Path:
    project = tmp_path / "project"
    project.mkdir()
    (project / "app.py").write_text("import subprocess\nsubprocess.call('ls', shell=True)\n")
    (project / "secperf.toml").write_text(
        '[scan]\nscanners = ["bandit"]\n'
        f'[scan.schedule]\nmax_delay = "{max_delay}"\nwindow = "1s"\n'
    )
    return project


def _flat_history(agent: Agent, level: float) -> None:
    """Two days of host CPU at ``level`` before now: a profile whose quiet level is ``level``."""
    end = now_ms() - 10 * MIN
    stamps = range(end - 48 * HOUR, end, 5 * MIN)
    agent.history.offer(Sample("cpu_percent", {"host": HOST}, t, level) for t in stamps)


def _waiting(agent: Agent) -> bool:
    plan = agent.next_scan
    return plan is not None and not plan.quiet_now and "waiting for a quiet moment" in plan.reason


def test_a_busy_host_holds_the_agents_due_scan_until_it_is_quiet(tmp_path: Path) -> None:
    project = _project(tmp_path, "10m")
    loaded = load_config(None, project)
    store = Store.open(f"sqlite:///{tmp_path / 'central.db'}")

    async def scenario() -> list[Event]:
        got: list[Event] = []

        async def seen(event: Event) -> None:
            got.append(event)

        bus = AsyncEventBus()
        writer = StoreWriter(store, flush_interval_s=0.05)
        await writer.attach(bus)
        await bus.subscribe(">", seen)
        cpu = HostCpu()
        agent = Agent(
            loaded,
            bus,
            host=HOST,
            collectors=[cpu],
            scan_root=project,
            scan_interval_s=0.2,
            quiet_poll_s=0.05,
        )
        _flat_history(agent, 10.0)
        stop = asyncio.Event()
        task = asyncio.create_task(agent.run(stop))
        try:
            # The first scan runs at start; the next one is due 0.2 s later and held.
            await wait_for(lambda: _waiting(agent), limit_s=60)
            await wait_for(lambda: any(isinstance(e, ScanCompleted) for e in got), limit_s=60)
            held = agent.next_scan
            assert held is not None and "host CPU 80" in held.reason
            assert agent.stats.scans_started == 1
            cpu.level = 5.0
            await wait_for(lambda: agent.stats.scans_started == 2, limit_s=30)
            assert agent.next_scan is not None and agent.next_scan.quiet_now
            assert agent.next_scan.reason.startswith("quiet now (host CPU 5")
            await wait_for(lambda: sum(isinstance(e, ScanCompleted) for e in got) >= 2, limit_s=60)
        finally:
            stop.set()
            await task
            await writer.close()
            await bus.close()
        return got

    try:
        got = asyncio.run(scenario())
        completed = [e for e in got if isinstance(e, ScanCompleted)]
        stored = {r.scan_id: r for r in store.scans(limit=10)}
    finally:
        store.close()
    # What the server stores of an agent's scan: its prediction and pacing, sent on the event.
    for event in completed[:2]:
        assert decode_event(encode_event(event)) == event
        record = stored[event.metrics.scan_id]
        assert record.prediction == event.prediction and record.prediction is not None
        assert record.pacing == event.pacing and record.pacing is not None
        assert record.pacing["priority"] == "low"
    first, second = (stored[e.metrics.scan_id].prediction or {} for e in completed[:2])
    assert first["basis"] != "history"  # built-in throughputs: nothing learned yet
    assert second["basis"] == "history"  # learned from the agent's first scan, in memory


@pytest.mark.parametrize("max_delay_ms", [1500])
def test_max_delay_bounds_how_long_a_busy_host_holds_the_scan(
    tmp_path: Path, max_delay_ms: int
) -> None:
    project = _project(tmp_path, f"{max_delay_ms}ms")
    loaded = load_config(None, project)

    async def scenario() -> list[Event]:
        got: list[Event] = []

        async def seen(event: Event) -> None:
            got.append(event)

        bus = AsyncEventBus()
        await bus.subscribe(">", seen)
        agent = Agent(
            loaded,
            bus,
            host=HOST,
            collectors=[HostCpu()],
            scan_root=project,
            scan_interval_s=0.1,
            quiet_poll_s=0.05,
        )
        _flat_history(agent, 10.0)
        stop = asyncio.Event()
        task = asyncio.create_task(agent.run(stop))
        try:
            await wait_for(lambda: _waiting(agent), limit_s=60)
            await wait_for(lambda: sum(isinstance(e, ScanStarted) for e in got) >= 2, limit_s=60)
        finally:
            stop.set()
            await task
            await bus.close()
        return got

    got = asyncio.run(scenario())
    first_end = next(e for e in got if isinstance(e, ScanCompleted))
    second_start = [e for e in got if isinstance(e, ScanStarted)][1]
    # Due 0.1 s after the first scan, held while busy, started at max_delay at the latest.
    assert second_start.ts_ms - first_end.ts_ms >= max_delay_ms


def test_the_agents_impact_budget_reads_its_guard_from_its_own_history(tmp_path: Path) -> None:
    (tmp_path / "secperf.toml").write_text(f"[scan.impact]\nguard = ['{GUARD_SELECTOR}']\n")
    loaded = load_config(None, tmp_path)

    async def scenario() -> tuple[float | None, float | None, int]:
        bus = AsyncEventBus()
        agent = Agent(loaded, bus, host=HOST, collectors=[])
        await agent.bus.start()
        start = now_ms()
        for i, value in enumerate((100.0, 120.0, 110.0, 300.0)):
            await agent.bus.publish(guard_batch(value, start - 3000 + i * 1000))
        # Another host's batch, as a shared bus would carry it, is not this agent's guard.
        await bus.publish(guard_batch(9999.0, start + 1))
        pacing = ScanPacing.for_command(
            loaded.config.scan.impact, "low", store=agent.source, bus=agent.bus, feed_from_bus=False
        )
        await pacing.attach()
        controller = pacing.controller(None, str(tmp_path))
        (guard,) = controller.guards
        assert guard.prepare(start - 500, 60_000) is None
        # The guard polls its source once a second, as the controller reads it.
        reading = await wait_for(
            lambda: (r := guard.read(now_ms())) is not None and r.value > 110.0 and r, limit_s=10
        )
        subscribers = len(bus.stats().subscribers)
        await bus.close()
        return guard.before, reading.value if reading is not None else None, subscribers

    before, latest, subscribers = asyncio.run(scenario())
    assert before == pytest.approx(110.0)  # median of the three samples before the scan
    assert latest == pytest.approx(300.0)
    assert subscribers == 0  # the guards read the history, not every host's metrics
