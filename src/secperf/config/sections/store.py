"""``[store]``: where secperf keeps its data (SQLite or PostgreSQL) and for how long."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import BeforeValidator, Field, ValidationInfo, field_validator, model_validator

from secperf.config.fields import (
    DurationMs,
    Expect,
    PositiveDurationMs,
    Section,
    project_root,
    resolve_path,
    validate_positive_duration,
)
from secperf.config.units import format_duration_ms, mask_url, parse_duration_ms


def _store_url(value: Any, info: ValidationInfo) -> str:
    if value is None:
        return f"sqlite:///{project_root(info) / '.secperf' / 'secperf.db'}"
    if not isinstance(value, str) or not value.strip():
        raise ValueError("")
    text = value.strip()
    if "://" not in text:
        return f"sqlite:///{resolve_path(text, info)}"
    scheme, rest = text.split("://", 1)
    scheme = scheme.lower()
    if scheme == "sqlite":
        if not rest.startswith("/"):
            raise ValueError("")
        path = rest[1:]
        if path in ("", ":memory:"):
            return "sqlite://" if path == "" else "sqlite:///:memory:"
        return f"sqlite:///{resolve_path(path, info)}"
    if scheme in ("postgresql", "postgres", "postgresql+psycopg"):
        # psycopg 3 is the driver secperf ships with; SQLAlchemy's bare
        # "postgresql://" would pick psycopg2.
        if not urlsplit(f"postgresql://{rest}").hostname and "host=" not in rest:
            raise ValueError("a PostgreSQL URL needs a host")
        return f"postgresql+psycopg://{rest}"
    raise ValueError(f"unsupported database {scheme!r}")


StoreUrl = Annotated[
    str,
    BeforeValidator(_store_url),
    Expect(
        "a SQLite path, a sqlite:///PATH URL or a postgresql+psycopg://USER@HOST/DB URL",
        mask_url,
    ),
]


def _lenient_ms(value: Any) -> int | None:
    """A duration in ms, or None when it is not one (reported at its own key)."""
    try:
        return validate_positive_duration(value)
    except ValueError:
        return None


class StoreConfig(Section):
    """``[store]``: where secperf keeps its data and for how long."""

    url: StoreUrl = Field(default=None, validate_default=True)
    retention: DurationMs = parse_duration_ms("30d")
    # How long the event log other processes follow keeps events, and metric batches.
    event_log_retention: PositiveDurationMs = parse_duration_ms("24h")
    event_log_metrics_retention: PositiveDurationMs = parse_duration_ms("10m")
    # Downsampling tiers (store/tiers.py): raw samples, then 1-minute and 1-hour
    # rollups (min, max, sum, count); each coarser tier is kept at least as long.
    retention_raw: PositiveDurationMs = parse_duration_ms("7d")
    retention_1m: PositiveDurationMs = parse_duration_ms("90d")
    retention_1h: PositiveDurationMs = parse_duration_ms("730d")

    @model_validator(mode="before")
    @classmethod
    def _tier_defaults_follow(cls, data: Any) -> Any:
        # Before the tiers, ``retention`` bounded raw samples too: a store told to
        # keep less than the raw default still does, unless retention_raw says
        # otherwise. A tier left at its default is kept at least as long as the
        # finer one set explicitly (an explicit contradiction is an error below).
        if not isinstance(data, dict):
            return data
        data = dict(data)
        if "retention" in data and "retention_raw" not in data:
            short = _lenient_ms(data["retention"])
            if short is not None and short < parse_duration_ms("7d"):
                data["retention_raw"] = data["retention"]
        for finer, coarser, default in (
            ("retention_raw", "retention_1m", "90d"),
            ("retention_1m", "retention_1h", "730d"),
        ):
            wanted = _lenient_ms(data.get(finer))
            if coarser not in data and wanted is not None and wanted > parse_duration_ms(default):
                data[coarser] = data[finer]
        return data

    @field_validator("retention_1m", "retention_1h")
    @classmethod
    def _tiers_grow_coarser(cls, value: int, info: ValidationInfo) -> int:
        finer = "retention_raw" if info.field_name == "retention_1m" else "retention_1m"
        limit = info.data.get(finer)
        if isinstance(limit, int) and value < limit:
            raise ValueError(
                f"must be at least store.{finer} ({format_duration_ms(limit)}): a coarser"
                " tier takes over only once the finer one's data is dropped"
            )
        return value

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        # A PostgreSQL URL may carry a password.
        for name, value in super().__repr_args__():
            yield name, mask_url(value) if name == "url" else value

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith("sqlite:")
