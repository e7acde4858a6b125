"""One way to make a finding, or a scan's metrics, in a test: plain defaults."""

from __future__ import annotations

from typing import Any

from secperf.model import Finding, SecurityMetrics, Severity, make_fingerprint


def make_finding(
    rule_id: str = "B101",
    path: str = "app.py",
    severity: Severity = Severity.MEDIUM,
    *,
    fingerprint: str | None = None,
    scanner: str = "bandit",
    message: str | None = None,
    line: int = 1,
    **fields: Any,
) -> Finding:
    """A finding of ``rule_id`` at ``path``; the fingerprint follows rule, path and line.

    ``fields`` sets any other field of ``Finding`` (``category``, ``snippet``,
    ``cwe``, ``properties`` ...).
    """
    return Finding(
        fingerprint=fingerprint or make_fingerprint(rule_id, path, f"{rule_id}:{line}"),
        rule_id=rule_id,
        scanner=scanner,
        severity=severity,
        message=message if message is not None else f"{rule_id} in {path}",
        path=path,
        line=line,
        **fields,
    )


def make_scan_metrics(
    scan_id: str, finished_ms: int, found: list[Finding], *, new: int = 1, target: str = "repo"
) -> SecurityMetrics:
    """The metrics of a 2 s scan of ``target`` that found ``found`` (``new`` of them new)."""
    counts: dict[str, int] = {}
    for f in found:
        counts[f.severity.value] = counts.get(f.severity.value, 0) + 1
    return SecurityMetrics(
        scan_id=scan_id,
        target=target,
        started_ms=finished_ms - 2_000,
        finished_ms=finished_ms,
        scan_duration_ms=2_000.0,
        violations_found=len(found),
        false_positive_rate=0.0,
        vulnerability_severity_counts=counts,
        scan_coverage_percent=95.0,
        eligible_files=20,
        files_scanned=19,
        new_findings=new,
    )
