"""What the gate decides on and what it made of it: the data its parts share.

``gate.py`` (the verdict), ``conditions/`` (one module per side) and
``reports/`` all read these; none of them imports another for its types.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from secperf.model import (
    BenchmarkResult,
    ConditionStatus,
    Finding,
    GateResult,
    ScanCost,
    SecurityMetrics,
    Severity,
)
from secperf.security.triage import TriageDecision

if TYPE_CHECKING:
    # The statistics (scipy) load only when a comparison runs: a gate without
    # benchmarks or scan history must not pay half a second of imports.
    from secperf.analysis.regression import RegressionVerdict


@dataclass(frozen=True, slots=True)
class ScanEvidence:
    """One scan as the gate sees it: findings, which are new, and how the scan went.

    ``scanners`` are the scanners the scan was to run (``[scan] scanners``);
    ``errors`` lists scanner crashes (``path (scanner): reason``); ``unavailable``
    the scanners that could not run at all, with why; ``failed`` those that had
    files to check and checked none of them, with the first reason. ``requested``
    holds the scanners asked for explicitly (see
    ``conditions.security.requested_scanners``): one of them that could not do
    its job makes its condition CANNOT_EVALUATE, any other is reported as not
    checked, as ``secperf scan`` does with a scanner enabled by default only.
    """

    scan_id: str
    target: str
    metrics: SecurityMetrics
    findings: tuple[Finding, ...]
    new_fingerprints: frozenset[str]
    has_baseline: bool
    scanners: tuple[str, ...]
    unavailable: Mapping[str, str] = field(default_factory=dict)
    errors: tuple[str, ...] = ()
    status: str = "ok"
    failed: Mapping[str, str] = field(default_factory=dict)
    requested: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class GateInputs:
    """Everything the gate decides on, gathered by the orchestration."""

    target: str
    scan: ScanEvidence | None = None
    scan_problem: str | None = None  # why there is no scan (a scanner error, a bad scan id)
    triage: Mapping[str, TriageDecision] = field(default_factory=dict)
    benchmarks: Sequence[BenchmarkResult] = ()
    benchmark_history: Mapping[str, Sequence[BenchmarkResult]] = field(default_factory=dict)
    benchmark_problems: Sequence[str] = ()
    scan_history: Sequence[SecurityMetrics] = ()  # earlier comparable scans, oldest first
    cost: ScanCost | None = None
    commit: str | None = None
    fail_on: Severity | None = None  # the command line's override of [gate] fail_on


@dataclass(frozen=True, slots=True)
class FindingRow:
    """A finding the gate looked at, and what it made of it.

    ``state`` is one of: open (counts), waived, waiver_expired (counts again),
    accepted_risk, false_positive (triage set it aside).
    """

    finding: Finding
    is_new: bool
    state: str
    note: str = ""

    @property
    def counts(self) -> bool:
        """Whether this finding counts against the gate's conditions."""
        return self.state in ("open", "waiver_expired")


@dataclass(frozen=True, slots=True)
class BenchmarkRow:
    """One benchmark's comparison and the status the gate gave it."""

    verdict: RegressionVerdict
    status: ConditionStatus
    note: str = ""


@dataclass(frozen=True, slots=True)
class GateOutcome:
    """The verdict with the detail the reports show."""

    result: GateResult
    findings: tuple[FindingRow, ...] = ()
    benchmarks: tuple[BenchmarkRow, ...] = ()
    scan_time: RegressionVerdict | None = None
    cost: ScanCost | None = None
    notes: tuple[str, ...] = ()
    scan: ScanEvidence | None = None

    @property
    def new_findings(self) -> list[FindingRow]:
        return [row for row in self.findings if row.is_new]


def figure(value: float) -> str:
    """A measured value: 4 significant digits, whole with thousands separators from 1,000 on."""
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.4g}"
