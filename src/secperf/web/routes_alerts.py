"""Alerts: list, history, acknowledge; silences: list, add, expire.

With an alert engine the writes go through it (it owns the lifecycle and
notifications); without one they go to the store through ``alerts.operator``.
Either way ``alerts.operator`` checks the input, so the CLI, the API and the
engine refuse the same things; its ``OperatorError`` is a 422 naming the field.
"""

from __future__ import annotations

import logging
import re
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictInt, model_validator

from secperf.alerts import operator
from secperf.alerts.context import RECENT_SCANS, ContextBuilder, ScanTracker
from secperf.alerts.operator import (
    MAX_AUTHOR_CHARS,
    MAX_NOTE_CHARS,
    MAX_REASON_CHARS,
    OperatorError,
)
from secperf.config import Matcher
from secperf.events import now_ms as _now_ms
from secperf.model import LABEL_NAME_RE, Alert, AlertState
from secperf.store import Silence, Store
from secperf.web.auth import WriteCheckedRoute, require_read, require_write
from secperf.web.context import AlertEngine, AppContext, get_context
from secperf.web.errors import ApiError
from secperf.web.scope import HostQuery, TargetQuery, labels_in_scope
from secperf.web.serialize import alert_json, ok, silence_json

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1", tags=["alerts"], route_class=WriteCheckedRoute)

Ctx = Annotated[AppContext, Depends(get_context)]
AlertFingerprint = Annotated[
    str, Path(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:\-]+$")
]


class AckRequest(BaseModel):
    """Who acknowledges an alert, and why."""

    model_config = ConfigDict(extra="forbid")

    author: str = Field(min_length=1, max_length=MAX_AUTHOR_CHARS, pattern=r"\S")
    note: str = Field(default="", max_length=MAX_NOTE_CHARS)


class MatcherModel(BaseModel):
    """One label matcher of a silence."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200, pattern=LABEL_NAME_RE.pattern)
    value: str = Field(max_length=1000)
    op: Literal["=", "!=", "=~", "!~"] = "="

    @model_validator(mode="after")
    def _regex_compiles(self) -> MatcherModel:
        if self.op in ("=~", "!~"):
            try:
                re.compile(self.value)
            except re.error as exc:
                raise ValueError(f"value is not a valid regular expression: {exc}") from None
        return self


class SilenceRequest(BaseModel):
    """A silence to add: matchers and a time window."""

    model_config = ConfigDict(extra="forbid")

    matchers: list[MatcherModel] = Field(min_length=1, max_length=50)
    starts_ms: StrictInt | None = Field(default=None, ge=0, le=2**53)
    ends_ms: StrictInt = Field(ge=0, le=2**53)
    author: str = Field(min_length=1, max_length=MAX_AUTHOR_CHARS, pattern=r"\S")
    reason: str = Field(min_length=1, max_length=MAX_REASON_CHARS, pattern=r"\S")

    @model_validator(mode="after")
    def _not_everything(self) -> SilenceRequest:
        as_config = [Matcher(name=m.name, op=m.op, value=m.value) for m in self.matchers]
        if all(m.matches({}) for m in as_config):
            raise ValueError(
                "at least one matcher must not match the empty string, "
                "or the silence would mute every alert"
            )
        return self


def _labels_for_matching(alert: Alert) -> dict[str, str]:
    return {"alertname": alert.rule, **alert.labels}


def is_silenced(alert: Alert, active: list[Silence]) -> bool:
    """Whether any active silence's matchers all hold for the alert."""
    labels = _labels_for_matching(alert)
    for silence in active:
        try:
            matchers = [Matcher.model_validate(m) for m in silence.matchers]
        except ValueError:
            continue  # a malformed stored silence mutes nothing
        if matchers and all(m.matches(labels) for m in matchers):
            return True
    return False


def _contexts(engine: AlertEngine, fingerprints: list[str]) -> dict[str, Any]:
    """The context of each alert (runs in a worker thread: contexts read the store)."""
    found: dict[str, Any] = {}
    for fingerprint in fingerprints:
        try:
            found[fingerprint] = engine.context(fingerprint)
        except Exception as exc:  # context is a nicety; the alert itself must still show
            log.warning("context of alert %s failed: %s", fingerprint, type(exc).__name__)
            found[fingerprint] = None
    return found


def _engine_alert_json(
    engine: AlertEngine, alert: Alert, active: list[Silence], context: Any
) -> dict[str, Any]:
    """AlertJson from the engine's memory, with a context built beforehand (on the loop)."""
    describe = getattr(engine, "describe", None)
    if callable(describe):
        described = describe(alert, with_context=False)
        if isinstance(described, dict):
            described["context"] = context
            return described
    return alert_json(alert, silenced=is_silenced(alert, active), context=context)


