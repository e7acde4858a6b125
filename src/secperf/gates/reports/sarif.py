"""SARIF 2.1.0 output: secperf's findings in the format every code host reads.

Each finding becomes a result with its rule, location, ``partialFingerprints``
(secperf's line-independent fingerprint, so GitHub code scanning tracks it
across moves) and a ``security-severity`` score on GitHub's scale. Triaged
findings carry a ``suppressions`` entry (external, with the justification).
Secrets never appear: their snippet is already a redacted preview, and no
snippet is written for them anyway.

What the scan did not scan goes into the run's invocation as
``toolExecutionNotifications``: each skipped file (with the scanner and the
reason), each path left out on purpose (with the rule) and each scanner that
could not run, so a code host shows what the results do not cover.

The gate's report (``gate.sarif``) adds benchmark regressions and scan-cost
blocks as extra results, marks waived findings as suppressed and names the
verdict in the run's properties.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from secperf import __version__
from secperf.gates.evidence import GateOutcome
from secperf.gates.reports.interface import Report, json_text
from secperf.model import ConditionStatus, Finding, Severity
from secperf.security.triage import TriageDecision, TriageState

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
FINGERPRINT_KEY = "secperfFingerprint/v1"

#: GitHub reads ``security-severity`` as: >= 9 critical, >= 7 high, >= 4 medium, else low.
SECURITY_SEVERITY = {
    Severity.CRITICAL: "9.5",
    Severity.HIGH: "8.0",
    Severity.MEDIUM: "5.5",
    Severity.LOW: "2.0",
    Severity.INFO: "0.0",
}
LEVEL = {
    Severity.CRITICAL: "error",
    Severity.HIGH: "error",
    Severity.MEDIUM: "warning",
    Severity.LOW: "note",
    Severity.INFO: "note",
}


@dataclass(frozen=True, slots=True)
class ExtraResult:
    """A non-finding result (e.g. a performance regression from the gate)."""

    rule_id: str
    rule_name: str
    description: str
    severity: Severity
    message: str
    properties: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class ExecutionNote:
    """Something the scan did not cover: a skipped or excluded path, an unavailable scanner."""

    kind: str  # "skipped" | "excluded" | "unavailable"
    reason: str
    path: str | None = None
    scanner: str | None = None


#: SARIF notification level per kind: a skip or a missing scanner lowers coverage.
_NOTE_LEVEL = {"skipped": "warning", "unavailable": "warning", "excluded": "note"}


def scan_notes(
    skipped: Iterable[tuple[str, str, str]],
    excluded: Iterable[tuple[str, str]] = (),
    unavailable: Mapping[str, str] | None = None,
) -> list[ExecutionNote]:
    """The notes of a scan report's ``skipped``, ``excluded`` and ``unavailable``."""
    notes = [
        ExecutionNote("unavailable", reason, scanner=scanner)
        for scanner, reason in sorted((unavailable or {}).items())
    ]
    notes += [
        ExecutionNote("skipped", reason, path=path, scanner=None if scanner == "*" else scanner)
        for path, scanner, reason in skipped
    ]
    notes += [ExecutionNote("excluded", reason, path=path) for path, reason in excluded]
    return notes


def _notification(note: ExecutionNote) -> dict[str, Any]:
    if note.kind == "unavailable":
        text = f"{note.scanner} did not run: {note.reason}"
    elif note.kind == "skipped":
        by = f" by {note.scanner}" if note.scanner else ""
        text = f"{note.path}: not scanned{by}: {note.reason}"
    else:
        text = f"{note.path}: not scanned: {note.reason}"
    notification: dict[str, Any] = {
        "level": _NOTE_LEVEL.get(note.kind, "note"),
        "message": {"text": text},
        "descriptor": {"id": f"secperf/coverage/{note.kind}"},
        "properties": {"kind": note.kind, "reason": note.reason},
    }
    if note.path is not None:
        notification["locations"] = [
            {"physicalLocation": {"artifactLocation": {"uri": note.path, "uriBaseId": "%SRCROOT%"}}}
        ]
    if note.scanner is not None:
        notification["properties"]["scanner"] = note.scanner
    return notification


