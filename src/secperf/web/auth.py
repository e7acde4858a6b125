"""Bearer-token checks for the API.

Writes always need the token; reads need it only when the server is reachable
beyond this machine (a token configured and a non-loopback bind). Tokens are
compared in constant time, and no answer ever repeats the token sent. The
checks are coroutines: they do no I/O, and a plain function would cost every
request a hop to a worker thread.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from fastapi import Depends, Request, Response
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from secperf.web.errors import ApiError

#: The environment variable ``secperf serve`` reads the token from by default.
TOKEN_ENV = "SECPERF_TOKEN"

_bearer = HTTPBearer(auto_error=False, description="The server token (SECPERF_TOKEN).")


@dataclass(frozen=True, slots=True)
class TokenPolicy:
    """The server's token (None: none configured) and whether reads need it too."""

    token: str | None
    reads_require_token: bool = False

    def __repr__(self) -> str:
        # Never show the token, even in a debug repr.
        shown = "set" if self.token else "none"
        return f"TokenPolicy(token={shown}, reads_require_token={self.reads_require_token})"

    def matches(self, presented: str) -> bool:
        """Whether ``presented`` is the token (constant time in the token's content)."""
        if self.token is None:
            return False
        return hmac.compare_digest(presented.encode("utf-8"), self.token.encode("utf-8"))


def _policy(request: Request) -> TokenPolicy:
    policy = request.app.state.token_policy
    assert isinstance(policy, TokenPolicy)
    return policy


def _check(policy: TokenPolicy, presented: str | None, action: str) -> None:
    if policy.token is None:
        raise ApiError(
            403,
            f"{action} is disabled: this server has no token configured; "
            f"set {TOKEN_ENV} (at least 16 characters) before starting secperf",
            code="no_token_configured",
        )
    if not presented:
        raise ApiError(
            401,
            f"{action} requires 'Authorization: Bearer <token>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if not policy.matches(presented):
        raise ApiError(403, "the bearer token is not valid", code="invalid_token")


def check_write(policy: TokenPolicy, authorization: str | None) -> None:
    """Raise the ApiError a write with this ``Authorization`` header gets, if any."""
    presented: str | None = None
    if authorization:
        scheme, _, value = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            # A header that is not "Bearer <token>": say what is expected.
            raise ApiError(
                401,
                "the Authorization header must be 'Bearer <token>'",
                headers={"WWW-Authenticate": "Bearer"},
            )
        presented = value.strip()
    _check(policy, presented, "this write")


async def require_write(
    request: Request,
    credentials: HTTPAuthorizationCredentials | None = Depends(_bearer),
) -> None:
    """Dependency of every write endpoint: the bearer token must be valid.

    Routes of a ``WriteCheckedRoute`` router run the same check before the
    body is read; this dependency puts the requirement in the OpenAPI spec.
    """
    check_write(_policy(request), request.headers.get("authorization"))


async def require_read(
    request: Request,
    credentials: HTTPAuthorizationCredentials | None = Depends(_bearer),
) -> None:
    """Dependency of every read endpoint: the token only when the policy says so."""
    policy = _policy(request)
    if not policy.reads_require_token:
        return
    presented = credentials.credentials if credentials is not None else None
    _check(policy, presented, "reading")


async def require_stream(request: Request) -> None:
    """The stream's check: like reads, but the token may come as ``?token=``.

    EventSource in browsers cannot set headers, hence the query parameter.
    """
    policy = _policy(request)
    if not policy.reads_require_token:
        return
    presented = request.query_params.get("token")
    header = request.headers.get("authorization", "")
    if not presented and header[:7].lower() == "bearer ":
        presented = header[7:].strip()
    _check(policy, presented, "reading")


class WriteCheckedRoute(APIRoute):
    """A route whose token check, when it has ``require_write``, runs before anything else.

    FastAPI reads and validates a JSON body before it runs dependencies, so a
    write without the token but with a malformed body would otherwise get 422
    (telling an unauthenticated client about its payload) instead of 401.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        if not any(dep.dependency is require_write for dep in self.dependencies):
            return handler

        async def checked(request: Request) -> Response:
            check_write(_policy(request), request.headers.get("authorization"))
            return await handler(request)

        return checked
