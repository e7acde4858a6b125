"""The alert rule set shipped with secperf (documented in docs/alerts.md)."""

from __future__ import annotations

import os

from secperf.alerts.rules import Rule
from secperf.alerts.silences import parse_matcher
from secperf.model import Severity

#: Metrics derived from ViolationDetected events (see ``security_metrics``).
SECURITY_NEW_FINDINGS = "security_new_findings"
SECURITY_FINDINGS = "security_findings"


def default_rules(cpu_count: int | None = None) -> list[Rule]:
    """The rule set shipped with secperf (documented in docs/alerts.md)."""
    cores = cpu_count or os.cpu_count() or 1
    host_only = (parse_matcher('cpu=""'),)
    return [
        Rule(
            name="HostHighCpu",
            metric="cpu_percent",
            matchers=host_only,
            aggregation="avg",
            window_ms=60_000,
            op=">",
            threshold=90.0,
            resolve_threshold=80.0,
            for_ms=300_000,
            severity=Severity.HIGH,
            no_data="ok",
            annotations={
                "summary": "CPU {{ $value }} % on host {{ $labels.host }} for 5m",
                "description": "Average CPU use over the last minute has stayed above 90 %.",
            },
        ),
        Rule(
            name="HostHighMemory",
            metric="memory_percent",
            aggregation="avg",
            window_ms=60_000,
            threshold=90.0,
            resolve_threshold=85.0,
            for_ms=300_000,
            severity=Severity.HIGH,
            no_data="ok",
            annotations={"summary": "memory {{ $value }} % used on host {{ $labels.host }}"},
        ),
        Rule(
            name="HostSwapping",
            metric="swap_percent",
            aggregation="avg",
            window_ms=300_000,
            threshold=50.0,
            resolve_threshold=40.0,
            for_ms=600_000,
            severity=Severity.MEDIUM,
            no_data="ok",
            annotations={"summary": "swap {{ $value }} % used on host {{ $labels.host }}"},
        ),
        Rule(
            name="HostHighLoad",
            metric="load_1m",
            aggregation="avg",
            window_ms=300_000,
            threshold=2.0 * cores,
            resolve_threshold=1.5 * cores,
            for_ms=600_000,
            severity=Severity.MEDIUM,
            no_data="ok",
            annotations={
                "summary": f"load {{{{ $value }}}} on host {{{{ $labels.host }}}} ({cores} cores)"
            },
        ),
        Rule(
            name="NewCriticalFinding",
            metric=SECURITY_NEW_FINDINGS,
            matchers=(parse_matcher('severity="critical"'),),
            aggregation="last",
            window_ms=86_400_000,
            threshold=0.0,
            severity=Severity.CRITICAL,
            no_data="ok",
            annotations={
                "summary": "{{ $value }} new critical finding(s) in the latest scan of "
                "{{ $labels.target }}",
            },
        ),
        Rule(
            name="SecretFound",
            metric=SECURITY_FINDINGS,
            matchers=(parse_matcher('category="secret"'),),
            aggregation="last",
            window_ms=86_400_000,
            threshold=0.0,
            severity=Severity.CRITICAL,
            no_data="ok",
            annotations={
                "summary": "{{ $value }} secret(s) found in {{ $labels.target }}",
                "description": "Rotate the secret, then remove it from the code and history.",
            },
        ),
        Rule(
            name="ScanCoverageLow",
            metric="security_scan_coverage",
            aggregation="last",
            window_ms=86_400_000,
            op="<",
            threshold=80.0,
            severity=Severity.MEDIUM,
            no_data="ok",
            annotations={"summary": "only {{ $value }} % of {{ $labels.target }} was scanned"},
        ),
        Rule(
            name="ScanTimeHigh",
            metric="security_scan_time",
            aggregation="p95",
            window_ms=86_400_000,
            threshold=60_000.0,
            resolve_threshold=45_000.0,
            severity=Severity.MEDIUM,
            no_data="ok",
            annotations={
                "summary": "scan time p95 {{ $value }} ms over 24h for {{ $labels.target }}"
            },
        ),
        Rule(
            name="FalsePositiveRateHigh",
            metric="security_false_positives",
            aggregation="last",
            window_ms=86_400_000,
            threshold=0.5,
            severity=Severity.LOW,
            no_data="ok",
            annotations={
                "summary": "{{ $value }} of the findings in {{ $labels.target }} are triaged "
                "as false positives: tune the rules",
            },
        ),
    ]
