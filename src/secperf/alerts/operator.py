"""What people do to alerts: acknowledge one, add a silence, expire a silence.

Each operation checks its input here, once, and writes the store; the CLI,
the API routes and the alert engine all call these functions, so the three
apply the same rules. A refused input is ``OperatorError`` naming the field at
fault (``note``, ``author``, ``reason``, ``matchers``, ``starts_ms``,
``ends_ms``, ``silence_id``); each surface turns it into its own message (an
exit 2 naming the option, a 422 naming ``body.<field>``).

The store writes each action's event (``AlertAcknowledged``, ``SilenceAdded``,
``SilenceExpired``) to its event log with the record, so servers following the
log (and their open dashboards) hear of an action made anywhere.

A note longer than ``MAX_NOTE_CHARS`` is refused everywhere (it is never
shortened without a word).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from secperf.alerts.silences import (
    MatcherError,
    check_silence_matchers,
    matcher_to_object,
    matchers_from_objects,
)
from secperf.model import Alert
from secperf.store import Silence, Store

#: The longest acknowledgement note, silence reason and author name accepted.
MAX_NOTE_CHARS = 2000
MAX_REASON_CHARS = 2000
MAX_AUTHOR_CHARS = 200
#: The longest silence accepted: a year.
MAX_SILENCE_MS = 366 * 86_400_000


class OperatorError(ValueError):
    """An operator's input is refused; ``field`` names the input, ``problem`` what is wrong.

    ``str()`` is the whole sentence (``text`` when given, else ``field: problem``).
    """

    def __init__(self, field: str, problem: str, *, text: str | None = None) -> None:
        super().__init__(text or f"{field}: {problem}")
        self.field = field
        self.problem = problem


def _required_text(field: str, value: Any, limit: int) -> str:
    """``value`` without surrounding blanks; a non-empty string of at most ``limit`` characters."""
    if not isinstance(value, str):
        raise OperatorError(field, "must be a string")
    text = value.strip()
    if not text:
        raise OperatorError(field, "must not be empty")
    if len(text) > limit:
        raise OperatorError(field, f"at most {limit} characters")
    return text


def check_author(author: Any) -> str:
    """The author without surrounding blanks; non-empty, at most ``MAX_AUTHOR_CHARS``."""
    return _required_text("author", author, MAX_AUTHOR_CHARS)


def check_note(note: Any) -> str:
    """An acknowledgement note: any string up to ``MAX_NOTE_CHARS`` (empty is fine)."""
    if not isinstance(note, str):
        raise OperatorError("note", "must be a string")
    if len(note) > MAX_NOTE_CHARS:
        raise OperatorError("note", f"at most {MAX_NOTE_CHARS} characters")
    return note


def check_reason(reason: Any) -> str:
    """A silence's reason without surrounding blanks; non-empty, at most ``MAX_REASON_CHARS``."""
    return _required_text("reason", reason, MAX_REASON_CHARS)


# --------------------------------------------------------------------------- acknowledge


def acknowledged(alert: Alert, author: Any, note: Any, now_ms: int) -> Alert:
    """``alert`` acknowledged by ``author`` with ``note`` (checked), not stored."""
    who = check_author(author)
    text = check_note(note)
    return dataclasses.replace(
        alert,
        acknowledged_by=who,
        acknowledgement_note=text,
        updated_ms=max(alert.updated_ms, now_ms),
    )


def acknowledge(store: Store, alert: Alert, author: Any, note: Any, now_ms: int) -> Alert:
    """Record who acknowledged ``alert`` and why; returns the alert as stored."""
    updated = acknowledged(alert, author, note, now_ms)
    store.acknowledge_alert(updated)  # with AlertAcknowledged, for every server's stream
    return updated


# --------------------------------------------------------------------------- silences


@dataclass(frozen=True, slots=True)
class SilenceSpec:
    """A checked silence, ready to store."""

    matchers: list[dict[str, Any]]
    starts_ms: int
    ends_ms: int
    author: str
    reason: str


def check_silence(
    matchers: Any,
    starts_ms: int | None,
    ends_ms: int,
    author: Any,
    reason: Any,
    now_ms: int,
) -> SilenceSpec:
    """Check a silence: matchers that do not mute everything, a window ending in the future
    and lasting at most ``MAX_SILENCE_MS``, an author and a reason. ``starts_ms`` None: now.
    """
    try:
        parsed = matchers_from_objects(matchers, where="matchers")
        check_silence_matchers(parsed)
    except MatcherError as exc:
        raise OperatorError("matchers", str(exc), text=str(exc)) from None
    start = now_ms if starts_ms is None else starts_ms
    for what, value in (("starts_ms", start), ("ends_ms", ends_ms)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise OperatorError(what, f"must be an integer (UTC milliseconds), got {value!r}")
    if ends_ms <= start:
        raise OperatorError(
            "ends_ms", "must be after the start", text="ends_ms must be after starts_ms"
        )
    if ends_ms <= now_ms:
        raise OperatorError(
            "ends_ms",
            "the silence would end in the past",
            text="ends_ms is in the past: the silence would never apply",
        )
    if ends_ms - start > MAX_SILENCE_MS:
        raise OperatorError(
            "ends_ms",
            "a silence may last at most 366 days",
            text="a silence may last at most 366 days",
        )
    who = check_author(author)
    why = check_reason(reason)
    return SilenceSpec([matcher_to_object(m) for m in parsed], start, ends_ms, who, why)


def add_silence(
    store: Store,
    matchers: Any,
    starts_ms: int | None,
    ends_ms: int,
    author: Any,
    reason: Any,
    now_ms: int,
) -> Silence:
    """Check and store a silence (see ``check_silence``); returns it with its id."""
    spec = check_silence(matchers, starts_ms, ends_ms, author, reason, now_ms)
    silence_id = store.add_silence(
        spec.matchers, spec.starts_ms, spec.ends_ms, spec.author, spec.reason, created_ms=now_ms
    )
    return Silence(
        silence_id, spec.matchers, spec.starts_ms, spec.ends_ms, spec.author, spec.reason, now_ms
    )


def expire_silence(store: Store, silence_id: Any, now_ms: int) -> bool:
    """End a silence now; False when it does not exist or has already ended."""
    if isinstance(silence_id, bool) or not isinstance(silence_id, int) or silence_id < 1:
        raise OperatorError("silence_id", f"must be a positive integer, got {silence_id!r}")
    return store.expire_silence(silence_id, now_ms)
