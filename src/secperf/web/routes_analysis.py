"""Analysis reads: correlations, advice, gate runs and benchmark history."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse

from secperf.web.auth import require_read
from secperf.web.context import AppContext, get_context
from secperf.web.errors import ApiError, store_failure_reason
from secperf.web.serialize import ok, to_jsonable

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1", tags=["analysis"], dependencies=[Depends(require_read)])

Ctx = Annotated[AppContext, Depends(get_context)]


def _provider_failed(what: str) -> ApiError:
    log.exception("the %s provider failed", what)
    return ApiError(
        503, f"{what} are unavailable right now; see the server log", code="unavailable"
    )


@router.get("/correlations")
def correlations(ctx: Ctx) -> JSONResponse:
    """Metrics ranked by how much scans affect them (empty without a correlation engine)."""
    if ctx.correlations is None:
        return ok({"computed_ms": None, "results": []})
    try:
        data = dict(ctx.correlations())
    except Exception as exc:
        if store_failure_reason(exc) is not None:
            raise  # a busy or unreachable store: 503 with Retry-After, counted as shed
        raise _provider_failed("correlations") from None
    return ok({"computed_ms": data.get("computed_ms"), "results": list(data.get("results", []))})


@router.get("/advice")
def advice(ctx: Ctx) -> JSONResponse:
    """Troubleshooting advice with its evidence (empty without an advice engine)."""
    if ctx.advice is None:
        return ok({"advice": []})
    try:
        items: list[Any] = [dict(item) for item in ctx.advice()]
    except Exception as exc:
        if store_failure_reason(exc) is not None:
            raise  # a busy or unreachable store: 503 with Retry-After, counted as shed
        raise _provider_failed("advice") from None
    return ok({"advice": items})


@router.get("/gate-runs")
def gate_runs(ctx: Ctx, limit: Annotated[int, Query(ge=1, le=1000)] = 50) -> JSONResponse:
    """The newest quality-gate verdicts first."""
    return ok({"runs": [to_jsonable(r) for r in ctx.store.gate_runs(limit=limit)]})


@router.get("/benchmarks")
def benchmarks(
    ctx: Ctx,
    name: Annotated[str | None, Query(min_length=1, max_length=500)] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> JSONResponse:
    """Benchmark names and the newest results (chronological), optionally of one benchmark."""
    store = ctx.store
    results = store.benchmark_results(name=name, limit=limit)
    return ok({"names": store.benchmark_names(), "results": [to_jsonable(r) for r in results]})
