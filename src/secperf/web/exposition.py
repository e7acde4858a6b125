"""Everything secperf holds, in the Prometheus text format (served at ``/metrics``).

Three parts, built fresh on every scrape by one custom collector:

* the latest value of every stored series, as a gauge with its labels (no
  timestamp: Prometheus stamps it at scrape time, as for any gauge);
* security metrics of the newest finished scan of each target:
  ``security_violations{target,severity}``, ``vulnerability_count{target}``,
  ``security_new_findings{target}``, ``security_scan_time{target}`` (ms, as
  ``MetricType.SECURITY_SCAN_TIME``), ``security_false_positives{target}``
  (ratio), ``security_scan_coverage{target}`` (percent),
  ``security_scan_finished_timestamp_seconds{target}``, and alerts by state;
* secperf's own counters: bus events published / delivered / dropped / failed,
  per-subscriber queue depth, store-writer samples written / rejected, live
  stream clients, API requests shed by reason, at work and waiting, alert
  evaluations, each SIEM output's queue, deliveries, failures and drops
  (``secperf_siem_*``), plus the standard ``process_*`` metrics of this process.

A stored series whose name equals one of secperf's own families is left out:
the computed family is the authority for that name.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from secperf.bus.interface import EventBus
from secperf.model import METRIC_NAME_RE, AlertState, Severity
from secperf.store import ScanRecord, Store, StoreWriter
from secperf.store.follower import FollowerStats

if TYPE_CHECKING:
    from secperf.siem.forwarder import SiemOutputStats

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

#: Families secperf computes itself; stored series of these names are not exported.
OWN_FAMILIES = frozenset(
    {
        "security_violations",
        "vulnerability_count",
        "security_new_findings",
        "security_scan_time",
        "security_false_positives",
        "security_scan_coverage",
        "security_scan_finished_timestamp_seconds",
        "secperf_alerts",
    }
)
# Prometheus reserves label names starting with "__".
_RESERVED_LABEL_PREFIX = "__"
# How many recent scans are read to find each target's newest finished one.
_SCANS_READ = 200


def _newest_finished_per_target(store: Store) -> list[ScanRecord]:
    newest: dict[str, ScanRecord] = {}
    for record in store.scans(limit=_SCANS_READ):
        # By status: an interrupted or abandoned scan has an end but saw part of the code.
        if record.metrics is None or not record.complete:
            continue
        if record.target not in newest:
            newest[record.target] = record
    return list(newest.values())


class SecperfCollector(Collector):
    """A prometheus-client collector over the store, the bus and the writer."""

    def __init__(
        self,
        store: Store,
        bus: EventBus | None = None,
        writer: StoreWriter | None = None,
        stream_clients: Callable[[], int] | None = None,
        reserved: Iterable[str] = (),
        *,
        shed_counts: Callable[[], Mapping[str, int]] | None = None,
        admission: Callable[[], tuple[int, int]] | None = None,
        alert_evaluations: Callable[[], int] | None = None,
        follower: Callable[[], FollowerStats] | None = None,
        siem: Callable[[], Sequence[SiemOutputStats]] | None = None,
    ) -> None:
        self.follower = follower
        self.siem = siem
        self.store = store
        self.bus = bus
        self.writer = writer
        self.stream_clients = stream_clients
        self.reserved = frozenset(reserved)
        self.shed_counts = shed_counts
        self.admission = admission
        self.alert_evaluations = alert_evaluations

    def collect(self) -> Iterator[Metric]:
        """One scrape's metric families."""
        own = [*self._security(), *self._alerts(), *self._own()]
        # A name exported twice makes Prometheus reject the whole scrape.
        taken = set(self.reserved) | OWN_FAMILIES
        for family in own:
            taken.add(family.name)
            taken.update(sample.name for sample in family.samples)
        yield from self._stored_series(taken)
        yield from own

    # ------------------------------------------------------------------ stored series

    def _stored_series(self, taken: set[str]) -> Iterator[Metric]:
        for name in self.store.list_metric_names():
            if name in taken or not METRIC_NAME_RE.match(name):
                continue
            latest = self.store.latest(name)
            if not latest:
                continue
            family = Metric(name, f"latest stored value of {name}", "gauge")
            seen: set[tuple[tuple[str, str], ...]] = set()
            for sample in latest:
                labels = {
                    k: v
                    for k, v in sample.labels.items()
                    if not k.startswith(_RESERVED_LABEL_PREFIX)
                }
                key = tuple(sorted(labels.items()))
                if key in seen:  # two series that differ only in reserved labels
                    continue
                seen.add(key)
                family.add_sample(name, labels, sample.value)
            yield family

    # ------------------------------------------------------------------ security

    def _security(self) -> Iterator[Metric]:
        scans = _newest_finished_per_target(self.store)
        violations = GaugeMetricFamily(
            "security_violations",
            "Findings of the newest finished scan, by severity.",
            labels=["target", "severity"],
        )
        total = GaugeMetricFamily(
            "vulnerability_count",
            "All findings of the newest finished scan.",
            labels=["target"],
        )
        new = GaugeMetricFamily(
            "security_new_findings",
            "Findings of the newest scan that the baseline did not hold.",
            labels=["target"],
        )
        duration = GaugeMetricFamily(
            "security_scan_time",
            "Duration of the newest finished scan, in milliseconds.",
            labels=["target"],
        )
        fp_rate = GaugeMetricFamily(
            "security_false_positives",
            "False-positive rate of the newest scan (ratio of triaged false positives).",
            labels=["target"],
        )
        coverage = GaugeMetricFamily(
            "security_scan_coverage",
            "Percent of eligible files the newest scan really scanned.",
            labels=["target"],
        )
        finished = GaugeMetricFamily(
            "security_scan_finished_timestamp_seconds",
            "When the newest scan finished (Unix seconds).",
            labels=["target"],
        )
        for record in scans:
            metrics = record.metrics
            assert metrics is not None
            target = record.target
            counts = metrics.vulnerability_severity_counts
            for sev in Severity:
                violations.add_metric([target, sev.value], float(counts.get(sev.value, 0)))
            total.add_metric([target], float(metrics.violations_found))
            new.add_metric([target], float(metrics.new_findings))
            fp_rate.add_metric([target], float(metrics.false_positive_rate))
            # Imported logs know nothing of coverage or scan time: leave them out, not 0.
            if not record.is_import:
                duration.add_metric([target], float(metrics.scan_duration_ms))
                coverage.add_metric([target], float(metrics.scan_coverage_percent))
            finished.add_metric([target], metrics.finished_ms / 1000.0)
        yield from (violations, total, new, duration, fp_rate, coverage, finished)

    def _alerts(self) -> Iterator[Metric]:
        counts: dict[tuple[str, str, str], int] = {}
        for alert in self.store.alerts():
            key = (AlertState(alert.state).value, Severity(alert.severity).value, str(alert.kind))
            counts[key] = counts.get(key, 0) + 1
        family = GaugeMetricFamily(
            "secperf_alerts",
            "Alerts known to secperf by state, severity and kind.",
            labels=["state", "severity", "kind"],
        )
        for (state, severity, kind), count in sorted(counts.items()):
            family.add_metric([state, severity, kind], float(count))
        yield family

    # ------------------------------------------------------------------ secperf itself

    def _own(self) -> Iterator[Metric]:
        if self.bus is not None:
            stats = self.bus.stats()
            for what, value, text in (
                ("published", stats.published, "Events published on the bus."),
                ("delivered", stats.delivered, "Events delivered to subscribers."),
                ("dropped", stats.dropped, "Events dropped under overload (metric batches)."),
                ("failed", stats.failed, "Events whose handler raised."),
            ):
                yield CounterMetricFamily(f"secperf_bus_events_{what}", text, value=value)
            depth = GaugeMetricFamily(
                "secperf_bus_queue_depth",
                "Events waiting in each subscriber's queue.",
                labels=["subscriber"],
            )
            for sub in stats.subscribers:
                depth.add_metric([sub.name], float(sub.queue_depth))
            yield depth
        if self.writer is not None:
            ws = self.writer.stats()
            yield CounterMetricFamily(
                "secperf_writer_samples_written",
                "Samples the store writer committed.",
                value=ws.samples_written,
            )
            yield CounterMetricFamily(
                "secperf_writer_samples_rejected",
                "Invalid samples the store writer refused.",
                value=ws.samples_rejected,
            )
            yield CounterMetricFamily(
                "secperf_writer_events_written",
                "Non-metric events the store writer recorded.",
                value=ws.events_written,
            )
            yield GaugeMetricFamily(
                "secperf_writer_buffered_samples",
                "Samples waiting for the store writer's next flush.",
                value=ws.buffered,
            )
            # A failing store: writes retried, then reported and kept, and what was lost.
            yield CounterMetricFamily(
                "secperf_writer_write_failures",
                "Store writes that failed every attempt (reported, kept or lost).",
                value=ws.write_failures,
            )
            lost = CounterMetricFamily(
                "secperf_writer_lost",
                "Samples and events the store writer could never write.",
                labels=["kind"],
            )
            lost.add_metric(["samples"], float(ws.samples_failed))
            lost.add_metric(["events"], float(ws.events_failed))
            yield lost
            yield GaugeMetricFamily(
                "secperf_writer_kept_events",
                "Events waiting for the store writer's next attempt after a failed write.",
                value=ws.kept_events,
            )
        if self.follower is not None:
            yield from _follower_families(self.follower())
        if self.siem is not None:
            yield from _siem_families(self.siem())
        if self.stream_clients is not None:
            yield GaugeMetricFamily(
                "secperf_stream_clients",
                "Open live-stream (SSE) connections.",
                value=self.stream_clients(),
            )
        yield from self._server()

    def _server(self) -> Iterator[Metric]:
        """Load shedding and the alert engine's pulse (read from memory, no store access)."""
        if self.shed_counts is not None:
            shed = CounterMetricFamily(
                "secperf_http_requests_shed",
                "API requests answered 503 with Retry-After because the server could not "
                "take them, by reason.",
                labels=["reason"],
            )
            for reason, count in sorted(self.shed_counts().items()):
                shed.add_metric([reason], float(count))
            yield shed
        if self.admission is not None:
            active, waiting = self.admission()
            yield GaugeMetricFamily(
                "secperf_http_requests_active",
                "API requests at work now (bounded by the admission limit).",
                value=active,
            )
            yield GaugeMetricFamily(
                "secperf_http_requests_waiting",
                "API requests waiting for an admission slot now.",
                value=waiting,
            )
        if self.alert_evaluations is not None:
            yield CounterMetricFamily(
                "secperf_alert_evaluations",
                "Evaluation ticks the alert engine has completed.",
                value=self.alert_evaluations(),
            )


