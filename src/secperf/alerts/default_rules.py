"""The alert rule set shipped with secperf (documented in docs/alerts.md).

Besides thresholds on the host and on scan results, two correlation rules are
on by default, so that out of the box someone is told when scans slow the
machine or the services it runs: ``ScansRaiseHostCpu`` (host CPU) and
``ScansSlowLatency`` (every series of ``response_time_ms``, whatever its job,
instance or quantile: each scraped target's latency is judged on its own).
Their thresholds were tuned on ``secperf demo`` (docs/alerts.md has the
figures): the demo's noise, compared in scan-free windows, moves latency by
at most ~10 % at q ~0.7, while a scan's real effect is +54 % to +75 % at q
below 1e-8.
"""

from __future__ import annotations

import os

from secperf.alerts.rules import Rule
from secperf.alerts.silences import parse_matcher
from secperf.model import Severity

#: Metrics derived from ViolationDetected events (see ``security_metrics``).
SECURITY_NEW_FINDINGS = "security_new_findings"
SECURITY_FINDINGS = "security_findings"
#: secperf's latency metric (milliseconds), as scraped targets and the demo expose it.
LATENCY_METRIC = "response_time_ms"


def _impact_params(min_effect_pct: float) -> dict[str, float | int | str | tuple[str, ...]]:
    """Parameters of a default scan_impact rule (as ``rule_from_dict`` would build them)."""
    return {
        "min_effect_pct": min_effect_pct,
        "max_q": 0.01,
        "direction": "up",
        "lookback": 86_400_000,
        "recompute_every": 600_000,
        "lag": 0,
        # One or two scans can line up with noise by chance; three cannot easily.
        "min_scans": 3.0,
    }


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
            name="ScansRaiseHostCpu",
            kind="scan_impact",
            metric="cpu_percent",
            matchers=host_only,
            threshold=0.0,
            resolve_threshold=30.0,
            severity=Severity.MEDIUM,
            no_data="ok",
            params=_impact_params(50.0),
            annotations={
                "summary": "scans raise host CPU on {{ $labels.host }} by {{ $value }} %",
                "description": "Host CPU during scans against matched scan-free windows "
                "(q < 0.01, at least 3 scans). Lower the scan's priority or its workers "
                "([scan] jobs), or schedule scans for quiet hours.",
            },
        ),
        Rule(
            name="ScansSlowLatency",
            kind="scan_impact",
            metric=LATENCY_METRIC,
            threshold=0.0,
            resolve_threshold=15.0,
            severity=Severity.HIGH,
            no_data="ok",
            params=_impact_params(25.0),
            annotations={
                "summary": "latency of {{ $labels.job }} at {{ $labels.instance }} "
                "{{ $value }} % higher during scans",
                "description": "A scraped service answers slower while secperf scans "
                "(q < 0.01, at least 3 scans). Scan with fewer workers or at a lower "
                "priority, or move scans off the service's machine.",
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
