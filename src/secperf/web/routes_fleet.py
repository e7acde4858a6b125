"""The fleet: every target and every host on one page, each with its key numbers.

Both lists read the store once per kind of data (scans, finding counts, gate
runs, alerts, latest samples), whatever the number of targets or hosts: no
read per target. Finding counts are ``security.series``'s over the newest
finished scan of each target with today's triage, the overview's definition.
Silenced alerts are counted apart from firing ones.
"""

from __future__ import annotations

from collections import Counter
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from secperf.events import now_ms as _now_ms
from secperf.model import Alert, AlertState, MetricType
from secperf.security.series import counted_metrics
from secperf.store import ScanRecord, Store
from secperf.web.auth import require_read
from secperf.web.context import AppContext, get_context
from secperf.web.routes_alerts import is_silenced
from secperf.web.scope import HostQuery, TargetQuery
from secperf.web.serialize import ok, scan_json, severity_counts

router = APIRouter(prefix="/api/v1/fleet", tags=["fleet"], dependencies=[Depends(require_read)])

Ctx = Annotated[AppContext, Depends(get_context)]
DEFAULT_PAGE = 200
MAX_PAGE = 1000
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE, description="Entries per page.")]
Offset = Annotated[int, Query(ge=0, le=2**31, description="Entries to skip (sorted by name).")]
#: The host-wide series a host's entry shows (series labelled with the host only).
HOST_METRICS = (MetricType.CPU_PERCENT, MetricType.MEMORY_PERCENT, MetricType.LOAD_1M)


async def _firing_alerts(ctx: AppContext) -> list[tuple[Alert, bool]]:
    """Firing alerts with whether a silence in force mutes each (engine or store)."""
    store = ctx.store
    active = await run_in_threadpool(store.silences, _now_ms())
    if ctx.alert_engine is not None:
        firing = ctx.alert_engine.alerts([AlertState.FIRING])
    else:
        firing = await run_in_threadpool(store.alerts, [AlertState.FIRING])
    return [(a, is_silenced(a, active)) for a in firing]


def _alert_counts(alerts: list[tuple[Alert, bool]], label: str) -> dict[str, Counter[str]]:
    """Per value of ``label``: firing (not silenced) and silenced alert counts."""
    out: dict[str, Counter[str]] = {}
    for alert, silenced in alerts:
        value = alert.labels.get(label)
        if value is not None:
            out.setdefault(value, Counter())["silenced" if silenced else "firing"] += 1
    return out


def _counts_json(counts: Counter[str] | None) -> dict[str, int]:
    counts = counts or Counter()
    return {"firing": counts["firing"], "silenced": counts["silenced"]}


def _page(names: list[str], limit: int, offset: int) -> list[str]:
    return names[offset : offset + limit]


def _target_entry(
    name: str,
    last: ScanRecord | None,
    counted: ScanRecord | None,
    counts: Any,
    gate: Any,
    alerts: Counter[str] | None,
) -> dict[str, Any]:
    """One target's FleetTargetJson."""
    security: dict[str, Any] = {
        "scan_id": None,
        "severity_counts": severity_counts(None),
        "violations": 0,
        "new_findings": 0,
    }
    cost: dict[str, Any] | None = None
    if counted is not None and counted.metrics is not None:
        current = counted.metrics if counts is None else counted_metrics(counted.metrics, counts)
        security = {
            "scan_id": counted.scan_id,
            "severity_counts": severity_counts(current.vulnerability_severity_counts),
            "violations": current.violations_found,
            "new_findings": current.new_findings,
        }
        if not counted.is_import:  # another tool's results cost nothing here
            cost = {
                "scan_id": counted.scan_id,
                "duration_ms": current.scan_duration_ms,
                "cpu_seconds": counted.cost.cpu_seconds if counted.cost is not None else None,
            }
    return {
        "target": name,
        "last_scan": scan_json(last) if last is not None else None,
        "findings": security,
        "gate": (
            None
            if gate is None
            else {
                "run_id": gate.run_id,
                "verdict": gate.verdict.value,
                "finished_ms": gate.finished_ms,
                "commit": gate.commit,
            }
        ),
        "scan_cost": cost,
        "alerts": _counts_json(alerts),
    }


def fleet_targets(
    store: Store,
    alerts: list[tuple[Alert, bool]],
    *,
    target: str | None,
    limit: int,
    offset: int,
) -> dict[str, Any]:
    """The targets document: one read per kind of data for the whole page."""
    now = _now_ms()
    newest, finished = store.latest_scans_by_target()
    gates = store.latest_gate_runs_by_target()
    names = sorted(set(newest) | set(gates))
    if target is not None:
        names = [n for n in names if n == target]
    page = _page(names, limit, offset)
    counted = {n: finished[n] for n in page if n in finished}
    counts = store.scan_finding_counts_of([s.scan_id for s in counted.values()], at_ms=now)
    by_target = _alert_counts(alerts, "target")
    return {
        "total": len(names),
        "limit": limit,
        "offset": offset,
        "targets": [
            _target_entry(
                n,
                newest.get(n),
                counted.get(n),
                counts.get(counted[n].scan_id) if n in counted else None,
                gates.get(n),
                by_target.get(n),
            )
            for n in page
        ],
        "server_ms": now,
    }


def fleet_hosts(
    store: Store,
    alerts: list[tuple[Alert, bool]],
    *,
    host: str | None,
    limit: int,
    offset: int,
) -> dict[str, Any]:
    """The hosts document: the host-wide latest samples, one read per metric."""
    latest: dict[str, dict[str, tuple[int, float]]] = {}
    for metric in HOST_METRICS:
        for sample in store.latest(metric.value, {"host": host} if host is not None else None):
            # Host-wide only: a per-core (``cpu``) or per-device series is not the host's.
            if set(sample.labels) != {"host"}:
                continue
            latest.setdefault(sample.labels["host"], {})[metric.value] = (
                sample.timestamp_ms,
                sample.value,
            )
    hosts = store.label_values("host")
    names = hosts if host is None else [h for h in hosts if h == host]
    by_host = _alert_counts(alerts, "host")
    entries = []
    for name in _page(names, limit, offset):
        values = latest.get(name, {})
        entries.append(
            {
                "host": name,
                "latest": {
                    m.value: values[m.value][1] if m.value in values else None for m in HOST_METRICS
                },
                "last_seen_ms": max((ts for ts, _ in values.values()), default=None),
                "alerts": _counts_json(by_host.get(name)),
            }
        )
    return {
        "total": len(names),
        "limit": limit,
        "offset": offset,
        "hosts": entries,
        "server_ms": _now_ms(),
    }


@router.get("/targets")
async def list_fleet_targets(
    ctx: Ctx,
    target: TargetQuery = None,
    limit: Limit = DEFAULT_PAGE,
    offset: Offset = 0,
) -> JSONResponse:
    """Every target (sorted by name, paginated): last scan, open findings, gate, cost, alerts."""
    alerts = await _firing_alerts(ctx)
    return ok(
        await run_in_threadpool(
            fleet_targets, ctx.store, alerts, target=target, limit=limit, offset=offset
        )
    )


@router.get("/hosts")
async def list_fleet_hosts(
    ctx: Ctx,
    host: HostQuery = None,
    limit: Limit = DEFAULT_PAGE,
    offset: Offset = 0,
) -> JSONResponse:
    """Every host (sorted by name, paginated): CPU, memory, load, last seen, alerts."""
    alerts = await _firing_alerts(ctx)
    return ok(
        await run_in_threadpool(
            fleet_hosts, ctx.store, alerts, host=host, limit=limit, offset=offset
        )
    )
