"""``[gate]``: the conditions of the CI quality gate."""

from __future__ import annotations

from typing import Annotated

import annotated_types
from pydantic import Field, Strict

from secperf.config.fields import (
    Bool,
    Fraction,
    NonNegInt,
    OpenFraction,
    Percent,
    ResolvedPath,
    Section,
    SeverityLevel,
    SizeBytes,
)
from secperf.model import Severity


class MaxNewConfig(Section):
    """``[gate.max_new]``: the most new findings allowed per severity (unset: no limit)."""

    critical: NonNegInt | None = None
    high: NonNegInt | None = None
    medium: NonNegInt | None = None
    low: NonNegInt | None = None
    info: NonNegInt | None = None

    def limits(self) -> dict[Severity, int]:
        """The limits that are set, by severity."""
        return {sev: limit for sev in Severity if (limit := getattr(self, sev.value)) is not None}


class OverheadBudgetConfig(Section):
    """``[gate.overhead_budget]``: the most a scan may cost the machine (unset: not checked)."""

    cpu_seconds: Annotated[float, Strict(), annotated_types.Gt(0.0)] | None = None
    peak_rss: SizeBytes | None = None
    host_cpu_percent: Percent | None = None


class GateConfig(Section):
    """``[gate]``: the conditions of the CI quality gate."""

    fail_on: SeverityLevel = Severity.HIGH
    max_new: MaxNewConfig = MaxNewConfig()
    block_on_secrets: Bool = True
    block_on_fixable_deps: Bool = True
    block_on_expired_acceptances: Bool = True
    min_coverage: Percent | None = None
    min_effect: Fraction = 0.05
    confidence: OpenFraction = 0.99
    scan_time_budget: Fraction = 0.20
    overhead_budget: OverheadBudgetConfig = OverheadBudgetConfig()
    waivers: ResolvedPath = Field(default="secperf-waivers.toml", validate_default=True)
