"""The gate as JSON: the stored ``GateResult`` plus the detail behind it.

Top-level keys: ``result`` (the ``GateResult`` as stored, with ``exit_code``),
``findings`` (every new finding with its state and note), ``benchmarks`` and
``scan_time`` (the regression verdicts), ``cost`` (the scan's ``ScanCost``) and
``notes`` (what was not checked). Findings carry no secret: a secret finding
holds only a redacted preview, and no hash of the value.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

from secperf.gates.evidence import GateOutcome
from secperf.gates.reports.interface import Report, json_text
from secperf.model import Finding, GateResult, ScanCost

_RESULT = TypeAdapter(GateResult)
_FINDING = TypeAdapter(Finding)
_COST = TypeAdapter(ScanCost)


def to_dict(outcome: GateOutcome) -> dict[str, Any]:
    """The report as JSON-ready data."""
    result: dict[str, Any] = _RESULT.dump_python(outcome.result, mode="json")
    result["exit_code"] = outcome.result.verdict.exit_code
    findings = []
    for row in outcome.new_findings:
        item: dict[str, Any] = _FINDING.dump_python(row.finding, mode="json")
        item["is_new"] = row.is_new
        item["state"] = row.state
        item["note"] = row.note
        findings.append(item)
    return {
        "result": result,
        "scan_id": outcome.scan.scan_id if outcome.scan is not None else None,
        "findings": findings,
        "benchmarks": [
            {**asdict(row.verdict), "gate_status": row.status.value, "note": row.note}
            for row in outcome.benchmarks
        ],
        "scan_time": asdict(outcome.scan_time) if outcome.scan_time is not None else None,
        "cost": _COST.dump_python(outcome.cost, mode="json") if outcome.cost else None,
        "notes": list(outcome.notes),
    }


class JsonReport(Report):
    """``gate.json``: the stored result with the detail behind it, for other tools."""

    file_name = "gate.json"

    def render(self, outcome: GateOutcome, root: Path) -> str:
        return json_text(to_dict(outcome))
