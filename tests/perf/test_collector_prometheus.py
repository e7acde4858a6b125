"""Scraping real Prometheus targets; every failure becomes up=0 with its error."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

import pytest

from secperf.events import local_host, now_ms
from secperf.model import Sample, sample_problem
from secperf.perf.collectors.prometheus import PrometheusCollector, ScrapeTarget
from support.exporters import exposition_server, node_exporter, silent_server
from support.services import free_port

__all__ = ["exposition_server", "node_exporter", "silent_server"]  # fixtures used below


def _one(samples: Iterable[Sample], name: str, **labels: str) -> Sample:
    found = [s for s in samples if s.name == name and labels.items() <= s.labels.items()]
    assert len(found) == 1, (name, labels, found)
    return found[0]


def test_node_exporter_scrape(node_exporter: str) -> None:
    target = ScrapeTarget(node_exporter, job="node", labels={"env": "test"})
    collector = PrometheusCollector([target], timeout_s=10)
    samples = collector.collect(now_ms())
    instance = node_exporter.split("/")[2]
    assert _one(samples, "up").value == 1.0
    assert _one(samples, "scrape_duration_seconds").value > 0
    assert collector.status[node_exporter].up
    assert collector.status[node_exporter].last_error is None
    assert collector.last_error is None
    assert len(samples) > 200
    names = {s.name for s in samples}
    # Counters keep their _total name; the Go runtime's summary its _sum/_count/quantiles.
    assert "node_cpu_seconds_total" in names
    assert "node_memory_MemTotal_bytes" in names
    assert {"go_gc_duration_seconds", "go_gc_duration_seconds_count"} <= names
    cpu = [s for s in samples if s.name == "node_cpu_seconds_total"]
    assert {"cpu", "mode"} <= cpu[0].labels.keys()
    checked = now_ms()
    for sample in samples:
        assert sample.labels["job"] == "node"
        assert sample.labels["instance"] == instance
        assert sample.labels["env"] == "test"
        assert sample.labels["host"] == local_host()
        assert sample_problem(sample, checked) is None


def test_histogram_summary_and_counter_by_sample_name(exposition_server: str) -> None:
    collector = PrometheusCollector([f"{exposition_server}/ok"])
    samples = collector.collect(now_ms())
    assert _one(samples, "app_requests_total", method="GET").value == 7
    assert _one(samples, "app_latency_seconds_bucket", le="0.1").value == 1
    assert _one(samples, "app_latency_seconds_bucket", le="1.0").value == 2
    assert _one(samples, "app_latency_seconds_bucket", le="+Inf").value == 2
    assert _one(samples, "app_latency_seconds_count").value == 2
    assert _one(samples, "app_latency_seconds_sum").value == pytest.approx(0.55)
    assert _one(samples, "app_size_bytes_sum").value == 100
    assert _one(samples, "app_size_bytes_count").value == 1
    assert _one(samples, "up").value == 1.0


def test_exposed_job_and_instance_are_kept_as_exported(exposition_server: str) -> None:
    collector = PrometheusCollector([ScrapeTarget(f"{exposition_server}/labels", job="mine")])
    sample = _one(collector.collect(now_ms()), "clash")
    assert sample.labels["job"] == "mine"
    assert sample.labels["exported_job"] == "theirs"
    assert sample.labels["exported_instance"] == "x"
    assert sample.labels["zone"] == "a"


def _failed(collector: PrometheusCollector, url: str, caplog: pytest.LogCaptureFixture) -> str:
    with caplog.at_level(logging.WARNING, logger="secperf.perf.collectors.prometheus"):
        samples = collector.collect(now_ms())
    assert {s.name for s in samples} == {"up", "scrape_duration_seconds"}
    assert _one(samples, "up").value == 0.0
    status = collector.status[url]
    assert not status.up
    assert status.failures == 1
    assert status.last_error
    assert collector.last_error == status.last_error
    assert status.last_error in caplog.text
    return status.last_error


def test_refused_port_is_up_0(caplog: pytest.LogCaptureFixture) -> None:
    url = f"http://127.0.0.1:{free_port()}/metrics"
    error = _failed(PrometheusCollector([url], timeout_s=2), url, caplog)
    assert "cannot connect" in error
    assert "refused" in error.lower()


def test_silent_target_times_out(silent_server: str, caplog: pytest.LogCaptureFixture) -> None:
    collector = PrometheusCollector([silent_server], timeout_s=0.3)
    error = _failed(collector, silent_server, caplog)
    assert "timed out after 0.3 s" in error


def test_http_500_is_up_0(exposition_server: str, caplog: pytest.LogCaptureFixture) -> None:
    url = f"{exposition_server}/500"
    assert _failed(PrometheusCollector([url]), url, caplog) == "HTTP 500 Internal Server Error"


@pytest.mark.parametrize("path", ["/garbage", "/html"])
def test_garbage_body_is_up_0(
    exposition_server: str, caplog: pytest.LogCaptureFixture, path: str
) -> None:
    url = f"{exposition_server}{path}"
    error = _failed(PrometheusCollector([url]), url, caplog)
    assert "cannot parse the body as Prometheus text format" in error


def test_oversized_body_is_up_0(exposition_server: str, caplog: pytest.LogCaptureFixture) -> None:
    url = f"{exposition_server}/big"
    error = _failed(PrometheusCollector([url], max_bytes=100_000), url, caplog)
    assert "exceeds 100000 bytes" in error


def test_sample_limit_is_up_0(exposition_server: str, caplog: pytest.LogCaptureFixture) -> None:
    url = f"{exposition_server}/many"
    error = _failed(PrometheusCollector([url], sample_limit=100), url, caplog)
    assert "sample_limit" in error


def test_a_failing_target_does_not_stop_the_others(
    exposition_server: str, silent_server: str
) -> None:
    good = ScrapeTarget(f"{exposition_server}/ok", job="good")
    bad = ScrapeTarget(f"{exposition_server}/500", job="bad")
    silent = ScrapeTarget(silent_server, job="silent")
    collector = PrometheusCollector([good, bad, silent], timeout_s=0.3)
    try:
        samples = collector.collect(now_ms())
        ups = {s.labels["job"]: s.value for s in samples if s.name == "up"}
        assert ups == {"good": 1.0, "bad": 0.0, "silent": 0.0}
        assert collector.status[good.url].up
        assert collector.status[bad.url].last_error == "HTTP 500 Internal Server Error"
        assert "timed out" in (collector.status[silent.url].last_error or "")
        assert any(s.name == "app_requests_total" for s in samples)
        # The collector keeps going: the next collection scrapes all three again.
        again = collector.collect(now_ms())
        assert sorted(s.labels["job"] for s in again if s.name == "up") == ["bad", "good", "silent"]
        assert collector.status[bad.url].failures == 2
    finally:
        collector.close()


def test_target_timestamps_are_honoured_or_not(exposition_server: str) -> None:
    url = f"{exposition_server}/stamped"
    stamp = now_ms() - 5000
    honoured = PrometheusCollector([url]).collect(stamp)
    assert _one(honoured, "stamped").timestamp_ms == 1_700_000_000_123
    assert _one(honoured, "plain").timestamp_ms == stamp
    ignored = PrometheusCollector([url], honor_timestamps=False).collect(stamp)
    assert _one(ignored, "stamped").timestamp_ms == stamp


def test_bad_targets_are_refused_with_the_reason() -> None:
    with pytest.raises(ValueError, match="http:// or https://"):
        ScrapeTarget("file:///etc/passwd")
    with pytest.raises(ValueError, match="label name"):
        ScrapeTarget("http://127.0.0.1:1/metrics", labels={"bad-name": "x"})
    with pytest.raises(ValueError, match="repeat"):
        PrometheusCollector(["http://a:1/m", "http://a:1/m"])
    with pytest.raises(ValueError, match="timeout_s"):
        PrometheusCollector(["http://a:1/m"], timeout_s=0)


def test_instance_gets_the_default_port() -> None:
    assert ScrapeTarget("http://example.test/metrics").instance == "example.test:80"
    assert ScrapeTarget("https://example.test/metrics").instance == "example.test:443"
    assert ScrapeTarget("http://127.0.0.1:9100/metrics").instance == "127.0.0.1:9100"


def test_scrape_keeps_working_across_intervals(node_exporter: str) -> None:
    collector = PrometheusCollector([node_exporter])
    first = collector.collect(now_ms())
    time.sleep(0.05)
    second = collector.collect(now_ms())
    assert _one(first, "up").value == _one(second, "up").value == 1.0
    assert collector.status[node_exporter].last_samples > 200
