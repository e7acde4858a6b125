"""``[siem]``: security events forwarded to a SIEM as RFC 5424 syslog over TCP or TLS.

Each ``[[siem.outputs]]`` names a receiver (``tcp://host:port`` or
``tls://host:port``), a message format (``cef`` or ``ecs``) and the kinds of
events it wants. What is not yet delivered waits in a bounded on-disk queue
under ``queue_dir`` (default: beside the SQLite store).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import annotated_types
from pydantic import BeforeValidator, Field, Strict, model_validator

from secperf.config.fields import (
    Bool,
    Expect,
    PositiveDurationMs,
    PositiveInt,
    PositiveSizeBytes,
    ResolvedPath,
    Section,
)
from secperf.config.units import parse_duration_ms, parse_size_bytes

#: The kinds of security events a SIEM output may ask for, in the order documented.
SIEM_EVENT_KINDS = (
    "finding.new",
    "finding.fixed",
    "secret",
    "triage",
    "alert.firing",
    "alert.resolved",
    "gate",
    "scan.throttled",
)

#: Syslog facility names (RFC 5424 section 6.2.1) and their codes.
SYSLOG_FACILITIES: dict[str, int] = {
    "kern": 0,
    "user": 1,
    "mail": 2,
    "daemon": 3,
    "auth": 4,
    "syslog": 5,
    "lpr": 6,
    "news": 7,
    "uucp": 8,
    "cron": 9,
    "authpriv": 10,
    "ftp": 11,
    "ntp": 12,
    "audit": 13,
    "alert": 14,
    "clock": 15,
    **{f"local{i}": 16 + i for i in range(8)},
}


def _address(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("")
    parts = urlsplit(value.strip())
    if parts.scheme not in ("tcp", "tls") or not parts.hostname:
        raise ValueError("")
    try:
        port = parts.port
    except ValueError:
        raise ValueError("the port must be a number from 1 to 65535") from None
    if port is None:
        raise ValueError("it needs a port, e.g. tcp://siem.example.com:514")
    if parts.path not in ("", "/") or parts.query or parts.username:
        raise ValueError("only scheme, host and port are allowed")
    return value.strip()


def _facility(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("")
    if isinstance(value, int):
        if 0 <= value <= 23:
            return value
        raise ValueError("a facility number is from 0 to 23")
    if isinstance(value, str) and value.strip().lower() in SYSLOG_FACILITIES:
        return SYSLOG_FACILITIES[value.strip().lower()]
    raise ValueError("")


def _event_kind(value: Any) -> str:
    if isinstance(value, str) and value in SIEM_EVENT_KINDS:
        return value
    raise ValueError("")


#: RFC 5424 APP-NAME: 1 to 48 printable US-ASCII characters, no space.
_APP_NAME_RE = r"^[!-~]{1,48}$"
_OUTPUT_NAME_RE = r"^[A-Za-z0-9_-]{1,64}$"

SiemAddress = Annotated[
    str,
    BeforeValidator(_address),
    Expect("a receiver address such as 'tcp://127.0.0.1:514' or 'tls://siem.example.com:6514'"),
]
SiemEventKind = Annotated[
    str,
    BeforeValidator(_event_kind),
    Expect("an event kind: one of " + ", ".join(SIEM_EVENT_KINDS)),
]
Facility = Annotated[
    int,
    BeforeValidator(_facility),
    Expect("a syslog facility name such as 'local0' or 'auth', or a number from 0 to 23"),
]
AppName = Annotated[
    str,
    Strict(),
    Field(pattern=_APP_NAME_RE),
    Expect("1 to 48 printable ASCII characters without spaces"),
]
OutputName = Annotated[
    str,
    Strict(),
    Field(pattern=_OUTPUT_NAME_RE),
    Expect("a name of letters, digits, '_' and '-' (at most 64)"),
]


def default_output_name(address: str) -> str:
    """The queue name of an output without one: its address, as a file-name-safe word."""
    parts = urlsplit(address)
    return re.sub(r"[^A-Za-z0-9_-]+", "-", f"{parts.scheme}-{parts.hostname}-{parts.port}")[:64]


class SiemOutputConfig(Section):
    """``[[siem.outputs]]``: one syslog receiver, its format and the events it gets."""

    name: OutputName | None = None
    address: SiemAddress
    format: Literal["cef", "ecs"] = "cef"
    events: Annotated[list[SiemEventKind], annotated_types.MinLen(1)] = list(SIEM_EVENT_KINDS)
    app_name: AppName = "secperf"
    facility: Facility = SYSLOG_FACILITIES["local0"]
    max_queue_bytes: PositiveSizeBytes = parse_size_bytes("64MiB")
    max_events: PositiveInt = 100_000
    connect_timeout: PositiveDurationMs = parse_duration_ms("10s")
    retry_initial: PositiveDurationMs = parse_duration_ms("1s")
    retry_max: PositiveDurationMs = parse_duration_ms("5m")
    # TLS (tls:// addresses only): the CA bundle to trust (default: the system's),
    # whether to verify the receiver's certificate and name, a client certificate.
    ca_file: ResolvedPath | None = None
    verify: Bool = True
    cert_file: ResolvedPath | None = None
    key_file: ResolvedPath | None = None
    server_name: Annotated[str, Strict(), annotated_types.MinLen(1)] | None = None

    @model_validator(mode="after")
    def _tls_keys_need_tls(self) -> SiemOutputConfig:
        if not self.is_tls:
            given = [
                key
                for key in ("ca_file", "cert_file", "key_file", "server_name")
                if getattr(self, key) is not None
            ]
            if given or not self.verify:
                keys = ", ".join(given or ["verify"])
                raise ValueError(f"{keys} apply to tls:// addresses only; {self.address} is tcp")
        if self.key_file is not None and self.cert_file is None:
            raise ValueError("key_file needs cert_file (the client certificate)")
        if self.retry_max < self.retry_initial:
            raise ValueError("retry_max must be at least retry_initial")
        return self

    @property
    def is_tls(self) -> bool:
        """Whether the receiver is reached over TLS."""
        return self.address.startswith("tls://")

    @property
    def host(self) -> str:
        """The receiver's host name or address."""
        return urlsplit(self.address).hostname or ""

    @property
    def port(self) -> int:
        """The receiver's TCP port."""
        return urlsplit(self.address).port or 0

    @property
    def queue_name(self) -> str:
        """The name of this output's queue file (``siem-<name>.db``) and in metrics."""
        return self.name or default_output_name(self.address)


