"""``[report]``: the compliance report's remediation policy and performance objectives."""

from __future__ import annotations

from typing import Annotated, Self

import annotated_types
from pydantic import Field, model_validator

from secperf.config.fields import LabelMatcher, MetricName, Percent, PositiveDurationMs, Section
from secperf.model import Severity

_DAY_MS = 86_400_000

#: A bound of an objective: a finite number (TOML writes ``250`` as an integer).
Bound = Annotated[float, Field(allow_inf_nan=False)]


class RemediationSlaConfig(Section):
    """``[report] remediation_sla``: how long a finding of each severity may stay open.

    From first seen to fixed; an unset severity (``info`` by default) has no deadline.
    """

    critical: PositiveDurationMs | None = 7 * _DAY_MS
    high: PositiveDurationMs | None = 30 * _DAY_MS
    medium: PositiveDurationMs | None = 90 * _DAY_MS
    low: PositiveDurationMs | None = 180 * _DAY_MS
    info: PositiveDurationMs | None = None

    def deadline_ms(self, severity: Severity | str) -> int | None:
        """The time allowed for ``severity`` in ms, or None when it has no deadline."""
        value: int | None = getattr(self, Severity(severity).value)
        return value


class ObjectiveConfig(Section):
    """``[[report.objectives]]``: a performance objective and how often it must hold.

    ``max`` (or ``min``) bounds the metric's value; ``target_pct`` is the share
    of the time the bound must hold, e.g. p95 latency <= 250 ms 99 % of the time.
    """

    metric: MetricName
    matchers: list[LabelMatcher] = []
    max: Bound | None = None
    min: Bound | None = None
    target_pct: Percent = 99.0
    name: Annotated[str, annotated_types.MinLen(1)] | None = None

    @model_validator(mode="after")
    def _one_bound(self) -> Self:
        if self.max is None and self.min is None:
            raise ValueError("an objective needs max or min (the bound its metric must keep)")
        if self.max is not None and self.min is not None and self.min > self.max:
            raise ValueError(f"min {self.min} is above max {self.max}: nothing can meet both")
        return self

    @property
    def title(self) -> str:
        """The objective as people read it: its name, or metric, matchers and bound."""
        if self.name:
            return self.name
        labels = ",".join(str(m) for m in self.matchers)
        bound = []
        if self.min is not None:
            bound.append(f">= {self.min:g}")
        if self.max is not None:
            bound.append(f"<= {self.max:g}")
        return (
            f"{self.metric}{{{labels}}} {' and '.join(bound)} for {self.target_pct:g} % of the time"
        )


class ReportConfig(Section):
    """``[report]``: what the compliance report (``secperf report``) measures against."""

    remediation_sla: RemediationSlaConfig = RemediationSlaConfig()
    objectives: list[ObjectiveConfig] = []
