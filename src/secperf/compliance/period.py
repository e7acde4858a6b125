"""The report's period: ``--since`` / ``--until`` as durations back from now or UTC dates."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from secperf.config.units import parse_duration_ms

DAY_MS = 86_400_000
#: The longest period a report covers: ten years (its per-day tables stay bounded).
MAX_PERIOD_MS = 3_660 * DAY_MS
#: The latest instant a report names: 9999-12-31T23:59:59.999Z (dates print with four digits).
MAX_INSTANT_MS = 253_402_300_799_999


@dataclass(frozen=True, slots=True)
class Period:
    """A closed range of UTC milliseconds, ``since_ms <= until_ms``.

    ``requested_until_ms`` is the end asked for when it lay in the future and
    the period was cut at the time of writing (None otherwise).
    """

    since_ms: int
    until_ms: int
    requested_until_ms: int | None = None

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
    ms = int(parsed.timestamp() * 1000)
    if ms > MAX_INSTANT_MS:
        # A valid ISO time with an offset can land past year 9999 in UTC.
        raise ValueError(f"{what}: {text!r} is after 9999-12-31T23:59:59Z in UTC")
    return ms


def parse_period(since: str, until: str | None, now_ms: int) -> Period:
    """The period from ``since`` to ``until`` (default now); ValueError when it is empty.

    A duration in ``since`` counts back from the end of the period. An ``until``
    in the future is cut at ``now_ms``: nothing is stored after now, and a
    finding open today is not "open past SLA" on a day that has not come.
    """
    end = now_ms if until is None else parse_instant(until, now_ms, "--until")
    requested = None
    if end > now_ms:
        requested, end = end, now_ms
    # A duration in --since counts back from the period's end (90 days up to --until).
    start = parse_instant(since, end, "--since")
    if start > end:
        cut = " (cut at now: a period ends at the latest now)" if requested is not None else ""
        raise ValueError(
            f"--since ({since}) is after --until ({until or 'now'}){cut}: the period is empty"
        )
    if end - start > MAX_PERIOD_MS:
        raise ValueError(
            f"--since ({since}) to --until ({until or 'now'}) spans more than 3660 days;"
            " a report covers at most ten years"
        )
    if start < 0:
        raise ValueError(f"--since ({since}) is before 1970")
    return Period(start, end, requested)
