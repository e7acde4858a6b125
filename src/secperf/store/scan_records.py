"""Scan records: each scan's lifecycle, owner and heartbeat, metrics and cost.

Recording a scan's outcome also stores its security series (``scan_series``
of ``security.series``), once per scan, in the same transaction, from the
scan's metrics and the findings already stored for it: so every process that
records a scan (a CLI scan, ``up``, ``serve`` consuming the bus, a SARIF
upload) stores them, and no other part needs to.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, ColumnElement, Connection, and_, case, cast, func, or_, select, update

from secperf.events import local_host, now_ms
from secperf.model import (
    Sample,
    ScanCost,
    SecurityMetrics,
)
from secperf.security.series import (
    KIND_SCAN,
    SCAN_KINDS,
    CountedFinding,
    FindingCounts,
    count_findings,
    counted_metrics,
    scan_series,
)
from secperf.security.triage import TriageDecision, TriageState, effective_state
from secperf.store.finding_rows import row_owners
from secperf.store.record_base import (
    IN_BATCH,
    RecordMixin,
    clock_ms,
    from_json,
    require_text,
    to_json,
)
from secperf.store.schema import (
    findings,
    scans,
    triage_current,
)

if TYPE_CHECKING:
    from secperf.store.samples import WriteResult

log = logging.getLogger(__name__)

#: Every status a scan row may hold. ``running`` until the scan ends; ``ok``,
#: ``partial`` (some files or scanners failed) or ``failed`` as the scan
#: reported it; ``interrupted`` when it was stopped cleanly (SIGTERM, Ctrl-C);
#: ``abandoned`` when its process died without a word, set by the next process
#: that opens the store; ``unknown`` for a cost recorded before its scan.
SCAN_STATUSES = ("running", "ok", "partial", "failed", "interrupted", "abandoned", "unknown")
#: Statuses of a scan that ended: its metrics (when any) are the whole scan's.
COMPLETE_SCAN_STATUSES = ("ok", "partial", "failed")

#: A running scan whose owner (on another host, or unknown) has not been seen
#: for this long is closed as abandoned. Owners refresh their heartbeat every
#: few seconds (``StoreWriter``), so only a dead or cut-off owner goes quiet.
ABANDONED_AFTER_MS = 5 * 60_000
#: Slack between a process's start time and its scan's, for clock granularity.
_CREATE_TIME_SLACK_MS = 2_000


@dataclass(frozen=True, slots=True)
class ScanRecord:
    """One scan as stored: its lifecycle plus metrics and cost when known."""

    scan_id: str
    target: str
    started_ms: int
    finished_ms: int | None
    status: str
    error: str | None
    scanners: tuple[str, ...]
    metrics: SecurityMetrics | None
    cost: ScanCost | None
    owner_pid: int | None = None
    owner_host: str | None = None
    heartbeat_ms: int | None = None
    kind: str = KIND_SCAN  # "scan", or "import" for another tool's results
    #: How the scan shared the machine (priority, impact budget, throttled
    #: stretches), as the JSON document ``record_scan_pacing`` stored; None when not recorded.
    pacing: dict[str, Any] | None = None
    #: What the cost model predicted before the scan, as ``record_scan_prediction``
    #: stored it; None when no prediction was made.
    prediction: dict[str, Any] | None = None

    @property
    def is_import(self) -> bool:
        """Whether this is an import of another tool's results, not a scan secperf ran."""
        return self.kind != KIND_SCAN

    @property
    def complete(self) -> bool:
        """Whether the scan ended with a result of the whole scan (ok, partial, failed)."""
        return self.status in COMPLETE_SCAN_STATUSES


@dataclass(frozen=True, slots=True)
class ScanCostRow:
    """One scan as a cost model reads it: status, host and the undecoded documents."""

    status: str
    owner_host: str | None
    metrics: str | None
    prediction: str | None


def _json_document(value: str | None) -> dict[str, Any] | None:
    """A stored JSON document column, or None when empty or unreadable (logged)."""
    if not value:
        return None
    try:
        document = json.loads(value)
    except ValueError:
        log.warning("a stored scan document is not JSON; ignored")
        return None
    return document if isinstance(document, dict) else None


def _category_of_payload(conn: Connection) -> ColumnElement[Any]:
    """SQL for a stored finding's ``category`` (in its JSON payload), on either engine."""
    if conn.dialect.name == "postgresql":
        return func.json_extract_path_text(cast(findings.c.payload, JSON), "category")
    return func.json_extract(findings.c.payload, "$.category")


