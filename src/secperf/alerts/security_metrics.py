"""Security series derived from scans, so security rules run on the metric model.

``security_samples`` turns one scan's ``SecurityMetrics`` into samples stamped
at the scan's end; ``FindingTally`` counts a scan's ``ViolationDetected`` events
into the per-severity new-finding and per-category finding series. Every series
carries ``host`` and ``target`` labels. Zeros are written too, so an alert
resolves when the next scan no longer finds what fired it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from secperf.model import Finding, Sample, SecurityMetrics, Severity

#: Finding categories that always get a series (``Finding.category``).
CATEGORIES = ("sast", "secret", "dependency", "custom", "imported")


def security_samples(metrics: SecurityMetrics, host: str) -> list[Sample]:
    """The security series of one scan, stamped at ``metrics.finished_ms``.

    - ``security_violations{severity}``: findings per severity (every severity, 0 included)
    - ``vulnerability_count``: all findings not triaged as false positives
    - ``security_scan_time``: the scan's duration in ms
    - ``security_false_positives``: the false-positive rate (a ratio 0..1)
    - ``security_scan_coverage``: the percentage of eligible files scanned
    """
    ts = metrics.finished_ms
    base = {"host": host, "target": metrics.target}
    counts = metrics.vulnerability_severity_counts
    out = [
        Sample(
            "security_violations",
            {**base, "severity": sev.value},
            ts,
            float(counts.get(sev.value, 0)),
        )
        for sev in Severity
    ]
    out.append(Sample("vulnerability_count", dict(base), ts, float(metrics.violations_found)))
    out.append(Sample("security_scan_time", dict(base), ts, float(metrics.scan_duration_ms)))
    out.append(
        Sample("security_false_positives", dict(base), ts, float(metrics.false_positive_rate))
    )
    out.append(
        Sample("security_scan_coverage", dict(base), ts, float(metrics.scan_coverage_percent))
    )
    return out


@dataclass
class FindingTally:
    """What the ``ViolationDetected`` events of one scan said, counted."""

    scan_id: str
    new_by_severity: Counter[str] = field(default_factory=Counter)
    by_category: Counter[str] = field(default_factory=Counter)
    new_findings: list[Finding] = field(default_factory=list)

    def add(self, finding: Finding, is_new: bool, keep: int = 50) -> None:
        """Count one finding; the first ``keep`` new ones are kept for alert context."""
        self.by_category[finding.category] += 1
        if is_new:
            self.new_by_severity[Severity(finding.severity).value] += 1
            if len(self.new_findings) < keep:
                self.new_findings.append(finding)

    def samples(self, host: str, target: str, ts_ms: int) -> list[Sample]:
        """``security_new_findings{severity}`` and ``security_findings{category}``."""
        base = {"host": host, "target": target}
        out = [
            Sample(
                "security_new_findings",
                {**base, "severity": sev.value},
                ts_ms,
                float(self.new_by_severity.get(sev.value, 0)),
            )
            for sev in Severity
        ]
        categories = sorted(set(CATEGORIES) | set(self.by_category))
        out.extend(
            Sample(
                "security_findings",
                {**base, "category": cat},
                ts_ms,
                float(self.by_category.get(cat, 0)),
            )
            for cat in categories
        )
        return out