class SiemConfig(Section):
    """``[siem]``: where security events are forwarded, and where they wait meanwhile."""

    outputs: list[SiemOutputConfig] = []
    # Where each output's queue (siem-<name>.db) lives; default: the SQLite store's
    # directory, and .secperf/ in the working directory for a PostgreSQL store.
    queue_dir: ResolvedPath | None = None


def siem_problems(config: SiemConfig, prefix: str = "") -> list[tuple[str, str]]:
    """What ``[siem]`` gets wrong across keys and on disk, each as (dotted key, message).

    Two outputs with one name would share a queue file; a TLS file that is not
    there would stop ``serve`` at start, so loading the config says so first.
    """
    problems: list[tuple[str, str]] = []
    first_with: dict[str, int] = {}
    for index, output in enumerate(config.outputs):
        key = f"siem.outputs[{index}]"
        name = output.queue_name
        if name in first_with:
            how = "" if output.name else ", named after its address"
            problems.append(
                (
                    f"{key}.name",
                    f"two outputs share the name {name!r} ({prefix}siem.outputs"
                    f"[{first_with[name]}] and {prefix}{key}{how}); give each a distinct name",
                )
            )
        else:
            first_with[name] = index
        for field in ("ca_file", "cert_file", "key_file"):
            path = getattr(output, field)
            if path is not None and not path.is_file():
                problems.append((f"{key}.{field}", f"no such file: {str(path)!r}"))
    return problems
