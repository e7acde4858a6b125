"""How ``secperf scan --plan`` draws a scan's prediction and schedule (fits 80 columns)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from secperf.cli.text_table import Cell, TextColumn, TextTable
from secperf.security.pacing.schedule import clock

if TYPE_CHECKING:
    from secperf.commands.scan_plan import ScanPlan
    from secperf.security.pacing.prediction import ScanPrediction


def _seconds(ms: float) -> str:
    seconds = ms / 1000
    if seconds < 10:
        return f"{seconds:.2f} s"
    if seconds < 120:
        return f"{seconds:.1f} s"
    return f"{seconds / 60:.1f} min"


def _kib(size: int) -> str:
    if size < 1024 * 1024:
        return f"{size / 1024:.0f} KiB"
    return f"{size / 1024 / 1024:.1f} MiB"


def plan_table(prediction: ScanPrediction, *, width: int = 80) -> TextTable:
    """One row per scanner (files, expected cache misses, predicted time and CPU), then totals."""
    table = TextTable(
        [
            TextColumn("scanner"),
            TextColumn("files", justify="right"),
            TextColumn("misses", justify="right"),
            TextColumn("to read", justify="right"),
            TextColumn("time", justify="right"),
            TextColumn("CPU", justify="right"),
            TextColumn("from", wrap=True, min_width=10),
        ],
        width,
    )
    inputs = prediction.inputs
    for scanner, predicted in prediction.per_scanner.items():
        scanner_inputs = inputs.per_scanner.get(scanner)
        files = scanner_inputs.files if scanner_inputs else 0
        misses = scanner_inputs.misses if scanner_inputs else 0
        missed = scanner_inputs.missed_bytes if scanner_inputs else 0
        basis = "history" if predicted.basis == "history" else "built-in"
        table.add_row(
            scanner,
            str(files),
            str(misses),
            _kib(missed),
            _seconds(predicted.duration_ms),
            f"{predicted.cpu_s:.2f} s",
            f"{basis}, {predicted.ms_per_kb:.3g} ms/KiB",
        )
    table.add_row(
        "start-up",
        "",
        "",
        "",
        _seconds(prediction.startup_ms),
        f"{prediction.startup_cpu_s:.2f} s",
        "fixed cost of a scan",
    )
    table.add_row(
        Cell("total", "bold"),
        Cell(str(inputs.files), "bold"),
        Cell(str(inputs.expected_misses), "bold"),
        "",
        Cell(_seconds(prediction.duration_ms), "bold"),
        Cell(f"{prediction.cpu_s:.2f} s", "bold"),
        "",
    )
    return table


def plan_lines(plan: ScanPlan) -> list[str]:
    """The lines under the table: what the prediction rests on and when the scan would start."""
    prediction = plan.prediction
    inputs = prediction.inputs
    lines = [
        f"{inputs.files} files, {_kib(inputs.bytes)}, {inputs.lines} lines;"
        f" {inputs.expected_misses} (file, scanner) cache misses expected"
        + ("" if inputs.cached else " (the cache is off)"),
        f"basis: {prediction.basis_text}",
    ]
    for scanner, reason in sorted(prediction.unavailable.items()):
        lines.append(f"not run: {scanner}: {reason}")
    schedule = plan.schedule
    when = "now" if schedule.quiet_now else None
    if when is None and schedule.next_scan_ms is not None:
        when = clock(schedule.next_scan_ms)
    lines.append(f"schedule: {when or 'unknown'}: {schedule.reason}")
    lines += [f"note: {note}" for note in schedule.notes if note not in schedule.reason]
    return lines
