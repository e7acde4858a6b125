"""Ingest: application metrics as JSON batches, and SARIF logs from other tools.

Metric batches are validated whole (one bad sample refuses the request,
naming its index) and published as one ``MetricsRecorded`` event; the store
writer on the bus persists them. While a subscriber's queue is nearly full
the answer is 503 with ``Retry-After``, so that clients slow down instead of
their samples being shed by the bus.

A SARIF upload is recorded as an *import* of another tool's results (a scan
record of kind ``import``): its findings are stored at once (the answer
carries the scan id, readable immediately) and its events are published for
the live stream. An import measured no coverage and no scan time, is no scan
window for correlation and fires no coverage alert; its findings count as a
scan's do (``security.series``). A log with skipped results is stored as
``partial``.
"""

from __future__ import annotations

import time
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError

from secperf.events import MetricsRecorded, ScanCompleted, ViolationDetected
from secperf.events import now_ms as _now_ms
from secperf.model import (
    LABEL_NAME_RE,
    MAX_LABEL_NAME_LENGTH,
    MAX_LABEL_VALUE_LENGTH,
    MAX_LABELS_PER_SERIES,
    MAX_METRIC_NAME_LENGTH,
    METRIC_NAME_RE,
    Finding,
    Sample,
    SecurityMetrics,
    sample_problem,
)
from secperf.security.sarif_import import SarifError, SarifImport, import_sarif
from secperf.security.series import KIND_IMPORT, count_scan_findings
from secperf.store import Store
from secperf.web.admission import REASON_WRITER_BEHIND
from secperf.web.auth import WriteCheckedRoute, require_write
from secperf.web.context import AppContext, get_context
from secperf.web.errors import ApiError, describe_validation
from secperf.web.serialize import ok

router = APIRouter(
    prefix="/api/v1/ingest",
    tags=["ingest"],
    dependencies=[Depends(require_write)],
    route_class=WriteCheckedRoute,
)

Ctx = Annotated[AppContext, Depends(get_context)]
MAX_SAMPLES = 10_000
#: Findings of one upload announced one by one on the live stream (the rest: in the scan).
MAX_VIOLATION_EVENTS = 100
#: The baseline new findings are compared against.
DEFAULT_BASELINE = "default"
#: Refuse metric batches while a bus subscriber's queue is fuller than this.
BACKPRESSURE_FILL = 0.9

LabelName = Annotated[
    str, Field(min_length=1, max_length=MAX_LABEL_NAME_LENGTH, pattern=LABEL_NAME_RE.pattern)
]
LabelValue = Annotated[str, Field(max_length=MAX_LABEL_VALUE_LENGTH)]


class SampleIn(BaseModel):
    """One sample: a metric name, labels, a time (default: now) and a finite number."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        min_length=1, max_length=MAX_METRIC_NAME_LENGTH, pattern=METRIC_NAME_RE.pattern
    )
    labels: dict[LabelName, LabelValue] = Field(
        default_factory=dict, max_length=MAX_LABELS_PER_SERIES
    )
    timestamp_ms: StrictInt | None = Field(default=None, ge=0, le=2**53)
    value: float = Field(strict=True, allow_inf_nan=False)


class MetricsBatch(BaseModel):
    """A batch of samples (at most 10,000)."""

    model_config = ConfigDict(extra="forbid")

    samples: list[SampleIn] = Field(max_length=MAX_SAMPLES)


def _overloaded(ctx: AppContext) -> bool:
    for sub in ctx.bus.stats().subscribers:
        if sub.queue_max and sub.queue_depth >= sub.queue_max * BACKPRESSURE_FILL:
            return True
    return False


def _inline_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The model's JSON schema with its local ``$defs`` references inlined (for OpenAPI)."""
    schema = model.model_json_schema()
    defs = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return inline(defs[ref.removeprefix("#/$defs/")])
            return {k: inline(v) for k, v in node.items()}
        if isinstance(node, list):
            return [inline(v) for v in node]
        return node

    result: dict[str, Any] = inline(schema)
    return result


@router.post(
    "/metrics",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": _inline_schema(MetricsBatch)}},
        }
    },
)
async def ingest_metrics(ctx: Ctx, request: Request) -> JSONResponse:
    """Accept a batch of samples; all or nothing."""
    # Parsed and validated in one pass by pydantic's own JSON parser: several
    # times faster than decoding to Python objects first and validating those.
    try:
        body = MetricsBatch.model_validate_json(await request.body())
    except ValidationError as exc:
        errors = [{**e, "loc": ("body", *e.get("loc", ()))} for e in exc.errors()]
        message, where = describe_validation(errors)
        raise ApiError(422, message, where=where) from None
    now = _now_ms()
    samples: list[Sample] = []
    for index, item in enumerate(body.samples):
        sample = Sample(
            item.name,
            item.labels,
            item.timestamp_ms if item.timestamp_ms is not None else now,
            item.value,
        )
        problem = sample_problem(sample, now)
        if problem is not None:
            raise ApiError(
                422,
                f"sample {index}: {problem}; nothing was stored",
                where=f"body.samples[{index}]",
            )
        samples.append(sample)
    if not samples:
        return ok({"accepted": 0})
    if _overloaded(ctx):
        counter = getattr(request.app.state, "shed_counter", None)
        if counter is not None:
            counter.add(REASON_WRITER_BEHIND)
        raise ApiError(
            503,
            "secperf is writing behind; retry this batch shortly",
            code="overloaded",
            headers={"Retry-After": "1"},
        )
    await ctx.bus.publish(MetricsRecorded(samples=tuple(samples)))
    return ok({"accepted": len(samples)})