async def _described(
    engine: AlertEngine, alerts: list[Alert], active: list[Silence]
) -> list[dict[str, Any]]:
    # The engine's state lives on the event loop and is read here; the contexts
    # read the store and are built in a worker thread, never on the loop (a
    # store read on the loop would stall every request, /healthz included).
    contexts = await run_in_threadpool(_contexts, engine, [a.fingerprint for a in alerts])
    return [_engine_alert_json(engine, a, active, contexts.get(a.fingerprint)) for a in alerts]


async def alerts_json(
    ctx: AppContext,
    states: list[AlertState] | None,
    *,
    target: str | None = None,
    host: str | None = None,
) -> list[dict[str, Any]]:
    """AlertJson for every alert in ``states`` (all when None) within the scope.

    ``target`` and ``host`` keep the alerts carrying those labels. The engine
    lives on the event loop, so its alerts are read here on the loop; the
    store (silences, contexts) is read in a worker thread.
    """
    store = ctx.store
    active = await run_in_threadpool(store.silences, _now_ms())
    engine = ctx.alert_engine
    if engine is not None:
        mine = [a for a in engine.alerts(states) if labels_in_scope(a.labels, target, host)]
        return await _described(engine, mine, active)
    found = await run_in_threadpool(store.alerts, states)
    return [
        alert_json(a, silenced=is_silenced(a, active))
        for a in found
        if labels_in_scope(a.labels, target, host)
    ]


def alert_counts(alerts: list[dict[str, Any]]) -> dict[str, int]:
    """Firing alerts that count (not silenced) and silenced ones, of a list of AlertJson.

    The one definition of the dashboard's alert badge: a silenced alert is
    muted on purpose, so it is not counted as firing.
    """
    firing = [a for a in alerts if a.get("state") == AlertState.FIRING.value]
    silenced = sum(1 for a in firing if a.get("silenced"))
    return {"firing": len(firing) - silenced, "silenced": silenced}


@router.get("/alerts", dependencies=[Depends(require_read)])
async def list_alerts(
    ctx: Ctx,
    state: Annotated[list[AlertState] | None, Query(max_length=10)] = None,
    target: TargetQuery = None,
    host: HostQuery = None,
    start_ms: Annotated[int | None, Query(ge=0, le=2**53)] = None,
    end_ms: Annotated[int | None, Query(ge=0, le=2**53)] = None,
) -> JSONResponse:
    """Current alerts, optionally only in the given states (repeat ``state``) and scope.

    With ``start_ms`` and/or ``end_ms`` only the alerts active at some time in
    that window are listed (see ``active_in_window``). ``counts`` are over the
    firing alerts in scope now, whatever ``state`` and the window ask for:
    ``firing`` excludes silenced alerts, ``silenced`` counts those.
    ``server_ms`` is the server's clock when it answered.
    """
    if start_ms is not None and end_ms is not None and end_ms < start_ms:
        raise ApiError(422, f"end_ms {end_ms} is before start_ms {start_ms}", where="query.end_ms")
    wanted = state or None
    listed = await alerts_json(ctx, wanted, target=target, host=host)
    if wanted is not None and set(wanted) == {AlertState.FIRING}:
        firing = listed
    else:
        firing = await alerts_json(ctx, [AlertState.FIRING], target=target, host=host)
    if start_ms is not None or end_ms is not None:
        listed = [a for a in listed if active_in_window(a, start_ms, end_ms)]
    return ok({"alerts": listed, "counts": alert_counts(firing), "server_ms": _now_ms()})


def active_in_window(alert: dict[str, Any], start_ms: int | None, end_ms: int | None) -> bool:
    """Whether an AlertJson was active (pending or firing) at some time in [start_ms, end_ms].

    It began (``active_since_ms``, else ``fired_at_ms``, else ``updated_ms``)
    at or before ``end_ms`` and was not resolved before ``start_ms``; a
    missing bound does not limit. An alert that is still open counts as
    active until now.
    """
    began = alert.get("active_since_ms") or alert.get("fired_at_ms") or alert.get("updated_ms")
    if end_ms is not None and began is not None and began > end_ms:
        return False
    resolved = alert.get("resolved_at_ms")
    return not (start_ms is not None and resolved is not None and resolved < start_ms)


def _store_context(store: Store, alert: Alert, now: int) -> dict[str, Any]:
    """An alert's context without an alert engine: built from the store's scans and series."""
    tracker = ScanTracker()
    tracker.seed(store.scans(limit=RECENT_SCANS))
    return ContextBuilder(store, tracker).build(alert, None, dict(alert.labels), now)


@router.get("/alerts/{fingerprint}/context", dependencies=[Depends(require_read)])
async def alert_context(ctx: Ctx, fingerprint: AlertFingerprint) -> JSONResponse:
    """One alert's context: the scans it is about, their new findings, the host's state.

    The alert engine's context when one runs; else built from the store (the
    scans of the alert's target or host, and the host's CPU, load and memory
    around the time it became active). 404 for an unknown fingerprint.
    """
    engine = ctx.alert_engine
    now = _now_ms()
    if engine is not None and any(a.fingerprint == fingerprint for a in engine.alerts(None)):
        found = await run_in_threadpool(_contexts, engine, [fingerprint])
        return ok({"fingerprint": fingerprint, "context": found.get(fingerprint), "server_ms": now})
    store = ctx.store

    def build() -> dict[str, Any] | None:
        alert = next((a for a in store.alerts() if a.fingerprint == fingerprint), None)
        if alert is None:
            return None
        return _store_context(store, alert, now)

    context = await run_in_threadpool(build)
    if context is None:
        raise ApiError(404, f"no alert with fingerprint {fingerprint!r}", where="path.fingerprint")
    return ok({"fingerprint": fingerprint, "context": context, "server_ms": now})


