"""Typed events: what travels on the bus, to NATS and to the browser.

Every event has an id (time-ordered, unique) and a timestamp, a dotted topic
(NATS subject style) and a JSON form that round-trips exactly:
``decode_event(encode_event(e)) == e``. Imports only ``model``.

Besides what the sources publish, people's actions are events too
(``FindingTriaged``, ``AlertAcknowledged``, ``SilenceAdded``,
``SilenceExpired``), and so are benchmark results stored
(``BenchmarksRecorded``): the store writes them to its event log with the records
they describe, so every server following that log hears of them.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass, field
from functools import cache
from typing import Any, ClassVar

from pydantic import TypeAdapter, ValidationError

from secperf.model import Alert, AlertState, Finding, GateResult, Sample, SecurityMetrics


def now_ms() -> int:
    """The current UTC time in integer milliseconds."""
    return time.time_ns() // 1_000_000


def new_event_id() -> str:
    """A unique id that sorts by creation time (ms timestamp + 48 random bits)."""
    return f"{now_ms():012x}{os.urandom(6).hex()}"


@cache
def local_host() -> str:
    """This machine's host name, the default ``host`` of every event."""
    return socket.gethostname()


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """Base of every event. ``droppable`` events may be shed under overload."""

    topic: ClassVar[str] = "event"
    droppable: ClassVar[bool] = False

    id: str = field(default_factory=new_event_id)
    ts_ms: int = field(default_factory=now_ms)
    host: str = field(default_factory=local_host)


@dataclass(frozen=True, slots=True, kw_only=True)
class ScanStarted(Event):
    """A security scan began.

    ``owner_pid`` and ``owner_host`` name the process running the scan (by
    default the one creating the event), so a scan whose process died can be
    told from one still running; both are None in events sent before they existed.
    """

    topic: ClassVar[str] = "security.scan.started"

    scan_id: str
    target: str
    scanners: tuple[str, ...] = ()
    files_total: int = 0
    owner_pid: int | None = field(default_factory=os.getpid)
    owner_host: str | None = field(default_factory=local_host)


