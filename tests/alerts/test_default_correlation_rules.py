"""The correlation rules on by default (host CPU, every latency series) over a real store:
quiet on noise, firing on a scan's real effect; a rule short of data says so once."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from secperf.alerts.default_rules import default_rules
from secperf.alerts.engine import AlertEngine
from secperf.alerts.grouping import GroupSettings
from secperf.alerts.rule_loading import rule_from_dict
from secperf.alerts.rules import Rule
from secperf.bus.memory import AsyncEventBus
from secperf.config.rule_checks import KIND_PARAMS, param_problems
from secperf.events import ScanCompleted
from secperf.model import AlertState, Sample, SecurityMetrics
from secperf.store import Store

T0 = 1_700_000_000_000
QUANTILES = ("0.5", "0.95", "0.99")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(tmp_path / "alerts.db")
    yield s
    s.close()


def scan_metrics(scan_id: str, start: int, end: int) -> SecurityMetrics:
    return SecurityMetrics(
        scan_id=scan_id,
        target="/repo",
        started_ms=start,
        finished_ms=end,
        scan_duration_ms=float(end - start),
        violations_found=0,
        false_positive_rate=0.0,
        vulnerability_severity_counts={},
        scan_coverage_percent=100.0,
    )


Scenario = Callable[[AlertEngine], Awaitable[None]]


def run(store: Store, rules: list[Rule], now: int, scenario: Scenario) -> None:
    async def main() -> None:
        engine = AlertEngine(
            store,
            AsyncEventBus(),
            rules,
            clock=lambda: now,
            host="test-host",
            min_firing_ms=0,
            group_settings=GroupSettings(group_wait_ms=0),
        )
        await engine.start(run_loop=False)
        try:
            await scenario(engine)
        finally:
            await engine.stop()
            await engine.bus.close()

    asyncio.run(main())


async def complete_scans(engine: AlertEngine, scans: list[tuple[int, int]]) -> None:
    for i, (lo, hi) in enumerate(scans):
        await engine.bus.publish(ScanCompleted(metrics=scan_metrics(f"s{i}", lo, hi)))
    for _ in range(500):
        await asyncio.sleep(0.01)
        if engine.tracker.version >= len(scans) and not engine._lock.locked():
            return
    raise AssertionError("the engine did not see every scan")


def demo_like(
    store: Store, *, planted: bool, rng: np.random.Generator
) -> tuple[int, list[tuple[int, int]]]:
    """Fifteen minutes at 1 s as ``secperf demo`` records them: scans of 3-18 s every
    30 s; latency quantiles around 7/14/16 ms and host CPU around 20 % with their
    noise; with ``planted``, the demo's effect of a scan (+69 % latency, CPU x3)."""
    start = T0
    ts = np.arange(start, start + 15 * 60_000, 1000, dtype=np.int64)
    scans = [
        (
            int(start + 20_000 + i * 30_000),
            int(start + 20_000 + i * 30_000 + rng.integers(3, 18) * 1000),
        )
        for i in range(29)
    ]
    inside = np.zeros(ts.size, dtype=bool)
    for lo, hi in scans:
        inside |= (ts >= lo) & (ts < hi)
    samples: list[Sample] = []
    for quantile, level in zip(QUANTILES, (7.0, 14.0, 16.0), strict=True):
        values = level * rng.lognormal(0.0, 0.15, ts.size)
        if planted:
            values[inside] *= 1.69
        labels = {"job": "acme-shop", "instance": "127.0.0.1:8080", "quantile": quantile}
        samples += [
            Sample("response_time_ms", labels, int(t), float(v))
            for t, v in zip(ts, values, strict=True)
        ]
    cpu = np.clip(20 + rng.normal(0, 4, ts.size), 0, 100)
    if planted:
        cpu[inside] = np.clip(cpu[inside] * 3, 0, 100)
    samples += [
        Sample("cpu_percent", {"host": "h1"}, int(t), float(v))
        for t, v in zip(ts, cpu, strict=True)
    ]
    result = store.write_samples(samples, now_ms=int(ts[-1]))
    assert result.rejected == 0, result.errors
    return int(ts[-1]) + 1000, scans


def correlation_defaults() -> list[Rule]:
    return [r for r in default_rules() if r.kind == "scan_impact"]