def count_stored_findings(conn: Connection, scan_id: str, at_ms: int) -> FindingCounts:
    """The counts of a scan's stored findings with the triage in force at ``at_ms``.

    The database groups the findings (severity, novelty, category, triage);
    each group's triage state is then judged by ``effective_state``, the one
    definition of an expired decision.
    """
    return count_stored_findings_of(conn, [scan_id], at_ms).get(scan_id, FindingCounts())


def count_stored_findings_of(
    conn: Connection, scan_ids: list[str], at_ms: int
) -> dict[str, FindingCounts]:
    """``count_stored_findings`` of many scans in one grouped read per batch of ids."""
    tc = triage_current.c
    category = _category_of_payload(conn).label("category")
    keys = (
        findings.c.scan_id,
        findings.c.severity,
        findings.c.is_new,
        category,
        tc.state,
        tc.expires_ms,
    )
    # A scan may share the rows of an earlier scan with the same findings.
    owners = row_owners(conn, scan_ids)
    owner_ids = list(dict.fromkeys(owners.values()))
    items: dict[str, list[CountedFinding]] = {owner: [] for owner in owner_ids}
    for i in range(0, len(owner_ids), IN_BATCH):
        stmt = (
            select(*keys, func.count())
            .select_from(
                findings.outerjoin(triage_current, tc.fingerprint == findings.c.fingerprint)
            )
            .where(findings.c.scan_id.in_(owner_ids[i : i + IN_BATCH]))
            .group_by(*keys)
        )
        for scan_id, severity, is_new, cat, state, expires_ms, count in conn.execute(stmt):
            decision = (
                None
                if state is None
                else TriageDecision("", TriageState(state), "", "", 0, expires_ms)
            )
            item = CountedFinding(
                severity, str(cat or "sast"), bool(is_new), effective_state(decision, at_ms)
            )
            items[scan_id].extend([item] * int(count))
    counted = {owner: count_findings(found) for owner, found in items.items()}
    return {scan_id: counted[owner] for scan_id, owner in owners.items()}


def _owner_gone(row: Any, here: str, now_ms: int, stale_after_ms: int) -> str | None:
    """Why the owner of a running scan row is gone, or None while it may be alive."""
    if row.owner_host == here and row.owner_pid is not None:
        # Only a running scan row's liveness check needs psutil: reading scans does not.
        import psutil

        pid = int(row.owner_pid)
        try:
            proc = psutil.Process(pid)
            zombie = proc.status() == psutil.STATUS_ZOMBIE
            born_ms = proc.create_time() * 1000
        except psutil.NoSuchProcess:
            return f"its process {pid} on {here} is gone"
        except psutil.Error:  # not ours to inspect: it runs, so it may be the owner
            return None
        if zombie:
            return f"its process {pid} on {here} is gone"
        if born_ms > row.started_ms + _CREATE_TIME_SLACK_MS:
            return f"its process {pid} on {here} is gone (the pid now belongs to a later process)"
        return None
    last = row.heartbeat_ms if row.heartbeat_ms is not None else row.started_ms
    if now_ms - last < stale_after_ms:
        return None
    who = f"process {row.owner_pid} on {row.owner_host}" if row.owner_host else "its owner"
    return f"no heartbeat from {who} for {(now_ms - last) // 1000} s"