def _rule(finding: Finding) -> dict[str, Any]:
    tags = ["security", finding.category]
    if finding.cwe is not None:
        tags.append(f"external/cwe/cwe-{finding.cwe}")
    rule: dict[str, Any] = {
        "id": finding.rule_id,
        "name": finding.rule_id.replace("/", "_"),
        "shortDescription": {"text": finding.message.split("\n", 1)[0][:200]},
        "defaultConfiguration": {"level": LEVEL[finding.severity]},
        "properties": {
            "security-severity": SECURITY_SEVERITY[finding.severity],
            "tags": tags,
            "scanner": finding.scanner,
        },
    }
    if finding.help_url:
        rule["helpUri"] = finding.help_url
    return rule


def _location(finding: Finding) -> dict[str, Any]:
    physical: dict[str, Any] = {"artifactLocation": {"uri": finding.path, "uriBaseId": "%SRCROOT%"}}
    if finding.line >= 1:
        region: dict[str, Any] = {"startLine": finding.line}
        if finding.column is not None and finding.column >= 1:
            region["startColumn"] = finding.column
        if finding.end_line is not None and finding.end_line >= finding.line:
            region["endLine"] = finding.end_line
        if finding.snippet and finding.category != "secret":
            region["snippet"] = {"text": finding.snippet}
        physical["region"] = region
    return {"physicalLocation": physical}


def _suppression(decision: TriageDecision | None, now_ms: int) -> list[dict[str, Any]] | None:
    if decision is None or decision.expired(now_ms):
        return None
    if decision.state not in (TriageState.FALSE_POSITIVE, TriageState.ACCEPTED_RISK):
        return None
    kind = "false positive" if decision.state is TriageState.FALSE_POSITIVE else "accepted risk"
    return [
        {
            "kind": "external",
            "status": "accepted",
            "justification": f"{kind} ({decision.author}): {decision.reason}",
        }
    ]


