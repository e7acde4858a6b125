"""What a scan's findings count as, and the security series derived from a scan.

One definition of each count, used by the validator (``SecurityMetrics``),
the store (the series it writes with each scan), the alert engine (the same
samples, kept in memory for immediate evaluation), the SARIF import and the
API:

- a **finding** is anything a scanner or an import reported (findings
  suppressed inline are never reported);
- a finding is a **violation** unless triage set it aside at that time: a
  false positive, or an accepted risk that has not expired;
- a violation is **new** unless the baseline holds it; baselined violations
  are violations all the same;
- the **false-positive rate** is false positives / findings.

``scan_series`` turns one scan's ``SecurityMetrics`` plus its counted
findings into samples stamped at the scan's end. Every series carries ``host``
and ``target`` labels. Zeros are written too, so an alert resolves when the
next scan no longer finds what fired it. An import of another tool's results
(``SecurityMetrics.kind == "import"``) measured neither a scan time nor a
coverage: it gets neither series.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

from secperf.model import Finding, Sample, SecurityMetrics, Severity
from secperf.security.triage import SET_ASIDE, TriageDecision, TriageState, effective_state

#: Finding categories that always get a series (``Finding.category``).
CATEGORIES = ("sast", "secret", "dependency", "custom", "imported")
#: ``SecurityMetrics.kind`` of a scan secperf ran, and of an import of another tool's results.
KIND_SCAN = "scan"
KIND_IMPORT = "import"
SCAN_KINDS = (KIND_SCAN, KIND_IMPORT)


def is_violation(state: TriageState) -> bool:
    """Whether a finding in effective triage ``state`` counts as a violation."""
    return state not in SET_ASIDE


@dataclass(frozen=True, slots=True)
class CountedFinding:
    """What counting needs of one finding: severity, category, novelty, triage state."""

    severity: str
    category: str
    is_new: bool
    state: TriageState = TriageState.OPEN

    @classmethod
    def of(
        cls,
        finding: Finding,
        is_new: bool,
        decisions: Mapping[str, TriageDecision],
        at_ms: int,
    ) -> CountedFinding:
        """``finding`` with its triage state at ``at_ms`` read from ``decisions``."""
        state = effective_state(decisions.get(finding.fingerprint), at_ms)
        return cls(Severity(finding.severity).value, finding.category, is_new, state)


@dataclass(frozen=True, slots=True)
class FindingCounts:
    """Every count of one scan's findings (see the module doc for the vocabulary)."""

    findings: int = 0
    violations: int = 0
    new_violations: int = 0
    false_positives: int = 0
    accepted_risks: int = 0
    violations_by_severity: dict[str, int] = field(default_factory=dict)
    new_by_severity: dict[str, int] = field(default_factory=dict)
    violations_by_category: dict[str, int] = field(default_factory=dict)

    @property
    def baselined_violations(self) -> int:
        """Violations the baseline already holds."""
        return self.violations - self.new_violations

    @property
    def false_positive_rate(self) -> float:
        """False positives / findings (0 when there are none)."""
        return self.false_positives / self.findings if self.findings else 0.0


def count_findings(items: Iterable[CountedFinding]) -> FindingCounts:
    """Count findings into violations, new violations, false positives and accepted risks."""
    total = false_positives = accepted = 0
    by_severity: Counter[str] = Counter()
    new_by_severity: Counter[str] = Counter()
    by_category: Counter[str] = Counter()
    for item in items:
        total += 1
        if item.state is TriageState.FALSE_POSITIVE:
            false_positives += 1
        elif item.state is TriageState.ACCEPTED_RISK:
            accepted += 1
        if not is_violation(item.state):
            continue
        by_severity[item.severity] += 1
        by_category[item.category] += 1
        if item.is_new:
            new_by_severity[item.severity] += 1
    return FindingCounts(
        findings=total,
        violations=sum(by_severity.values()),
        new_violations=sum(new_by_severity.values()),
        false_positives=false_positives,
        accepted_risks=accepted,
        violations_by_severity=dict(by_severity),
        new_by_severity=dict(new_by_severity),
        violations_by_category=dict(by_category),
    )


def count_scan_findings(
    findings: Iterable[Finding],
    new_fingerprints: Iterable[str],
    decisions: Mapping[str, TriageDecision],
    at_ms: int,
) -> FindingCounts:
    """``count_findings`` over one scan's findings (each fingerprint once) at ``at_ms``."""
    new = set(new_fingerprints)
    unique = {f.fingerprint: f for f in findings}
    return count_findings(
        CountedFinding.of(f, fp in new, decisions, at_ms) for fp, f in unique.items()
    )