# --------------------------------------------------------------------------- SARIF


def _store_sarif_import(
    store: Store,
    target: str,
    imported: SarifImport,
    started_ms: int,
    parse_ms: float,
) -> tuple[SecurityMetrics, set[str], str]:
    """Record the upload as an import; returns its metrics, new fingerprints and status."""
    found = imported.findings
    scan_id = f"sarif-{uuid.uuid4().hex}"
    previous = {f.finding.fingerprint for f in store.latest_scan_findings(target)}
    known = previous | store.baseline(DEFAULT_BASELINE)
    current = {f.fingerprint for f in found}
    new = current - known
    finished = max(_now_ms(), started_ms)
    # Counted as every scan is (each fingerprint once, triage set aside).
    counts = count_scan_findings(found, new, store.triage_all(), finished)
    metrics = SecurityMetrics(
        scan_id=scan_id,
        target=target,
        started_ms=started_ms,
        finished_ms=finished,
        scan_duration_ms=parse_ms,
        violations_found=counts.violations,
        false_positive_rate=counts.false_positive_rate,
        vulnerability_severity_counts=counts.violations_by_severity,
        # Coverage is not known for a log produced elsewhere (kind "import" says so).
        scan_coverage_percent=0.0,
        files_scanned=len({f.path for f in found}),
        new_findings=counts.new_violations,
        existing_findings=counts.baselined_violations,
        fixed_findings=len(previous - current),
        scanner_durations_ms={"sarif": parse_ms},
        false_positives=counts.false_positives,
        accepted_risks=counts.accepted_risks,
        kind=KIND_IMPORT,
    )
    skipped = len(imported.skipped)
    status = "partial" if skipped else "ok"
    error = f"{skipped} SARIF result{'s' if skipped != 1 else ''} skipped" if skipped else None
    store.record_scan_started(scan_id, target, started_ms, ["sarif"])
    store.add_findings(scan_id, found, new)
    metrics = store.record_scan_completed(metrics, status, error)
    return metrics, new, status


@router.post(
    "/sarif",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"type": "object"}},
                "application/sarif+json": {"schema": {"type": "object"}},
            },
        }
    },
)
async def ingest_sarif(
    ctx: Ctx,
    request: Request,
    target: Annotated[
        str,
        Query(
            min_length=1,
            max_length=200,
            pattern=r"^[^\x00-\x1f]+$",
            description="What was scanned (default: sarif-upload).",
        ),
    ] = "sarif-upload",
) -> JSONResponse:
    """Import a SARIF 2.1.0 log as a scan of ``target``."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type and content_type not in ("application/json", "application/sarif+json"):
        raise ApiError(415, "send the SARIF log as application/json or application/sarif+json")
    content = await request.body()
    if not content:
        raise ApiError(422, "the request body is empty; send a SARIF 2.1.0 log", where="body")
    started = _now_ms()
    clock = time.perf_counter()
    try:
        imported: SarifImport = await run_in_threadpool(
            import_sarif, content, None, f"upload:{target}"
        )
    except SarifError as exc:
        where = f"body.{exc.json_path}" if exc.json_path else "body"
        raise ApiError(422, f"not a valid SARIF 2.1.0 log: {exc}", where=where) from None
    except (RecursionError, ValueError):  # e.g. JSON nested deeper than Python can read
        raise ApiError(422, "the SARIF log could not be read", where="body") from None
    found: list[Finding] = imported.findings
    parse_ms = (time.perf_counter() - clock) * 1000.0
    metrics, new, status = await run_in_threadpool(
        _store_sarif_import, ctx.store, target, imported, started, parse_ms
    )
    bus = ctx.bus
    # No ScanStarted: an import is not a scan running on this machine.
    announced = 0
    for finding in found:
        if finding.fingerprint in new and announced < MAX_VIOLATION_EVENTS:
            announced += 1
            await bus.publish(ViolationDetected(scan_id=metrics.scan_id, finding=finding))
    await bus.publish(ScanCompleted(metrics=metrics, status=status))
    result: dict[str, Any] = {
        "scan_id": metrics.scan_id,
        "target": target,
        "kind": metrics.kind,
        "status": status,
        # Every distinct finding of the log; violations leave out what triage set aside.
        "findings": len({f.fingerprint for f in found}),
        "violations": metrics.violations_found,
        "new_findings": metrics.new_findings,
        # Results left out (a path outside the project, line -5), each naming its field.
        "skipped": imported.skipped,
    }
    return ok(result)
