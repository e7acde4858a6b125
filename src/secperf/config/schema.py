"""The whole validated configuration: one field per section of the config file."""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from secperf.config.fields import Section
from secperf.config.sections.agent import AgentConfig
from secperf.config.sections.alerts import AlertsConfig
from secperf.config.sections.bus import BusConfig
from secperf.config.sections.gate import GateConfig
from secperf.config.sections.monitor import MonitorConfig
from secperf.config.sections.report import ReportConfig
from secperf.config.sections.scan import ScanConfig
from secperf.config.sections.server import ServerConfig
from secperf.config.sections.siem import SiemConfig
from secperf.config.sections.store import StoreConfig


class Config(Section):
    """The whole validated configuration."""

    store: StoreConfig = Field(default_factory=StoreConfig)
    bus: BusConfig = BusConfig()
    scan: ScanConfig = Field(default_factory=ScanConfig)
    monitor: MonitorConfig = MonitorConfig()
    alerts: AlertsConfig = AlertsConfig()
    gate: GateConfig = Field(default_factory=GateConfig)
    server: ServerConfig = ServerConfig()
    agent: AgentConfig = Field(default_factory=AgentConfig)
    siem: SiemConfig = Field(default_factory=SiemConfig)
    report: ReportConfig = ReportConfig()

    @model_validator(mode="before")
    @classmethod
    def _validate_missing_sections(cls, data: Any) -> Any:
        # Absent sections are validated from {} rather than built by their
        # default factories, so that their relative paths resolve against the
        # project root passed in the validation context.
        if not isinstance(data, dict):
            return data
        return {**{name: {} for name in cls.model_fields}, **data}
