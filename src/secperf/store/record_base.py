"""What every record mixin of ``Store`` shares: JSON payloads, the clock, input checks.

Each row has the columns queries filter on plus the model object as a JSON
payload, serialised with pydantic's TypeAdapter of the model dataclass (as
``events.py`` does), so a row reads back as the exact object written. Writes
that may be delivered twice (bus re-delivery) are idempotent upserts written
as select-then-insert/update, which both engines run unchanged.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any, TypeVar

from pydantic import TypeAdapter
from sqlalchemy import Connection, Engine

from secperf.events import now_ms

T = TypeVar("T")

#: Most values bound in one ``IN (...)`` clause (SQLite's limit is far above).
IN_BATCH = 500

_ADAPTERS: dict[type[Any], TypeAdapter[Any]] = {}


def _adapter(cls: type[Any]) -> TypeAdapter[Any]:
    adapter = _ADAPTERS.get(cls)
    if adapter is None:
        adapter = _ADAPTERS[cls] = TypeAdapter(cls)
    return adapter


def to_json(obj: Any) -> str:
    """A model dataclass as JSON text."""
    return _adapter(type(obj)).dump_json(obj).decode()


def from_json(cls: type[T], text: str) -> T:
    """The model dataclass ``cls`` back from ``to_json``'s text."""
    value: T = _adapter(cls).validate_json(text)
    return value


def clock_ms() -> int:
    """The wall clock in UTC milliseconds."""
    return now_ms()


def require_text(what: str, value: Any) -> str:
    """``value`` when it is a non-empty string; ValueError naming ``what`` otherwise."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{what} must be a non-empty string, got {value!r}")
    return value


class RecordMixin:
    """Base of the record mixins; ``Store`` provides ``_engine``, ``_writer`` and ``_lock``.

    Reads go through ``_engine``; every write transaction through ``_writer``
    (``engine.write_engine``), which takes SQLite's write lock at BEGIN.
    """

    _engine: Engine
    _writer: Engine
    _lock: threading.RLock

    @contextlib.contextmanager
    def _write_tx(self) -> Iterator[Connection]:
        """One write transaction, under the store's lock; every record write goes here."""
        with self._lock, self._writer.begin() as conn:
            yield conn
