"""``[store]``: where secperf keeps its data (SQLite or PostgreSQL) and for how long."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import BeforeValidator, Field, ValidationInfo

from secperf.config.fields import (
    DurationMs,
    Expect,
    PositiveDurationMs,
    Section,
    project_root,
    resolve_path,
)
from secperf.config.units import mask_url, parse_duration_ms


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


class StoreConfig(Section):
    """``[store]``: where secperf keeps its data and for how long."""

    url: StoreUrl = Field(default=None, validate_default=True)
    retention: DurationMs = parse_duration_ms("30d")
    # How long the event log other processes follow keeps events, and metric batches.
    event_log_retention: PositiveDurationMs = parse_duration_ms("24h")
    event_log_metrics_retention: PositiveDurationMs = parse_duration_ms("10m")

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        # A PostgreSQL URL may carry a password.
        for name, value in super().__repr_args__():
            yield name, mask_url(value) if name == "url" else value

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith("sqlite:")