class ScanRecordMixin(RecordMixin):
    """Scans of ``Store``: started, completed, heartbeats, abandoned, cost."""

    if TYPE_CHECKING:  # provided by ``SampleStoreMixin`` in ``Store``

        def write_samples_in(
            self, conn: Connection, samples: Iterable[Sample], *, now_ms: int | None = None
        ) -> tuple[WriteResult, Callable[[], None]]: ...

    def _scan_exists(self, conn: Connection, scan_id: str) -> bool:
        found = conn.execute(select(scans.c.scan_id).where(scans.c.scan_id == scan_id)).first()
        return found is not None

    def record_scan_started(
        self,
        scan_id: str,
        target: str,
        started_ms: int,
        scanners: Iterable[str] = (),
        *,
        owner_pid: int | None = None,
        owner_host: str | None = None,
    ) -> None:
        """Record that a scan began (idempotent), with the process that runs it.

        The owner lets the next process that opens the store tell a scan whose
        process died from one still running (``close_abandoned_scans``).
        """
        require_text("scan_id", scan_id)
        values: dict[str, Any] = {
            "target": target,
            "started_ms": started_ms,
            "scanners": list(scanners),
        }
        if owner_pid is not None or owner_host is not None:
            values.update(owner_pid=owner_pid, owner_host=owner_host)
        with self._write_tx() as conn:
            if self._scan_exists(conn, scan_id):
                conn.execute(update(scans).where(scans.c.scan_id == scan_id).values(**values))
            else:
                conn.execute(
                    scans.insert().values(
                        scan_id=scan_id, status="running", heartbeat_ms=started_ms, **values
                    )
                )

    def record_scan_completed(
        self,
        metrics: SecurityMetrics,
        status: str,
        error: str | None = None,
        *,
        host: str | None = None,
    ) -> SecurityMetrics:
        """Record a scan's outcome and metrics (creates the scan row when missing).

        ``status`` is one of ``SCAN_STATUSES`` other than ``running``; a scan
        closed as abandoned that reports after all gets its real outcome.

        The finding counts are taken from the findings stored for the scan
        (store them first), with the triage in force when the scan ended, so a
        scan run without the store's triage (an agent) counts as the store
        does; when fewer findings are stored than the scan reported, its own
        counts stand. The first time a scan's outcome is recorded its security
        series are stored too, in the same transaction, labelled with ``host``
        (default: this machine), so a re-delivered event stores nothing twice.
        Returns the metrics as stored.
        """
        require_text("status", status)
        if status not in SCAN_STATUSES or status == "running":
            ended = ", ".join(s for s in SCAN_STATUSES if s != "running")
            raise ValueError(
                f"scan {metrics.scan_id}: status {status!r} is not a scan outcome;"
                f" expected one of {ended}"
            )
        if metrics.kind not in SCAN_KINDS:
            raise ValueError(
                f"scan {metrics.scan_id}: kind {metrics.kind!r} is not one of {SCAN_KINDS}"
            )
        with self._write_tx() as conn:
            counts = count_stored_findings(conn, metrics.scan_id, metrics.finished_ms)
            reported = metrics.violations_found + metrics.false_positives + metrics.accepted_risks
            if counts.findings and counts.findings < reported:
                log.warning(
                    "scan %s: %d findings stored of %d reported; its own counts are kept",
                    metrics.scan_id,
                    counts.findings,
                    reported,
                )
            metrics = counted_metrics(metrics, counts)
            before = conn.execute(
                select(scans.c.metrics).where(scans.c.scan_id == metrics.scan_id)
            ).first()
            first_outcome = before is None or before.metrics is None
            values = {
                "finished_ms": metrics.finished_ms,
                "status": status,
                "error": error,
                "metrics": to_json(metrics),
                "kind": metrics.kind,
            }
            if before is not None:
                # ScanStarted is published after discovery; the metrics hold the true start.
                conn.execute(
                    update(scans)
                    .where(scans.c.scan_id == metrics.scan_id)
                    .values(started_ms=metrics.started_ms, **values)
                )
            else:
                conn.execute(
                    scans.insert().values(
                        scan_id=metrics.scan_id,
                        target=metrics.target,
                        started_ms=metrics.started_ms,
                        scanners=sorted(metrics.scanner_durations_ms),
                        **values,
                    )
                )
            committed: Callable[[], None] | None = None
            if first_outcome:  # the series commit with the outcome, or neither does
                samples = scan_series(metrics, local_host() if host is None else host, counts)
                written, committed = self.write_samples_in(conn, samples)
                if written.rejected:
                    log.warning(
                        "scan %s: %d of its series' samples rejected: %s",
                        metrics.scan_id,
                        written.rejected,
                        "; ".join(written.errors),
                    )
        if committed is not None:
            committed()
        return metrics

    def scan_finding_counts(self, scan_id: str, *, at_ms: int | None = None) -> FindingCounts:
        """The counts of a scan's stored findings with the triage in force at ``at_ms`` (now).

        What the API shows as a scan's current numbers: a triage decision made
        after the scan changes them at once.
        """
        at = clock_ms() if at_ms is None else at_ms
        with self._engine.connect() as conn:
            return count_stored_findings(conn, scan_id, at)

    def touch_scans(self, scan_ids: Iterable[str], now_ms: int | None = None) -> int:
        """Refresh the heartbeat of those of ``scan_ids`` still running; returns how many.

        The process that owns running scans calls this every few seconds, so
        other hosts can tell it is alive (see ``close_abandoned_scans``).
        """
        ids = sorted(set(scan_ids))
        if not ids:
            return 0
        now = clock_ms() if now_ms is None else now_ms
        touched = 0
        with self._write_tx() as conn:
            for i in range(0, len(ids), IN_BATCH):
                touched += conn.execute(
                    update(scans)
                    .where(scans.c.scan_id.in_(ids[i : i + IN_BATCH]))
                    .where(scans.c.status == "running")
                    .values(heartbeat_ms=now)
                ).rowcount
        return int(touched)

    def close_abandoned_scans(
        self,
        *,
        now_ms: int | None = None,
        host: str | None = None,
        stale_after_ms: int = ABANDONED_AFTER_MS,
    ) -> list[str]:
        """Close as ``abandoned`` every running scan whose owner is gone; returns their ids.

        An owner on this host (``host``, default this machine's name) is gone
        when its pid no longer runs, is a zombie, or belongs to a process that
        started after the scan (the pid was reused). An owner elsewhere, or a
        scan recorded without one, is gone when its heartbeat is older than
        ``stale_after_ms``. The scan's end is its last heartbeat. A scan that
        completed or was touched meanwhile is left alone.
        """
        now = clock_ms() if now_ms is None else now_ms
        here = local_host() if host is None else host
        cols = (
            scans.c.scan_id,
            scans.c.started_ms,
            scans.c.owner_pid,
            scans.c.owner_host,
            scans.c.heartbeat_ms,
        )
        with self._engine.connect() as conn:
            rows = conn.execute(select(*cols).where(scans.c.status == "running")).all()
        gone: list[tuple[Any, str]] = []
        for row in rows:
            reason = _owner_gone(row, here, now, stale_after_ms)
            if reason is not None:
                gone.append((row, reason))
        if not gone:
            return []
        closed: list[str] = []
        with self._write_tx() as conn:
            for row, reason in gone:
                seen = row.heartbeat_ms
                result = conn.execute(
                    update(scans)
                    .where(scans.c.scan_id == row.scan_id)
                    .where(scans.c.status == "running")
                    .where(
                        scans.c.heartbeat_ms.is_(None)
                        if seen is None
                        else scans.c.heartbeat_ms == seen
                    )
                    .values(
                        status="abandoned",
                        finished_ms=seen if seen is not None else row.started_ms,
                        error=f"abandoned: {reason}",
                    )
                )
                if result.rowcount:
                    closed.append(row.scan_id)
        return closed

    def record_scan_cost(self, cost: ScanCost) -> None:
        """Attach what a scan cost the machine (creates the scan row when missing)."""
        with self._write_tx() as conn:
            if self._scan_exists(conn, cost.scan_id):
                conn.execute(
                    update(scans).where(scans.c.scan_id == cost.scan_id).values(cost=to_json(cost))
                )
            else:
                conn.execute(
                    scans.insert().values(
                        scan_id=cost.scan_id,
                        target="",
                        started_ms=cost.started_ms,
                        finished_ms=cost.finished_ms,
                        status="unknown",
                        scanners=[],
                        cost=to_json(cost),
                    )
                )

    def record_scan_pacing(self, scan_id: str, pacing: Mapping[str, Any]) -> None:
        """Attach how a scan shared the machine (creates the scan row when missing)."""
        self._attach_scan_document(scan_id, "pacing", pacing)

    def record_scan_prediction(
        self, scan_id: str, prediction: Mapping[str, Any], *, target: str = "", started_ms: int
    ) -> None:
        """Attach what the cost model predicted for a scan (creates the scan row when missing)."""
        self._attach_scan_document(
            scan_id, "prediction", prediction, target=target, started_ms=started_ms
        )

    def _attach_scan_document(
        self,
        scan_id: str,
        column: str,
        document: Mapping[str, Any],
        *,
        target: str = "",
        started_ms: int | None = None,
    ) -> None:
        # Sorted keys: the same document is the same text, whichever process wrote it.
        text_value = json.dumps(dict(document), sort_keys=True, separators=(",", ":"))
        with self._write_tx() as conn:
            if self._scan_exists(conn, scan_id):
                conn.execute(
                    update(scans).where(scans.c.scan_id == scan_id).values({column: text_value})
                )
            else:
                conn.execute(
                    scans.insert().values(
                        {
                            "scan_id": scan_id,
                            "target": target,
                            "started_ms": started_ms if started_ms is not None else now_ms(),
                            "status": "unknown",
                            "scanners": [],
                            column: text_value,
                        }
                    )
                )

    @staticmethod
    def _scan_from_row(row: Any) -> ScanRecord:
        return ScanRecord(
            scan_id=row.scan_id,
            target=row.target,
            started_ms=row.started_ms,
            finished_ms=row.finished_ms,
            status=row.status,
            error=row.error,
            scanners=tuple(row.scanners),
            metrics=from_json(SecurityMetrics, row.metrics) if row.metrics else None,
            cost=from_json(ScanCost, row.cost) if row.cost else None,
            owner_pid=row.owner_pid,
            owner_host=row.owner_host,
            heartbeat_ms=row.heartbeat_ms,
            kind=row.kind or KIND_SCAN,
            pacing=_json_document(row.pacing),
            prediction=_json_document(row.prediction),
        )

    def scans(
        self, limit: int = 50, target: str | None = None, *, kind: str | None = None
    ) -> list[ScanRecord]:
        """The newest scans first, optionally of one target and of one kind (scan, import)."""
        stmt = select(scans).order_by(scans.c.started_ms.desc(), scans.c.scan_id.desc())
        if target is not None:
            stmt = stmt.where(scans.c.target == target)
        if kind == KIND_SCAN:  # rows older than the column hold NULL: scans
            stmt = stmt.where(or_(scans.c.kind.is_(None), scans.c.kind == KIND_SCAN))
        elif kind is not None:
            stmt = stmt.where(scans.c.kind == kind)
        with self._engine.connect() as conn:
            return [self._scan_from_row(r) for r in conn.execute(stmt.limit(limit))]

    def scan_cost_rows(self, target: str, limit: int = 50, offset: int = 0) -> list[ScanCostRow]:
        """The newest scans (not imports) of ``target`` first, only what a cost model reads.

        The metrics and prediction stay JSON text, for the reader to decode
        only the rows it uses (``scans`` decodes every document of every row);
        ``offset`` skips that many of the newest, to read on page by page.
        """
        stmt = (
            select(
                scans.c.status,
                scans.c.owner_host,
                scans.c.metrics,
                scans.c.prediction,
            )
            .where(scans.c.target == target)
            .where(or_(scans.c.kind.is_(None), scans.c.kind == KIND_SCAN))
            .order_by(scans.c.started_ms.desc(), scans.c.scan_id.desc())
            .limit(limit)
            .offset(offset)
        )
        with self._engine.connect() as conn:
            return [ScanCostRow(*row) for row in conn.execute(stmt)]

    def latest_scans_by_target(
        self,
    ) -> tuple[dict[str, ScanRecord], dict[str, ScanRecord]]:
        """The newest scan (or import) of every target, and its newest finished one, in one read.

        Finished: ended whole (ok, partial, failed) with metrics, what the
        overview counts. A row that is both is read once.
        """
        done = case(
            (and_(scans.c.status.in_(COMPLETE_SCAN_STATUSES), scans.c.metrics.is_not(None)), 1),
            else_=0,
        )
        newest_first = (scans.c.started_ms.desc(), scans.c.scan_id.desc())
        ranked = select(
            scans.c.scan_id,
            done.label("done"),
            func.row_number()
            .over(partition_by=scans.c.target, order_by=newest_first)
            .label("newest"),
            func.row_number()
            .over(partition_by=(scans.c.target, done), order_by=newest_first)
            .label("rank_done"),
        ).subquery()
        stmt = (
            select(scans, ranked.c.newest, ranked.c.done, ranked.c.rank_done)
            .join(ranked, ranked.c.scan_id == scans.c.scan_id)
            .where(or_(ranked.c.newest == 1, and_(ranked.c.done == 1, ranked.c.rank_done == 1)))
        )
        newest: dict[str, ScanRecord] = {}
        finished: dict[str, ScanRecord] = {}
        with self._engine.connect() as conn:
            for row in conn.execute(stmt):
                record = self._scan_from_row(row)
                if row.newest == 1:
                    newest[record.target] = record
                if row.done == 1 and row.rank_done == 1:
                    finished[record.target] = record
        return newest, finished

    def scan_finding_counts_of(
        self, scan_ids: Iterable[str], *, at_ms: int | None = None
    ) -> dict[str, FindingCounts]:
        """``scan_finding_counts`` of many scans at once (no read per scan)."""
        at = clock_ms() if at_ms is None else at_ms
        with self._engine.connect() as conn:
            return count_stored_findings_of(conn, list(dict.fromkeys(scan_ids)), at)

    def scan(self, scan_id: str) -> ScanRecord | None:
        """One scan by id, or None."""
        with self._engine.connect() as conn:
            row = conn.execute(select(scans).where(scans.c.scan_id == scan_id)).first()
        return None if row is None else self._scan_from_row(row)
