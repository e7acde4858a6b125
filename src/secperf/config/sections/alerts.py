"""``[alerts]``: alert rules, inhibition, notifiers and Alertmanager-style grouping."""

from __future__ import annotations

from typing import Annotated, Literal

import annotated_types
from pydantic import Field

from secperf.config.fields import (
    Bool,
    DurationMs,
    Float,
    HttpUrl,
    LabelMatcher,
    LabelName,
    MetricName,
    NonEmptyStr,
    PositiveDurationMs,
    ResolvedPath,
    Section,
    SeverityLevel,
    Str,
)
from secperf.config.units import parse_duration_ms
from secperf.model import Severity

AGGREGATIONS = ("last", "avg", "min", "max", "p50", "p95", "p99", "rate", "increase", "count")
COMPARISONS = (">", ">=", "<", "<=", "==", "!=")


class AlertRuleConfig(Section):
    """``[[alerts.rules]]``: a threshold on an aggregated metric, for either side."""

    name: NonEmptyStr
    metric: MetricName
    matchers: list[LabelMatcher] = []
    aggregation: Literal[
        "last", "avg", "min", "max", "p50", "p95", "p99", "rate", "increase", "count"
    ] = "last"
    window: PositiveDurationMs = parse_duration_ms("5m")
    op: Literal[">", ">=", "<", "<=", "==", "!="] = ">"
    threshold: Float
    resolve_threshold: Float | None = None
    for_: DurationMs = Field(default=0, alias="for")
    keep_firing_for: DurationMs = 0
    severity: SeverityLevel = Severity.MEDIUM
    labels: dict[LabelName, Str] = {}
    annotations: dict[NonEmptyStr, Str] = {}


class InhibitRuleConfig(Section):
    """``[[alerts.inhibit_rules]]``: firing source alerts mute matching target alerts."""

    source_matchers: Annotated[list[LabelMatcher], annotated_types.MinLen(1)]
    target_matchers: Annotated[list[LabelMatcher], annotated_types.MinLen(1)]
    equal: list[LabelName] = []


class NotifierConfig(Section):
    """``[[alerts.notifiers]]``: where alert notifications go."""

    kind: Literal["webhook", "alertmanager", "log"]
    url: HttpUrl | None = None
    timeout: PositiveDurationMs = parse_duration_ms("10s")
    send_resolved: Bool = True


class AlertsConfig(Section):
    """``[alerts]``: rule evaluation and Alertmanager-style noise control."""

    evaluation_interval: PositiveDurationMs = parse_duration_ms("15s")
    group_by: list[LabelName] = ["alertname"]
    group_wait: DurationMs = parse_duration_ms("30s")
    group_interval: PositiveDurationMs = parse_duration_ms("5m")
    repeat_interval: PositiveDurationMs = parse_duration_ms("4h")
    default_rules: Bool = True
    rules: list[AlertRuleConfig] = []
    # TOML files of [[rules]] in the rule-file form, which also holds the
    # correlation kinds (scan_impact, unexplained_anomaly): see docs/alerts.md.
    rule_files: list[ResolvedPath] = []
    inhibit_rules: list[InhibitRuleConfig] = []
    notifiers: list[NotifierConfig] = []
