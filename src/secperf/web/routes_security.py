"""Security reads and writes: scans, findings, triage and baselines."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from fastapi import APIRouter, Body, Depends, Path, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictInt
from sqlalchemy import func, select

from secperf.events import BaselineUpdated
from secperf.events import now_ms as _now_ms
from secperf.model import Severity
from secperf.store import Store
from secperf.store.finding_rows import owner_of
from secperf.store.scan_records import COMPLETE_SCAN_STATUSES
from secperf.store.schema import findings as findings_table
from secperf.store.schema import scans as scans_table
from secperf.web.auth import WriteCheckedRoute, require_read, require_write
from secperf.web.context import AppContext, get_context
from secperf.web.errors import ApiError
from secperf.web.scope import TargetQuery
from secperf.web.serialize import finding_json, ok, scan_json, triage_json

router = APIRouter(prefix="/api/v1", tags=["security"], route_class=WriteCheckedRoute)

Ctx = Annotated[AppContext, Depends(get_context)]
ScanId = Annotated[str, Path(min_length=1, max_length=200)]
Fingerprint = Annotated[str, Path(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:\-]+$")]
BaselineName = Annotated[str, Path(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.\-]+$")]
MAX_FINDINGS = 5000


class TriageStateFilter(StrEnum):
    """Effective triage states a finding can be in."""

    OPEN = "open"
    FALSE_POSITIVE = "false_positive"
    ACCEPTED_RISK = "accepted_risk"
    FIXED = "fixed"


class TriageRequest(BaseModel):
    """A triage decision on one finding."""

    model_config = ConfigDict(extra="forbid")

    state: Literal["false_positive", "accepted_risk", "open"]
    reason: str = Field(min_length=1, max_length=2000)
    author: str = Field(min_length=1, max_length=200, pattern=r"\S")
    expires_ms: StrictInt | None = Field(default=None, ge=0, le=2**53)


class BaselineRequest(BaseModel):
    """Accept the findings of one scan (default: the newest) as the baseline."""

    model_config = ConfigDict(extra="forbid")

    scan_id: str | None = Field(default=None, min_length=1, max_length=200)
    author: str | None = Field(default=None, min_length=1, max_length=200)


def latest_scan_id(store: Store, target: str | None = None) -> str | None:
    """The newest scan that ended whole (by status), else the newest scan at all, else None.

    An interrupted or abandoned scan has an end but saw only part of the code.
    ``target``: the newest of that target's scans.
    """
    recent = store.scans(limit=50, target=target)
    for record in recent:
        if record.complete:
            return record.scan_id
    return recent[0].scan_id if recent else None


def _finding_known(store: Store, fingerprint: str) -> bool:
    # The store has no lookup by fingerprint alone; one indexed read does it.
    stmt = (
        select(findings_table.c.fingerprint)
        .where(findings_table.c.fingerprint == fingerprint)
        .limit(1)
    )
    with store.engine.connect() as conn:
        return conn.execute(stmt).first() is not None


# --------------------------------------------------------------------------- scans


@router.get("/scans", dependencies=[Depends(require_read)])
def list_scans(
    ctx: Ctx, limit: Annotated[int, Query(ge=1, le=1000)] = 50, target: TargetQuery = None
) -> JSONResponse:
    """The newest scans first, optionally of one target."""
    return ok({"scans": [scan_json(r) for r in ctx.store.scans(limit=limit, target=target)]})


@router.get("/scans/{scan_id}", dependencies=[Depends(require_read)])
def get_scan(ctx: Ctx, scan_id: ScanId) -> JSONResponse:
    """One scan."""
    record = ctx.store.scan(scan_id)
    if record is None:
        raise ApiError(404, f"no scan with id {scan_id!r}", where="path.scan_id")
    return ok(scan_json(record))


# --------------------------------------------------------------------------- findings


@router.get("/findings", dependencies=[Depends(require_read)])
def list_findings(
    ctx: Ctx,
    severity: Annotated[Severity | None, Query(description="At least this severity.")] = None,
    scanner: Annotated[str | None, Query(min_length=1, max_length=100)] = None,
    path: Annotated[
        str | None, Query(min_length=1, max_length=500, description="Glob, e.g. src/*.")
    ] = None,
    state: Annotated[TriageStateFilter | None, Query()] = None,
    scan_id: Annotated[
        str | None,
        Query(min_length=1, max_length=200, description="Default: the newest finished scan."),
    ] = None,
    new: Annotated[bool | None, Query(description="Only new (true) or known (false).")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_FINDINGS)] = 500,
    target: TargetQuery = None,
) -> JSONResponse:
    """Findings of one scan with their triage state, filtered.

    ``target``: the default scan is that target's newest; a ``scan_id`` of
    another target gives no findings.
    """
    store = ctx.store
    chosen = scan_id if scan_id is not None else latest_scan_id(store, target)
    if chosen is not None and target is not None and scan_id is not None:
        record = store.scan(scan_id)
        if record is None or record.target != target:
            chosen = None
    if chosen is None:
        return ok({"scan_id": None, "target": target, "findings": []})
    rows = store.findings(
        scan_id=chosen,
        severity_at_least=severity,
        scanner=scanner,
        path_glob=path,
        state=state.value if state is not None else None,
        limit=None if new is not None else limit,
    )
    if new is not None:
        rows = [r for r in rows if r.is_new == new][:limit]
    first_seen = _first_seen(store, chosen) if rows else {}
    out = [
        {**finding_json(r), "first_seen_ms": first_seen.get(r.finding.fingerprint)} for r in rows
    ]
    return ok({"scan_id": chosen, "target": target, "findings": out})


def _first_seen(store: Store, scan_id: str) -> dict[str, int]:
    """When each finding of the scan's target was first seen.

    As ``store/finding_history.py`` dates it (the end of the first complete
    scan of the target holding it), in one aggregate read.
    """
    record = store.scan(scan_id)
    if record is None:
        return {}
    ended = func.min(func.coalesce(scans_table.c.finished_ms, scans_table.c.started_ms))
    stmt = (
        select(findings_table.c.fingerprint, ended)
        .select_from(scans_table.join(findings_table, findings_table.c.scan_id == owner_of()))
        .where(scans_table.c.target == record.target)
        .where(scans_table.c.status.in_(COMPLETE_SCAN_STATUSES))
        .group_by(findings_table.c.fingerprint)
    )
    with store.engine.connect() as conn:
        return {fp: int(ms) for fp, ms in conn.execute(stmt) if ms is not None}


@router.post("/findings/{fingerprint}/triage", dependencies=[Depends(require_write)])
def triage(ctx: Ctx, fingerprint: Fingerprint, body: TriageRequest) -> JSONResponse:
    """Mark a finding false positive, accept its risk (optionally until a time), or reopen it."""
    now = _now_ms()
    if body.expires_ms is not None and body.expires_ms <= now:
        raise ApiError(422, "expires_ms must be in the future", where="body.expires_ms")
    if body.state == "open" and body.expires_ms is not None:
        raise ApiError(422, "reopening takes no expires_ms", where="body.expires_ms")
    if not _finding_known(ctx.store, fingerprint):
        raise ApiError(404, f"no finding with fingerprint {fingerprint!r}", where="path")
    decision = ctx.store.set_triage(
        fingerprint, body.state, body.author.strip(), body.reason, body.expires_ms, now_ms=now
    )
    return ok(
        {
            "fingerprint": decision.fingerprint,
            "state": decision.state.value,
            **(triage_json(decision) or {}),
        }
    )


# --------------------------------------------------------------------------- baselines


@router.get("/baselines", dependencies=[Depends(require_read)])
def list_baselines(ctx: Ctx) -> JSONResponse:
    """Every baseline with its size."""
    store = ctx.store
    return ok(
        {
            "baselines": [
                {"name": name, "fingerprints": len(store.baseline(name))}
                for name in store.baseline_names()
            ]
        }
    )


@router.post("/baselines/{name}", dependencies=[Depends(require_write)])
async def save_baseline(
    ctx: Ctx,
    name: BaselineName,
    body: Annotated[BaselineRequest | None, Body()] = None,
) -> JSONResponse:
    """Accept every finding of a scan (default: the newest) as baseline ``name``."""
    request = body or BaselineRequest()
    store = ctx.store

    def work() -> tuple[int, int, int]:
        scan_id = request.scan_id if request.scan_id is not None else latest_scan_id(store)
        if scan_id is None:
            raise ApiError(404, "there is no scan to take a baseline from", where="body.scan_id")
        if store.scan(scan_id) is None:
            raise ApiError(404, f"no scan with id {scan_id!r}", where="body.scan_id")
        fingerprints = {f.finding.fingerprint for f in store.findings(scan_id=scan_id, limit=None)}
        before = store.baseline(name)
        size = store.save_baseline(name, fingerprints, _now_ms())
        return size, len(fingerprints - before), len(before - fingerprints)

    size, added, removed = await run_in_threadpool(work)
    await ctx.bus.publish(
        BaselineUpdated(
            baseline=name,
            fingerprints=size,
            added=added,
            removed=removed,
            author=request.author,
        )
    )
    return ok({"name": name, "fingerprints": size, "added": added, "removed": removed})