def _follower_families(fs: FollowerStats) -> Iterator[Metric]:
    """The event log follower: what it republished, skipped, missed, and how far behind."""
    yield CounterMetricFamily(
        "secperf_event_log_followed",
        "Event log entries other processes wrote, republished onto this server's bus.",
        value=fs.followed,
    )
    skipped = CounterMetricFamily(
        "secperf_event_log_skipped",
        "Event log entries not republished, by reason (own: this server's own events;"
        " undecodable: a damaged entry or a newer secperf's event).",
        labels=["reason"],
    )
    skipped.add_metric(["own"], float(fs.own))
    skipped.add_metric(["undecodable"], float(fs.undecodable))
    yield skipped
    yield CounterMetricFamily(
        "secperf_event_log_missed",
        "Event log entries pruned by retention before this server read them.",
        value=fs.missed,
    )
    yield GaugeMetricFamily(
        "secperf_event_log_lag",
        "Event log entries written but not yet read by this server, at its last read.",
        value=fs.lag,
    )


def _siem_families(outputs: Sequence[SiemOutputStats]) -> Iterator[Metric]:
    """SIEM outputs: what waits in each queue, what was sent, failed and dropped."""
    labels = ["output"]
    queued = GaugeMetricFamily(
        "secperf_siem_queue_depth", "Events waiting in the output's on-disk queue.", labels=labels
    )
    queued_bytes = GaugeMetricFamily(
        "secperf_siem_queue_bytes", "Bytes of the events waiting in the queue.", labels=labels
    )
    sent = CounterMetricFamily(
        "secperf_siem_sent", "Events the receiver confirmed (by this process).", labels=labels
    )
    failed = CounterMetricFamily(
        "secperf_siem_failed",
        "Failed attempts to connect or send (each is retried after a pause).",
        labels=labels,
    )
    dropped = CounterMetricFamily(
        "secperf_siem_dropped",
        "Events dropped, the oldest first, because the queue was full.",
        labels=labels,
    )
    connected = GaugeMetricFamily(
        "secperf_siem_connected", "1 while a connection to the receiver is open.", labels=labels
    )
    last_error = GaugeMetricFamily(
        "secperf_siem_last_error_timestamp_seconds",
        "When the last attempt failed (Unix seconds; the text is in /api/v1/integrations).",
        labels=labels,
    )
    last_sent = GaugeMetricFamily(
        "secperf_siem_last_sent_timestamp_seconds",
        "When the receiver last confirmed events (Unix seconds).",
        labels=labels,
    )
    for output in outputs:
        name = [output.name]
        queued.add_metric(name, float(output.queued))
        queued_bytes.add_metric(name, float(output.queued_bytes))
        sent.add_metric(name, float(output.sent))
        failed.add_metric(name, float(output.failed))
        dropped.add_metric(name, float(output.dropped))
        connected.add_metric(name, 1.0 if output.connected else 0.0)
        if output.last_error_ms is not None:
            last_error.add_metric(name, output.last_error_ms / 1000.0)
        if output.last_sent_ms is not None:
            last_sent.add_metric(name, output.last_sent_ms / 1000.0)
    yield from (queued, queued_bytes, sent, failed, dropped, connected, last_error, last_sent)


