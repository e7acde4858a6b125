"""The store: series and compressed sample chunks plus every record secperf keeps.

One code path over SQLAlchemy Core for SQLite (the embedded default) and
PostgreSQL. ``Store.open(path_or_url)`` is the entry point; ``StoreWriter``
feeds it from the bus.
"""

from secperf.store.alert_records import AlertTransition, Silence
from secperf.store.engine import (
    StoreCorruptError,
    StoreError,
    StoreTargetError,
    StoreUnavailableError,
)
from secperf.store.finding_records import StoredFinding
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
from secperf.store.writer import StoreWriter, WriterStats

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
