"""What every advice rule shares: the advice, its evidence, the thresholds,
the context the rules read, and wording helpers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from secperf.analysis.correlate_store import (
    CorrelationRun,
    format_duration,
)
from secperf.model import Severity

if TYPE_CHECKING:
    from secperf.store import ScanRecord, Store, StoredFinding


KINDS = ("security", "performance", "both")


@dataclass(frozen=True, slots=True)
class Evidence:
    """One fact behind an advice, as label and formatted value."""

    label: str
    value: str


@dataclass(frozen=True, slots=True)
class Advice:
    """One recommendation: what was seen, how bad it is, and what to do."""

    id: str
    title: str
    severity: Severity
    kind: str  # security | performance | both
    detail: str
    evidence: tuple[Evidence, ...]
    action: str


@dataclass(frozen=True, slots=True)
class AdviceThresholds:
    """When each rule fires; the defaults suit a developer machine and CI alike."""

    min_scan_ms: float = 2_000.0  # scans shorter than this are not worth tuning
    slow_files_share: float = 0.25
    slow_scanner_share: float = 0.6
    parallelism_share: float = 0.5  # cores used / cores available below this -> raise jobs
    min_cache_lookups: int = 20
    cache_hit_rate: float = 0.5
    coverage_percent: float = 90.0
    min_effect_pct: float = 10.0
    false_positive_rate: float = 0.2
    min_findings_for_rate: int = 5
    memory_percent: float = 90.0
    cpu_percent: float = 90.0
    swap_percent: float = 50.0
    pressure_window_ms: int = 10 * 60_000
    anomaly_window_ms: int = 6 * 3_600_000
    anomaly_step_ms: int = 60_000
    anomaly_k: float = 6.0  # robust standard deviations above the median
    anomaly_min_rel: float = 0.2  # and at least this much above it
    anomaly_guard_ms: int = 2 * 60_000
    max_anomaly_series: int = 200
    history_scans: int = 30
    max_items: int = 5  # per advice of one kind (upgrades, affected metrics ...)
    cores: int | None = None  # the scanning machine's cores; None: this machine's


@dataclass(slots=True)
class AdviceContext:
    store: Store
    now_ms: int
    th: AdviceThresholds
    latest: ScanRecord | None = None
    history: list[ScanRecord] = field(default_factory=list)  # same target, oldest first
    all_scans: list[ScanRecord] = field(default_factory=list)
    findings: list[StoredFinding] = field(default_factory=list)
    run: CorrelationRun | None = None


def percent(x: float) -> str:
    return f"{x:.0f} %"


def duration(x: float) -> str:
    return format_duration(x)


def sentence(text: str) -> str:
    """``text`` with its first letter upper-cased (the rest untouched) and a full stop."""
    return text[:1].upper() + text[1:] + "."


def max_severity(items: Sequence[Severity]) -> Severity:
    return max(items, key=lambda s: s.rank) if items else Severity.INFO
