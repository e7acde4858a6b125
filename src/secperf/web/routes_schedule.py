"""``GET /api/v1/schedule``: when the next scan starts and why, with the guard's profile.

``secperf up`` with ``[scan] every`` attaches its periodic schedule (see
``attach_schedule``): the answer is its current plan. Otherwise (``serve``,
or another target) the answer is the plan a scan due now would get, from the
store's series and the attached (or default) ``[scan.schedule]`` settings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from secperf.events import now_ms
from secperf.security.pacing.schedule import (
    GuardSeries,
    PeriodicScans,
    SchedulePlan,
    Settings,
    host_cpu_guard,
    hour_of_week_profile,
    plan_scan,
)
from secperf.web.auth import require_read
from secperf.web.context import AppContext, get_context
from secperf.web.serialize import ok

router = APIRouter(prefix="/api/v1", tags=["schedule"], dependencies=[Depends(require_read)])

Ctx = Annotated[AppContext, Depends(get_context)]
_NAME = Query(min_length=1, max_length=255)


@dataclass(slots=True)
class ScheduleState:
    """What the app plans with: the settings, the guards and ``up``'s periodic scans."""

    settings: Settings
    guards: list[GuardSeries] = field(default_factory=list)
    periodic: PeriodicScans | None = None
    target: str | None = None


def attach_schedule(
    app: FastAPI,
    settings: Settings,
    periodic: PeriodicScans | None = None,
    *,
    guards: list[GuardSeries] | None = None,
    target: str | None = None,
) -> None:
    """Let ``/api/v1/schedule`` answer with these settings (and ``periodic``'s plan)."""
    app.state.scan_schedule = ScheduleState(
        settings, list(guards or (periodic.guards if periodic else [])), periodic, target
    )


@router.get("/schedule")
async def schedule(
    request: Request,
    ctx: Ctx,
    target: Annotated[str | None, _NAME] = None,
    host: Annotated[str | None, _NAME] = None,
) -> JSONResponse:
    """The next planned scan: ``next_scan_ms``, ``reason``, ``quiet_now``, the profile.

    ``profile`` holds the first guard's hour-of-week levels (hour 0: Monday
    00:00 UTC) for the hours with data; it is empty while there is no history.
    """
    state: ScheduleState | None = getattr(request.app.state, "scan_schedule", None)
    if state is None:
        state = ScheduleState(Settings())
    periodic = state.periodic
    if (
        periodic is not None
        and periodic.plan is not None
        and (target is None or target == state.target)
        and host is None
    ):
        doc = periodic.plan.to_document()
        if not doc["profile"] and state.guards:
            # A plan for later judges no guard yet: the profile is read for the answer.
            guard, history_ms = state.guards[0], state.settings.history_ms

            def profile() -> list[dict[str, Any]]:
                found = hour_of_week_profile(ctx.store, guard, now_ms(), history_ms=history_ms)
                return found.to_document()

            doc["profile"] = await run_in_threadpool(profile)
        return ok(doc)
    guards = [host_cpu_guard(host)] if host is not None else state.guards or [host_cpu_guard()]

    def plan() -> SchedulePlan:
        return plan_scan(ctx.store, state.settings, guards, now_ms=now_ms())

    return ok((await run_in_threadpool(plan)).to_document())
