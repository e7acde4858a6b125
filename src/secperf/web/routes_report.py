"""``GET /api/v1/report``: the compliance report, as ``secperf report`` writes it, for download."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from secperf.compliance.data import ReportInputs, collect_report
from secperf.compliance.output import MEDIA_TYPES, ReportFormat, file_name, render
from secperf.compliance.period import parse_period
from secperf.compliance.render_pdf import PdfUnavailable
from secperf.compliance.scope import UnknownTarget, resolve_target
from secperf.config.sections.report import ReportConfig
from secperf.events import now_ms
from secperf.web.auth import WriteCheckedRoute, require_read
from secperf.web.context import AppContext, get_context
from secperf.web.errors import ApiError
from secperf.web.scope import TargetQuery

if TYPE_CHECKING:
    from secperf.config import Config

router = APIRouter(prefix="/api/v1", tags=["report"], route_class=WriteCheckedRoute)

Ctx = Annotated[AppContext, Depends(get_context)]


class ReportSettings:
    """What the server knows of the configuration for reports (``app.state.report_settings``).

    ``scanner_versions`` may be a function: building the scanners to ask their
    versions is slow, so it runs on the first report asked for, once, and the
    server starts without paying for it.
    """

    def __init__(
        self,
        config: ReportConfig | None = None,
        scanner_versions: Mapping[str, str] | Callable[[], Mapping[str, str]] | None = None,
        config_hash: str | None = None,
    ) -> None:
        self.config = config if config is not None else ReportConfig()
        self.config_hash = config_hash
        self._versions_source = scanner_versions
        self._versions: dict[str, str] | None = (
            dict(scanner_versions) if isinstance(scanner_versions, Mapping) else None
        )
        self._lock = threading.Lock()

    @classmethod
    def from_config(cls, config: Config) -> ReportSettings:
        """The settings ``config`` gives: its [report] section, hash and (lazily) scanners."""
        from secperf.compliance.settings import config_sha256, scanner_versions

        return cls(config.report, lambda: scanner_versions(config), config_sha256(config))

    def scanner_versions(self) -> dict[str, str]:
        """Each enabled scanner's version (computed on the first call, then kept)."""
        with self._lock:
            if self._versions is None:
                source = self._versions_source
                self._versions = dict(source()) if callable(source) else {}
            return self._versions


def _settings(request: Request) -> ReportSettings:
    found = getattr(request.app.state, "report_settings", None)
    return found if isinstance(found, ReportSettings) else ReportSettings()


_RESPONSES: dict[int | str, dict[str, object]] = {
    200: {
        "description": "The report as an attachment, in the format asked for.",
        "content": {"application/json": {}, "text/html": {}, "application/pdf": {}},
    },
    404: {"description": "The target names no target with a stored scan or gate run."},
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

    def work() -> tuple[bytes, str]:
        # The server has no working directory of the caller's: the target is
        # matched as stored (the absolute path secperf scan names it by).
        chosen = None if target is None else resolve_target(ctx.store, target)
        inputs = ReportInputs(
            period=period,
            target=chosen,
            config=settings.config,
            scanner_versions=settings.scanner_versions(),
            config_hash=settings.config_hash,
            generated_ms=now,
        )
        data = collect_report(ctx.store, inputs)
        return render(data, format), file_name(data, format)

    try:
        body, name = await run_in_threadpool(work)
    except UnknownTarget as exc:
        raise ApiError(404, str(exc).replace("--", "", 1), where="query.target") from None
    except PdfUnavailable as exc:
        raise ApiError(501, str(exc), where="query.format") from None
    return Response(
        content=body,
        media_type=MEDIA_TYPES[format],
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
