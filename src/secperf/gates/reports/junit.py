"""The gate as JUnit XML: one testcase per condition, which every CI system displays.

BLOCK is a ``<failure>``, CANNOT_EVALUATE an ``<error>`` (a CI page shows
errors; "skipped" would read as harmless), PASS passes and WAIVED passes with
a ``waived`` property. Every testcase carries its measured value, threshold
and status as properties, and its evidence as ``system-out``.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from secperf.gates.evidence import GateOutcome
from secperf.gates.reports.interface import Report
from secperf.model import ConditionStatus, GateCondition

SUITE_NAME = "secperf gate"


def _text(value: object) -> str:
    return "" if value is None else str(value)


def _testcase(condition: GateCondition, seconds: float) -> ET.Element:
    case = ET.Element(
        "testcase",
        {
            "name": condition.name,
            "classname": f"secperf.gate.{condition.category}",
            "time": f"{seconds:.3f}",
        },
    )
    properties = ET.SubElement(case, "properties")
    for name, value in (
        ("status", condition.status.value),
        ("measured", _text(condition.measured)),
        ("threshold", _text(condition.threshold)),
    ):
        ET.SubElement(properties, "property", {"name": name, "value": value})
    first_line = condition.evidence.splitlines()[0] if condition.evidence else ""
    if condition.status is ConditionStatus.BLOCK:
        failure = ET.SubElement(case, "failure", {"message": first_line, "type": "block"})
        failure.text = condition.evidence
    elif condition.status is ConditionStatus.CANNOT_EVALUATE:
        error = ET.SubElement(
            case, "error", {"message": f"cannot evaluate: {first_line}", "type": "cannot_evaluate"}
        )
        error.text = condition.evidence
    elif condition.status is ConditionStatus.WAIVED:
        ET.SubElement(properties, "property", {"name": "waived", "value": "true"})
    out = ET.SubElement(case, "system-out")
    out.text = condition.evidence
    return case


def render(outcome: GateOutcome) -> str:
    """The report as an XML document (UTF-8 text)."""
    result = outcome.result
    conditions = result.conditions
    seconds = max(0.0, (result.finished_ms - result.started_ms) / 1000)
    counts = {
        "tests": len(conditions),
        "failures": sum(1 for c in conditions if c.status is ConditionStatus.BLOCK),
        "errors": sum(1 for c in conditions if c.status is ConditionStatus.CANNOT_EVALUATE),
        "skipped": 0,
    }
    suites = ET.Element("testsuites", {k: str(v) for k, v in counts.items()})
    suites.set("name", SUITE_NAME)
    suites.set("time", f"{seconds:.3f}")
    suite = ET.SubElement(
        suites,
        "testsuite",
        {"name": SUITE_NAME, "time": f"{seconds:.3f}", **{k: str(v) for k, v in counts.items()}},
    )
    properties = ET.SubElement(suite, "properties")
    for name, value in (
        ("verdict", result.verdict.value),
        ("run_id", result.run_id),
        ("target", result.target),
        ("commit", result.commit or ""),
    ):
        ET.SubElement(properties, "property", {"name": name, "value": value})
    # Zero seconds per case: the gate times the whole run, not each condition.
    for condition in conditions:
        suite.append(_testcase(condition, 0.0))
    out = ET.SubElement(suite, "system-out")
    out.text = result.summary
    ET.indent(suites)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"


class JunitReport(Report):
    """``gate.junit.xml``: one testcase per condition, for a CI system's test view."""

    file_name = "gate.junit.xml"

    def render(self, outcome: GateOutcome, root: Path) -> str:
        return render(outcome)
