"""``[monitor]``: the collectors of host, process and Prometheus metrics; scan impact sampling."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pydantic import model_validator

from secperf.config.fields import (
    Bool,
    HttpUrl,
    LabelName,
    NonEmptyStr,
    PositiveDurationMs,
    PositiveInt,
    Regex,
    Section,
    Str,
    validate_positive_duration,
)
from secperf.config.units import mask_url, parse_duration_ms


class SystemCollectorConfig(Section):
    """``[monitor.system]``: CPU, memory, load, disk and network of the host."""

    enabled: Bool = True
    interval: PositiveDurationMs = parse_duration_ms("1s")
    per_cpu: Bool = True


class ProcessCollectorConfig(Section):
    """``[monitor.process]``: chosen processes, and secperf's own."""

    enabled: Bool = True
    interval: PositiveDurationMs = parse_duration_ms("1s")
    pids: list[PositiveInt] = []
    names: list[NonEmptyStr] = []
    cmdline_patterns: list[Regex] = []
    include_self: Bool = True


class PrometheusTargetConfig(Section):
    """``[[monitor.prometheus.targets]]``: one endpoint in the Prometheus text format."""

    name: NonEmptyStr
    url: HttpUrl
    interval: PositiveDurationMs = parse_duration_ms("15s")
    timeout: PositiveDurationMs = parse_duration_ms("5s")
    labels: dict[LabelName, Str] = {}

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        # A target's URL may carry a password or a ?token=.
        for name, value in super().__repr_args__():
            yield name, mask_url(value) if name == "url" else value


class PrometheusScrapeConfig(Section):
    """``[monitor.prometheus]``: targets to scrape."""

    enabled: Bool = True
    targets: list[PrometheusTargetConfig] = []


class ImpactConfig(Section):
    """``[monitor.impact]``: fine-grained sampling of the machine while a scan runs."""

    enabled: Bool = True
    interval: PositiveDurationMs = parse_duration_ms("100ms")


class MonitorConfig(Section):
    """``[monitor]``: the collectors; ``interval`` is the default of system and process."""

    enabled: Bool = True
    interval: PositiveDurationMs = parse_duration_ms("1s")
    system: SystemCollectorConfig = SystemCollectorConfig()
    process: ProcessCollectorConfig = ProcessCollectorConfig()
    prometheus: PrometheusScrapeConfig = PrometheusScrapeConfig()
    impact: ImpactConfig = ImpactConfig()

    @model_validator(mode="before")
    @classmethod
    def _inherit_interval(cls, data: Any) -> Any:
        # The system and process collectors follow monitor.interval unless set.
        if not isinstance(data, dict) or "interval" not in data:
            return data
        try:
            validate_positive_duration(data["interval"])
        except ValueError:
            return data  # reported once, at monitor.interval
        data = dict(data)
        for sub in ("system", "process"):
            section = data.get(sub, {})
            if isinstance(section, dict) and "interval" not in section:
                data[sub] = {**section, "interval": data["interval"]}
        return data
