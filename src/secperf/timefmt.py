"""How secperf writes a moment as text: every time format in one place.

Times are UTC integer milliseconds (docs/architecture.md); these functions turn
one into the few texts messages, reports and file names use, so the same
moment reads the same everywhere. Imports nothing of secperf.
"""

from __future__ import annotations

from datetime import UTC, datetime


def utc_datetime(ms: int) -> datetime:
    """UTC milliseconds as an aware ``datetime``."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def iso_seconds(ms: int) -> str:
    """``2024-05-01 12:00:05 UTC``: a moment in a message, to the second."""
    return utc_datetime(ms).strftime("%Y-%m-%d %H:%M:%S UTC")


def iso_minutes(ms: int) -> str:
    """``2024-05-01 12:00 UTC``: a moment in advice, where seconds are noise."""
    return utc_datetime(ms).strftime("%Y-%m-%d %H:%M UTC")


def iso_date(ms: int) -> str:
    """``2024-05-01``: the UTC day of a moment."""
    return utc_datetime(ms).date().isoformat()


def clock_seconds(ms: int) -> str:
    """``12:00:05``: the UTC time of day, for a sentence about today."""
    return utc_datetime(ms).strftime("%H:%M:%S")


def file_stamp(ms: int) -> str:
    """``20240501T120005Z``: a moment in a file name (sorts by time, no separators)."""
    return utc_datetime(ms).strftime("%Y%m%dT%H%M%SZ")


__all__ = [
    "clock_seconds",
    "file_stamp",
    "iso_date",
    "iso_minutes",
    "iso_seconds",
    "utc_datetime",
]
