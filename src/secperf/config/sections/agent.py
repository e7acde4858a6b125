"""``[agent]``: a host that publishes its metrics and scans to a central server."""

from __future__ import annotations

import socket

from pydantic import Field

from secperf.config.fields import DurationMs, NonEmptyStr, Section
from secperf.config.units import parse_duration_ms


class AgentConfig(Section):
    """``[agent]``: a host that publishes its metrics and scans to a central server."""

    host_label: NonEmptyStr = Field(default_factory=socket.gethostname)
    scan_interval: DurationMs = parse_duration_ms("1h")
