"""``GET /api/v1/report``: the compliance report, as ``secperf report`` writes it, for download."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from secperf.compliance.data import ReportInputs, collect_report
from secperf.compliance.output import MEDIA_TYPES, ReportFormat, file_name, render
from secperf.compliance.period import parse_period
from secperf.compliance.render_pdf import PdfUnavailable
from secperf.config.sections.report import ReportConfig
from secperf.events import now_ms
from secperf.web.auth import WriteCheckedRoute, require_read
from secperf.web.context import AppContext, get_context
from secperf.web.errors import ApiError
from secperf.web.scope import TargetQuery

router = APIRouter(prefix="/api/v1", tags=["report"], route_class=WriteCheckedRoute)

Ctx = Annotated[AppContext, Depends(get_context)]


@dataclass(frozen=True, slots=True)
class ReportSettings:
    """What the server knows of the configuration for reports (``app.state.report_settings``)."""

    config: ReportConfig = field(default_factory=ReportConfig)
    scanner_versions: dict[str, str] = field(default_factory=dict)
    config_hash: str | None = None


def _settings(request: Request) -> ReportSettings:
    found = getattr(request.app.state, "report_settings", None)
    return found if isinstance(found, ReportSettings) else ReportSettings()


_RESPONSES: dict[int | str, dict[str, object]] = {
    200: {
        "description": "The report as an attachment, in the format asked for.",
        "content": {"application/json": {}, "text/html": {}, "application/pdf": {}},
    },
    501: {"description": "PDF asked for, and WeasyPrint is not installed (secperf[pdf])."},
}


@router.get("/report", dependencies=[Depends(require_read)], responses=_RESPONSES)
async def get_report(
    request: Request,
    ctx: Ctx,
    since: Annotated[
        str, Query(min_length=1, max_length=64, description="90d, or a UTC date or time.")
    ] = "90d",
    until: Annotated[
        str | None, Query(min_length=1, max_length=64, description="Default: now.")
    ] = None,
    target: TargetQuery = None,
    format: Annotated[ReportFormat, Query(description="json, html or pdf.")] = "json",
) -> Response:
    """The compliance report of a period as an attachment: what ``secperf report`` writes."""
    now = now_ms()
    try:
        period = parse_period(since, until, now)
    except ValueError as exc:
        where = "query.until" if str(exc).startswith("--until") else "query.since"
        raise ApiError(422, str(exc).replace("--", ""), where=where) from None
    settings = _settings(request)
    inputs = ReportInputs(
        period=period,
        target=target,
        config=settings.config,
        scanner_versions=settings.scanner_versions,
        config_hash=settings.config_hash,
        generated_ms=now,
    )

    def work() -> tuple[bytes, str]:
        data = collect_report(ctx.store, inputs)
        return render(data, format), file_name(data, format)

    try:
        body, name = await run_in_threadpool(work)
    except PdfUnavailable as exc:
        raise ApiError(501, str(exc), where="query.format") from None
    return Response(
        content=body,
        media_type=MEDIA_TYPES[format],
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
