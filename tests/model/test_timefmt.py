"""The time formats of secperf.timefmt: each text exactly as messages and reports show it."""

from __future__ import annotations

from secperf.timefmt import (
    clock_seconds,
    file_stamp,
    iso_date,
    iso_minutes,
    iso_seconds,
    utc_datetime,
)

# 2024-05-01 12:00:05.999 UTC: the milliseconds never round a second up.
MOMENT = 1_714_564_805_999


def test_every_format_of_one_moment() -> None:
    assert iso_seconds(MOMENT) == "2024-05-01 12:00:05 UTC"
    assert iso_minutes(MOMENT) == "2024-05-01 12:00 UTC"
    assert iso_date(MOMENT) == "2024-05-01"
    assert clock_seconds(MOMENT) == "12:00:05"
    assert file_stamp(MOMENT) == "20240501T120005Z"
    assert utc_datetime(MOMENT).utcoffset() is not None


def test_the_day_is_the_utc_day() -> None:
    assert iso_date(0) == "1970-01-01"
    assert iso_date(86_400_000 - 1) == "1970-01-01"
    assert iso_date(86_400_000) == "1970-01-02"
