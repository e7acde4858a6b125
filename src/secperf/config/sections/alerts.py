"""``[alerts]``: alert rules, inhibition, notifiers and Alertmanager-style grouping."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any, Literal

import annotated_types
from pydantic import Field, Strict

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
from secperf.config.rule_checks import DURATION_PARAMS, KIND_PARAMS
from secperf.config.units import mask_url_path, parse_duration_ms
from secperf.model import Severity

AGGREGATIONS = ("last", "avg", "min", "max", "p50", "p95", "p99", "rate", "increase", "count")
COMPARISONS = (">", ">=", "<", "<=", "==", "!=")
#: A parameter number (TOML's 5 and 5.0 alike), finite.
Number = Annotated[float, Strict(), Field(allow_inf_nan=False)]


class AlertRuleConfig(Section):
    """``[[alerts.rules]]``: one alert rule, in the same form as a rule file's ``[[rules]]``.

    ``kind`` is ``threshold`` (the default: ``threshold`` is required) or one of
    the correlation kinds, ``scan_impact`` and ``unexplained_anomaly``, with
    their parameters (unset: the kind's default; see docs/alerts.md). What the
    values must mean across keys is checked by ``config.rule_checks``.
    """

    name: NonEmptyStr
    kind: Literal["threshold", "scan_impact", "unexplained_anomaly"] = "threshold"
    metric: MetricName
    matchers: list[LabelMatcher] = []
    aggregation: Literal[
        "last", "avg", "min", "max", "p50", "p95", "p99", "rate", "increase", "count"
    ] = "last"
    window: PositiveDurationMs = parse_duration_ms("5m")
    op: Literal[">", ">=", "<", "<=", "==", "!="] = ">"
    threshold: Float | None = None
    resolve_threshold: Float | None = None
    for_: DurationMs = Field(default=0, alias="for")
    keep_firing_for: DurationMs = 0
    severity: SeverityLevel = Severity.MEDIUM
    labels: dict[LabelName, Str] = {}
    annotations: dict[NonEmptyStr, Str] = {}
    no_data: Literal["nodata", "ok"] = "nodata"
    side: Literal["security", "performance"] | None = None
    # scan_impact
    min_effect_pct: Number | None = None
    max_q: Number | None = None
    direction: Literal["up", "down", "any"] | None = None
    lookback: DurationMs | None = None
    recompute_every: DurationMs | None = None
    lag: DurationMs | None = None
    min_scans: Number | None = None
    # unexplained_anomaly
    k: Number | None = None
    recent: DurationMs | None = None
    scan_margin: DurationMs | None = None
    min_points: Number | None = None
    explained_by: list[MetricName] | None = None

    def params(self) -> dict[str, Any]:
        """The kind's parameters, defaults filled in; durations in ms."""
        out: dict[str, Any] = {}
        for key, default in KIND_PARAMS[self.kind].items():
            value = getattr(self, key)
            if value is None:
                if key in DURATION_PARAMS:
                    value = parse_duration_ms(str(default))
                elif key == "explained_by":
                    value = [v for v in str(default).split(",") if v]
                else:
                    value = default
            out[key] = tuple(value) if key == "explained_by" else value
        return out


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

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        # A webhook's secret may be its path (Slack's /services/T.../B.../XXXX), as
        # well as a password or query token: only scheme://host[:port] is shown.
        for name, value in super().__repr_args__():
            yield name, mask_url_path(value) if name == "url" and value is not None else value


class AlertsConfig(Section):
    """``[alerts]``: rule evaluation and Alertmanager-style noise control."""

    evaluation_interval: PositiveDurationMs = parse_duration_ms("15s")
    group_by: list[LabelName] = ["alertname"]
    group_wait: DurationMs = parse_duration_ms("30s")
    group_interval: PositiveDurationMs = parse_duration_ms("5m")
    repeat_interval: PositiveDurationMs = parse_duration_ms("4h")
    default_rules: Bool = True
    rules: list[AlertRuleConfig] = []
    # TOML files of [[rules]], in the same form as [[alerts.rules]]: see docs/alerts.md.
    rule_files: list[ResolvedPath] = []
    inhibit_rules: list[InhibitRuleConfig] = []
    notifiers: list[NotifierConfig] = []
