"""The store: series and compressed sample chunks plus every record secperf keeps.

One code path over SQLAlchemy Core for SQLite (the embedded default) and
PostgreSQL. ``Store.open(path_or_url)`` is the entry point; ``StoreWriter``
feeds it from the bus.

The names below load with their modules on first use: importing a light
module of this package (``store.sqlite_reader``, which ``findings list``
reads an SQLite store with) does not import SQLAlchemy.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from secperf.store.alert_records import AlertTransition, Silence
    from secperf.store.engine import (
        StoreCorruptError,
        StoreError,
        StoreTargetError,
        StoreUnavailableError,
    )
    from secperf.store.migrations import LATEST_VERSION, SchemaVersionError
    from secperf.store.record_retention import RecordRetention
    from secperf.store.samples import (
        ChunkRetention,
        LatestSample,
        SeriesInfo,
        SeriesPoints,
        WriteResult,
    )
    from secperf.store.scan_records import COMPLETE_SCAN_STATUSES, SCAN_STATUSES, ScanRecord
    from secperf.store.store import RetentionResult, Store
    from secperf.store.stored_finding import StoredFinding
    from secperf.store.writer import StoreWriter, WriterStats

#: Where each public name lives.
_HOMES = {
    "AlertTransition": "alert_records",
    "Silence": "alert_records",
    "StoreCorruptError": "engine",
    "StoreError": "engine",
    "StoreTargetError": "engine",
    "StoreUnavailableError": "engine",
    "LATEST_VERSION": "migrations",
    "SchemaVersionError": "migrations",
    "RecordRetention": "record_retention",
    "ChunkRetention": "samples",
    "LatestSample": "samples",
    "SeriesInfo": "samples",
    "SeriesPoints": "samples",
    "WriteResult": "samples",
    "COMPLETE_SCAN_STATUSES": "scan_records",
    "SCAN_STATUSES": "scan_records",
    "ScanRecord": "scan_records",
    "RetentionResult": "store",
    "Store": "store",
    "StoredFinding": "stored_finding",
    "StoreWriter": "writer",
    "WriterStats": "writer",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value  # once loaded, a plain module attribute
    return value


__all__ = [
    "COMPLETE_SCAN_STATUSES",
    "LATEST_VERSION",
    "SCAN_STATUSES",
    "AlertTransition",
    "ChunkRetention",
    "LatestSample",
    "RecordRetention",
    "RetentionResult",
    "ScanRecord",
    "SchemaVersionError",
    "SeriesInfo",
    "SeriesPoints",
    "Silence",
    "Store",
    "StoreCorruptError",
    "StoreError",
    "StoreTargetError",
    "StoreUnavailableError",
    "StoreWriter",
    "StoredFinding",
    "WriteResult",
    "WriterStats",
]
