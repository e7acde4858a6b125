"""secperf's configuration: where it is read from, what it may hold, and what is wrong with it.

Sources, first found wins: an explicit file; ``secperf.toml`` in the project
directory; the ``[tool.secperf]`` table of ``pyproject.toml``; the defaults.
Every section is a frozen pydantic model that forbids unknown keys. Any problem
raises one ``ConfigError`` whose message lists each wrong key (one per line) with
the file, the dotted key and what is allowed.

Units in the validated config: durations are integer milliseconds, sizes are
integer bytes, fractions are floats (``"5%"`` is 0.05), percentages are floats
from 0 to 100, and relative paths are resolved against the project root.

The package: ``units`` (durations, sizes, masked URLs), ``fields`` (the field
types and the section base), ``sections/`` (one module per table), ``schema``
(the whole), ``load`` (finding and reading the file), ``checks`` (the token and
rules across keys), ``errors`` (``ConfigError`` and the text of each problem)
and ``export`` (the config written back as TOML).
"""

from __future__ import annotations

from secperf.config.errors import ConfigError
from secperf.config.export import export_config, to_toml
from secperf.config.fields import Matcher
from secperf.config.load import (
    CONFIG_FILE_NAME,
    PYPROJECT_FILE_NAME,
    PYPROJECT_PREFIX,
    LoadedConfig,
    load_config,
)
from secperf.config.schema import Config
from secperf.config.sections.agent import AgentConfig
from secperf.config.sections.alerts import (
    AGGREGATIONS,
    COMPARISONS,
    AlertRuleConfig,
    AlertsConfig,
    InhibitRuleConfig,
    NotifierConfig,
)
from secperf.config.sections.bus import BusConfig
from secperf.config.sections.gate import GateConfig, MaxNewConfig, OverheadBudgetConfig
from secperf.config.sections.monitor import (
    ImpactConfig,
    MonitorConfig,
    ProcessCollectorConfig,
    PrometheusScrapeConfig,
    PrometheusTargetConfig,
    SystemCollectorConfig,
)
from secperf.config.sections.scan import (
    DEFAULT_EXCLUDES,
    MIN_WORKER_MEMORY,
    BanditConfig,
    DepsConfig,
    SarifImportConfig,
    ScanConfig,
    SecretsConfig,
    SemgrepConfig,
)
from secperf.config.sections.server import MIN_TOKEN_LENGTH, ServerConfig
from secperf.config.sections.store import StoreConfig
from secperf.config.units import (
    MASK,
    format_duration_ms,
    format_size_bytes,
    is_loopback_host,
    mask_url,
    parse_duration_ms,
    parse_duration_s,
    parse_size_bytes,
)

# The scanner ids live in model (security reads them too); config validates against them.
from secperf.model import SCANNER_IDS, ScannerId

__all__ = [
    "AGGREGATIONS",
    "COMPARISONS",
    "CONFIG_FILE_NAME",
    "DEFAULT_EXCLUDES",
    "MASK",
    "MIN_TOKEN_LENGTH",
    "MIN_WORKER_MEMORY",
    "PYPROJECT_FILE_NAME",
    "PYPROJECT_PREFIX",
    "SCANNER_IDS",
    "AgentConfig",
    "AlertRuleConfig",
    "AlertsConfig",
    "BanditConfig",
    "BusConfig",
    "Config",
    "ConfigError",
    "DepsConfig",
    "GateConfig",
    "ImpactConfig",
    "InhibitRuleConfig",
    "LoadedConfig",
    "Matcher",
    "MaxNewConfig",
    "MonitorConfig",
    "NotifierConfig",
    "OverheadBudgetConfig",
    "ProcessCollectorConfig",
    "PrometheusScrapeConfig",
    "PrometheusTargetConfig",
    "SarifImportConfig",
    "ScanConfig",
    "ScannerId",
    "SecretsConfig",
    "SemgrepConfig",
    "ServerConfig",
    "StoreConfig",
    "SystemCollectorConfig",
    "export_config",
    "format_duration_ms",
    "format_size_bytes",
    "is_loopback_host",
    "load_config",
    "mask_url",
    "parse_duration_ms",
    "parse_duration_s",
    "parse_size_bytes",
    "to_toml",
]
