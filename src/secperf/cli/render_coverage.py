"""What a scan covered and what it did not, for the terminal and table reports.

The summary's coverage row says how much of the eligible files was scanned;
this table says why the rest was not: skips counted by kind (they lower
coverage), paths left out on purpose counted by rule (they are not eligible),
scanners that did not run or checked nothing, and notes such as an old
baseline format. Paths and reasons fold instead of being cut with an ellipsis,
so a CI log keeps them whole.
"""

from __future__ import annotations

from io import StringIO

from rich.console import Console, RenderableType
from rich.table import Table
from rich.text import Text

from secperf.security.validator import ScanReport

#: Width of a table report written to a file: wide enough that rows rarely fold.
FILE_WIDTH = 160


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{reason} {n}" for reason, n in sorted(counts.items(), key=lambda kv: -kv[1]))


def coverage_table(report: ScanReport) -> Table | None:
    """Why files were not scanned, counted by reason; None when everything was scanned."""
    m = report.metrics
    rows: list[tuple[str, str]] = []
    if m.skip_reasons:
        rows.append(("skipped (lowers coverage)", _counts(m.skip_reasons)))
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
