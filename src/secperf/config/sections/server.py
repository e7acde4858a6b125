"""``[server]``: the API and dashboard server; loopback unless a token is set."""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Any

import annotated_types
from pydantic import BeforeValidator, Field, SecretStr, Strict

from secperf.config.fields import Expect, PositiveSizeBytes, Section
from secperf.config.units import is_loopback_host, parse_size_bytes

#: A token shorter than this is refused: it would be guessable.
MIN_TOKEN_LENGTH = 16


def _host(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError("")
    try:
        ipaddress.ip_address(value.strip("[]"))
        return value
    except ValueError:
        pass
    if re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?", value):
        return value
    raise ValueError("")


class ServerConfig(Section):
    """``[server]``: the API and dashboard server; binds loopback unless told otherwise."""

    host: Annotated[str, BeforeValidator(_host), Expect("an IP address or a host name")] = (
        "127.0.0.1"
    )
    port: Annotated[int, Strict(), annotated_types.Ge(0), annotated_types.Le(65535)] = 8765
    # Prefer token_env: a token written in a committed file is no secret.
    token: SecretStr | None = None
    token_env: Annotated[
        str,
        Strict(),
        Field(pattern=r"^([A-Za-z_][A-Za-z0-9_]*)?$"),
        Expect("an environment variable name (or '' to read none)"),
    ] = "SECPERF_TOKEN"
    max_request_bytes: PositiveSizeBytes = parse_size_bytes("10MiB")
    # The OTLP receiver (/v1/metrics): its body as sent, and once gzip is undone.
    otlp_max_request_bytes: PositiveSizeBytes = parse_size_bytes("4MiB")
    otlp_max_decompressed_bytes: PositiveSizeBytes = parse_size_bytes("32MiB")
    otlp_scope_label: Annotated[bool, Strict(), Expect("true or false")] = False

    @property
    def is_loopback(self) -> bool:
        return is_loopback_host(self.host)

    @property
    def bind(self) -> str:
        """``host:port`` as a URL authority (IPv6 in brackets)."""
        host = f"[{self.host}]" if ":" in self.host and not self.host.startswith("[") else self.host
        return f"{host}:{self.port}"
