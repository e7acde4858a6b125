"""The gate's reports: Markdown, JUnit XML, SARIF 2.1.0 (schema-validated) and JSON."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest

from secperf.commands.gate import write_reports
from secperf.config import GateConfig
from secperf.gates.evidence import GateInputs, GateOutcome, ScanEvidence
from secperf.gates.gate import evaluate
from secperf.gates.reports import junit, markdown
from secperf.gates.waivers import FindingWaiver, Waivers
from secperf.model import BenchmarkResult, ConditionStatus, Finding, SecurityMetrics, Severity
from secperf.perf.benchmarks import load_pytest_benchmark
from support.paths import FIXTURES as FIXTURES_DIR
from support.paths import SARIF_SCHEMA

FIXTURE = FIXTURES_DIR / "benchmarks" / "pytest_benchmark_tiny.json"
SCHEMA = SARIF_SCHEMA
PREVIEW = "AKIA****MPLE"
NOW = 1_790_000_000_000
DAY = 86_400_000


def metrics() -> SecurityMetrics:
    return SecurityMetrics(
        scan_id="scan-1",
        target="/repo",
        started_ms=NOW,
        finished_ms=NOW + 1000,
        scan_duration_ms=1000.0,
        violations_found=3,
        false_positive_rate=0.0,
        vulnerability_severity_counts={"high": 3},
        scan_coverage_percent=100.0,
        files_scanned=3,
        eligible_files=3,
        lines_scanned=300,
    )


def scaled(result: BenchmarkResult, factor: float, days: int = 1) -> BenchmarkResult:
    """The same run ``factor`` times slower, ``days`` later."""
    keep = ("rounds", "iterations", "ops")
    return replace(
        result,
        timestamp_ms=result.timestamp_ms + days * DAY,
        stats={k: v if k in keep else v * factor for k, v in result.stats.items()},
        data=tuple(x * factor for x in result.data),
    )


def outcome() -> GateOutcome:
    shell = Finding("a" * 32, "B602", "bandit", Severity.HIGH, "shell=True", "app/run|x.py", 7)
    secret = Finding(
        "b" * 32,
        "aws-access-key",
        "secrets",
        Severity.HIGH,
        "AWS key",
        "app/cfg.py",
        2,
        category="secret",
        snippet=PREVIEW,
    )
    waived = Finding("c" * 32, "B108", "bandit", Severity.HIGH, "tmp dir", "tests/t.py", 3)
    scan = ScanEvidence(
        scan_id="scan-1",
        target="/repo",
        metrics=metrics(),
        findings=(shell, secret, waived),
        new_fingerprints=frozenset({shell.fingerprint, secret.fingerprint, waived.fingerprint}),
        has_baseline=True,
        scanners=("bandit", "secrets"),
    )
    base = load_pytest_benchmark(FIXTURE)
    slower = [scaled(r, 1.3) for r in base]
    skipped = replace(scaled(base[0], 1.0, days=2), name="bench.py::test_gone", status="skipped")
    inputs = GateInputs(
        target="/repo",
        scan=scan,
        benchmarks=[*slower, skipped],
        benchmark_history={r.name: [h for h in base if h.name == r.name] for r in slower},
        commit="f" * 40,
    )
    waivers = Waivers(
        (FindingWaiver(0, "ann", "temp files", date(2027, 1, 1), rule="B108", path="tests/*"),)
    )
    return evaluate(inputs, GateConfig(), waivers, started_ms=NOW - 5 * DAY, at_ms=NOW)


@pytest.fixture
def reports(tmp_path: Path) -> tuple[GateOutcome, Path]:
    result = outcome()
    written = write_reports(result, tmp_path / "out", Path("/repo"))
    assert sorted(p.name for p in written) == [
        "gate.json",
        "gate.junit.xml",
        "gate.md",
        "gate.sarif",
    ]
    return result, tmp_path / "out"


def test_junit_has_one_testcase_per_condition(reports: tuple[GateOutcome, Path]) -> None:
    result, out = reports
    root = ET.parse(out / "gate.junit.xml").getroot()
    cases = root.findall("./testsuite/testcase")
    conditions = result.result.conditions
    assert [c.get("name") for c in cases] == [c.name for c in conditions]
    by_name = {c.get("name"): c for c in cases}
    for condition in conditions:
        case = by_name[condition.name]
        props = {p.get("name"): p.get("value") for p in case.iter("property")}
        assert props["status"] == condition.status.value
        if condition.status is ConditionStatus.BLOCK:
            assert case.find("failure") is not None
        elif condition.status is ConditionStatus.CANNOT_EVALUATE:
            error = case.find("error")
            assert error is not None and error.get("message", "").startswith("cannot evaluate")
        else:
            assert case.find("failure") is None and case.find("error") is None
    suite = root.find("testsuite")
    assert suite is not None
    assert int(suite.get("failures", "-1")) == sum(
        1 for c in conditions if c.status is ConditionStatus.BLOCK
    )
    assert int(suite.get("errors", "-1")) == 1  # the skipped benchmark run
    waived = [c for c in conditions if c.status is ConditionStatus.WAIVED]
    assert not waived  # the high-severity condition still blocks on the other findings


def test_waived_condition_passes_with_a_property() -> None:
    result = outcome()
    condition = replace(result.result.conditions[0], status=ConditionStatus.WAIVED)
    only = replace(result, result=replace(result.result, conditions=(condition,)))
    case = ET.fromstring(junit.render(only)).find("./testsuite/testcase")
    assert case is not None and case.find("failure") is None
    assert {p.get("name"): p.get("value") for p in case.iter("property")}["waived"] == "true"


def test_sarif_validates_and_holds_regressions(reports: tuple[GateOutcome, Path]) -> None:
    _, out = reports
    sarif = json.loads((out / "gate.sarif").read_text())
    results = sarif["runs"][0]["results"]
    regressions = [r for r in results if r["ruleId"] == "secperf/performance/benchmark-regression"]
    assert len(regressions) == 3
    assert all(r["properties"]["security-severity"] == "8.0" for r in regressions)  # +30 %: high
    waived = next(r for r in results if r["ruleId"] == "B108")
    assert waived["suppressions"][0]["justification"].startswith("waived until 2027-01-01")
    assert sarif["runs"][0]["properties"]["gateVerdict"] == "block"
    if not SCHEMA.exists():
        pytest.skip(f"SARIF schema not found at {SCHEMA}; cannot validate gate.sarif")
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.validate(sarif, json.loads(SCHEMA.read_text()))


def test_markdown_escapes_cells_and_lists_findings(reports: tuple[GateOutcome, Path]) -> None:
    _result, out = reports
    text = (out / "gate.md").read_text()
    assert text.startswith("## secperf gate: ❌ **BLOCK**")
    assert "`app/run\\|x.py:7`" in text  # a pipe in a path cannot break the table
    assert "| condition | category | measured | threshold | status | evidence |" in text
    assert "### New findings (3)" in text and "waived: waived until 2027-01-01" in text
    assert "### Performance" in text and "mann-whitney-u" in text
    assert PREVIEW not in text  # no snippet of a secret, not even the redacted one
    assert markdown.cell("a|b\nc") == "a\\|b<br>c"


def test_json_report(reports: tuple[GateOutcome, Path]) -> None:
    result, out = reports
    data = json.loads((out / "gate.json").read_text())
    assert data["result"]["verdict"] == "block" and data["result"]["exit_code"] == 1
    assert data["result"]["commit"] == "f" * 40
    assert {f["rule_id"]: f["state"] for f in data["findings"]} == {
        "B602": "open",
        "aws-access-key": "open",
        "B108": "waived",
    }
    statuses = {b["name"]: b["gate_status"] for b in data["benchmarks"]}
    assert statuses["bench.py::test_gone"] == "cannot_evaluate"
    assert data["scan_id"] == "scan-1"
    assert len(data["result"]["conditions"]) == len(result.result.conditions)