def counted_metrics(metrics: SecurityMetrics, counts: FindingCounts) -> SecurityMetrics:
    """``metrics`` with its finding counts taken from ``counts`` when those are complete.

    ``counts`` are complete when they cover at least as many findings as the
    scan reported; a scan run without the store's triage (an agent) then
    counts as the store does. Otherwise the scan's own counts stand.
    """
    reported = metrics.violations_found + metrics.false_positives + metrics.accepted_risks
    if counts.findings < reported:
        return metrics
    return replace(
        metrics,
        violations_found=counts.violations,
        vulnerability_severity_counts=dict(counts.violations_by_severity),
        false_positive_rate=counts.false_positive_rate,
        new_findings=counts.new_violations,
        existing_findings=counts.baselined_violations,
        false_positives=counts.false_positives,
        accepted_risks=counts.accepted_risks,
    )


def scan_series(
    metrics: SecurityMetrics, host: str, counts: FindingCounts | None = None
) -> list[Sample]:
    """The security series of one scan, stamped at ``metrics.finished_ms``.

    From the metrics (the numbers the scan reported):

    - ``security_violations{severity}``: violations per severity (every severity, 0 included)
    - ``vulnerability_count``: all violations (the sum of the above)
    - ``security_false_positives``: the false-positive rate (a ratio 0..1)
    - ``security_scan_time``: the scan's duration in ms (not for imports)
    - ``security_scan_coverage``: the percentage of eligible files scanned (not for imports)

    From ``counts`` (the scan's findings, when given):

    - ``security_new_findings{severity}``: new violations per severity
    - ``security_findings{category}``: violations per category
    """
    ts = metrics.finished_ms
    base = {"host": host, "target": metrics.target}
    by_severity = metrics.vulnerability_severity_counts
    out = [
        Sample(
            "security_violations",
            {**base, "severity": sev.value},
            ts,
            float(by_severity.get(sev.value, 0)),
        )
        for sev in Severity
    ]
    out.append(Sample("vulnerability_count", dict(base), ts, float(metrics.violations_found)))
    out.append(
        Sample("security_false_positives", dict(base), ts, float(metrics.false_positive_rate))
    )
    if metrics.kind != KIND_IMPORT:
        out.append(Sample("security_scan_time", dict(base), ts, float(metrics.scan_duration_ms)))
        out.append(
            Sample("security_scan_coverage", dict(base), ts, float(metrics.scan_coverage_percent))
        )
    if counts is not None:
        out.extend(
            Sample(
                "security_new_findings",
                {**base, "severity": sev.value},
                ts,
                float(counts.new_by_severity.get(sev.value, 0)),
            )
            for sev in Severity
        )
        categories = sorted(set(CATEGORIES) | set(counts.violations_by_category))
        out.extend(
            Sample(
                "security_findings",
                {**base, "category": cat},
                ts,
                float(counts.violations_by_category.get(cat, 0)),
            )
            for cat in categories
        )
    return out


def security_samples(metrics: SecurityMetrics, host: str) -> list[Sample]:
    """The series of ``scan_series`` that the metrics alone give."""
    return scan_series(metrics, host)


@dataclass
class FindingTally:
    """What the ``ViolationDetected`` events of one scan said, kept for counting.

    Each finding is kept by fingerprint (severity, category, novelty), so its
    triage state can be read when the scan completes; the first ``keep`` new
    findings are kept whole for alert context.
    """

    scan_id: str
    seen: dict[str, tuple[str, str, bool]] = field(default_factory=dict)
    new_findings: list[Finding] = field(default_factory=list)

    def add(self, finding: Finding, is_new: bool, keep: int = 50) -> None:
        """Note one finding; the first ``keep`` new ones are kept for alert context."""
        self.seen[finding.fingerprint] = (
            Severity(finding.severity).value,
            finding.category,
            is_new,
        )
        if is_new and len(self.new_findings) < keep:
            self.new_findings.append(finding)

    def counts(self, decisions: Mapping[str, TriageDecision], at_ms: int) -> FindingCounts:
        """The tallied findings counted with their triage state at ``at_ms``."""
        return count_findings(
            CountedFinding(sev, cat, is_new, effective_state(decisions.get(fp), at_ms))
            for fp, (sev, cat, is_new) in self.seen.items()
        )
