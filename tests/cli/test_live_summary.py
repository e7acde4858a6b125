"""The live summary of monitor and up: built from a real SQLite store, drawn at 80 columns."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import pytest
from rich.console import Console

from secperf.alerts import AlertEngine, rule_from_dict
from secperf.bus.memory import AsyncEventBus
from secperf.cli.live_summary import BARS, render_live_summary
from secperf.commands.scanning import run_scan
from secperf.commands.summary import (
    LiveSummary,
    SummaryPoller,
    build_summary,
    summary_series,
)
from secperf.config import Config, LoadedConfig, load_config
from secperf.events import local_host, now_ms
from secperf.model import Alert, AlertState, MetricKind, Sample, Severity
from secperf.security.factory import ScanOptions
from secperf.store import Store, StoreWriter
from support.factories import make_scan_metrics

FAKE_AWS_KEY = "AKIAZZZZZZZZEXAMPLE7"


def draw(summary: LiveSummary, **options: str) -> list[str]:
    """The summary as an 80-column terminal would show it, without colour."""
    out = Console(file=io.StringIO(), width=80, color_system=None)
    out.print(render_live_summary(summary, title="monitor", **options))
    file = out.file
    assert isinstance(file, io.StringIO)
    return file.getvalue().splitlines()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    root.mkdir()
    (root / "run.py").write_text("import subprocess\nsubprocess.call('ls', shell=True)\n")
    (root / "settings.py").write_text(f'AWS_ACCESS_KEY_ID = "{FAKE_AWS_KEY}"\n')
    (root / "secperf.toml").write_text('[scan]\nscanners = ["bandit", "secrets"]\n')
    return root


def scan_cpu_and_alert(loaded: LoadedConfig, root: Path) -> list[Alert]:
    """A real scan, five minutes of host CPU and memory, and the alert engine's firing alerts."""
    report, _ = asyncio.run(run_scan(loaded, ScanOptions(root=root)))
    assert report.metrics.violations_found >= 2
    now = now_ms()
    host = {"host": local_host()}
    # CPU climbs from 10 % to 95 % over the last five minutes, one sample per 5 s.
    start = now - 300_000
    cpu = [Sample("cpu_percent", host, start + i * 5000, 10.0 + i * 85 / 59) for i in range(60)]
    memory = [Sample("memory_percent", host, start + i * 5000, 40.0) for i in range(60)]
    # Another core's series must not be taken for the host-wide one.
    core = [Sample("cpu_percent", {**host, "cpu": "0"}, s.timestamp_ms, 1.0) for s in cpu]
    with Store.open(loaded.config.store.url) as store:
        written = store.write_samples([*cpu, *memory, *core], now_ms=now)
        assert written.rejected == 0

    async def evaluate() -> list[Alert]:
        guard = rule_from_dict(
            {
                "name": "GuardCpuHigh",
                "metric": "cpu_percent",
                "matchers": ['cpu=""'],
                "aggregation": "max",
                "window": "1m",
                "threshold": 80.0,
                "severity": "high",
            }
        )
        with Store.open(loaded.config.store.url) as store:
            bus = AsyncEventBus()
            writer = StoreWriter(store, flush_interval_s=0.05)
            await writer.attach(bus)
            engine = AlertEngine.from_config(
                store, bus, loaded.config.alerts, extra_rules=[guard], min_firing_ms=0
            )
            await engine.start(run_loop=False)
            try:
                await engine.evaluate()
                return engine.alerts([AlertState.FIRING])
            finally:
                await engine.stop()
                await bus.close(drain=True)
                await writer.close()

    return asyncio.run(evaluate())


