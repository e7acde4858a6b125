"""AlertEngine on a real SQLite store and the real in-process bus, with a driven clock."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from secperf.alerts import AlertEngine, GroupSettings, Rule, rule_from_dict
from secperf.alerts.grouping import Notification
from secperf.alerts.notifiers.interface import Notifier
from secperf.bus.memory import AsyncEventBus
from secperf.events import (
    AlertChanged,
    Event,
    MetricsRecorded,
    ScanCompleted,
    ScanStarted,
    ViolationDetected,
)
from secperf.model import AlertState, Finding, MetricKind, Sample, SecurityMetrics, Severity
from secperf.store import Store, StoreWriter
from support.factories import make_finding

T0 = 1_700_000_000_000
MIN = 60_000


class Clock:
    """A clock tests move by hand."""

    def __init__(self, start: int = T0) -> None:
        self.now = start

    def __call__(self) -> int:
        return self.now

    def advance(self, ms: int) -> None:
        self.now += ms


class Recorder(Notifier):
    """A notifier that keeps what it was sent."""

    def __init__(self, raw: bool = False) -> None:
        self.name = "recorder"
        self.raw = raw
        self.sent: list[Notification] = []

    async def send(self, notification: Notification) -> None:
        self.sent.append(notification)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(tmp_path / "alerts.db")
    yield s
    s.close()


def write(store: Store, name: str, labels: dict[str, str], points: list[tuple[int, float]]) -> None:
    result = store.write_samples(
        [Sample(name, labels, ts, v) for ts, v in points], now_ms=points[-1][0]
    )
    assert result.rejected == 0, result.errors


def cpu_rule(**overrides: Any) -> Rule:
    data: dict[str, Any] = {
        "name": "HighCpu",
        "metric": "cpu_percent",
        "aggregation": "avg",
        "window": "1m",
        "threshold": 90.0,
        "for": "5m",
        "severity": "high",
        "annotations": {"summary": "CPU {{ $value }} % on host {{ $labels.host }}"},
    }
    data.update(overrides)
    return rule_from_dict(data)


Scenario = Callable[[AlertEngine, Clock, list[Event]], Awaitable[None]]


def run_engine(
    store: Store,
    rules: list[Rule],
    scenario: Scenario,
    *,
    notifiers: tuple[Notifier, ...] = (),
    group: GroupSettings | None = None,
    writer: bool = True,
    **options: Any,
) -> list[Event]:
    """Run ``scenario`` against a started engine; returns the AlertChanged events seen."""

    async def main() -> list[Event]:
        clock = Clock()
        bus = AsyncEventBus()
        seen: list[Event] = []

        async def record(event: Event) -> None:
            seen.append(event)

        await bus.subscribe("alerts.>", record, name="test-recorder")
        store_writer = StoreWriter(store, flush_interval_s=0.05) if writer else None
        if store_writer is not None:
            await store_writer.attach(bus)
        options.setdefault("min_firing_ms", 0)
        engine = AlertEngine(
            store,
            bus,
            rules,
            evaluation_interval_s=60,
            notifiers=notifiers,
            group_settings=group or GroupSettings(group_wait_ms=0, group_interval_ms=MIN),
            clock=clock,
            host="test-host",
            **options,
        )
        await engine.start(run_loop=False)
        try:
            await scenario(engine, clock, seen)
        finally:
            await engine.stop()
            if store_writer is not None:
                await store_writer.close()
            await bus.close()
        return seen

    return asyncio.run(main())


async def settle() -> None:
    """Let the bus deliver what was published."""
    for _ in range(20):
        await asyncio.sleep(0)


def states(events: list[Event]) -> list[tuple[str, str]]:
    return [
        (e.previous_state.value, e.alert.state.value) for e in events if isinstance(e, AlertChanged)
    ]


def test_lifecycle_pending_firing_resolved_with_exact_for(store: Store) -> None:
    host = {"host": "a"}

    async def scenario(engine: AlertEngine, clock: Clock, seen: list[Event]) -> None:
        write(
            store, "cpu_percent", host, [(clock.now - 30_000 + i * 1000, 95.0) for i in range(31)]
        )
        events = await engine.evaluate()
        assert [e.alert.state for e in events] == [AlertState.PENDING]
        # 4m59s later, still pending: ``for`` is 5m.
        clock.advance(5 * MIN - 1000)
        write(store, "cpu_percent", host, [(clock.now, 96.0)])
        assert await engine.evaluate() == []
        assert engine.alerts()[0].state is AlertState.PENDING
        clock.advance(1000)
        write(store, "cpu_percent", host, [(clock.now, 97.0)])
        events = await engine.evaluate()
        assert [e.alert.state for e in events] == [AlertState.FIRING]
        alert = events[0].alert
        assert alert.fired_at_ms == clock.now
        assert alert.active_since_ms == T0
        assert alert.labels == {
            "host": "a",
            "alertname": "HighCpu",
            "severity": "high",
        }
        # The average of the last minute (96 and 97), then the security side.
        assert alert.annotations["summary"] == "CPU 96.5 % on host a — no security scan on record"
        assert alert.kind is MetricKind.PERFORMANCE
        # The load drops: the window's average falls below 90 within a minute.
        clock.advance(MIN + 1000)
        write(store, "cpu_percent", host, [(clock.now - 30_000, 10.0), (clock.now, 10.0)])
        events = await engine.evaluate()
        assert [e.alert.state for e in events] == [AlertState.RESOLVED]
        assert events[0].alert.resolved_at_ms == clock.now
        await settle()

    seen = run_engine(store, [cpu_rule()], scenario)
    assert states(seen) == [("inactive", "pending"), ("pending", "firing"), ("firing", "resolved")]
    # The StoreWriter stored every transition, once.
    fingerprint = seen[0].alert.fingerprint  # type: ignore[attr-defined]
    history = store.alert_history(fingerprint)
    assert [(t.from_state.value, t.to_state.value) for t in history] == states(seen)


def test_pending_that_clears_goes_back_to_inactive(store: Store) -> None:
    async def scenario(engine: AlertEngine, clock: Clock, seen: list[Event]) -> None:
        write(store, "cpu_percent", {"host": "a"}, [(clock.now, 99.0)])
        await engine.evaluate()
        clock.advance(MIN)
        write(store, "cpu_percent", {"host": "a"}, [(clock.now, 20.0)])
        events = await engine.evaluate()
        assert [e.alert.state for e in events] == [AlertState.INACTIVE]
        assert engine.alerts() == []
        await settle()

    seen = run_engine(store, [cpu_rule(window="10s")], scenario)
    assert states(seen) == [("inactive", "pending"), ("pending", "inactive")]


def test_hysteresis_and_keep_firing_for(store: Store) -> None:
    rule = rule_from_dict(
        {
            "name": "HighCpu",
            "metric": "cpu_percent",
            "aggregation": "last",
            "threshold": 90.0,
            "resolve_threshold": 80.0,
            "keep_firing_for": "2m",
        }
    )

    async def scenario(engine: AlertEngine, clock: Clock, seen: list[Event]) -> None:
        write(store, "cpu_percent", {"host": "a"}, [(clock.now, 95.0)])
        assert [e.alert.state for e in await engine.evaluate()] == [AlertState.FIRING]
        # 85 is below the firing threshold but above the resolve one: still firing.
        clock.advance(MIN)
        write(store, "cpu_percent", {"host": "a"}, [(clock.now, 85.0)])
        assert await engine.evaluate() == []
        # Below 80: the condition is gone, but keep_firing_for holds it 2 minutes
        # after it was last true (at +1m).
        clock.advance(MIN)
        write(store, "cpu_percent", {"host": "a"}, [(clock.now, 70.0)])
        assert await engine.evaluate() == []
        clock.advance(MIN - 1)
        write(store, "cpu_percent", {"host": "a"}, [(clock.now, 70.0)])
        assert await engine.evaluate() == []
        clock.advance(1)
        write(store, "cpu_percent", {"host": "a"}, [(clock.now, 70.0)])
        events = await engine.evaluate()
        assert [e.alert.state for e in events] == [AlertState.RESOLVED]

    run_engine(store, [rule], scenario)


def test_flapping_alert_is_held_firing(store: Store) -> None:
    rule = rule_from_dict(
        {"name": "Flappy", "metric": "cpu_percent", "aggregation": "last", "threshold": 90.0}
    )

    async def scenario(engine: AlertEngine, clock: Clock, seen: list[Event]) -> None:
        value = 95.0
        for _ in range(5):  # fire, resolve, fire, resolve, fire
            write(store, "cpu_percent", {"host": "a"}, [(clock.now, value)])
            await engine.evaluate()
            clock.advance(MIN)
            value = 10.0 if value > 50 else 95.0
        assert engine.alerts()[0].state is AlertState.FIRING
        # It has fired 3 times within 30 minutes: a clear reading no longer resolves it.
        write(store, "cpu_percent", {"host": "a"}, [(clock.now, 10.0)])
        assert await engine.evaluate() == []
        assert engine.alerts()[0].annotations.get("flapping") == "true"
        clock.advance(5 * MIN)
        write(store, "cpu_percent", {"host": "a"}, [(clock.now, 10.0)])
        events = await engine.evaluate()
        assert [e.alert.state for e in events] == [AlertState.RESOLVED]

    run_engine(store, [rule], scenario, flap_threshold=3, flap_hold_ms=5 * MIN)


def test_min_firing_time_damps_a_single_dip(store: Store) -> None:
    rule = rule_from_dict(
        {"name": "Dip", "metric": "cpu_percent", "aggregation": "last", "threshold": 90.0}
    )

    async def scenario(engine: AlertEngine, clock: Clock, seen: list[Event]) -> None:
        write(store, "cpu_percent", {"host": "a"}, [(clock.now, 95.0)])
        await engine.evaluate()
        clock.advance(15_000)
        write(store, "cpu_percent", {"host": "a"}, [(clock.now, 10.0)])
        assert await engine.evaluate() == []  # fired 15 s ago; the minimum is 60 s
        clock.advance(45_000)
        write(store, "cpu_percent", {"host": "a"}, [(clock.now, 10.0)])
        assert [e.alert.state for e in await engine.evaluate()] == [AlertState.RESOLVED]

    run_engine(store, [rule], scenario, min_firing_ms=60_000)


def test_nodata_and_error_states(store: Store) -> None:
    missing = rule_from_dict(
        {"name": "Missing", "metric": "response_time_ms", "threshold": 1.0, "no_data": "nodata"}
    )
    quiet = rule_from_dict(
        {"name": "Quiet", "metric": "throughput", "threshold": 1.0, "no_data": "ok"}
    )

    async def scenario(engine: AlertEngine, clock: Clock, seen: list[Event]) -> None:
        events = await engine.evaluate()
        assert [(e.alert.rule, e.alert.state) for e in events] == [("Missing", AlertState.NODATA)]
        assert events[0].alert.labels["scope"] == "rule"
        # The store breaks: every rule goes to the error state, nothing crashes.
        original = store.query

        def broken(*args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("disk on fire")

        store.query = broken  # type: ignore[method-assign]
        try:
            clock.advance(MIN)
            events = await engine.evaluate()
        finally:
            store.query = original  # type: ignore[method-assign]
        assert sorted((e.alert.rule, e.alert.state.value) for e in events) == [
            ("Missing", "error"),
            ("Quiet", "error"),
        ]
        assert "disk on fire" in events[0].alert.annotations["error"]
        assert engine.stats().rule_errors == 2
        # Data arrives: the rule-level alerts go back to inactive.
        write(store, "response_time_ms", {"host": "a"}, [(clock.now, 0.5)])
        write(store, "throughput", {"host": "a"}, [(clock.now, 0.5)])
        clock.advance(1000)
        events = await engine.evaluate()
        assert sorted((e.alert.rule, e.alert.state.value) for e in events) == [
            ("Missing", "inactive"),
            ("Quiet", "inactive"),
        ]

    run_engine(store, [missing, quiet], scenario)


def _metrics(scan_id: str, start: int, end: int, **kw: Any) -> SecurityMetrics:
    values: dict[str, Any] = {
        "scan_id": scan_id,
        "target": "/repo",
        "started_ms": start,
        "finished_ms": end,
        "scan_duration_ms": float(end - start),
        "violations_found": 3,
        "false_positive_rate": 0.1,
        "vulnerability_severity_counts": {"critical": 1, "high": 2},
        "scan_coverage_percent": 95.0,
        "new_findings": 1,
        "scanner_durations_ms": {"bandit": 10.0, "secrets": 5.0},
    }
    values.update(kw)
    return SecurityMetrics(**values)


def _finding(fp: str, severity: Severity, category: str = "sast") -> Finding:
    return make_finding(
        "B105",
        "app.py",
        severity,
        fingerprint=fp,
        message="hard-coded password",
        line=3,
        category=category,
        snippet="password = 'hunter2'",
    )


def test_scan_completed_fires_security_rules_at_once_with_context(store: Store) -> None:
    from secperf.alerts import default_rules

    rules = [r for r in default_rules(cpu_count=2) if r.is_security]

    async def scenario(engine: AlertEngine, clock: Clock, seen: list[Event]) -> None:
        write(store, "cpu_percent", {"host": "test-host"}, [(clock.now - 1000, 70.0)])
        bus = engine.bus
        start = clock.now - 5_000
        await bus.publish(
            ScanStarted(scan_id="s1", target="/repo", scanners=("bandit", "secrets"), ts_ms=start)
        )
        await bus.publish(
            ViolationDetected(scan_id="s1", finding=_finding("f1", Severity.CRITICAL), is_new=True)
        )
        await bus.publish(
            ViolationDetected(
                scan_id="s1", finding=_finding("f2", Severity.HIGH, "secret"), is_new=False
            )
        )
        await bus.publish(
            ScanCompleted(
                metrics=_metrics("s1", start, clock.now, scan_coverage_percent=50.0),
                host="test-host",
            )
        )
        for _ in range(2000):  # up to 10 s on a loaded machine
            await asyncio.sleep(0.005)
            if len([e for e in seen if isinstance(e, AlertChanged)]) >= 3:
                break
        firing = {a.rule: a for a in engine.alerts([AlertState.FIRING])}
        assert set(firing) == {"NewCriticalFinding", "SecretFound", "ScanCoverageLow"}
        critical = firing["NewCriticalFinding"]
        assert critical.kind is MetricKind.SECURITY
        assert critical.value == 1.0
        assert critical.labels["target"] == "/repo"
        summary = critical.annotations["summary"]
        assert summary.startswith("1 new critical finding(s) in the latest scan of /repo")
        assert "no security scan was running" in summary
        assert "machine on test-host: CPU 70 %" in summary
        ctx = engine.context(critical.fingerprint)
        assert ctx["security"]["latest_scan"]["scan_id"] == "s1"
        assert [f["fingerprint"] for f in ctx["security"]["new_findings"]] == ["f1"]
        assert "snippet" not in ctx["security"]["new_findings"][0]
        assert ctx["performance"]["load"]["cpu_percent"] == 70.0
        # The next scan finds nothing new: the new-finding alert resolves.
        clock.advance(10 * MIN)
        start2 = clock.now - 1000
        await bus.publish(
            ScanCompleted(
                metrics=_metrics("s2", start2, clock.now, new_findings=0), host="test-host"
            )
        )
        for _ in range(2000):  # up to 10 s on a loaded machine
            await asyncio.sleep(0.005)
            if any(
                isinstance(e, AlertChanged)
                and e.alert.rule == "NewCriticalFinding"
                and e.alert.state is AlertState.RESOLVED
                for e in seen
            ):
                break
        # s2 found no secret and covered 95 %: everything resolves.
        await engine.evaluate(security_only=True)
        resolved = {a.rule for a in engine.alerts([AlertState.RESOLVED])}
        assert resolved == {"NewCriticalFinding", "SecretFound", "ScanCoverageLow"}

    seen: list[Event] = []

    async def capture(engine: AlertEngine, clock: Clock, events: list[Event]) -> None:
        await scenario(engine, clock, events)
        seen.extend(events)

    run_engine(store, rules, capture, notifiers=())
    # The engine published the scan's security samples; the StoreWriter stored them.
    names = set(store.list_metric_names())
    assert {"security_violations", "security_new_findings", "security_scan_coverage"} <= names
    stored = store.latest("security_violations", {"severity": "critical"})
    assert [s.value for s in stored] == [1.0]


def test_running_scan_appears_in_a_performance_alert(store: Store) -> None:
    rule = rule_from_dict(
        {"name": "Cpu", "metric": "cpu_percent", "aggregation": "last", "threshold": 90.0}
    )

    async def scenario(engine: AlertEngine, clock: Clock, seen: list[Event]) -> None:
        await engine.bus.publish(
            ScanStarted(
                scan_id="s9",
                target="/repo",
                scanners=("bandit", "secrets"),
                ts_ms=clock.now - 65_000,
                host="a",  # a scan on the alert's host (another host's is not shown)
            )
        )
        await settle()
        write(store, "cpu_percent", {"host": "a"}, [(clock.now, 94.0)])
        events = await engine.evaluate()
        summary = events[0].alert.annotations["summary"]
        assert summary.startswith("Cpu: cpu_percent last 94 > 90 — ")
        assert "a security scan of /repo (bandit, secrets) was running since" in summary
        ctx = engine.context(events[0].alert.fingerprint)
        assert ctx["security"]["scan_running"]["scan_id"] == "s9"
        assert ctx["performance"]["recent"]["values"] == [94.0]

    run_engine(store, [rule], scenario)


def test_acknowledge_and_silence_through_the_engine(store: Store) -> None:
    rule = rule_from_dict(
        {"name": "Cpu", "metric": "cpu_percent", "aggregation": "last", "threshold": 90.0}
    )
    recorder = Recorder()

    async def scenario(engine: AlertEngine, clock: Clock, seen: list[Event]) -> None:
        write(store, "cpu_percent", {"host": "a"}, [(clock.now, 99.0)])
        write(store, "cpu_percent", {"host": "b"}, [(clock.now, 99.0)])
        silence = engine.add_silence(
            [{"name": "host", "value": "b", "op": "="}],
            None,
            clock.now + 3_600_000,
            "alice",
            "maintenance on b",
        )
        events = await engine.evaluate()
        await engine.wait_notifications()
        assert len(events) == 2
        by_host = {e.alert.labels["host"]: e.alert for e in events}
        assert engine.is_silenced(by_host["b"]) and not engine.is_silenced(by_host["a"])
        assert [[a.labels["host"] for a in n.alerts] for n in recorder.sent] == [["a"]]
        acked = engine.acknowledge(by_host["a"].fingerprint, "bob", "looking into it")
        assert acked.acknowledged_by == "bob"
        assert store.alerts([AlertState.FIRING])  # stored with the ack
        stored = {a.fingerprint: a for a in store.alerts()}
        assert stored[by_host["a"].fingerprint].acknowledgement_note == "looking into it"
        view = engine.describe(acked, with_context=False)
        assert view["acknowledged_by"] == "bob" and view["silenced"] is False
        # Expiring the silence lets b into the next notification.
        assert engine.expire_silence(silence.id) is True
        clock.advance(MIN)
        write(store, "cpu_percent", {"host": "a"}, [(clock.now, 99.0)])
        write(store, "cpu_percent", {"host": "b"}, [(clock.now, 99.0)])
        await engine.evaluate()
        await engine.wait_notifications()
        assert sorted(a.labels["host"] for a in recorder.sent[-1].alerts) == ["a", "b"]
        with pytest.raises(KeyError):
            engine.acknowledge("nope", "bob", "")

    run_engine(store, [rule], scenario, notifiers=(recorder,))


def test_acknowledgements_from_another_process_are_picked_up(store: Store) -> None:
    rule = rule_from_dict(
        {"name": "Cpu", "metric": "cpu_percent", "aggregation": "last", "threshold": 90.0}
    )

    async def scenario(engine: AlertEngine, clock: Clock, seen: list[Event]) -> None:
        write(store, "cpu_percent", {"host": "a"}, [(clock.now, 99.0)])
        (event,) = await engine.evaluate()
        # The CLI writes the acknowledgement straight into the store.
        stored = replace(event.alert, acknowledged_by="carol", acknowledgement_note="on it")
        store.upsert_alert(stored)
        clock.advance(MIN)
        write(store, "cpu_percent", {"host": "a"}, [(clock.now, 99.0)])
        await engine.evaluate()
        assert engine.get(event.alert.fingerprint).acknowledged_by == "carol"
        assert store.alerts()[0].acknowledgement_note == "on it"

    run_engine(store, [rule], scenario)


def test_inhibition_critical_mutes_lower_severity(store: Store) -> None:
    warn = rule_from_dict(
        {
            "name": "CpuWarn",
            "metric": "cpu_percent",
            "aggregation": "last",
            "threshold": 80.0,
            "severity": "medium",
            "labels": {"alertname": "HostCpu"},
        }
    )
    crit = rule_from_dict(
        {
            "name": "CpuCrit",
            "metric": "cpu_percent",
            "aggregation": "last",
            "threshold": 95.0,
            "severity": "critical",
            "labels": {"alertname": "HostCpu"},
        }
    )
    recorder = Recorder()

    async def scenario(engine: AlertEngine, clock: Clock, seen: list[Event]) -> None:
        write(store, "cpu_percent", {"host": "a"}, [(clock.now, 99.0)])
        write(store, "cpu_percent", {"host": "b"}, [(clock.now, 85.0)])
        events = await engine.evaluate()
        await engine.wait_notifications()
        assert len(events) == 3  # warn on a and b, critical on a
        sent = [(a.labels["host"], a.severity.value) for n in recorder.sent for a in n.alerts]
        # The warning on a is muted by the critical on a; b has no critical.
        assert sorted(sent) == [("a", "critical"), ("b", "medium")]
        warn_a = next(
            e.alert for e in events if e.alert.rule == "CpuWarn" and e.alert.labels["host"] == "a"
        )
        assert engine.inhibited_by(warn_a) is not None

    run_engine(store, [warn, crit], scenario, notifiers=(recorder,))


def test_alerts_survive_a_restart(store: Store) -> None:
    rule = rule_from_dict(
        {"name": "Cpu", "metric": "cpu_percent", "aggregation": "last", "threshold": 90.0}
    )

    async def first(engine: AlertEngine, clock: Clock, seen: list[Event]) -> None:
        write(store, "cpu_percent", {"host": "a"}, [(clock.now, 99.0)])
        await engine.evaluate()

    run_engine(store, [rule], first)
    assert [a.state for a in store.alerts()] == [AlertState.FIRING]

    async def second(engine: AlertEngine, clock: Clock, seen: list[Event]) -> None:
        assert [a.state for a in engine.alerts()] == [AlertState.FIRING]
        write(store, "cpu_percent", {"host": "a"}, [(clock.now + 1000, 99.0)])
        clock.advance(1000)
        assert await engine.evaluate() == []  # still firing: no new transition

    run_engine(store, [rule], second)


def test_unexplained_anomaly_fires_without_a_scan_and_not_with_one(store: Store) -> None:
    rule = rule_from_dict(
        {
            "name": "Anomaly",
            "kind": "unexplained_anomaly",
            "metric": "response_time_ms",
            "window": "30m",
            "recent": "1m",
            "k": 6.0,
        }
    )
    rng = np.random.default_rng(1)

    async def scenario(engine: AlertEngine, clock: Clock, seen: list[Event]) -> None:
        start = clock.now - 30 * MIN
        history = [(start + i * 5000, 100 + float(rng.normal(0, 2))) for i in range(361)]
        write(store, "response_time_ms", {"host": "a"}, history)
        assert await engine.evaluate() == []
        spike = [(clock.now - 50_000 + i * 5000, 160.0) for i in range(11)]
        write(store, "response_time_ms", {"host": "a"}, spike)
        events = await engine.evaluate()
        assert [e.alert.state for e in events] == [AlertState.FIRING]
        alert = events[0].alert
        assert alert.kind is MetricKind.SECURITY
        assert alert.value is not None and alert.value > 6
        # A scan that covers the spike explains it: the alert resolves.
        await engine.bus.publish(
            ScanStarted(scan_id="s1", target="/repo", ts_ms=clock.now - 60_000)
        )
        await settle()
        clock.advance(1000)
        events = await engine.evaluate()
        assert [e.alert.state for e in events] == [AlertState.RESOLVED]

    run_engine(store, [rule], scenario)


@pytest.mark.parametrize("planted", [True, False])
def test_scan_impact_rule_fires_only_on_a_planted_effect(store: Store, planted: bool) -> None:
    rule = rule_from_dict(
        {
            "name": "ScansSlowResponses",
            "kind": "scan_impact",
            "metric": "response_time_ms",
            "min_effect_pct": 20.0,
            "max_q": 0.01,
            "lookback": "6h",
        }
    )
    rng = np.random.default_rng(7)

    async def scenario(engine: AlertEngine, clock: Clock, seen: list[Event]) -> None:
        start = clock.now - 6 * 3_600_000
        ts = np.arange(start, clock.now, 10_000, dtype=np.int64)
        values = 100 + rng.normal(0, 3, ts.size)
        scans = [
            (start + h * 3_600_000 + 600_000, start + h * 3_600_000 + 1_200_000) for h in range(5)
        ]
        for lo, hi in scans:
            if planted:
                values[(ts >= lo) & (ts < hi)] *= 1.4
        write(
            store,
            "response_time_ms",
            {"host": "a"},
            list(zip(ts.tolist(), values.tolist(), strict=True)),
        )
        for i, (lo, hi) in enumerate(scans):
            await engine.bus.publish(ScanCompleted(metrics=_metrics(f"s{i}", lo, hi)))
        for _ in range(200):
            await asyncio.sleep(0.01)
            if engine.tracker.version == len(scans) and not engine._lock.locked():
                break
        await engine.evaluate()
        firing = engine.alerts([AlertState.FIRING])
        impact = [a for a in firing if a.rule == "ScansSlowResponses"]
        if not planted:
            assert impact == []
            return
        assert len(impact) == 1
        assert impact[0].value is not None and impact[0].value >= 20
        assert float(impact[0].annotations["q_value"]) < 0.01

    run_engine(store, [rule], scenario)


def test_a_scan_the_engine_sees_has_its_series_stored_once(store: Store) -> None:
    names = {
        "security_violations": 5,  # one series per severity
        "vulnerability_count": 1,
        "security_scan_time": 1,
        "security_false_positives": 1,
        "security_scan_coverage": 1,
        "security_new_findings": 5,
        "security_findings": 5,  # one per category
    }

    async def scenario(engine: AlertEngine, clock: Clock, seen: list[Event]) -> None:
        published: list[MetricsRecorded] = []

        async def grab(event: Event) -> None:
            assert isinstance(event, MetricsRecorded)
            published.append(event)

        await engine.bus.subscribe("metrics.recorded", grab, name="grab")
        metrics = _metrics(
            "s1",
            clock.now - 1000,
            clock.now,
            violations_found=1,
            vulnerability_severity_counts={"critical": 1},
        )
        await engine.bus.publish(
            ViolationDetected(scan_id="s1", finding=_finding("f1", Severity.CRITICAL), is_new=True)
        )
        await engine.bus.publish(ScanCompleted(metrics=metrics, host="h1"))
        deadline = asyncio.get_running_loop().time() + 10
        while not store.latest("security_findings"):
            assert asyncio.get_running_loop().time() < deadline, "the scan's series never came"
            await asyncio.sleep(0.01)
        # The engine keeps the samples for its own rules and publishes none.
        assert set(names) <= engine.recent.names()
        assert published == []
        # A re-delivered outcome stores nothing twice.
        store.record_scan_completed(metrics, "ok", host="h1")

    run_engine(store, [], scenario)
    for name, series in names.items():
        points = store.query(name, None, 0, 2**53)
        assert len(points) == series, name
        assert all(p.timestamps.size == 1 and p.labels["host"] == "h1" for p in points), name
    by_severity = {
        p.labels["severity"]: float(p.values[0])
        for p in store.query("security_new_findings", None, 0, 2**53)
    }
    assert by_severity["critical"] == 1.0 and by_severity["high"] == 0.0


def test_the_evaluation_loop_runs_on_its_own(store: Store) -> None:
    from secperf.events import now_ms

    rule = rule_from_dict(
        {"name": "Cpu", "metric": "cpu_percent", "aggregation": "last", "threshold": 90.0}
    )
    recorder = Recorder()

    async def main() -> list[AlertState]:
        bus = AsyncEventBus()
        engine = AlertEngine(
            store,
            bus,
            [rule],
            evaluation_interval_s=0.02,
            notifiers=[recorder],
            group_settings=GroupSettings(group_wait_ms=0),
        )
        await engine.start()
        write(store, "cpu_percent", {"host": "a"}, [(now_ms(), 99.0)])
        for _ in range(500):
            await asyncio.sleep(0.01)
            if recorder.sent:
                break
        await engine.stop()
        await bus.close()
        assert engine.evaluations >= 1
        return [a.state for n in recorder.sent for a in n.alerts]

    assert asyncio.run(main()) == [AlertState.FIRING]


def test_the_store_follows_a_firing_alerts_value_between_transitions(store: Store) -> None:
    """``alerts list`` reads the store, the API the engine: the same value in both.

    Held firing by the minimum firing time, the alert's value drops with no
    transition; the store gets the new value, and an acknowledgement made in
    the store meanwhile (the CLI's) stays.
    """
    from support.waiting import wait_for

    rule = rule_from_dict(
        {"name": "Dip", "metric": "cpu_percent", "aggregation": "last", "threshold": 90.0}
    )

    async def scenario(engine: AlertEngine, clock: Clock, seen: list[Event]) -> None:
        write(store, "cpu_percent", {"host": "a"}, [(clock.now, 95.0)])
        assert [e.alert.state for e in await engine.evaluate()] == [AlertState.FIRING]
        await wait_for(lambda: [a.value for a in store.alerts()] == [95.0])
        fired = store.alerts()[0]
        store.acknowledge_alert(replace(fired, acknowledged_by="alice", acknowledgement_note="x"))
        clock.advance(15_000)
        write(store, "cpu_percent", {"host": "a"}, [(clock.now, 10.0)])
        assert await engine.evaluate() == []  # held firing: no transition
        assert [(a.state, a.value) for a in engine.alerts()] == [(AlertState.FIRING, 10.0)]
        stored = store.alerts()
        assert [(a.state, a.value) for a in stored] == [(AlertState.FIRING, 10.0)]
        assert stored[0].acknowledged_by == "alice"
        assert stored[0].annotations == fired.annotations

    run_engine(store, [rule], scenario, min_firing_ms=60_000)
