"""The overview (security and performance side by side) and chart annotations."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from secperf.events import local_host
from secperf.events import now_ms as _now_ms
from secperf.model import AlertState, MetricType
from secperf.security.series import KIND_SCAN, counted_metrics, is_violation
from secperf.store import ScanRecord, Store
from secperf.web.auth import require_read
from secperf.web.context import AppContext, get_context
from secperf.web.errors import ApiError
from secperf.web.routes_alerts import alert_counts, alerts_json
from secperf.web.scope import HostQuery, TargetQuery, labels_in_scope
from secperf.web.serialize import ok, scan_json, severity_counts

router = APIRouter(prefix="/api/v1", tags=["overview"], dependencies=[Depends(require_read)])

Ctx = Annotated[AppContext, Depends(get_context)]
TREND_SCANS = 30
#: Scans read to find those inside an annotation window.
SCANS_READ = 1000
MAX_ANNOTATION_FINDINGS = 1000
MAX_ANNOTATION_ALERTS = 1000
DEFAULT_WINDOW_MS = 24 * 3_600_000


def _security(store: Store, scans: list[ScanRecord], now_ms: int) -> dict[str, Any]:
    """The newest complete scan (or import) with its numbers under today's triage.

    The counts are those of ``security.series`` over the scan's stored findings
    with the triage in force now, so a triage decision changes them at once;
    the trend is that scan's target's earlier scans, as each counted when it
    ended, its last point today's count. An import measured no coverage and no
    scan time: both are null for it.
    """
    # An interrupted or abandoned scan saw only part of the code: not the posture.
    finished = [s for s in scans if s.metrics is not None and s.complete]
    last = finished[0] if finished else None
    metrics = last.metrics if last is not None else None
    if last is None or metrics is None:
        return {
            "last_scan": None,
            "kind": None,
            "severity_counts": severity_counts(None),
            "findings": 0,
            "violations": 0,
            "new_findings": 0,
            "false_positives": 0,
            "accepted_risks": 0,
            "false_positive_rate": 0.0,
            "coverage_percent": None,
            "scan_duration_ms": None,
            "trend": [],
        }
    counts = store.scan_finding_counts(last.scan_id, at_ms=now_ms)
    current = counted_metrics(metrics, counts)
    same = [s for s in finished if s.target == last.target][:TREND_SCANS]
    trend = [
        {
            "ts_ms": s.finished_ms,
            "scan_id": s.scan_id,
            "violations": (current if s is last else s.metrics).violations_found,
            "new": (current if s is last else s.metrics).new_findings,
            "scan_duration_ms": None if s.is_import else s.metrics.scan_duration_ms,
        }
        for s in reversed(same)
        if s.metrics is not None
    ]
    return {
        "last_scan": scan_json(last),
        "kind": last.kind,
        "severity_counts": severity_counts(current.vulnerability_severity_counts),
        "findings": current.violations_found + current.false_positives + current.accepted_risks,
        "violations": current.violations_found,
        "new_findings": current.new_findings,
        "false_positives": current.false_positives,
        "accepted_risks": current.accepted_risks,
        "false_positive_rate": current.false_positive_rate,
        "coverage_percent": None if last.is_import else current.scan_coverage_percent,
        "scan_duration_ms": None if last.is_import else current.scan_duration_ms,
        "trend": trend,
    }


def _latest_value(store: Store, name: str, host: str | None) -> float | None:
    """The newest host-wide value of ``name`` (series without a per-core/-device label)."""
    candidates = [
        s for s in store.latest(name, {"host": host} if host else None) if set(s.labels) <= {"host"}
    ]
    if not candidates:
        return None
    if host is None:
        local = [s for s in candidates if s.labels.get("host") == local_host()]
        candidates = local or candidates
    return max(candidates, key=lambda s: s.timestamp_ms).value


def _performance(store: Store, host: str | None) -> dict[str, Any]:
    hosts = store.label_values("host")
    return {
        "host": host,
        "latest": {
            name.value: _latest_value(store, name.value, host)
            for name in (MetricType.CPU_PERCENT, MetricType.MEMORY_PERCENT, MetricType.LOAD_1M)
        },
        "hosts": hosts,
    }


def shown_target(store: Store) -> str | None:
    """The target the overview shows when none is asked for: the most recently scanned.

    Scans secperf ran decide (the newest that ended whole, else the newest at
    all), so importing another tool's results for another project never
    switches the overview; a store holding only imports shows the newest
    import's target.
    """
    scans = store.scans(limit=50, kind=KIND_SCAN)
    chosen = next((s for s in scans if s.complete), scans[0] if scans else None)
    if chosen is None:
        imports = store.scans(limit=1)
        chosen = imports[0] if imports else None
    return chosen.target if chosen is not None else None


@router.get("/overview")
async def overview(
    ctx: Ctx,
    target: TargetQuery = None,
    host: HostQuery = None,
) -> JSONResponse:
    """Security status of one target, performance status, firing alerts and a running scan.

    The security part is ``target``'s, by default the most recently scanned
    target (named in ``target``), never a mix of targets; the performance part
    is ``host``'s. Firing alerts are those in the scope asked for, silenced
    ones left out and counted in ``silenced``. ``server_ms`` is the server's
    clock when it answered.
    """
    store = ctx.store

    def read_store() -> dict[str, Any]:
        chosen = target if target is not None else shown_target(store)
        scans = store.scans(limit=100, target=chosen) if chosen is not None else []
        running = next((s for s in scans if s.finished_ms is None and s.status == "running"), None)
        return {
            "target": chosen,
            "security": _security(store, scans, _now_ms()),
            "performance": _performance(store, host),
            "scan_running": scan_json(running) if running is not None else None,
        }

    data = await run_in_threadpool(read_store)
    firing = await alerts_json(ctx, [AlertState.FIRING], target=target, host=host)
    if ctx.alert_engine is not None:
        pending_alerts = ctx.alert_engine.alerts([AlertState.PENDING])
    else:
        pending_alerts = await run_in_threadpool(store.alerts, [AlertState.PENDING])
    pending = sum(1 for a in pending_alerts if labels_in_scope(a.labels, target, host))
    counts = alert_counts(firing)
    data["alerts"] = {
        "firing": [a for a in firing if not a.get("silenced")],
        "pending": pending,
        "silenced": counts["silenced"],
    }
    data["store_writes"] = _store_writes(ctx)
    data["server_ms"] = _now_ms()
    return ok(data)


def _store_writes(ctx: AppContext) -> dict[str, int] | None:
    """Writes the store refused after every retry (the dashboard's banner); None: no writer."""
    if ctx.writer is None:
        return None
    ws = ctx.writer.stats()
    return {
        "failures": ws.write_failures,
        "lost_events": ws.events_failed,
        "lost_samples": ws.samples_failed,
        "kept_events": ws.kept_events,
    }


@router.get("/annotations")
def chart_annotations(
    ctx: Ctx,
    start_ms: Annotated[int | None, Query(ge=0, le=2**53)] = None,
    end_ms: Annotated[int | None, Query(ge=0, le=2**53)] = None,
    target: TargetQuery = None,
    host: HostQuery = None,
) -> JSONResponse:
    """Scan windows, new findings and alert changes in [start_ms, end_ms], for chart overlays.

    ``target`` keeps its scans and findings and the alerts labelled with it;
    ``host`` keeps the alerts labelled with it (scans are not a host's).
    """
    end = end_ms if end_ms is not None else _now_ms()
    start = start_ms if start_ms is not None else max(0, end - DEFAULT_WINDOW_MS)
    if end < start:
        raise ApiError(422, f"end_ms {end} is before start_ms {start}", where="end_ms")
    store = ctx.store
    scans_out: list[dict[str, Any]] = []
    findings_out: list[dict[str, Any]] = []
    # The store lists scans newest first without a time filter; keep the overlapping ones.
    for record in store.scans(limit=SCANS_READ, target=target):
        scan_end = record.finished_ms if record.finished_ms is not None else _now_ms()
        if scan_end < start or record.started_ms > end:
            continue
        metrics = record.metrics
        # An import of another tool's results ran nowhere here: no scan window,
        # though its new findings are marked.
        if not record.is_import:
            scans_out.append(
                {
                    "scan_id": record.scan_id,
                    "target": record.target,
                    "status": record.status,
                    "start_ms": record.started_ms,
                    "end_ms": record.finished_ms,
                    "violations": metrics.violations_found if metrics else None,
                    "new_findings": metrics.new_findings if metrics else None,
                }
            )
        if metrics is None or not metrics.new_findings:
            continue
        room = MAX_ANNOTATION_FINDINGS - len(findings_out)
        if room <= 0:
            continue
        stamp = record.finished_ms if record.finished_ms is not None else record.started_ms
        for stored in store.findings(scan_id=record.scan_id, limit=None):
            # New violations only: what triage set aside is no finding to mark.
            if not stored.is_new or not is_violation(stored.triage_state):
                continue
            f = stored.finding
            findings_out.append(
                {
                    "ts_ms": stamp,
                    "scan_id": record.scan_id,
                    "fingerprint": f.fingerprint,
                    "severity": f.severity.value,
                    "rule_id": f.rule_id,
                    "path": f.path,
                }
            )
            room -= 1
            if room <= 0:
                break
    scans_out.reverse()
    alerts_out: list[dict[str, Any]] = []
    # Transitions are recorded per alert; read those of alerts changed since ``start``.
    for alert in store.alerts():
        if not labels_in_scope(alert.labels, target, host):
            continue
        if alert.updated_ms < start or len(alerts_out) >= MAX_ANNOTATION_ALERTS:
            continue
        for t in store.alert_history(alert.fingerprint):
            if start <= t.ts_ms <= end:
                alerts_out.append(
                    {
                        "ts_ms": t.ts_ms,
                        "fingerprint": t.fingerprint,
                        "rule": t.alert.rule,
                        "state": t.to_state.value,
                        "from": t.from_state.value,
                        "severity": t.alert.severity.value,
                        "kind": t.alert.kind.value,
                        "labels": t.alert.labels,
                    }
                )
    alerts_out.sort(key=lambda a: a["ts_ms"])
    return ok(
        {
            "scans": scans_out,
            "findings": findings_out,
            "alerts": alerts_out[:MAX_ANNOTATION_ALERTS],
        }
    )
