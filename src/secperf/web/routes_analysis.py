"""Analysis reads: correlations, advice, gate runs and benchmark history."""

from __future__ import annotations

import inspect
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse

from secperf.web.auth import require_read
from secperf.web.context import AppContext, get_context
from secperf.web.errors import ApiError, store_failure_reason
from secperf.web.scope import HostQuery, TargetQuery, documents_in_scope
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
def correlations(ctx: Ctx, target: TargetQuery = None, host: HostQuery = None) -> JSONResponse:
    """Metrics ranked by how much scans affect them (empty without a correlation engine).

    ``target`` and ``host`` keep the results whose series carries those labels.
    """
    if ctx.correlations is None:
        return ok({"computed_ms": None, "results": []})
    try:
        data = dict(ctx.correlations())
    except Exception as exc:
        if store_failure_reason(exc) is not None:
            raise  # a busy or unreachable store: 503 with Retry-After, counted as shed
        raise _provider_failed("correlations") from None
    results = documents_in_scope(list(data.get("results", [])), target, host)
    return ok({"computed_ms": data.get("computed_ms"), "results": results})


#: What the advice document says when it holds nothing, by whether there was data to judge.
NO_DATA_MESSAGE = "no data yet: run a scan or start monitoring, and advice will follow"
NOTHING_WRONG_MESSAGE = "no advice: nothing looks wrong with the scans or the machine"


def _takes_target(provider: Any) -> bool:
    try:
        return "target" in inspect.signature(provider).parameters
    except (TypeError, ValueError):
        return False


def _store_has_data(ctx: AppContext, target: str | None) -> bool:
    """Whether the store holds any scan (of ``target``) or any metric series."""
    store = ctx.store
    return bool(store.scans(limit=1, target=target)) or bool(store.list_metric_names())


@router.get("/advice")
def advice(ctx: Ctx, target: TargetQuery = None) -> JSONResponse:
    """Troubleshooting advice with its evidence (empty without an advice engine).

    ``target`` scopes the scan-based advice to that target's scans (default:
    the newest finished scan's target). ``status`` is ``no_data`` while the
    store holds neither a scan nor a metric series (nothing was judged), else
    ``ok``; ``message`` is what to show when ``advice`` is empty.
    """
    has_data = _store_has_data(ctx, target)
    status = "ok" if has_data else "no_data"
    message = NOTHING_WRONG_MESSAGE if has_data else NO_DATA_MESSAGE
    if ctx.advice is None:
        return ok({"advice": [], "status": status, "message": message})
    provider = ctx.advice
    try:
        produced = (
            provider(target=target)
            if target is not None and _takes_target(provider)
            else provider()
        )
        items: list[Any] = [dict(item) for item in produced]
    except Exception as exc:
        if store_failure_reason(exc) is not None:
            raise  # a busy or unreachable store: 503 with Retry-After, counted as shed
        raise _provider_failed("advice") from None
    return ok({"advice": items, "status": status, "message": message})


#: An optional bound of a time range, in UTC milliseconds.
RangeBound = Annotated[int | None, Query(ge=0, le=2**53)]


def _check_range(start_ms: int | None, end_ms: int | None) -> None:
    if start_ms is not None and end_ms is not None and end_ms < start_ms:
        raise ApiError(422, f"end_ms {end_ms} is before start_ms {start_ms}", where="end_ms")


@router.get("/gate-runs")
def gate_runs(
    ctx: Ctx,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    target: TargetQuery = None,
    start_ms: RangeBound = None,
    end_ms: RangeBound = None,
) -> JSONResponse:
    """The newest quality-gate verdicts first, optionally of one target.

    ``start_ms``/``end_ms`` keep the runs started in that range (either bound optional).
    """
    _check_range(start_ms, end_ms)
    runs = ctx.store.gate_runs(limit=limit, target=target, start_ms=start_ms, end_ms=end_ms)
    return ok({"runs": [to_jsonable(r) for r in runs]})


@router.get("/benchmarks")
def benchmarks(
    ctx: Ctx,
    name: Annotated[str | None, Query(min_length=1, max_length=500)] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    start_ms: RangeBound = None,
    end_ms: RangeBound = None,
) -> JSONResponse:
    """Benchmark names and the newest results (chronological), optionally of one benchmark.

    ``start_ms``/``end_ms`` keep the results timestamped in that range (either bound optional).
    """
    _check_range(start_ms, end_ms)
    store = ctx.store
    results = store.benchmark_results(name=name, limit=limit, start_ms=start_ms, end_ms=end_ms)
    return ok({"names": store.benchmark_names(), "results": [to_jsonable(r) for r in results]})