def test_the_default_correlation_rules_are_on_and_valid() -> None:
    rules = {r.name: r for r in correlation_defaults()}
    assert set(rules) == {"ScansRaiseHostCpu", "ScansSlowLatency"}
    cpu, latency = rules["ScansRaiseHostCpu"], rules["ScansSlowLatency"]
    assert (cpu.metric, [m.name for m in cpu.matchers]) == ("cpu_percent", ["cpu"])
    # No matcher: every series of the latency metric, whichever target it came from.
    assert (latency.metric, latency.matchers) == ("response_time_ms", ())
    for rule in rules.values():
        assert set(rule.params) == set(KIND_PARAMS["scan_impact"])
        assert param_problems("scan_impact", rule.params, rule.window_ms, set()) == []
        assert rule.no_data == "ok"  # a machine without a latency series is fine
        assert rule.params["min_scans"] == 3


@pytest.mark.parametrize("planted", [False, True])
def test_default_correlation_rules_are_quiet_on_noise_and_fire_on_the_scans_effect(
    store: Store, planted: bool
) -> None:
    now, scans = demo_like(store, planted=planted, rng=np.random.default_rng(11))

    async def scenario(engine: AlertEngine) -> None:
        await complete_scans(engine, scans)
        await engine.evaluate()
        firing = {
            (a.rule, a.labels.get("quantile", "")) for a in engine.alerts([AlertState.FIRING])
        }
        if not planted:
            assert firing == set()
            return
        assert firing == {("ScansRaiseHostCpu", "")} | {("ScansSlowLatency", q) for q in QUANTILES}
        latency = [a for a in engine.alerts([AlertState.FIRING]) if a.rule == "ScansSlowLatency"]
        for alert in latency:
            assert alert.value is not None and 50 < alert.value < 90
            assert float(alert.annotations["q_value"]) < 0.01
            assert "% higher during scans" in alert.annotations["summary"]

    run(store, correlation_defaults(), now, scenario)


def waiting_rule() -> Rule:
    return rule_from_dict(
        {
            "name": "ScansSlowOrders",
            "kind": "scan_impact",
            "metric": "response_time_ms",
            "min_scans": 3,
            "no_data": "nodata",
        }
    )


def test_too_few_scans_is_said_once_per_rule_and_series(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    now, scans = demo_like(store, planted=True, rng=np.random.default_rng(3))

    async def scenario(engine: AlertEngine) -> None:
        await complete_scans(engine, scans[:1])  # evaluates the rule once
        for _ in range(3):
            await engine.evaluate()
        told = [r.getMessage() for r in caplog.records if "not enough data yet" in r.getMessage()]
        assert sorted(told) == [
            "alert rule ScansSlowOrders: not enough data yet (1 of 3 scans, series "
            f"response_time_ms{{instance=127.0.0.1:8080,job=acme-shop,quantile={q}}})"
            for q in QUANTILES
        ]
        (nodata,) = engine.alerts([AlertState.NODATA])
        assert nodata.annotations["summary"] == (
            "ScansSlowOrders: not enough data yet (1 of 3 scans, series "
            "response_time_ms{instance=127.0.0.1:8080,job=acme-shop,quantile=0.5}) "
            "(and 2 more series)"
        )

    with caplog.at_level(logging.INFO, logger="secperf.alerts.engine"):
        run(store, [waiting_rule()], now, scenario)


def test_too_few_samples_names_the_count_and_the_series(store: Store) -> None:
    labels = {"job": "api", "quantile": "0.95"}
    # One sample a minute: the 3 scans of 5 s hold no sample at all.
    points = [Sample("response_time_ms", labels, T0 + i * 60_000, 10.0 + i % 3) for i in range(30)]
    store.write_samples(points, now_ms=T0 + 30 * 60_000)
    scans = [(T0 + i * 600_000 + 1_000, T0 + i * 600_000 + 6_000) for i in range(3)]

    async def scenario(engine: AlertEngine) -> None:
        await complete_scans(engine, scans)
        await engine.evaluate()
        (nodata,) = engine.alerts([AlertState.NODATA])
        assert nodata.annotations["summary"] == (
            "ScansSlowOrders: not enough data yet (0 of 10 samples, series "
            "response_time_ms{job=api,quantile=0.95})"
        )

    run(store, [waiting_rule()], T0 + 30 * 60_000, scenario)
