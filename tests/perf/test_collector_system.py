"""The system collector on this machine: sane values, rates from the second collection."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable

import psutil
import pytest

from secperf.events import local_host, now_ms
from secperf.model import MetricType, Sample, sample_problem
from secperf.perf.collectors.system import SystemCollector


def _by_name(samples: Iterable[Sample]) -> defaultdict[str, list[Sample]]:
    grouped: defaultdict[str, list[Sample]] = defaultdict(list)
    for sample in samples:
        grouped[sample.name].append(sample)
    return grouped


def _collect_twice(collector: SystemCollector) -> tuple[list[Sample], list[Sample]]:
    first = collector.collect(now_ms())
    # Make some disk and CPU activity between the two readings.
    end = time.monotonic() + 0.2
    while time.monotonic() < end:
        sum(range(1000))
    second = collector.collect(now_ms())
    return first, second


def test_first_collection_has_levels_but_no_rates_or_cpu() -> None:
    collector = SystemCollector()
    first = _by_name(collector.collect(now_ms()))
    assert 0 <= first["memory_percent"][0].value <= 100
    assert first["memory_total_bytes"][0].value == psutil.virtual_memory().total
    assert "load_1m" in first
    for primed in ("cpu_percent", "disk_read_bytes", "net_sent_bytes"):
        assert primed not in first


def test_second_collection_has_sane_values_for_every_metric() -> None:
    collector = SystemCollector(per_cpu=True)
    _first, second = _collect_twice(collector)
    got = _by_name(second)
    checked_at = now_ms()
    for sample in second:
        assert sample_problem(sample, checked_at) is None
        assert sample.labels["host"] == local_host()
    totals = [s for s in got["cpu_percent"] if "cpu" not in s.labels]
    cores = [s for s in got["cpu_percent"] if "cpu" in s.labels]
    assert len(totals) == 1
    assert 0 <= totals[0].value <= 100
    cpu_count = psutil.cpu_count()
    assert cpu_count is not None
    assert sorted(int(s.labels["cpu"]) for s in cores) == list(range(cpu_count))
    assert all(0 <= s.value <= 100 for s in cores)
    assert got["load_1m"][0].value >= 0
    assert got["load_5m"][0].value >= 0
    assert got["load_15m"][0].value >= 0
    mem = got["memory_used_bytes"][0].value
    assert 0 < mem <= got["memory_total_bytes"][0].value
    assert 0 <= got["swap_percent"][0].value <= 100
    if psutil.disk_io_counters() is not None:
        for name in ("disk_read_bytes", "disk_write_bytes", "disk_read_ops", "disk_write_ops"):
            assert got[name][0].value >= 0, name
    for name in ("net_sent_bytes", "net_recv_bytes"):
        assert len(got[name]) == 1
        assert got[name][0].value >= 0


def test_known_metrics_use_the_enum_names() -> None:
    collector = SystemCollector()
    _first, second = _collect_twice(collector)
    names = {s.name for s in second}
    for metric in (
        MetricType.CPU_PERCENT,
        MetricType.MEMORY_PERCENT,
        MetricType.SWAP_PERCENT,
        MetricType.LOAD_1M,
        MetricType.NET_SENT_BYTES,
        MetricType.NET_RECV_BYTES,
    ):
        assert metric.value in names


def test_per_cpu_can_be_switched_off() -> None:
    collector = SystemCollector(per_cpu=False)
    _first, second = _collect_twice(collector)
    cpu = [s for s in second if s.name == "cpu_percent"]
    assert len(cpu) == 1
    assert "cpu" not in cpu[0].labels


def test_network_traffic_shows_in_per_interface_rates() -> None:
    collector = SystemCollector(per_nic=True, exclude_nics=r"^$")
    collector.collect(now_ms())
    time.sleep(0.05)
    second = collector.collect(now_ms())
    per_nic = {s.labels["interface"] for s in second if "interface" in s.labels}
    expected = {n for n in psutil.net_io_counters(pernic=True) if n not in collector._loopback}
    assert per_nic == expected
    # Loopback never enters the totals or the per-interface series.
    assert "lo" not in per_nic


def test_custom_host_label() -> None:
    collector = SystemCollector(host="edge-1")
    assert {s.labels["host"] for s in collector.collect(now_ms())} == {"edge-1"}


def test_bad_configuration_is_refused_with_the_reason() -> None:
    with pytest.raises(ValueError, match="interval_s"):
        SystemCollector(interval_s=0)
    with pytest.raises(ValueError, match="exclude_nics"):
        SystemCollector(exclude_nics="(")


def test_two_collectors_do_not_disturb_each_other() -> None:
    a, b = SystemCollector(per_cpu=False), SystemCollector(per_cpu=False)
    a.collect(now_ms())
    b.collect(now_ms())
    psutil.cpu_percent(interval=None)  # another caller of psutil's module-wide state
    time.sleep(0.1)
    for collector in (a, b):
        cpu = [s for s in collector.collect(now_ms()) if s.name == "cpu_percent"]
        assert len(cpu) == 1
        assert 0 <= cpu[0].value <= 100
