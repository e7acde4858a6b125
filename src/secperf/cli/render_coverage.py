"""What a scan covered and what it did not, for the terminal and table reports.

The summary's coverage row says how much of the eligible files was scanned;
this table says why the rest was not: the skipped files (as many as the
coverage row's "N skipped", which they lower), counted by the kind of their
skips; skips in reports such as SARIF logs, which coverage leaves out; paths
left out on purpose counted by rule (they are not eligible); scanners that did
not run (no file is skipped for them: coverage is over the files the scanners
that ran read) or checked nothing; and notes such as an old baseline format.
Paths and reasons fold instead of being cut with an ellipsis, so a CI log keeps
them whole.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from io import StringIO

from rich.console import Console, RenderableType
from rich.table import Table
from rich.text import Text

from secperf.security.validator import ScanReport, reason_kind

#: Width of a table report written to a file: wide enough that rows rarely fold.
FILE_WIDTH = 160


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{reason} {n}" for reason, n in sorted(counts.items(), key=lambda kv: -kv[1]))


def _files(count: int) -> str:
    return f"{count} file{'' if count == 1 else 's'}"


def skipped_by_kind(report: ScanReport, *, reports: bool = False) -> tuple[int, dict[str, int]]:
    """The skipped files of code (``reports``: of reports), and how many were skipped for each kind.

    A file counts once per kind, however many scanners skipped it for that kind,
    so the files of code are the coverage row's skipped files.
    """
    report_files = set(report.reports)
    kinds: dict[str, set[str]] = defaultdict(set)
    for path, _, reason in report.skipped:
        if (path in report_files) == reports:
            kinds[path].add(reason_kind(reason))
    return len(kinds), dict(Counter(kind for found in kinds.values() for kind in found))


def coverage_table(report: ScanReport) -> Table | None:
    """Why files were not scanned, counted by kind; None when everything was scanned."""
    m = report.metrics
    rows: list[tuple[str, str]] = []
    files, kinds = skipped_by_kind(report)
    if files:
        rows.append((f"skipped ({_files(files)}; lowers coverage)", _counts(kinds)))
    files, kinds = skipped_by_kind(report, reports=True)
    if files:
        rows.append((f"skipped in reports ({_files(files)}; not in coverage)", _counts(kinds)))
    if m.exclusion_reasons:
        rows.append((f"excluded ({m.files_excluded} paths)", _counts(m.exclusion_reasons)))
    for scanner, reason in sorted(report.unavailable.items()):
        rows.append((f"{scanner} did not run", reason))
    for scanner, reason in sorted(report.failed_scanners.items()):
        rows.append((f"{scanner} checked nothing", reason))
    for note in report.notes:
        rows.append(("note", note))
    if not rows:
        return None
    table = Table(title="not scanned", show_header=False, expand=False)
    table.add_column("what", style="bold", overflow="fold")
    table.add_column("why", overflow="fold")
    for what, why in rows:
        table.add_row(Text(what), Text(why))  # Text: reasons quote paths and rules
    return table


def plain_text(renderables: list[RenderableType], width: int = FILE_WIDTH) -> str:
    """``renderables`` as plain text (no colour, no terminal codes), for ``--output``."""
    buffer = StringIO()
    file_console = Console(
        file=buffer, width=width, color_system=None, force_terminal=False, highlight=False
    )
    for renderable in renderables:
        file_console.print(renderable)
    return buffer.getvalue()