def to_sarif(
    findings: Iterable[Finding],
    *,
    root_uri: str | None = None,
    triage: Mapping[str, TriageDecision] | None = None,
    now_ms: int = 0,
    new_fingerprints: set[str] | None = None,
    extra: Iterable[ExtraResult] = (),
    notes: Iterable[ExecutionNote] | None = None,
    execution_successful: bool = True,
) -> dict[str, Any]:
    """A SARIF 2.1.0 log with one run of secperf holding ``findings`` (and ``extra``).

    With ``notes`` the run gets an invocation whose ``toolExecutionNotifications``
    say what was not scanned; ``execution_successful`` is False when a scanner
    that was asked for could not do its job.
    """
    triage = triage or {}
    rules: list[dict[str, Any]] = []
    rule_index: dict[str, int] = {}
    results: list[dict[str, Any]] = []
    for finding in findings:
        if finding.rule_id not in rule_index:
            rule_index[finding.rule_id] = len(rules)
            rules.append(_rule(finding))
        result: dict[str, Any] = {
            "ruleId": finding.rule_id,
            "ruleIndex": rule_index[finding.rule_id],
            "level": LEVEL[finding.severity],
            "message": {"text": finding.message or finding.rule_id},
            "locations": [_location(finding)],
            "partialFingerprints": {FINGERPRINT_KEY: finding.fingerprint},
            "properties": {
                "security-severity": SECURITY_SEVERITY[finding.severity],
                "severity": finding.severity.value,
                "scanner": finding.scanner,
                "category": finding.category,
            },
        }
        if finding.confidence:
            result["properties"]["confidence"] = finding.confidence
        if finding.cwe is not None:
            result["properties"]["cwe"] = f"CWE-{finding.cwe}"
        if new_fingerprints is not None:
            is_new = finding.fingerprint in new_fingerprints
            result["baselineState"] = "new" if is_new else "unchanged"
        suppressions = _suppression(triage.get(finding.fingerprint), now_ms)
        if suppressions:
            result["suppressions"] = suppressions
        results.append(result)
    for item in extra:
        if item.rule_id not in rule_index:
            rule_index[item.rule_id] = len(rules)
            rules.append(
                {
                    "id": item.rule_id,
                    "name": item.rule_name,
                    "shortDescription": {"text": item.description},
                    "defaultConfiguration": {"level": LEVEL[item.severity]},
                    "properties": {"security-severity": SECURITY_SEVERITY[item.severity]},
                }
            )
        results.append(
            {
                "ruleId": item.rule_id,
                "ruleIndex": rule_index[item.rule_id],
                "level": LEVEL[item.severity],
                "message": {"text": item.message},
                "properties": {
                    "security-severity": SECURITY_SEVERITY[item.severity],
                    **dict(item.properties),
                },
            }
        )
    run: dict[str, Any] = {
        "tool": {
            "driver": {
                "name": "secperf",
                "version": __version__,
                "informationUri": "https://github.com/secperf/secperf",
                "rules": rules,
            }
        },
        "results": results,
        "columnKind": "unicodeCodePoints",
    }
    if notes is not None:
        run["invocations"] = [
            {
                "executionSuccessful": execution_successful,
                "toolExecutionNotifications": [_notification(n) for n in notes],
            }
        ]
    if root_uri:
        run["originalUriBaseIds"] = {"%SRCROOT%": {"uri": root_uri.rstrip("/") + "/"}}
    return {"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [run]}


def gate_sarif(outcome: GateOutcome, root: Path) -> dict[str, Any]:
    """Findings of the scan (waived ones suppressed) and regressions as extra results."""
    extra: list[ExtraResult] = []
    for row in outcome.benchmarks:
        if row.status not in (ConditionStatus.BLOCK, ConditionStatus.WAIVED):
            continue
        verdict = row.verdict
        effect = verdict.effect_pct or 0.0
        if row.status is ConditionStatus.WAIVED:
            severity = Severity.LOW
        else:
            severity = Severity.HIGH if effect >= 25 else Severity.MEDIUM
        extra.append(
            ExtraResult(
                rule_id="secperf/performance/benchmark-regression",
                rule_name="BenchmarkRegression",
                description="A benchmark got slower than the gate allows",
                severity=severity,
                message=f"benchmark {verdict.name}: {verdict.reason}"
                + (f" ({row.note})" if row.note else ""),
                properties={
                    "benchmark": verdict.name,
                    "effectPercent": round(effect, 3),
                    "pValue": verdict.p_value,
                    "method": verdict.method,
                    "gateStatus": row.status.value,
                },
            )
        )
    for condition in outcome.result.conditions:
        if condition.category == "cost" and condition.status is ConditionStatus.BLOCK:
            extra.append(
                ExtraResult(
                    rule_id=(
                        "secperf/performance/scan-time-regression"
                        if condition.name.startswith("scan time")
                        else "secperf/performance/scan-overhead"
                    ),
                    rule_name="ScanCostRegression",
                    description="The security scan itself got slower or costlier",
                    severity=Severity.MEDIUM,
                    message=f"{condition.name}: {condition.evidence.splitlines()[0]}",
                    properties={
                        "measured": str(condition.measured),
                        "threshold": str(condition.threshold),
                    },
                )
            )
    scan = outcome.scan
    findings = list(scan.findings) if scan is not None else []
    sarif = to_sarif(
        findings,
        root_uri=root.as_uri(),
        now_ms=outcome.result.finished_ms,
        new_fingerprints=set(scan.new_fingerprints) if scan is not None else None,
        extra=extra,
    )
    notes = {row.finding.fingerprint: row for row in outcome.findings}
    for result in sarif["runs"][0]["results"]:
        fingerprint = result.get("partialFingerprints", {}).get(FINGERPRINT_KEY)
        seen = notes.get(fingerprint) if fingerprint else None
        if seen is None or seen.counts:
            continue
        result["suppressions"] = [
            {"kind": "external", "status": "accepted", "justification": seen.note or seen.state}
        ]
    sarif["runs"][0]["properties"] = {
        "gateVerdict": outcome.result.verdict.value,
        "gateRunId": outcome.result.run_id,
    }
    return sarif


class SarifReport(Report):
    """``gate.sarif``: findings and regressions for a code host's code scanning."""

    file_name = "gate.sarif"

    def render(self, outcome: GateOutcome, root: Path) -> str:
        return json_text(gate_sarif(outcome, root))
