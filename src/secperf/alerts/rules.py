"""Alert rules: the ``Rule`` model, one for security and performance, and its small helpers.

A rule watches one metric (name + label matchers), aggregates each matching
series over a window and compares the result with a threshold. Three kinds:

- ``threshold`` (the default): ``aggregation(metric{matchers}[window]) op threshold``.
- ``scan_impact``: fires when scans significantly move a metric (see
  ``secperf.analysis.correlation``): effect >= ``min_effect_pct`` at q < ``max_q``.
- ``unexplained_anomaly``: the metric leaves ``median +- k * MAD`` of its recent
  history while no scan (or other known cause) ran; raised for a security look.

Rules are built and validated from config, dicts and files in
``secperf.alerts.rule_loading``; the shipped rule set is in
``secperf.alerts.default_rules``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from secperf.config import Matcher, format_duration_ms
from secperf.config.rule_checks import KINDS, NO_DATA_MODES
from secperf.model import MetricKind, MetricType, Severity

__all__ = [
    "KINDS",
    "NO_DATA_MODES",
    "Rule",
    "compare",
    "format_value",
    "render_template",
    "rule_summary",
]

_TEMPLATE_RE = re.compile(r"\{\{\s*\$(value|labels\.([a-zA-Z_][a-zA-Z0-9_]*))\s*\}\}")


@dataclass(frozen=True, slots=True)
class Rule:
    """One alert rule (see the module doc for the kinds)."""

    name: str
    metric: str
    threshold: float
    kind: str = "threshold"
    matchers: tuple[Matcher, ...] = ()
    aggregation: str = "last"
    window_ms: int = 300_000
    op: str = ">"
    resolve_threshold: float | None = None
    for_ms: int = 0
    keep_firing_for_ms: int = 0
    severity: Severity = Severity.MEDIUM
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    no_data: str = "nodata"  # nodata: raise a NODATA alert; ok: no series is fine
    side: MetricKind | None = None  # None: inferred from the metric
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def metric_kind(self) -> MetricKind:
        """Security or performance: explicit ``side``, else the metric's own kind."""
        if self.side is not None:
            return self.side
        if self.kind == "unexplained_anomaly":
            return MetricKind.SECURITY  # raised for a security look
        known = MetricType.lookup(self.metric)
        if known is not None:
            return known.kind
        return (
            MetricKind.SECURITY if self.metric.startswith("security_") else MetricKind.PERFORMANCE
        )

    @property
    def is_security(self) -> bool:
        """Rules evaluated at once when a scan completes."""
        return self.metric_kind is MetricKind.SECURITY or self.kind == "scan_impact"

    @property
    def alertname(self) -> str:
        """The ``alertname`` label: ``labels.alertname`` when set, else the rule name."""
        return self.labels.get("alertname", self.name)

    def fires(self, value: float) -> bool:
        """The firing condition: ``value op threshold``."""
        return compare(self.op, value, self.threshold)

    def holds(self, value: float) -> bool:
        """Whether a firing alert stays firing (the resolve threshold, when set)."""
        if self.resolve_threshold is None:
            return self.fires(value)
        return compare(self.op, value, self.resolve_threshold)


def compare(op: str, value: float, threshold: float) -> bool:
    """``value op threshold`` for the six comparison operators."""
    if op == ">":
        return value > threshold
    if op == ">=":
        return value >= threshold
    if op == "<":
        return value < threshold
    if op == "<=":
        return value <= threshold
    if op == "==":
        return value == threshold
    if op == "!=":
        return value != threshold
    raise ValueError(f"unknown comparison {op!r}")


def format_value(value: float | None) -> str:
    """A short human form of a value: ``94.2``, ``3``, ``0.0012``."""
    if value is None or not math.isfinite(value):
        return "n/a"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.3g}" if abs(value) < 1 else f"{value:.1f}"


def render_template(text: str, value: float | None, labels: Mapping[str, str]) -> str:
    """Substitute ``{{ $value }}`` and ``{{ $labels.x }}`` (plain substitution, no code)."""

    def replace(match: re.Match[str]) -> str:
        if match.group(1) == "value":
            return format_value(value)
        return labels.get(match.group(2) or "", "")

    return _TEMPLATE_RE.sub(replace, text)


def rule_summary(rule: Rule) -> str:
    """What a rule watches and when it fires, in one line (``rules check``, listings)."""
    matchers = ",".join(f"{m.name}{m.op}{_quoted(m.value)}" for m in rule.matchers)
    selector = f"{rule.metric}{{{matchers}}}" if matchers else rule.metric
    window = format_duration_ms(rule.window_ms)
    if rule.kind == "scan_impact":
        p = rule.params
        direction = {"up": "+", "down": "-", "any": "±"}.get(str(p.get("direction")), "")
        lookback = format_duration_ms(int(p.get("lookback") or rule.window_ms))
        return (
            f"scan_impact on {selector}: {direction}{float(p['min_effect_pct']):g} % "
            f"during scans at q < {float(p['max_q']):g} over {lookback}, {rule.severity.value}"
        )
    if rule.kind == "unexplained_anomaly":
        k = float(rule.params["k"])
        return (
            f"unexplained_anomaly on {selector}: beyond median ± {k:g} MAD of {window} "
            f"with no scan, {rule.severity.value}"
        )
    return (
        f"{rule.aggregation}({selector}[{window}]) {rule.op} {rule.threshold:g}, "
        f"{rule.severity.value}"
    )


def _quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
