"""Metric reads: the series list, metric names and range queries with downsampling."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse

from secperf.events import now_ms
from secperf.model import LABEL_NAME_RE
from secperf.web.auth import require_read
from secperf.web.context import AppContext, get_context
from secperf.web.errors import ApiError
from secperf.web.scope import HostQuery, TargetQuery
from secperf.web.serialize import ok

router = APIRouter(prefix="/api/v1", tags=["metrics"], dependencies=[Depends(require_read)])

#: Default query range when ``start_ms`` is not given: the last hour.
DEFAULT_RANGE_MS = 3_600_000
MAX_POINTS = 10_000
#: Raw (not downsampled) answers are cut at this many points per series.
MAX_RAW_POINTS = 200_000

Ctx = Annotated[AppContext, Depends(get_context)]
MetricNameQuery = Annotated[
    str, Query(min_length=1, max_length=200, pattern=r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
]


def parse_matchers(items: list[str] | None, where: str = "query.match") -> dict[str, str]:
    """``["host=a", "cpu=total"]`` -> ``{"host": "a", "cpu": "total"}``; 422 naming the bad one."""
    out: dict[str, str] = {}
    for index, item in enumerate(items or []):
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or not LABEL_NAME_RE.match(name):
            raise ApiError(
                422,
                f"match {item!r} must be label=value with a label name matching "
                f"{LABEL_NAME_RE.pattern}",
                where=f"{where}[{index}]",
            )
        out[name] = value
    return out


def scope_matchers(target: str | None, host: str | None) -> dict[str, str]:
    """The label matchers of the scope filters (series carry ``target`` and ``host`` labels)."""
    out: dict[str, str] = {}
    if target is not None:
        out["target"] = target
    if host is not None:
        out["host"] = host
    return out


@router.get("/metrics")
def list_series(ctx: Ctx, host: HostQuery = None, target: TargetQuery = None) -> JSONResponse:
    """Every stored series (id, name, labels), optionally of one host and one target."""
    matchers = scope_matchers(target, host) or None
    return ok(
        {
            "series": [
                {"id": info.id, "name": info.name, "labels": info.labels}
                for info in ctx.store.series(None, matchers)
            ]
        }
    )


@router.get("/metrics/names")
def metric_names(ctx: Ctx, host: HostQuery = None, target: TargetQuery = None) -> JSONResponse:
    """Every metric name with a stored series (of one host and one target, when asked)."""
    matchers = scope_matchers(target, host)
    if not matchers:
        return ok({"names": ctx.store.list_metric_names()})
    return ok({"names": sorted({info.name for info in ctx.store.series(None, matchers)})})


@router.get("/metrics/query")
def query(
    ctx: Ctx,
    name: MetricNameQuery,
    match: Annotated[
        list[str] | None,
        Query(max_length=50, description="label=value, repeatable; all must hold."),
    ] = None,
    start_ms: Annotated[int | None, Query(ge=0, le=2**53)] = None,
    end_ms: Annotated[int | None, Query(ge=0, le=2**53)] = None,
    points: Annotated[
        int | None, Query(ge=1, le=MAX_POINTS, description="Downsample to at most this many.")
    ] = None,
    step_ms: Annotated[int | None, Query(ge=1, le=2**53, description="Downsample step.")] = None,
    host: HostQuery = None,
    target: TargetQuery = None,
) -> JSONResponse:
    """Points of every series of ``name`` matching ``match`` in [start_ms, end_ms].

    ``host`` and ``target`` are matchers on those labels (a ``match`` on the
    same label with another value selects nothing). Downsampled (``points``
    or ``step_ms``): per step its start, average, min and max. Raw: min =
    max = avg = the sample's value.
    """
    matchers = parse_matchers(match)
    for label, value in scope_matchers(target, host).items():
        if matchers.setdefault(label, value) != value:
            return ok({"series": []})
    end = end_ms if end_ms is not None else now_ms()
    start = start_ms if start_ms is not None else max(0, end - DEFAULT_RANGE_MS)
    if end < start:
        raise ApiError(
            422, f"end_ms {end} is before start_ms {start}: the range is empty", where="end_ms"
        )
    found = ctx.store.query(name, matchers or None, start, end, step_ms=step_ms, max_points=points)
    series: list[dict[str, Any]] = []
    for item in found:
        ts = item.timestamps
        avg = item.values
        if item.step_ms is None and ts.size > MAX_RAW_POINTS:
            ts, avg = ts[-MAX_RAW_POINTS:], avg[-MAX_RAW_POINTS:]
        avg_list = avg.tolist()
        entry: dict[str, Any] = {
            "name": item.name,
            "labels": item.labels,
            "timestamps_ms": ts.tolist(),
            "avg": avg_list,
        }
        if item.min is not None and item.max is not None:
            entry["min"] = item.min.tolist()
            entry["max"] = item.max.tolist()
        else:
            entry["min"] = avg_list
            entry["max"] = avg_list
        entry["step_ms"] = item.step_ms
        series.append(entry)
    return ok({"series": series})
