"""The Prometheus text exposition of everything secperf holds."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from secperf.bus import AsyncEventBus
from secperf.events import MetricsRecorded
from secperf.model import Sample, SecurityMetrics
from secperf.store import Store, StoreWriter
from secperf.web.exposition import build_registry, render


def _now() -> int:
    return time.time_ns() // 1_000_000


def _metrics(scan_id: str, target: str, finished: int, **counts: int) -> SecurityMetrics:
    return SecurityMetrics(
        scan_id=scan_id,
        target=target,
        started_ms=finished - 500,
        finished_ms=finished,
        scan_duration_ms=500.0,
        violations_found=sum(counts.values()),
        false_positive_rate=0.25,
        vulnerability_severity_counts=dict(counts),
        scan_coverage_percent=90.0,
        eligible_files=10,
        new_findings=1,
    )


def _samples(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    return out


def test_stored_series_and_security_metrics_are_exported(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "s.db")
    now = _now()
    store.write_samples(
        [
            Sample("cpu_percent", {"host": "a"}, now - 2000, 10.0),
            Sample("cpu_percent", {"host": "a"}, now - 1000, 42.5),
            Sample("cpu_percent", {"host": "b", "cpu": "0"}, now - 1000, 7.0),
            Sample("app_requests", {"route": 'say "hi"\n'}, now, 3.0),
        ]
    )
    # An older scan of the same target must not win over the newest.
    store.record_scan_completed(_metrics("old", "repo", now - 60_000, high=9), "ok")
    store.record_scan_completed(_metrics("new", "repo", now - 1_000, high=2, critical=1), "ok")
    store.record_scan_completed(_metrics("other", "lib", now - 5_000, low=4), "ok")

    samples = _samples(render(build_registry(store, process_metrics=False)).decode())

    assert sorted(samples["cpu_percent"], key=lambda s: s[0]["host"]) == [
        ({"host": "a"}, 42.5),
        ({"host": "b", "cpu": "0"}, 7.0),
    ]
    assert samples["app_requests"] == [({"route": 'say "hi"\n'}, 3.0)]
    violations = {
        (labels["target"], labels["severity"]): value
        for labels, value in samples["security_violations"]
    }
    assert violations[("repo", "high")] == 2.0
    assert violations[("repo", "critical")] == 1.0
    assert violations[("repo", "info")] == 0.0
    assert violations[("lib", "low")] == 4.0
    by_target = {labels["target"]: value for labels, value in samples["vulnerability_count"]}
    assert by_target == {"repo": 3.0, "lib": 4.0}
    assert ({"target": "repo"}, 500.0) in samples["security_scan_time"]
    assert ({"target": "repo"}, 0.25) in samples["security_false_positives"]
    assert ({"target": "repo"}, 90.0) in samples["security_scan_coverage"]
    assert ({"target": "repo"}, 1.0) in samples["security_new_findings"]
    store.close()


def test_names_secperf_computes_are_never_exported_twice(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "s.db")
    now = _now()
    store.write_samples(
        [
            # Same names as computed families: Prometheus rejects a page naming one twice.
            Sample("security_violations", {"severity": "high"}, now, 99.0),
            Sample("process_cpu_seconds_total", {"job": "x"}, now, 5.0),
            Sample("secperf_bus_events_published_total", {}, now, 1.0),
            Sample("plain", {"__reserved": "x", "ok": "y"}, now, 1.0),
        ]
    )
    store.record_scan_completed(_metrics("s", "repo", now, high=1), "ok")
    bus = AsyncEventBus()
    text = render(build_registry(store, bus)).decode()
    type_lines = [line.split()[2] for line in text.splitlines() if line.startswith("# TYPE")]
    assert len(type_lines) == len(set(type_lines)), "a family is declared twice"
    samples = _samples(text)
    assert all(value != 99.0 for _, value in samples["security_violations"])
    assert samples["plain"] == [({"ok": "y"}, 1.0)]
    assert "process_cpu_seconds_total" in samples  # this process's own
    assert samples["secperf_bus_events_published_total"] == [({}, 0.0)]
    store.close()


def test_bus_and_writer_counters_follow_real_traffic(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "s.db")

    async def scenario() -> str:
        bus = AsyncEventBus()
        writer = StoreWriter(store, flush_interval_s=0.05)
        await writer.attach(bus)
        now = _now()
        for i in range(3):
            await bus.publish(
                MetricsRecorded(samples=(Sample("app_rps", {"i": str(i)}, now, float(i)),))
            )
        await writer.close()
        text = render(build_registry(store, bus, writer, stream_clients=lambda: 2)).decode()
        await bus.close()
        return text

    samples = _samples(asyncio.run(scenario()))
    assert samples["secperf_bus_events_published_total"] == [({}, 3.0)]
    assert samples["secperf_bus_events_dropped_total"] == [({}, 0.0)]
    assert samples["secperf_writer_samples_written_total"] == [({}, 3.0)]
    assert samples["secperf_stream_clients"] == [({}, 2.0)]
    assert sorted(v for _, v in samples["app_rps"]) == [0.0, 1.0, 2.0]
    store.close()


def test_an_empty_store_still_renders_a_valid_page(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "s.db")
    text = render(build_registry(store, process_metrics=False)).decode()
    families = {f.name for f in text_string_to_metric_families(text)}
    assert {"security_violations", "secperf_alerts"} <= families
    store.close()