@dataclass(frozen=True, slots=True, kw_only=True)
class ScanCompleted(Event):
    """A security scan ended; ``status`` is ``ok``, ``partial``, ``failed`` or ``interrupted``.

    ``interrupted``: stopped cleanly (SIGTERM, Ctrl-C, a server shutting down)
    before the end; the metrics cover what was scanned until then.
    ``prediction`` and ``pacing``: the scan's prediction and pacing documents,
    sent by a process without a store (an agent) for the server to store.
    """

    topic: ClassVar[str] = "security.scan.completed"

    metrics: SecurityMetrics
    status: str = "ok"
    error: str | None = None
    prediction: dict[str, Any] | None = None
    pacing: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ViolationDetected(Event):
    """A scan found something; ``is_new`` is False when the baseline already holds it."""

    topic: ClassVar[str] = "security.violation"

    scan_id: str
    finding: Finding
    is_new: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class BaselineUpdated(Event):
    """The accepted set of findings changed."""

    topic: ClassVar[str] = "security.baseline.updated"

    baseline: str
    fingerprints: int
    added: int = 0
    removed: int = 0
    author: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class MetricsRecorded(Event):
    """A batch of samples; the only kind the bus may drop under overload."""

    topic: ClassVar[str] = "metrics.recorded"
    droppable: ClassVar[bool] = True

    samples: tuple[Sample, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertChanged(Event):
    """An alert moved from one lifecycle state to another."""

    topic: ClassVar[str] = "alerts.changed"

    alert: Alert
    previous_state: AlertState


@dataclass(frozen=True, slots=True, kw_only=True)
class GateEvaluated(Event):
    """The quality gate gave a verdict."""

    topic: ClassVar[str] = "gate.evaluated"

    result: GateResult


@dataclass(frozen=True, slots=True, kw_only=True)
class FindingTriaged(Event):
    """Someone triaged a finding: ``state`` is a ``TriageState`` value (``accepted`` ...)."""

    topic: ClassVar[str] = "security.finding.triaged"

    fingerprint: str
    state: str
    author: str
    reason: str = ""
    expires_ms: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertAcknowledged(Event):
    """Someone acknowledged an alert; ``alert`` is the alert as stored after it."""

    topic: ClassVar[str] = "alerts.acknowledged"

    alert: Alert
    author: str
    note: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class SilenceAdded(Event):
    """Someone muted the alerts ``matchers`` select from ``starts_ms`` to ``ends_ms``."""

    topic: ClassVar[str] = "alerts.silence.added"

    silence_id: int
    matchers: tuple[dict[str, str], ...]
    starts_ms: int
    ends_ms: int
    author: str
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SilenceExpired(Event):
    """Someone ended a silence before its time (``ends_ms`` is now its end)."""

    topic: ClassVar[str] = "alerts.silence.expired"

    silence_id: int
    ends_ms: int


@dataclass(frozen=True, slots=True, kw_only=True)
class BenchmarksRecorded(Event):
    """Benchmark results were stored (``secperf bench``, an import): ``results`` new ones."""

    topic: ClassVar[str] = "perf.benchmarks.recorded"

    names: tuple[str, ...]
    results: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ScanThrottled(Event):
    """A scan's impact budget throttled it, changed how, or let it go on (``resume``).

    ``action``: ``pause`` (its workers stopped), ``fewer_workers``,
    ``batch_pause`` (no new batch until the guard recovers) or ``resume``;
    ``throttled_ms`` is the scan's throttled time so far; ``guard`` the series
    that exceeded the budget (None for a resume at the deadline or the end).
    """

    topic: ClassVar[str] = "security.scan.throttled"

    scan_id: str
    target: str
    action: str
    reason: str
    throttled_ms: float = 0.0
    guard: str | None = None


EVENT_TYPES: dict[str, type[Event]] = {
    cls.__name__: cls
    for cls in (
        ScanStarted,
        ScanCompleted,
        ViolationDetected,
        BaselineUpdated,
        MetricsRecorded,
        AlertChanged,
        GateEvaluated,
        FindingTriaged,
        AlertAcknowledged,
        SilenceAdded,
        SilenceExpired,
        BenchmarksRecorded,
        ScanThrottled,
    )
}

TOPICS: tuple[str, ...] = tuple(cls.topic for cls in EVENT_TYPES.values())


class EventDecodeError(ValueError):
    """Raised when bytes do not hold a valid secperf event."""


_ADAPTERS: dict[type[Event], TypeAdapter[Any]] = {}


def _adapter(cls: type[Event]) -> TypeAdapter[Any]:
    adapter = _ADAPTERS.get(cls)
    if adapter is None:
        adapter = _ADAPTERS[cls] = TypeAdapter(cls)
    return adapter


def event_to_dict(event: Event) -> dict[str, Any]:
    """The JSON-ready form: ``{"type": ..., "topic": ..., "event": {...}}``."""
    cls = type(event)
    return {
        "type": cls.__name__,
        "topic": cls.topic,
        "event": _adapter(cls).dump_python(event, mode="json"),
    }


def encode_event(event: Event) -> bytes:
    """Serialise an event to compact JSON bytes."""
    cls = type(event)
    body = _adapter(cls).dump_json(event)
    return b'{"type":"%s","topic":"%s","event":%s}' % (
        cls.__name__.encode(),
        cls.topic.encode(),
        body,
    )


def event_from_dict(data: Any) -> Event:
    """Rebuild an event from its JSON-ready form; raises EventDecodeError."""
    if not isinstance(data, dict):
        raise EventDecodeError(f"an event must be a JSON object, got {type(data).__name__}")
    type_name = data.get("type")
    cls = EVENT_TYPES.get(type_name) if isinstance(type_name, str) else None
    if cls is None:
        known = ", ".join(EVENT_TYPES)
        raise EventDecodeError(f"unknown event type {type_name!r}; expected one of {known}")
    body = data.get("event")
    if cls is ScanStarted and isinstance(body, dict):
        # Sent before scans named their owner: unknown, not the decoding process.
        body = {"owner_pid": None, "owner_host": None, **body}
    try:
        event: Event = _adapter(cls).validate_python(body)
    except ValidationError as exc:
        raise EventDecodeError(f"invalid {type_name}: {_first_error(exc)}") from None
    return event


def decode_event(raw: bytes | str) -> Event:
    """Parse JSON bytes produced by ``encode_event``; raises EventDecodeError."""
    import json

    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise EventDecodeError(f"event is not valid JSON: {exc}") from None
    return event_from_dict(data)


def _first_error(exc: ValidationError) -> str:
    errors = exc.errors()
    if not errors:
        return str(exc)
    first = errors[0]
    where = ".".join(str(part) for part in first.get("loc", ()))
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where or 'event'}: {first.get('msg', 'invalid')}{more}"