def test_summary_of_a_real_store_fits_80_columns(project: Path) -> None:
    loaded = load_config(None, project)
    firing = scan_cpu_and_alert(loaded, project)
    assert {"SecretFound", "GuardCpuHigh"} <= {a.rule for a in firing}

    with Store.open(loaded.config.store.url) as store:
        summary = build_summary(store, series=summary_series(loaded.config))
        scan = store.scans(limit=1)[0]
    assert scan.metrics is not None
    counts = scan.metrics.vulnerability_severity_counts

    # The firing alerts come from the store (another process's engine), both kinds.
    assert summary.firing_count(MetricKind.SECURITY) >= 1
    assert summary.firing_count(MetricKind.PERFORMANCE) == 1
    assert summary.firing[0].severity == "critical"  # most severe first
    cpu = summary.trends[0]
    assert cpu.label == "host CPU" and cpu.guard
    assert cpu.high is not None and cpu.high > 90 and cpu.last is not None and cpu.last > 90
    assert [t.label for t in summary.trends] == ["host CPU", "memory"]  # no scrape targets

    lines = draw(summary, status="12 s · 240 samples stored · 0 dropped")
    text = "\n".join(lines)
    assert all(len(line) <= 80 for line in lines), [x for x in lines if len(x) > 80]
    assert len(lines) <= 16, text
    assert "last scan" in text and "proj · ok" in text
    assert f"{scan.metrics.violations_found}: " in text
    for severity, count in counts.items():
        assert f"{severity} {count}" in text
    assert f"{len(summary.firing)} firing" in text
    assert "security," in text and "1 performance" in text
    assert "SecretFound" in text and "GuardCpuHigh" in text
    assert "240 samples stored" in text
    spark = next(line for line in lines if line.startswith("host CPU"))
    assert "guard" in spark
    # The climb is drawn: low bars early, the top bar at the end, on the 0-100 % scale.
    drawn = [c for c in spark if c in BARS]
    assert len(drawn) >= 30
    assert drawn[0] in BARS[:2] and drawn[-1] == BARS[-1]
    assert BARS.index(drawn[-1]) > BARS.index(drawn[len(drawn) // 2]) > BARS.index(drawn[0])
    memory = next(line for line in lines if line.startswith("memory"))
    assert "40.0 %" in memory


def test_the_engines_alerts_replace_the_stored_ones(project: Path) -> None:
    loaded = load_config(None, project)
    firing = scan_cpu_and_alert(loaded, project)
    guard = [a for a in firing if a.rule == "GuardCpuHigh"]
    with Store.open(loaded.config.store.url) as store:
        summary = build_summary(store, alerts=guard)
    assert [a.rule for a in summary.firing] == ["GuardCpuHigh"]
    assert summary.firing[0].kind == "performance"
    assert summary.firing[0].value is not None and summary.firing[0].value > 80
    text = "\n".join(draw(summary))
    assert "1 firing: 0 security, 1 performance" in text


def test_an_empty_store_says_so(tmp_path: Path) -> None:
    with Store.open(tmp_path / "empty.db") as store:
        summary = build_summary(store)
    text = "\n".join(draw(summary))
    assert "none yet" in text
    assert "none firing" in text
    assert text.count("no samples yet") == 2


def test_scrape_targets_add_the_latency_series(store_url: str) -> None:
    # On both engines: the scan, the alert and the series as the store holds them.
    config = Config.model_validate(
        {"monitor": {"prometheus": {"targets": [{"name": "app", "url": "http://127.0.0.1:1/m"}]}}}
    )
    now = now_ms()
    with Store.open(store_url) as store:
        store.write_samples(
            [
                Sample("response_time_ms", {"job": "app", "quantile": q}, now - 1000, v)
                for q, v in (("0.5", 20.0), ("0.95", 180.0), ("0.99", 400.0))
            ],
            now_ms=now,
        )
        store.record_scan_started("s1", "/srv/shop", now - 61_000, ["bandit"])
        store.record_scan_completed(make_scan_metrics("s1", now - 60_000, []), status="ok")
        store.upsert_alert(
            Alert(
                fingerprint="a" * 32,
                rule="OrdersSlow",
                state=AlertState.FIRING,
                severity=Severity.HIGH,
                kind=MetricKind.PERFORMANCE,
                labels={"job": "app"},
                value=180.0,
                fired_at_ms=now - 5000,
                updated_ms=now - 5000,
            )
        )
        summary = build_summary(store, at_ms=now, series=summary_series(config))
    latency = summary.trends[-1]
    assert latency.label == "latency p95" and latency.last == 180.0
    assert summary.last_scan is not None and summary.last_scan.findings == 0
    assert [(a.rule, a.subject) for a in summary.firing] == [("OrdersSlow", "job=app")]
    text = "\n".join(draw(summary))
    assert "latency p95" in text and "180 ms" in text
    assert "shop · ok · 1 min ago · took 2.0 s" in text
    assert "OrdersSlow = 180  job=app" in text


def test_the_poller_hands_on_summaries_until_stopped(tmp_path: Path) -> None:
    seen: list[LiveSummary] = []

    async def main() -> None:
        with Store.open(tmp_path / "s.db") as store:
            host = {"host": local_host()}
            store.write_samples([Sample("cpu_percent", host, now_ms() - 1000, 42.0)])
            poller = SummaryPoller(store, seen.append, refresh_s=0.05).start()
            deadline = asyncio.get_running_loop().time() + 10
            while len(seen) < 2 and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.01)
            await poller.stop()

    asyncio.run(main())
    assert len(seen) >= 2
    assert seen[-1].trends[0].last == 42.0
    with Store.open(tmp_path / "s.db") as store, pytest.raises(ValueError, match="refresh_s"):
        SummaryPoller(store, seen.append, refresh_s=0)


def test_a_store_that_cannot_be_read_is_logged_once_and_the_view_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "s.db"
    store = Store.open(path)
    store.close()
    for file in tmp_path.iterdir():  # the database and its journal, overwritten
        file.write_bytes(b"not a database " * 400)
    seen: list[LiveSummary] = []
    poller = SummaryPoller(store, seen.append)

    async def twice() -> list[LiveSummary | None]:
        return [await poller.refresh(), await poller.refresh()]

    with caplog.at_level("WARNING", logger="secperf.commands.summary"):
        assert asyncio.run(twice()) == [None, None]
    assert poller.failures == 2 and seen == []
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and "cannot read the store" in warnings[0]
    assert str(path) in warnings[0]
