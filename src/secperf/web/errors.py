"""The API's one error shape: ``{"error": {"code", "message", "where"}}``.

Every failure the server answers (validation, authentication, not found, too
large, an internal fault) goes through here, so clients parse one shape. An
internal fault never carries its exception text: it could hold data the
client should not see.

A store that cannot serve a request right now (the pool's checkout timed out,
the database refused or dropped the connection) is not an internal fault: the
answer is 503 with ``Retry-After``, counted as shed load, and the log gets one
line per reason every few seconds instead of a traceback per request.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)

#: Shed reasons of store failures (see ``admission.py`` for the others).
REASON_POOL_TIMEOUT = "pool_timeout"
REASON_STORE_UNAVAILABLE = "store_unavailable"
#: Seconds between two log lines about the same kind of store failure.
_LOG_EVERY_S = 10.0
_last_logged: dict[str, float] = {}
_log_lock = threading.Lock()

_STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid",
    501: "not_implemented",
    503: "unavailable",
}


class ApiError(Exception):
    """An answer other than success: HTTP status, a short code, a message and where."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        where: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code or _STATUS_CODES.get(status, "error")
        self.message = message
        self.where = where
        self.headers = headers


def error_body(code: str, message: str, where: str | None = None) -> dict[str, Any]:
    """The JSON body of an error."""
    return {"error": {"code": code, "message": message, "where": where}}


def error_response(
    status: int,
    message: str,
    *,
    code: str | None = None,
    where: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """A ready error response."""
    body = error_body(code or _STATUS_CODES.get(status, "error"), message, where)
    return JSONResponse(body, status_code=status, headers=headers)


def location(loc: Sequence[Any]) -> str:
    """``("body", "samples", 3, "value")`` -> ``"body.samples[3].value"``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


#: Where a request's values come from; a ``where`` starts with one of these.
_SOURCES = ("body", "query", "path", "header", "cookie")
_HEAD_RE = re.compile(r"^[^.\[]+")


def _json_error(error: dict[str, Any]) -> tuple[str, str]:
    """A body that is not JSON: its ``loc`` holds a character offset, not a list index."""
    loc = error.get("loc", ())
    offset = loc[1] if len(loc) > 1 and isinstance(loc[1], int) else None
    ctx = error.get("ctx")
    reason = ctx.get("error") if isinstance(ctx, dict) else None
    text = "invalid JSON" + (f" at character {offset}" if offset is not None else "")
    return "body", f"{text}: {reason}" if reason else text


def describe_validation(errors: Sequence[Any]) -> tuple[str, str | None]:
    """One message naming every wrong field (first few), and the first field's location."""
    parts: list[str] = []
    first_where: str | None = None
    for error in errors[:5]:
        if isinstance(error, dict) and error.get("type") == "json_invalid":
            where, msg = _json_error(error)
        else:
            loc = error.get("loc", ()) if isinstance(error, dict) else ()
            where = location(loc)
            msg = error.get("msg", "invalid") if isinstance(error, dict) else str(error)
        if first_where is None:
            first_where = where or None
        parts.append(f"{where}: {msg}" if where else str(msg))
    if len(errors) > 5:
        parts.append(f"and {len(errors) - 5} more problem(s)")
    return "; ".join(parts) or "invalid request", first_where


def _log_sometimes(reason: str, message: str, *args: Any) -> None:
    """Log ``message`` at most once per ``_LOG_EVERY_S`` per ``reason`` (overload storms)."""
    now = time.monotonic()
    with _log_lock:
        if now - _last_logged.get(reason, -_LOG_EVERY_S) < _LOG_EVERY_S:
            return
        _last_logged[reason] = now
    log.warning(message, *args)


def store_failure_reason(exc: BaseException) -> str | None:
    """The shed reason of a store failure that deserves 503, or None for any other error."""
    if isinstance(exc, PoolTimeoutError):
        return REASON_POOL_TIMEOUT
    if isinstance(exc, OperationalError):
        return REASON_STORE_UNAVAILABLE
    return None


def _parameter_names(request: Request) -> dict[str, list[str]]:
    """The names of the route's parameters by source, its dependencies' included."""
    names: dict[str, list[str]] = {source: [] for source in _SOURCES}
    route = request.scope.get("route")
    pending = [getattr(route, "dependant", None)]
    while pending:
        dependant = pending.pop()
        if dependant is None:
            continue
        for source in ("path", "query", "header", "cookie"):
            for param in getattr(dependant, f"{source}_params", ()):
                names[source].append(str(getattr(param, "alias", None) or param.name))
        pending.extend(getattr(dependant, "dependencies", ()))
    # Without a matched route (or on an older FastAPI), what the request carried.
    names["path"] = names["path"] or list(request.path_params)
    names["query"] = names["query"] or list(request.query_params)
    return names


def qualify_where(where: str | None, request: Request) -> str | None:
    """The full location of a ``where``: ``end_ms`` -> ``query.end_ms``.

    A route may name a parameter by its bare name, or only its source (``path``
    when the route has one path parameter); clients get the same dotted form
    as validation errors: ``query.end_ms``, ``path.fingerprint``, ``body.x``.
    """
    if not where:
        return where
    names = _parameter_names(request)
    if where in ("path", "query") and len(set(names[where])) == 1:
        return f"{where}.{names[where][0]}"
    match = _HEAD_RE.match(where)
    head = match.group(0) if match else where
    if head in _SOURCES:
        return where
    for source in ("path", "query", "header", "cookie"):
        if head in names[source]:
            return f"{source}.{where}"
    return where


def install_error_handlers(app: FastAPI) -> None:
    """Route every error the app can raise to the one error shape."""

    async def api_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        where = qualify_where(exc.where, request)
        return error_response(
            exc.status, exc.message, code=exc.code, where=where, headers=exc.headers
        )

    async def validation_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        message, where = describe_validation(list(exc.errors()))
        return error_response(422, message, where=where)

    async def http_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        status = exc.status_code
        detail = exc.detail if isinstance(exc.detail, str) else "request failed"
        if status == 404 and detail == "Not Found":
            detail = "no such resource"
        headers = dict(exc.headers) if exc.headers else None
        return error_response(status, detail, headers=headers)

    async def store_failure(request: Request, exc: Exception) -> JSONResponse:
        reason = store_failure_reason(exc) or REASON_STORE_UNAVAILABLE
        counter = getattr(request.app.state, "shed_counter", None)
        if counter is not None:
            counter.add(reason)
        retry_after = getattr(request.app.state, "retry_after_s", 1)
        # The exception's class only: a driver's message may name hosts or users.
        _log_sometimes(
            reason,
            "the store could not serve %s %s (%s); answering 503 (logged once per %.0f s)",
            request.method,
            request.url.path,
            type(exc).__name__,
            _LOG_EVERY_S,
        )
        if reason == REASON_POOL_TIMEOUT:
            message = "the server is busy: no store connection freed up in time; retry shortly"
            code = "overloaded"
        else:
            message = "the store cannot be reached right now; retry shortly"
            code = "unavailable"
        return error_response(503, message, code=code, headers={"Retry-After": str(retry_after)})

    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        # Logged with the path only; the exception's text stays in the server log.
        log.exception("internal error answering %s %s", request.method, request.url.path)
        return error_response(500, "internal server error", code="internal")

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(PoolTimeoutError, store_failure)
    app.add_exception_handler(OperationalError, store_failure)
    app.add_exception_handler(Exception, internal_error)
