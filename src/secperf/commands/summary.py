"""The live summary of ``secperf monitor`` and ``secperf up``: what the terminal shows.

``build_summary`` reads the process's own store (and, under ``up``, the alerts
its engine holds) into a ``LiveSummary``: the last scan, the firing alerts of
both kinds and the recent points of a few key series. ``SummaryPoller``
rebuilds it every second or so, off the event loop, and hands it to a
callback; the CLI draws it. Nothing here knows a terminal.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from secperf.config import Config
from secperf.events import local_host, now_ms
from secperf.model import Alert, AlertState, MetricKind, MetricType, Severity
from secperf.store import SeriesPoints, Store

__all__ = [
    "DEFAULT_WINDOW_MS",
    "SPARK_POINTS",
    "FiringAlert",
    "LiveSummary",
    "ScanSummary",
    "SeriesSpec",
    "SeriesTrend",
    "SummaryPoller",
    "build_summary",
    "summary_series",
]

log = logging.getLogger(__name__)

#: How far back the trends reach.
DEFAULT_WINDOW_MS = 5 * 60_000
#: Points per trend: one sparkline cell each, so the summary fits 80 columns.
SPARK_POINTS = 36


@dataclass(frozen=True, slots=True)
class SeriesSpec:
    """One series the summary draws: a metric, which of its series, how it is called."""

    label: str
    metric: str
    #: Only series labelled with nothing but ``host`` (the host-wide figure).
    host_only: bool = False
    #: Labels preferred when several series match (e.g. the 0.95 quantile).
    prefer: dict[str, str] = field(default_factory=dict)
    #: The guard series: the one a scan must not push too far (host CPU by default).
    guard: bool = False


#: Host CPU (the guard series) and memory; scraped latency joins when targets are configured.
HOST_SERIES = (
    SeriesSpec("host CPU", MetricType.CPU_PERCENT.value, host_only=True, guard=True),
    SeriesSpec("memory", MetricType.MEMORY_PERCENT.value, host_only=True),
)
LATENCY_SERIES = SeriesSpec(
    "latency p95", MetricType.RESPONSE_TIME_MS.value, prefer={"quantile": "0.95"}
)


def summary_series(config: Config) -> tuple[SeriesSpec, ...]:
    """The series the summary draws for this configuration."""
    scraping = config.monitor.prometheus
    if scraping.enabled and scraping.targets:
        return (*HOST_SERIES, LATENCY_SERIES)
    return HOST_SERIES


@dataclass(frozen=True, slots=True)
class ScanSummary:
    """The newest scan: what, how it ended, when, what it found."""

    target: str
    status: str
    started_ms: int
    finished_ms: int | None
    duration_ms: float | None
    findings: int | None
    #: (severity, count) from critical down, only severities with findings.
    by_severity: tuple[tuple[str, int], ...] = ()
    new: int | None = None
    files: int | None = None


@dataclass(frozen=True, slots=True)
class FiringAlert:
    """One firing alert as the summary lists it."""

    rule: str
    kind: str
    severity: str
    value: float | None
    #: The label that says what fired (host, path, job ...), or "".
    subject: str
    fired_at_ms: int | None


@dataclass(frozen=True, slots=True)
class SeriesTrend:
    """The recent points of one series, one per sparkline cell (None: no sample there)."""

    label: str
    metric: str
    unit: str
    points: tuple[float | None, ...]
    last: float | None
    high: float | None
    guard: bool = False


@dataclass(frozen=True, slots=True)
class LiveSummary:
    """Everything the live summary shows at one moment."""

    now_ms: int
    window_ms: int
    last_scan: ScanSummary | None
    #: Every firing alert, most severe first.
    firing: tuple[FiringAlert, ...]
    trends: tuple[SeriesTrend, ...]
    #: When the next periodic scan starts and why (``[scan] every``), if any.
    next_scan: str | None = None

    def firing_count(self, kind: str) -> int:
        """How many firing alerts are of ``kind`` (a ``MetricKind``: security or performance)."""
        return sum(1 for a in self.firing if a.kind == kind)


# --------------------------------------------------------------------------- building


def _scan_summary(store: Store) -> ScanSummary | None:
    newest = store.scans(limit=1)
    if not newest:
        return None
    record = newest[0]
    m = record.metrics
    if m is None:
        duration = None
        if record.finished_ms is not None:
            duration = float(record.finished_ms - record.started_ms)
        return ScanSummary(
            record.target, record.status, record.started_ms, record.finished_ms, duration, None
        )
    by_severity = tuple(
        (sev.value, m.vulnerability_severity_counts[sev.value])
        for sev in sorted(Severity, reverse=True)
        if m.vulnerability_severity_counts.get(sev.value)
    )
    return ScanSummary(
        target=record.target,
        status=record.status,
        started_ms=record.started_ms,
        finished_ms=record.finished_ms,
        duration_ms=m.scan_duration_ms,
        findings=m.violations_found,
        by_severity=by_severity,
        new=m.new_findings,
        files=m.files_scanned,
    )


def _subject(alert: Alert) -> str:
    labels = alert.labels
    for key in ("path", "target", "job", "instance", "host", "scanner"):
        value = labels.get(key)
        if value:
            if key == "target":  # a scan target is an absolute path: its last part names it
                value = value.rstrip("/").rsplit("/", 1)[-1] or value
            return f"{key}={value}"
    return ""


def _firing(alerts: Sequence[Alert]) -> tuple[FiringAlert, ...]:
    firing = [a for a in alerts if a.state is AlertState.FIRING]
    firing.sort(key=lambda a: (-a.severity.rank, -(a.fired_at_ms or 0), a.rule))
    return tuple(
        FiringAlert(
            rule=a.rule,
            kind=MetricKind(a.kind).value,
            severity=a.severity.value,
            value=a.value,
            subject=_subject(a),
            fired_at_ms=a.fired_at_ms,
        )
        for a in firing
    )


def _pick(found: list[SeriesPoints], spec: SeriesSpec, host: str) -> SeriesPoints | None:
    if spec.host_only:
        found = [s for s in found if set(s.labels) <= {"host"}]
    if not found:
        return None

    def rank(s: SeriesPoints) -> tuple[int, int, int]:
        preferred = sum(1 for k, v in spec.prefer.items() if s.labels.get(k) == v)
        here = int(s.labels.get("host") == host)
        return (preferred, here, len(s.timestamps))

    return max(found, key=rank)


def _trend(
    store: Store, spec: SeriesSpec, start_ms: int, end_ms: int, points: int, host: str
) -> SeriesTrend:
    known = MetricType.lookup(spec.metric)
    unit = known.unit if known is not None else ""
    # Raw samples: the last few minutes are always kept raw, and the newest
    # sample (not a step's average) is the figure beside the sparkline.
    chosen = _pick(store.query(spec.metric, None, start_ms, end_ms), spec, host)
    if chosen is None or not len(chosen.values):
        empty: tuple[float | None, ...] = (None,) * points
        return SeriesTrend(spec.label, spec.metric, unit, empty, None, None, spec.guard)
    step = max(1, -(-(end_ms - start_ms) // points))  # ceiling: ``points`` steps cover the range
    cell = np.clip((chosen.timestamps - start_ms) // step, 0, points - 1)
    sums = np.bincount(cell, weights=chosen.values, minlength=points)
    counts = np.bincount(cell, minlength=points)
    cells = tuple(
        float(total / n) if n else None
        for total, n in zip(sums.tolist(), counts.tolist(), strict=True)
    )
    last, high = float(chosen.values[-1]), float(chosen.values.max())
    return SeriesTrend(spec.label, spec.metric, unit, cells, last, high, spec.guard)


def build_summary(
    store: Store,
    *,
    at_ms: int | None = None,
    alerts: Sequence[Alert] | None = None,
    series: Sequence[SeriesSpec] = HOST_SERIES,
    window_ms: int = DEFAULT_WINDOW_MS,
    points: int = SPARK_POINTS,
) -> LiveSummary:
    """The summary as the store stands at ``at_ms`` (default: now).

    ``alerts`` are the alert engine's own when the process runs one; without
    it the firing alerts are read from the store (another process's engine).
    """
    if window_ms <= 0 or points <= 0:
        raise ValueError(f"window_ms and points must be positive, got {window_ms}, {points}")
    now = now_ms() if at_ms is None else at_ms
    current = alerts if alerts is not None else store.alerts([AlertState.FIRING])
    host = local_host()
    start = now - window_ms
    return LiveSummary(
        now_ms=now,
        window_ms=window_ms,
        last_scan=_scan_summary(store),
        firing=_firing(current),
        trends=tuple(_trend(store, spec, start, now, points, host) for spec in series),
    )


# --------------------------------------------------------------------------- polling


class SummaryPoller:
    """Rebuilds the summary every ``refresh_s`` in a worker thread and hands it on.

    A failing read (a store being migrated, a busy database) is logged once and
    retried at the next tick: the summary is a view, it never stops the work.
    """

    def __init__(
        self,
        store: Store,
        on_summary: Callable[[LiveSummary], None],
        *,
        alerts: Callable[[], Sequence[Alert]] | None = None,
        series: Sequence[SeriesSpec] = HOST_SERIES,
        refresh_s: float = 1.0,
        window_ms: int = DEFAULT_WINDOW_MS,
    ) -> None:
        if refresh_s <= 0:
            raise ValueError(f"refresh_s must be positive, got {refresh_s}")
        self.store = store
        self.on_summary = on_summary
        self.alerts = alerts
        self.series = tuple(series)
        self.refresh_s = refresh_s
        self.window_ms = window_ms
        self.failures = 0
        self._task: asyncio.Task[None] | None = None

    async def refresh(self) -> LiveSummary | None:
        """Build the summary once and hand it on; None when the read failed."""
        # The engine's alerts are read on the loop (its own thread); the store in a worker.
        current = list(self.alerts()) if self.alerts is not None else None
        try:
            summary = await asyncio.to_thread(
                build_summary,
                self.store,
                alerts=current,
                series=self.series,
                window_ms=self.window_ms,
            )
        except Exception as exc:
            self.failures += 1
            if self.failures == 1:
                log.warning("the live summary cannot read the store: %s", exc)
            return None
        self.on_summary(summary)
        return summary

    async def run(self) -> None:
        """Refresh until cancelled."""
        while True:
            await self.refresh()
            await asyncio.sleep(self.refresh_s)

    def start(self) -> SummaryPoller:
        """Run in a task of the current loop; ``stop`` ends it."""
        self._task = asyncio.create_task(self.run(), name="live-summary")
        return self

    async def stop(self) -> None:
        """Cancel the task and wait for it to end."""
        if self._task is None:
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
