"""One count per number: the vocabulary of ``security.series`` and how a scan applies it.

The validator runs a small marker scanner (exact, predictable findings) and
the real SARIF scanner on real files; triage lives in a real SQLite store.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from secperf.model import Finding, SecurityMetrics, Severity
from secperf.security.baseline import baseline_from_findings
from secperf.security.discovery import FileDiscovery
from secperf.security.scanners.interface import (
    FileResult,
    FingerprintCounter,
    Scanner,
    SourceFile,
    stable_hash,
)
from secperf.security.scanners.sarif import SarifScanner
from secperf.security.series import (
    CountedFinding,
    FindingTally,
    count_findings,
    counted_metrics,
    scan_series,
)
from secperf.security.triage import TriageDecision, TriageState
from secperf.security.validator import SecurityValidator
from secperf.store import Store


class MarkerScanner(Scanner):
    """One finding per line holding ``DANGER`` (high) or ``care`` (low)."""

    id = "marker"

    def version(self) -> str:
        return "1"

    def config_hash(self) -> str:
        return stable_hash("marker")

    def applies_to(self, relpath: str) -> bool:
        return relpath.endswith(".py")

    def scan_file(self, root: Path, source: SourceFile) -> FileResult:
        counter = FingerprintCounter()
        found: list[Finding] = []
        for number, line in enumerate(source.content.decode().splitlines(), start=1):
            for word, severity in (("DANGER", Severity.HIGH), ("care", Severity.LOW)):
                if word in line:
                    found.append(
                        Finding(
                            counter.fingerprint(word, source.relpath, line),
                            word,
                            self.id,
                            severity,
                            f"{word} found",
                            source.relpath,
                            line=number,
                        )
                    )
        return FileResult(source.relpath, found)


def _project(root: Path) -> Path:
    (root / "app").mkdir(parents=True)
    (root / "app" / "a.py").write_text("x = DANGER\ny = care\n")
    (root / "app" / "b.py").write_text("z = care\nw = DANGER\n")
    return root


def _validator(triage: object = None, scanners: list[Scanner] | None = None) -> SecurityValidator:
    return SecurityValidator(
        scanners or [MarkerScanner()],
        discovery=FileDiscovery(exclude=[".secperf/"]),
        jobs=1,
        triage=triage,  # type: ignore[arg-type]
    )


def _decision(fp: str, state: TriageState, expires_ms: int | None = None) -> TriageDecision:
    return TriageDecision(fp, state, "ana", "test", 1, expires_ms)


def test_the_vocabulary_counts_each_finding_once() -> None:
    items = [
        CountedFinding("high", "sast", True, TriageState.OPEN),
        CountedFinding("high", "secret", False, TriageState.OPEN),  # baselined: a violation
        CountedFinding("low", "sast", True, TriageState.FALSE_POSITIVE),
        CountedFinding("medium", "sast", True, TriageState.ACCEPTED_RISK),
        CountedFinding("low", "sast", True, TriageState.FIXED),
    ]
    counts = count_findings(items)
    assert counts.findings == 5
    assert counts.violations == 3
    assert counts.violations_by_severity == {"high": 2, "low": 1}
    assert counts.new_violations == 2 and counts.new_by_severity == {"high": 1, "low": 1}
    assert counts.baselined_violations == 1
    assert (counts.false_positives, counts.accepted_risks) == (1, 1)
    assert counts.false_positive_rate == 1 / 5
    assert counts.violations_by_category == {"sast": 2, "secret": 1}


def test_series_of_a_scan_and_of_an_import() -> None:
    metrics = SecurityMetrics(
        "s", "/repo", 1000, 2000, 1000.0, 3, 0.25, {"high": 1, "low": 2}, 90.0, false_positives=1
    )
    tally = FindingTally("s")
    shown = Finding("fp1", "r", "secrets", Severity.HIGH, "m", "a.py", category="secret")
    hidden = Finding("fp2", "r", "secrets", Severity.LOW, "m", "b.py", category="secret")
    tally.add(shown, is_new=True)
    tally.add(hidden, is_new=True)
    counts = tally.counts({"fp2": _decision("fp2", TriageState.FALSE_POSITIVE)}, 2000)
    samples = scan_series(metrics, "h", counts)
    by = {(s.name, s.labels.get("severity") or s.labels.get("category")): s.value for s in samples}
    assert by[("security_violations", "low")] == 2 and by[("vulnerability_count", None)] == 3
    assert by[("security_scan_time", None)] == 1000.0
    assert by[("security_scan_coverage", None)] == 90.0
    # The false positive is neither a new violation nor a finding of its category.
    assert by[("security_new_findings", "high")] == 1 and by[("security_new_findings", "low")] == 0
    assert by[("security_findings", "secret")] == 1
    assert all(s.timestamp_ms == 2000 and s.labels["host"] == "h" for s in samples)

    imported = scan_series(dataclasses.replace(metrics, kind="import"), "h", counts)
    names = {s.name for s in imported}
    assert "security_scan_coverage" not in names and "security_scan_time" not in names
    assert "vulnerability_count" in names


def test_counted_metrics_take_complete_counts_only() -> None:
    # An agent reports all it found (no triage there); the store's triage recounts it.
    reported = SecurityMetrics("s", "/r", 1, 2, 1.0, 2, 0.0, {"high": 2}, 100.0)
    complete = count_findings(
        [
            CountedFinding("high", "sast", True),
            CountedFinding("high", "sast", True, TriageState.FALSE_POSITIVE),
        ]
    )
    recounted = counted_metrics(reported, complete)
    assert recounted.violations_found == 1 and recounted.false_positives == 1
    assert recounted.vulnerability_severity_counts == {"high": 1}
    partial = count_findings([CountedFinding("high", "sast", True)])
    assert counted_metrics(reported, partial) == reported


def test_a_long_lived_validator_counts_triage_made_after_it_was_built(tmp_path: Path) -> None:
    root = _project(tmp_path / "proj")
    with Store.open(tmp_path / "store.db") as store:
        validator = _validator(store.triage_all)
        try:
            first = validator.scan(root)
            m = first.metrics
            assert (m.violations_found, m.new_findings, m.false_positives) == (4, 4, 0)
            low = [f for f in first.findings if f.severity is Severity.LOW]
            high = [f for f in first.findings if f.severity is Severity.HIGH]
            store.set_triage(low[0].fingerprint, TriageState.FALSE_POSITIVE, "ana", "test")
            store.set_triage(high[0].fingerprint, TriageState.ACCEPTED_RISK, "ana", "internal")

            again = validator.scan(root).metrics
            assert again.violations_found == 2
            assert again.vulnerability_severity_counts == {"high": 1, "low": 1}
            assert sum(again.vulnerability_severity_counts.values()) == again.violations_found
            assert (again.false_positives, again.accepted_risks) == (1, 1)
            assert again.false_positive_rate == 1 / 4
            assert again.new_findings == 2

            store.set_triage(low[0].fingerprint, TriageState.OPEN, "ana", "it is real")
            reopened = validator.scan(root).metrics
            assert (reopened.violations_found, reopened.false_positives) == (3, 0)
        finally:
            validator.close()


def test_baselined_violations_are_violations_but_not_new(tmp_path: Path) -> None:
    root = _project(tmp_path / "proj")
    findings = _validator().scan(root).findings
    validator = _validator()
    validator.baseline = baseline_from_findings(findings[:3], "00", 1)
    m = validator.scan(root).metrics
    assert (m.violations_found, m.new_findings, m.existing_findings) == (4, 1, 3)


def test_sarif_logs_in_a_scan_count_their_results_but_not_in_coverage(tmp_path: Path) -> None:
    root = _project(tmp_path / "proj")
    result = {
        "ruleId": "G1",
        "level": "error",
        "message": {"text": "leak"},
        "locations": [
            {
                "physicalLocation": {
                    "artifactLocation": {"uri": "app/a.py"},
                    "region": {"startLine": 1},
                }
            }
        ],
    }
    nonsense = json.loads(json.dumps(result))
    nonsense["locations"][0]["physicalLocation"]["region"]["startLine"] = -5
    log = {
        "version": "2.1.0",
        "runs": [{"tool": {"driver": {"name": "gitleaks"}}, "results": [result, nonsense]}],
    }
    (root / "reports").mkdir()
    (root / "reports" / "gitleaks.sarif").write_text(json.dumps(log))
    validator = _validator(scanners=[MarkerScanner(), SarifScanner()])
    report = validator.scan(root)
    m = report.metrics
    assert any(f.scanner == "sarif" for f in report.findings)
    assert m.violations_found == 5  # four marker findings and the imported one
    # The log's skipped result makes the scan partial, not the code less covered.
    assert report.status == "partial"
    assert (m.eligible_files, m.files_scanned, m.scan_coverage_percent) == (2, 2, 100.0)
