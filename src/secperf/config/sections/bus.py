"""``[bus]``: the in-process event bus (the default) or NATS JetStream."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import BeforeValidator, Field, Strict

from secperf.config.fields import Expect, PositiveInt, Section
from secperf.config.units import mask_url


def _bus_url(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("")
    if value == "memory://":
        return value
    parts = urlsplit(value)
    if parts.scheme not in ("nats", "tls") or not parts.hostname:
        raise ValueError("")
    try:
        parts.port  # noqa: B018 (raises on a bad port)
    except ValueError:
        raise ValueError("the port must be a number from 1 to 65535") from None
    return value


BusUrl = Annotated[
    str,
    BeforeValidator(_bus_url),
    Expect("'memory://' or a NATS URL such as 'nats://127.0.0.1:4222'", mask_url),
]
NatsName = Annotated[
    str,
    Strict(),
    Field(pattern=r"^[A-Za-z0-9_-]+$"),
    Expect("a NATS name of letters, digits, '_' and '-'"),
]


class BusConfig(Section):
    """``[bus]``: the in-process bus (default) or NATS JetStream."""

    url: BusUrl = "memory://"
    queue_size: PositiveInt = 10_000
    stream: NatsName = "SECPERF"
    subject_prefix: NatsName = "secperf"

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        for name, value in super().__repr_args__():
            yield name, mask_url(value) if name == "url" else value

    @property
    def is_nats(self) -> bool:
        return self.url != "memory://"
