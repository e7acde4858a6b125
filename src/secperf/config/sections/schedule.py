"""``[scan.schedule]``: when periodic scans start (quiet-time scheduling)."""

from __future__ import annotations

from secperf.config.fields import DurationMs, Percent, PositiveDurationMs, Section
from secperf.config.units import parse_duration_ms


class ScheduleConfig(Section):
    """``[scan.schedule]``: periodic scans start when the guards are quiet, within ``max_delay``.

    A guard is *quiet* when its current level (the median over ``window``) is
    at most ``quiet_pct`` % above the lowest level its hour-of-week profile
    (learned over ``history``) expects before ``max_delay`` runs out: waiting
    would not buy a clearly quieter moment. Otherwise the scan is planned at
    the start of the quietest expected hour, and never later than ``max_delay``.
    ``max_delay = "0"`` starts every periodic scan at once.
    """

    max_delay: DurationMs = parse_duration_ms("2h")
    quiet_pct: Percent = 20.0
    window: PositiveDurationMs = parse_duration_ms("1m")
    history: PositiveDurationMs = parse_duration_ms("28d")
