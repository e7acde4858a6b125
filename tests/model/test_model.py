"""The vocabulary: metric kinds and units, severities, fingerprints, sample checks."""

from __future__ import annotations

import math

import pytest

from secperf.model import (
    GateVerdict,
    MetricKind,
    MetricType,
    Sample,
    Severity,
    labels_fingerprint,
    make_fingerprint,
    sample_problem,
)

NOW = 1_800_000_000_000


def test_security_metric_names_and_values_are_exact() -> None:
    assert MetricType.SECURITY_SCAN_TIME.value == "security_scan_time"
    assert MetricType.SECURITY_VIOLATIONS.value == "security_violations"
    assert MetricType.SECURITY_FALSE_POSITIVES.value == "security_false_positives"
    assert MetricType.VULNERABILITY_COUNT.value == "vulnerability_count"
    assert MetricType.SECURITY_SCAN_COVERAGE.value == "security_scan_coverage"


def test_every_metric_has_a_unit_and_a_kind() -> None:
    security = {m for m in MetricType if m.is_security}
    assert security == {
        MetricType.SECURITY_SCAN_TIME,
        MetricType.SECURITY_VIOLATIONS,
        MetricType.SECURITY_FALSE_POSITIVES,
        MetricType.VULNERABILITY_COUNT,
        MetricType.SECURITY_SCAN_COVERAGE,
        MetricType.SECURITY_NEW_FINDINGS,
        MetricType.SECURITY_FINDINGS,
    }
    for metric in MetricType:
        assert metric.unit
        assert metric.kind in (MetricKind.SECURITY, MetricKind.PERFORMANCE)
    assert MetricType.CPU_PERCENT.kind is MetricKind.PERFORMANCE
    assert MetricType.SECURITY_SCAN_TIME.unit == "milliseconds"
    assert MetricType.MEMORY_RSS_BYTES.unit == "bytes"


def test_metrics_outside_the_enum_are_allowed_by_name() -> None:
    assert MetricType.lookup("cpu_percent") is MetricType.CPU_PERCENT
    assert MetricType.lookup("http_requests_total") is None
    sample = Sample("http_requests_total", {"job": "api"}, NOW, 3.0)
    assert sample_problem(sample, NOW) is None


def test_severity_is_ordered() -> None:
    ordered = sorted(Severity, key=lambda s: s.rank)
    assert [s.value for s in ordered] == ["info", "low", "medium", "high", "critical"]
    assert Severity.CRITICAL > Severity.HIGH > Severity.MEDIUM > Severity.LOW > Severity.INFO
    assert Severity.HIGH >= Severity.HIGH
    assert max(Severity.LOW, Severity.CRITICAL, Severity.MEDIUM) is Severity.CRITICAL


def test_severity_parse_reports_choices() -> None:
    assert Severity.parse(" HIGH ") is Severity.HIGH
    with pytest.raises(ValueError, match="critical, high, medium, low, info"):
        Severity.parse("urgent")


def test_fingerprint_ignores_whitespace_but_not_code_path_rule_or_occurrence() -> None:
    base = make_fingerprint("B602", "app/run.py", "subprocess.call(cmd, shell=True)")
    assert base == make_fingerprint("B602", "app/run.py", "  subprocess.call(cmd,   shell=True)\n")
    assert base != make_fingerprint("B602", "app/run.py", "subprocess.call(cmd, shell=False)")
    assert base != make_fingerprint("B602", "app/other.py", "subprocess.call(cmd, shell=True)")
    assert base != make_fingerprint("B603", "app/run.py", "subprocess.call(cmd, shell=True)")
    assert base != make_fingerprint("B602", "app/run.py", "subprocess.call(cmd, shell=True)", 1)


def test_labels_fingerprint_is_order_independent() -> None:
    assert labels_fingerprint({"a": "1", "b": "2"}) == labels_fingerprint({"b": "2", "a": "1"})
    assert labels_fingerprint({"a": "1"}) != labels_fingerprint({"a": "2"})


@pytest.mark.parametrize(
    ("sample", "problem"),
    [
        (Sample("cpu_percent", {}, NOW, math.nan), "not finite"),
        (Sample("cpu_percent", {}, NOW, math.inf), "not finite"),
        (Sample("cpu_percent", {}, NOW + 3_600_000, 1.0), "in the future"),
        (Sample("cpu_percent", {}, -5, 1.0), "before 1970"),
        (Sample("cpu_percent", {}, "soon", 1.0), "timestamp_ms must be an integer"),  # type: ignore[arg-type]
        (Sample("cpu_percent", {}, NOW, "high"), "value must be a number"),  # type: ignore[arg-type]
        (Sample("cpu_percent", {}, NOW, True), "value must be a number"),
        (Sample("cpu_percent", {"host": 3}, NOW, 1.0), "label 'host' must be a string"),  # type: ignore[dict-item]
        (Sample("cpu_percent", {"bad-name": "x"}, NOW, 1.0), "label name"),
        (Sample("cpu percent", {}, NOW, 1.0), "metric name"),
        (Sample("cpu_percent", ["host"], NOW, 1.0), "labels must be a mapping"),  # type: ignore[arg-type]
        ("cpu_percent=3", "expected a Sample"),
    ],
)
def test_sample_problems_are_named(sample: object, problem: str) -> None:
    message = sample_problem(sample, NOW)
    assert message is not None
    assert problem in message


def test_valid_sample_has_no_problem() -> None:
    assert sample_problem(Sample("cpu_percent", {"host": "a"}, NOW, 12.5), NOW) is None
    assert sample_problem(Sample("load_1m", {}, NOW, 3), NOW) is None


def test_gate_verdict_exit_codes() -> None:
    assert GateVerdict.PASS.exit_code == 0
    assert GateVerdict.BLOCK.exit_code == 1
    assert GateVerdict.CANNOT_EVALUATE.exit_code == 3
