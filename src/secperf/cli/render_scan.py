"""Rich rendering of scans and findings for the terminal (``scan``, ``findings list``).

Imported by those commands when they run: Rich's progress bar and the
security layer are not needed for ``secperf --help``.
"""

from __future__ import annotations

from collections.abc import Iterable

from rich.markup import escape
from rich.table import Table

# The progress bar (files per second, ETA) lives with the scans of ``up`` in scan_progress.
from secperf.cli.scan_progress import scan_progress as scan_progress
from secperf.model import Finding, Severity
from secperf.security.triage import TriageDecision, effective_state
from secperf.security.validator import ScanReport

SEVERITY_STYLE = {
    Severity.CRITICAL: "bold white on red",
    Severity.HIGH: "bold red",
    Severity.MEDIUM: "yellow",
    Severity.LOW: "cyan",
    Severity.INFO: "dim",
}


def findings_table(
    findings: Iterable[Finding],
    *,
    new: set[str] | None = None,
    triage: dict[str, TriageDecision] | None = None,
    now_ms: int = 0,
    title: str | None = None,
) -> Table:
    """Findings as a table: severity, rule, location, message, state."""
    table = Table(title=title, show_lines=False, expand=False)
    table.add_column("severity")
    table.add_column("rule")
    table.add_column("location", overflow="fold")
    table.add_column("message", overflow="fold", ratio=1)
    table.add_column("state")
    triage = triage or {}
    for f in findings:
        state = effective_state(triage.get(f.fingerprint), now_ms).value
        if new is not None and f.fingerprint in new and state == "open":
            state = "new"
        table.add_row(
            f"[{SEVERITY_STYLE[f.severity]}]{f.severity.value}[/]",
            escape(f.rule_id),
            escape(f"{f.path}:{f.line}" if f.line else f.path),
            escape(f.message),
            state,
        )
    return table


def summary_table(report: ScanReport) -> Table:
    """The scan's SecurityMetrics at a glance."""
    m = report.metrics
    table = Table(title="scan summary", show_header=False, expand=False)
    table.add_column("what", style="bold")
    table.add_column("value")
    counts = ", ".join(
        f"{sev.value} {m.vulnerability_severity_counts.get(sev.value, 0)}"
        for sev in sorted(Severity, reverse=True)
        if m.vulnerability_severity_counts.get(sev.value)
    )
    rows = [
        # Violations: findings triage has not set aside (security.series has the vocabulary).
        ("violations", f"{m.violations_found} ({counts or 'none'})"),
        ("set aside", f"{m.false_positives} false positive, {m.accepted_risks} accepted risk"),
        (
            "against baseline",
            f"{m.new_findings} new, {m.existing_findings} existing, {m.fixed_findings} fixed",
        ),
        ("false-positive rate", f"{m.false_positive_rate:.1%}"),
        (
            "coverage",
            f"{m.scan_coverage_percent:.1f} % ({m.files_scanned} of {m.eligible_files} files;"
            f" {m.files_skipped} skipped)",
        ),
        ("lines scanned", f"{m.lines_scanned:,} lines read this time, {m.bytes_scanned:,} bytes"),
        ("duration", f"{m.scan_duration_ms / 1000:.2f} s (CPU {m.cpu_seconds:.2f} s)"),
        (
            "per scanner",
            ", ".join(f"{k} {v / 1000:.2f} s" for k, v in sorted(m.scanner_durations_ms.items()))
            or "-",
        ),
        ("cache", f"{m.cache_hits} hits, {m.cache_misses} misses ({m.cache_hit_rate:.0%})"),
    ]
    if report.suppressed:
        rows.append(("suppressed inline", str(report.suppressed)))
    for scanner, reason in report.unavailable.items():
        rows.append((f"{scanner} skipped", reason))
    if m.slowest_files_ms:
        slowest = next(iter(m.slowest_files_ms.items()))
        rows.append(("slowest file", f"{slowest[0]} ({slowest[1]:.0f} ms)"))
    for what, value in rows:
        table.add_row(what, escape(value))
    return table


def skipped_table(report: ScanReport, limit: int = 20) -> Table | None:
    """Files that could not be scanned, with their reasons."""
    if not report.skipped:
        return None
    table = Table(title=f"skipped ({len(report.skipped)})", expand=False)
    table.add_column("path", overflow="fold")
    table.add_column("scanner")
    table.add_column("reason", overflow="fold")
    for path, scanner, reason in report.skipped[:limit]:
        table.add_row(escape(path), scanner, escape(reason))
    return table
