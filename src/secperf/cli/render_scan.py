"""Rendering of scans and findings for the terminal (``scan``, ``findings list``).

Imported by those commands when they run: Rich's progress bar and the
security layer are not needed for ``secperf --help``. Rich's ``Table`` (the
scan's summary) is imported by the functions that build one: ``findings
list`` prints a ``TextTable`` only. The progress bar (files per second, ETA)
lives with the scans of ``up`` in ``scan_progress``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from secperf.cli.text_table import Cell, TextColumn, TextTable
from secperf.model import Finding, Severity
from secperf.security.triage import SET_ASIDE, TriageDecision, effective_state

if TYPE_CHECKING:
    from rich.table import Table

    # Type only: `findings list` renders findings without loading the scanner side.
    from secperf.security.validator import ScanReport

#: Hex digits of a fingerprint shown in tables: `secperf triage` and `findings
#: show` take any unique prefix of 6 or more, and 10 (40 bits) stay unique.
FINGERPRINT_DIGITS = 10
#: Below these terminal widths the findings table leaves out "new", then "severity".
NARROW = 72
NARROWEST = 60

SEVERITY_STYLE = {
    Severity.CRITICAL: "bold white on red",
    Severity.HIGH: "bold red",
    Severity.MEDIUM: "yellow",
    Severity.LOW: "cyan",
    Severity.INFO: "dim",
}


def most_important(
    findings: Sequence[Finding],
    limit: int,
    *,
    new: set[str],
    triage: dict[str, TriageDecision],
    now_ms: int,
) -> list[Finding]:
    """The ``limit`` findings to read first: open ones, then new ones, then the most severe.

    Open: not set aside by triage. So an open existing finding comes before a
    new one set aside as a false positive, and a new low before an old high.

    Findings alike keep the scan's order (by path). No more than ``limit``
    findings (or ``limit`` 0): all of them, in the scan's order.
    """
    if limit <= 0 or len(findings) <= limit:
        return list(findings)
    rank = {severity: i for i, severity in enumerate(sorted(Severity, reverse=True))}

    def key(f: Finding) -> tuple[bool, bool, int]:
        set_aside = effective_state(triage.get(f.fingerprint), now_ms) in SET_ASIDE
        return set_aside, f.fingerprint not in new, rank[f.severity]

    # sorted is stable: findings with one key stay in the scan's order.
    return sorted(findings, key=key)[:limit]


def findings_table(
    findings: Iterable[Finding],
    *,
    new: set[str] | None = None,
    triage: dict[str, TriageDecision] | None = None,
    now_ms: int = 0,
    width: int = 80,
) -> TextTable:
    """Findings as a table: fingerprint prefix, severity, rule and message, location, state, new.

    The state is the triage state (``TriageState``: the words ``--state`` and
    ``secperf triage`` take); whether the finding is new since the baseline is
    its own column. Readable at 80 columns: the rule leads the message in one
    column, only location and message wrap, the short columns never wrap. The
    location widens at the message's expense: whole when the message keeps 16
    columns, else wide enough for its longest file name (the message down to
    12 columns for it), so a path breaks after a ``/`` or before its ``:line``,
    never inside a name unless one is wider than the terminal allows. Nothing
    is cut with an ellipsis: a path reads whole down its column. Narrower
    than ``NARROW`` columns (``width``), "new" and then "severity" are left
    out (``--json`` has them). A ``TextTable``: thousands of rows lay out in
    a fraction of a second.
    """
    show_new = new is not None and width >= NARROW
    show_severity = width >= NARROWEST
    columns = [TextColumn("id")]
    if show_severity:
        columns.append(TextColumn("severity"))
    columns += [
        TextColumn("finding", wrap=True, ratio=3, min_width=16, yield_width=12),
        TextColumn("location", path=True, ratio=2),
        TextColumn("state"),
    ]
    if show_new:
        columns.append(TextColumn("new"))
    table = TextTable(columns, width)
    triage = triage or {}
    for f in findings:
        # Plain cells, never markup: paths and messages come from scanned files.
        cells: list[Cell | str] = [f.fingerprint[:FINGERPRINT_DIGITS]]
        if show_severity:
            cells.append(Cell(f.severity.value, SEVERITY_STYLE[f.severity]))
        cells += [
            f"{f.rule_id} {f.message}",
            f"{f.path}:{f.line}" if f.line else f.path,
            effective_state(triage.get(f.fingerprint), now_ms).value,
        ]
        if show_new:
            cells.append("yes" if new is not None and f.fingerprint in new else "-")
        table.add_row(*cells)
    return table


def summary_table(report: ScanReport) -> Table:
    """The scan's SecurityMetrics at a glance."""
    from rich.markup import escape
    from rich.table import Table

    m = report.metrics
    table = Table(title="scan summary", show_header=False, expand=False)
    table.add_column("what", style="bold")
    # Folded, never cut with an ellipsis: paths and reasons stay whole in CI logs.
    table.add_column("value", overflow="fold")
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
            f"{m.scan_coverage_percent:.1f} % of eligible files ({m.files_scanned} of"
            f" {m.eligible_files}; {m.files_skipped} skipped); {m.files_excluded} paths excluded",
        ),
        ("lines scanned", _lines_row(m.lines_scanned, m.bytes_scanned, m.files_read, m.lines_read)),
        ("duration", f"{m.scan_duration_ms / 1000:.2f} s (CPU {m.cpu_seconds:.2f} s)"),
        (
            "per scanner",
            ", ".join(f"{k} {v / 1000:.2f} s" for k, v in sorted(m.scanner_durations_ms.items()))
            or "-",
        ),
        ("cache", f"{m.cache_hits} hits, {m.cache_misses} misses ({m.cache_hit_rate:.0%})"),
    ]
    if report.pacing is not None:
        from secperf.security.pacing.document import PacingDocument

        rows.append(("pacing", PacingDocument.from_document(report.pacing).summary()))
    if report.suppressed:
        rows.append(("suppressed inline", str(report.suppressed)))
    for scanner, reason in report.unavailable.items():
        rows.append((f"{scanner} did not run", reason))
    # Only files scanned this time have a time; a warm scan opens none.
    if m.slowest_files_ms:
        slowest = next(iter(m.slowest_files_ms.items()))
        rows.append(("slowest file", f"{slowest[0]} ({slowest[1]:.0f} ms)"))
    for what, value in rows:
        table.add_row(what, escape(value))
    return table


def _lines_row(lines: int, size: int, files_read: int, lines_read: int) -> str:
    """Lines the scan covers, and how many of them were read this time (the rest: cache)."""
    covered = f"{lines:,} lines ({size:,} bytes) in scanned files"
    if files_read == 0:
        return f"{covered}; none read this time (all from the cache)" if lines else covered
    return f"{covered}; {lines_read:,} read this time ({files_read:,} files)"


def skipped_table(report: ScanReport, limit: int = 20) -> Table | None:
    """Files that could not be scanned, with their reasons."""
    if not report.skipped:
        return None
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=f"skipped ({len(report.skipped)})", expand=False)
    table.add_column("path", overflow="fold")
    table.add_column("scanner")
    table.add_column("reason", overflow="fold")
    for path, scanner, reason in report.skipped[:limit]:
        table.add_row(escape(path), scanner, escape(reason))
    return table
