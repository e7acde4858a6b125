"""The report's period: ``--since`` / ``--until`` as durations back from now or UTC dates."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from secperf.config.units import parse_duration_ms

DAY_MS = 86_400_000
#: The longest period a report covers: ten years (its per-day tables stay bounded).
MAX_PERIOD_MS = 3_660 * DAY_MS


@dataclass(frozen=True, slots=True)
class Period:
    """A closed range of UTC milliseconds, ``since_ms <= until_ms``."""

    since_ms: int
    until_ms: int

    def holds(self, ms: int | None) -> bool:
        """Whether ``ms`` falls in the period (None never does)."""
        return ms is not None and self.since_ms <= ms <= self.until_ms

    def days(self) -> list[int]:
        """The start of every UTC day the period touches, oldest first."""
        first = self.since_ms - self.since_ms % DAY_MS
        return list(range(first, self.until_ms + 1, DAY_MS))


def parse_instant(text: str, now_ms: int, what: str) -> int:
    """``text`` as UTC ms: a duration back from ``now_ms`` (``90d``), a date or an ISO time.

    Raises ValueError naming ``what`` and the forms accepted.
    """
    value = text.strip()
    if value.lower() == "now":
        return now_ms
    try:
        return now_ms - parse_duration_ms(value)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"{what}: {text!r} is neither a duration back from now (such as 90d, 12h)"
            " nor a UTC date or time (such as 2026-01-31 or 2026-01-31T12:00:00Z)"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp() * 1000)


def parse_period(since: str, until: str | None, now_ms: int) -> Period:
    """The period from ``since`` to ``until`` (default now); ValueError when it is empty.

    A duration in ``since`` counts back from the end of the period.
    """
    end = now_ms if until is None else parse_instant(until, now_ms, "--until")
    # A duration in --since counts back from the period's end (90 days up to --until).
    start = parse_instant(since, end, "--since")
    if start > end:
        raise ValueError(
            f"--since ({since}) is after --until ({until or 'now'}): the period is empty"
        )
    if end - start > MAX_PERIOD_MS:
        raise ValueError(
            f"--since ({since}) to --until ({until or 'now'}) spans more than 3660 days;"
            " a report covers at most ten years"
        )
    if start < 0:
        raise ValueError(f"--since ({since}) is before 1970")
    return Period(start, end)