def build_registry(
    store: Store,
    bus: EventBus | None = None,
    writer: StoreWriter | None = None,
    *,
    stream_clients: Callable[[], int] | None = None,
    process_metrics: bool = True,
    shed_counts: Callable[[], Mapping[str, int]] | None = None,
    admission: Callable[[], tuple[int, int]] | None = None,
    alert_evaluations: Callable[[], int] | None = None,
    follower: Callable[[], FollowerStats] | None = None,
    siem: Callable[[], Sequence[SiemOutputStats]] | None = None,
) -> CollectorRegistry:
    """A registry holding secperf's collector (and this process's own metrics)."""
    registry = CollectorRegistry(auto_describe=False)
    reserved: set[str] = set()
    if process_metrics:
        process = ProcessCollector(registry=registry)
        for family in process.collect():
            reserved.add(family.name)
            reserved.update(sample.name for sample in family.samples)
    registry.register(
        SecperfCollector(
            store,
            bus,
            writer,
            stream_clients,
            reserved,
            shed_counts=shed_counts,
            admission=admission,
            alert_evaluations=alert_evaluations,
            follower=follower,
            siem=siem,
        )
    )
    return registry


def render(registry: CollectorRegistry) -> bytes:
    """The text exposition of ``registry``."""
    return generate_latest(registry)