@router.get("/alerts/{fingerprint}/history", dependencies=[Depends(require_read)])
def alert_history(ctx: Ctx, fingerprint: AlertFingerprint) -> JSONResponse:
    """Every recorded state change of one alert, oldest first."""
    return ok(
        {
            "transitions": [
                {
                    "ts_ms": t.ts_ms,
                    "from": t.from_state.value,
                    "to": t.to_state.value,
                    "value": t.alert.value,
                }
                for t in ctx.store.alert_history(fingerprint)
            ]
        }
    )


def _ack_in_store(store: Store, fingerprint: str, author: str, note: str) -> Alert | None:
    current = next((a for a in store.alerts() if a.fingerprint == fingerprint), None)
    if current is None:
        return None
    return operator.acknowledge(store, current, author, note, _now_ms())


def _refused(exc: OperatorError) -> ApiError:
    return ApiError(422, str(exc), where=f"body.{exc.field}")


@router.post("/alerts/{fingerprint}/ack", dependencies=[Depends(require_write)])
async def acknowledge(ctx: Ctx, fingerprint: AlertFingerprint, body: AckRequest) -> JSONResponse:
    """Acknowledge an alert (it keeps firing, but people know someone is on it)."""
    author = body.author.strip()
    engine = ctx.alert_engine
    active = await run_in_threadpool(ctx.store.silences, _now_ms())
    if engine is not None:
        try:
            updated = engine.acknowledge(fingerprint, author, body.note)
        except KeyError:
            updated = None
        except OperatorError as exc:
            raise _refused(exc) from None
        if updated is not None:
            return ok((await _described(engine, [updated], active))[0])
    else:
        try:
            updated = await run_in_threadpool(
                _ack_in_store, ctx.store, fingerprint, author, body.note
            )
        except OperatorError as exc:
            raise _refused(exc) from None
        if updated is not None:
            return ok(alert_json(updated, silenced=is_silenced(updated, active)))
    raise ApiError(404, f"no alert with fingerprint {fingerprint!r}", where="path.fingerprint")


# --------------------------------------------------------------------------- silences


@router.get("/silences", dependencies=[Depends(require_read)])
def list_silences(
    ctx: Ctx,
    active: Annotated[bool | None, Query(description="Only silences in force now.")] = None,
) -> JSONResponse:
    """Silences, all or only those in force now (``active=false``: the others)."""
    now = _now_ms()
    found = ctx.store.silences(active_at_ms=now if active else None)
    if active is False:
        found = [s for s in found if not s.active(now)]
    return ok({"silences": [silence_json(s, now) for s in found]})


@router.post("/silences", dependencies=[Depends(require_write)])
async def add_silence(ctx: Ctx, body: SilenceRequest) -> JSONResponse:
    """Mute alerts matching every matcher between starts_ms (default now) and ends_ms."""
    now = _now_ms()
    starts = body.starts_ms if body.starts_ms is not None else now
    matchers = [m.model_dump() for m in body.matchers]
    author = body.author.strip()
    engine = ctx.alert_engine
    created: Silence | None = None
    try:
        # Checked before the engine or the store is touched, the same way for both.
        operator.check_silence(matchers, starts, body.ends_ms, author, body.reason, now)
        if engine is not None:
            result: Any = engine.add_silence(matchers, starts, body.ends_ms, author, body.reason)
            if isinstance(result, Silence):
                created = result
            else:
                silence_id = int(result)
                created = Silence(
                    silence_id, matchers, starts, body.ends_ms, author, body.reason, now
                )
        else:
            created = await run_in_threadpool(
                operator.add_silence,
                ctx.store,
                matchers,
                starts,
                body.ends_ms,
                author,
                body.reason,
                now,
            )
    except OperatorError as exc:
        raise _refused(exc) from None
    return ok(silence_json(created, now))


@router.delete("/silences/{silence_id}", dependencies=[Depends(require_write)])
async def expire_silence(
    ctx: Ctx, silence_id: Annotated[int, Path(ge=1, le=2**62)]
) -> JSONResponse:
    """End a silence now."""
    if ctx.alert_engine is not None:
        done = ctx.alert_engine.expire_silence(silence_id)
    else:
        done = await run_in_threadpool(operator.expire_silence, ctx.store, silence_id, _now_ms())
    if not done:
        raise ApiError(404, f"no active silence with id {silence_id}", where="path.silence_id")
    return ok({"id": silence_id, "expired": True})
