"""The gate as Markdown, for a pull-request comment or ``$GITHUB_STEP_SUMMARY``.

The verdict first, then a table of conditions (measured, threshold, status),
the new findings, the benchmark comparisons and what was not checked. Cell
text is escaped so that a file name or a message cannot break the table.
Secrets never appear: findings carry only a redacted preview, which is not
shown here anyway.
"""

from __future__ import annotations

from pathlib import Path

from secperf.gates.evidence import GateOutcome, figure
from secperf.gates.reports.interface import Report
from secperf.model import ConditionStatus, GateVerdict

_VERDICT = {
    GateVerdict.PASS: "✅ **PASS**",
    GateVerdict.BLOCK: "❌ **BLOCK**",
    GateVerdict.CANNOT_EVALUATE: "⚠️ **CANNOT EVALUATE**",
}
_STATUS = {
    ConditionStatus.PASS: "✅ pass",
    ConditionStatus.BLOCK: "❌ block",
    ConditionStatus.CANNOT_EVALUATE: "⚠️ cannot evaluate",
    ConditionStatus.WAIVED: "🟡 waived",
}
_MAX_FINDINGS = 50


def cell(value: object) -> str:
    """Text safe inside a Markdown table cell (pipes escaped, new lines as <br>)."""
    if value is None:
        return "-"
    text = str(value).replace("\\", "\\\\").replace("|", "\\|")
    text = text.replace("<", "&lt;").replace(">", "&gt;")
    return "<br>".join(line.strip() for line in text.splitlines()) or "-"


def render(outcome: GateOutcome) -> str:
    """The whole report as Markdown text."""
    result = outcome.result
    lines = [
        f"## secperf gate: {_VERDICT[result.verdict]}",
        "",
        cell(result.summary.split(". ", 1)[0]),
        "",
        "| condition | category | measured | threshold | status | evidence |",
        "|---|---|---|---|---|---|",
    ]
    for condition in result.conditions:
        lines.append(
            f"| {cell(condition.name)} | {condition.category} | {cell(condition.measured)} "
            f"| {cell(condition.threshold)} | {_STATUS[condition.status]} "
            f"| {cell(condition.evidence)} |"
        )
    if not result.conditions:
        lines.append("| (none) | | | | ⚠️ cannot evaluate | nothing to evaluate |")

    new = outcome.new_findings
    lines += ["", f"### New findings ({len(new)})", ""]
    if new:
        lines += [
            "| severity | rule | location | message | state |",
            "|---|---|---|---|---|",
        ]
        for row in new[:_MAX_FINDINGS]:
            f = row.finding
            where = f"{f.path}:{f.line}" if f.line else f.path
            state = row.state.replace("_", " ") + (f": {row.note}" if row.note else "")
            lines.append(
                f"| {f.severity.value} | {cell(f.rule_id)} | `{cell(where)}` "
                f"| {cell(f.message.splitlines()[0] if f.message else '')} | {cell(state)} |"
            )
        if len(new) > _MAX_FINDINGS:
            lines.append(f"\n… and {len(new) - _MAX_FINDINGS} more (see gate.json or gate.sarif)")
    else:
        lines.append("No new findings." if outcome.scan is not None else "No scan result.")

    if outcome.benchmarks or outcome.scan_time is not None:
        lines += [
            "",
            "### Performance",
            "",
            "| benchmark | baseline median | current median | change | p-value | method | status |",
            "|---|---|---|---|---|---|---|",
        ]
        # Benchmarks are timed in seconds, the scan per 1,000 lines in milliseconds.
        rows = [(b.verdict, _STATUS[b.status], " s") for b in outcome.benchmarks]
        if outcome.scan_time is not None:
            scan_status = next(
                (
                    _STATUS[c.status]
                    for c in result.conditions
                    if c.name == "scan time per 1,000 lines"
                ),
                "",
            )
            rows.append((outcome.scan_time, scan_status, " ms/kLOC"))
        for verdict, status, unit in rows:
            lines.append(
                f"| {cell(verdict.name)} | {_num(verdict.baseline_median, unit)} "
                f"| {_num(verdict.current_median, unit)} "
                f"| {'-' if verdict.effect_pct is None else f'{verdict.effect_pct:+.1f} %'} "
                f"| {'-' if verdict.p_value is None else f'{verdict.p_value:.2g}'} "
                f"| {verdict.method} | {status} |"
            )
    if outcome.notes:
        lines += ["", "### Not checked", ""]
        lines += [f"- {cell(note)}" for note in outcome.notes]
    lines.append("")
    return "\n".join(lines)


def _num(value: float | None, unit: str) -> str:
    return "-" if value is None else f"{figure(value)}{unit}"


class MarkdownReport(Report):
    """``gate.md``: the gate for a pull-request comment or a CI step summary."""

    file_name = "gate.md"

    def render(self, outcome: GateOutcome, root: Path) -> str:
        return render(outcome)
