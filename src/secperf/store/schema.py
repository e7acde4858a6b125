"""The store's tables, in portable SQLAlchemy Core (SQLite and PostgreSQL).

Only portable types: BigInteger, Integer, Float, Text, Boolean, LargeBinary;
JSON documents are kept as Text through ``JSONText``. Times are UTC integer
milliseconds. Which migration creates which table lives in ``migrations.py``.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

metadata = MetaData()

# SQLite only auto-increments an ``INTEGER PRIMARY KEY``; PostgreSQL gets BIGINT.
IdType = BigInteger().with_variant(Integer(), "sqlite")


def dumps_json(value: Any) -> str:
    """Canonical compact JSON (sorted keys, ASCII so no surrogate can break a row)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


class JSONText(TypeDecorator[Any]):
    """A JSON document stored as Text, so both engines run the same SQL."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        return None if value is None else dumps_json(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        return None if value is None else json.loads(value)


schema_version = Table(
    "schema_version",
    metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("description", Text, nullable=False),
    Column("applied_ms", BigInteger, nullable=False),
)

series = Table(
    "series",
    metadata,
    Column("id", IdType, primary_key=True, autoincrement=True),
    Column("name", Text, nullable=False),
    Column("labels", Text, nullable=False),  # canonical JSON, sorted keys
    Column("key_hash", Text, nullable=False, unique=True),  # sha256 of name + labels
    Index("ix_series_name", "name"),
)

chunks = Table(
    "chunks",
    metadata,
    Column("id", IdType, primary_key=True, autoincrement=True),
    Column("series_id", IdType, ForeignKey("series.id", ondelete="CASCADE"), nullable=False),
    Column("block_ms", BigInteger, nullable=False),  # start of the aligned time block
    Column("start_ms", BigInteger, nullable=False),
    Column("end_ms", BigInteger, nullable=False),
    Column("count", Integer, nullable=False),
    Column("encoding", SmallInteger, nullable=False),  # codec format version
    Column("data", LargeBinary, nullable=False),
    Index("ix_chunks_series_start", "series_id", "start_ms"),
)

scans = Table(
    "scans",
    metadata,
    Column("scan_id", Text, primary_key=True),
    Column("target", Text, nullable=False),
    Column("started_ms", BigInteger, nullable=False),
    Column("finished_ms", BigInteger),
    Column("status", Text, nullable=False),  # one of records.SCAN_STATUSES
    Column("error", Text),
    Column("scanners", JSONText, nullable=False),
    Column("metrics", Text),  # SecurityMetrics as JSON
    Column("cost", Text),  # ScanCost as JSON
    # Who runs the scan, so a scan whose process died can be closed as abandoned
    # (migration 4): the owner's pid and host name, and when it was last seen alive.
    Column("owner_pid", Integer),
    Column("owner_host", Text),
    Column("heartbeat_ms", BigInteger),
    # "scan" (secperf scanned) or "import" (another tool's results, e.g. a SARIF
    # upload: no coverage, no scan window); NULL in rows older than migration 6.
    Column("kind", Text),
    # How the scan shared the machine (migration 8): priority, impact budget,
    # throttled stretches and their reasons, as JSON; NULL when not recorded.
    Column("pacing", Text),
    # What the cost model predicted before the scan ran (migration 8): duration
    # and CPU seconds per scanner and the inputs, as JSON; NULL when none.
    Column("prediction", Text),
    # A scan whose findings equal those of the previous scan of its target stores
    # no finding rows of its own (migration 9): ``findings_from`` names the scan
    # holding its rows (NULL: its own); ``findings_digest`` identifies the set, so
    # the next scan compares one value instead of every finding.
    Column("findings_from", Text),
    Column("findings_digest", Text),
    Index("ix_scans_target_started", "target", "started_ms"),
    Index("ix_scans_started", "started_ms"),
    Index("ix_scans_status", "status"),
    Index("ix_scans_findings_from", "findings_from"),
)

findings = Table(
    "findings",
    metadata,
    Column("id", IdType, primary_key=True, autoincrement=True),
    Column("scan_id", Text, nullable=False),
    Column("fingerprint", Text, nullable=False),
    Column("rule_id", Text, nullable=False),
    Column("scanner", Text, nullable=False),
    Column("severity", Text, nullable=False),
    Column("severity_rank", SmallInteger, nullable=False),
    Column("path", Text, nullable=False),
    Column("line", Integer, nullable=False),
    Column("is_new", Boolean, nullable=False),
    Column("payload", Text, nullable=False),  # Finding as JSON
    UniqueConstraint("scan_id", "fingerprint", name="uq_findings_scan_fingerprint"),
    Index("ix_findings_fingerprint", "fingerprint"),
    Index("ix_findings_severity", "severity_rank"),
    Index("ix_findings_scanner", "scanner"),
    Index("ix_findings_path", "path"),
)

triage_history = Table(
    "triage_history",
    metadata,
    Column("id", IdType, primary_key=True, autoincrement=True),
    Column("fingerprint", Text, nullable=False),
    Column("state", Text, nullable=False),
    Column("author", Text, nullable=False),
    Column("note", Text),
    Column("expires_ms", BigInteger),
    Column("created_ms", BigInteger, nullable=False),
    Index("ix_triage_history_fingerprint", "fingerprint", "id"),
)

triage_current = Table(
    "triage_current",
    metadata,
    Column("fingerprint", Text, primary_key=True),
    Column("state", Text, nullable=False),
    Column("author", Text, nullable=False),
    Column("note", Text),
    Column("expires_ms", BigInteger),
    Column("updated_ms", BigInteger, nullable=False),
)

baselines = Table(
    "baselines",
    metadata,
    Column("name", Text, primary_key=True),
    Column("fingerprint", Text, primary_key=True),
    Column("created_ms", BigInteger, nullable=False),
)

alerts = Table(
    "alerts",
    metadata,
    Column("fingerprint", Text, primary_key=True),
    Column("rule", Text, nullable=False),
    Column("state", Text, nullable=False),
    Column("severity", Text, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
    Column("payload", Text, nullable=False),  # Alert as JSON
    Index("ix_alerts_state", "state"),
)

alert_transitions = Table(
    "alert_transitions",
    metadata,
    Column("id", IdType, primary_key=True, autoincrement=True),
    Column("event_id", Text, nullable=False),
    Column("fingerprint", Text, nullable=False),
    Column("from_state", Text, nullable=False),
    Column("to_state", Text, nullable=False),
    Column("ts_ms", BigInteger, nullable=False),
    Column("payload", Text, nullable=False),  # Alert as JSON, after the change
    Index("ix_alert_transitions_fingerprint", "fingerprint", "ts_ms"),
    Index("ix_alert_transitions_ts", "ts_ms"),
)

silences = Table(
    "silences",
    metadata,
    Column("id", IdType, primary_key=True, autoincrement=True),
    Column("matchers", JSONText, nullable=False),
    Column("starts_ms", BigInteger, nullable=False),
    Column("ends_ms", BigInteger, nullable=False),
    Column("author", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Index("ix_silences_ends", "ends_ms"),
)

gate_runs = Table(
    "gate_runs",
    metadata,
    Column("run_id", Text, primary_key=True),
    Column("target", Text, nullable=False),
    Column("started_ms", BigInteger, nullable=False),
    Column("finished_ms", BigInteger, nullable=False),
    Column("verdict", Text, nullable=False),
    Column("commit", Text),
    Column("payload", Text, nullable=False),  # GateResult as JSON
    Index("ix_gate_runs_started", "started_ms"),
)

benchmark_results = Table(
    "benchmark_results",
    metadata,
    Column("id", IdType, primary_key=True, autoincrement=True),
    Column("name", Text, nullable=False),
    Column("source", Text, nullable=False),
    Column("timestamp_ms", BigInteger, nullable=False),
    Column("machine", Text, nullable=False),
    Column("commit", Text, nullable=False),  # "" when unknown: NULLs never collide
    Column("status", Text, nullable=False),
    Column("median_s", Float),
    Column("payload", Text, nullable=False),  # BenchmarkResult as JSON
    UniqueConstraint(
        "name", "commit", "machine", "timestamp_ms", name="uq_benchmark_results_identity"
    ),
    Index("ix_benchmark_results_name_ts", "name", "timestamp_ms"),
)

correlation_runs = Table(
    "correlation_runs",
    metadata,
    Column("id", IdType, primary_key=True, autoincrement=True),
    Column("computed_ms", BigInteger, nullable=False),
    Column("since_ms", BigInteger, nullable=False),
    Column("until_ms", BigInteger, nullable=False),
    Column("results", JSONText, nullable=False),  # the run's document (analysis.correlate_store)
    Index("ix_correlation_runs_computed", "computed_ms"),
)

# The event log (outbox): every event a process stores, appended in the same
# transaction as its records, so other processes can follow it (store/event_log.py).
# AUTOINCREMENT on SQLite: a sequence number is never reused, even after pruning.
event_log = Table(
    "event_log",
    metadata,
    Column("seq", IdType, primary_key=True, autoincrement=True),
    Column("event_id", Text, nullable=False, unique=True),
    Column("topic", Text, nullable=False),
    Column("ts_ms", BigInteger, nullable=False),  # the event's own time
    Column("written_ms", BigInteger, nullable=False),  # when it was appended (retention)
    Column("origin", Text, nullable=True),  # the bus it was on already (None: none)
    Column("encoding", SmallInteger, nullable=False),  # 0 JSON, 1 zlib-compressed JSON
    Column("payload", LargeBinary, nullable=False),  # events.encode_event
    Index("ix_event_log_written", "written_ms"),
    sqlite_autoincrement=True,
)

# Where each named follower of the event log has read up to.
event_log_cursors = Table(
    "event_log_cursors",
    metadata,
    Column("name", Text, primary_key=True),
    Column("seq", BigInteger, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
)

# Downsampling tiers (store/tiers.py): per series, tier (bucket width in ms) and
# aligned block, one row of buckets holding min, max, sum and count
# (codec.encode_columns), so averages (sum / count) stay exact.
rollups = Table(
    "rollups",
    metadata,
    Column("series_id", IdType, ForeignKey("series.id", ondelete="CASCADE"), primary_key=True),
    Column("tier_ms", BigInteger, primary_key=True, autoincrement=False),
    Column("block_ms", BigInteger, primary_key=True, autoincrement=False),
    Column("start_ms", BigInteger, nullable=False),  # first bucket's start
    Column("end_ms", BigInteger, nullable=False),  # last bucket's start
    Column("count", Integer, nullable=False),  # buckets in the row
    Column("data", LargeBinary, nullable=False),
    Index("ix_rollups_tier_start", "tier_ms", "start_ms"),
)

# How far each series has been rolled up into each tier: every bucket starting
# before ``rolled_ms`` is in ``rollups``; ``dirty_ms`` marks a late sample
# written below that watermark, so its buckets are rolled up again.
rollup_state = Table(
    "rollup_state",
    metadata,
    Column("series_id", IdType, ForeignKey("series.id", ondelete="CASCADE"), primary_key=True),
    Column("tier_ms", BigInteger, primary_key=True, autoincrement=False),
    Column("rolled_ms", BigInteger, nullable=False),
    Column("dirty_ms", BigInteger, nullable=True),
)
