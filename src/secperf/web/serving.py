"""Serving the dashboard's files, and two things every answer gets.

The dashboard's build (``index.html`` and hashed ``/assets/*``) is served
from memory: each file is read and gzip-compressed once (again when it
changes on disk), then answered as is, compressed when the client accepts
gzip (``Content-Encoding: gzip``, ``Vary: Accept-Encoding``), with an ETag.
Hashed assets never change under their name, so they are cached for a year
(``immutable``); ``index.html`` is revalidated on every load (``no-cache``):
``If-None-Match`` is compared weakly, as RFC 9110 (13.1.2) asks, so a tag a
proxy marked weak (``W/"…"``), one of a list, or ``*`` gets 304.
``/favicon.ico`` answers the build's favicon, else a small built-in SVG.

``HeadMiddleware`` answers ``HEAD`` wherever ``GET`` works (FastAPI's routes
only take the methods they name); ``ServerTimeMiddleware`` stamps every
answer with the server's clock (``X-Server-Time-Ms``) so a page can correct
for its own clock's skew.
"""

from __future__ import annotations

import gzip
import hashlib
import mimetypes
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: Hashed build assets: their name changes with their content.
IMMUTABLE = "public, max-age=31536000, immutable"
#: Files whose name stays while their content changes: revalidate every time.
REVALIDATE = "no-cache"
FAVICON_CACHE = "public, max-age=86400"
SERVER_TIME_HEADER = b"x-server-time-ms"
#: Types worth compressing (already-compressed images and fonts are not).
COMPRESSIBLE = frozenset(
    {
        "text/html",
        "text/css",
        "text/plain",
        "text/javascript",
        "application/javascript",
        "application/json",
        "application/manifest+json",
        "image/svg+xml",
    }
)
#: Files larger than this are served from disk uncached (a build holds none).
MAX_CACHED_FILE_BYTES = 8 * 1024 * 1024
_ROOT_FILE = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9_.-]*\.[A-Za-z0-9]+$")
_ASSET_PART = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9_.-]*$")
#: One entity tag of an ``If-None-Match`` list: its opaque (quoted) part, weak or not.
_ENTITY_TAG = re.compile(r'(?:W/)?("[^"]*")')

#: secperf's mark: a shield with a pulse line, in the dashboard's blue.
FAVICON_SVG = (
    b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32">'
    b'<path d="M16 2 4 7v8c0 7.5 5.1 13.4 12 15 6.9-1.6 12-7.5 12-15V7z" fill="#1f6feb"/>'
    b'<path d="M8 17h4l2-5 4 9 2-4h4" fill="none" stroke="#fff" stroke-width="2.2" '
    b'stroke-linecap="round" stroke-linejoin="round"/></svg>'
)

NOT_BUILT_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>secperf</title></head>
<body><h1>secperf</h1>
<p>The dashboard is not built. The API is available under <code>/api/v1</code>
(see <a href="/openapi.json">/openapi.json</a>) and metrics at <a href="/metrics">/metrics</a>.</p>
<p>Build it with <code>npm ci &amp;&amp; npm run build</code> in <code>dashboard/</code>.</p>
</body></html>
"""


@dataclass(frozen=True, slots=True)
class CachedFile:
    """One file as served: its bytes, gzip form (None when not worth it), type and ETag."""

    body: bytes
    gzipped: bytes | None
    media_type: str
    etag: str
    stamp: tuple[int, int]  # mtime_ns, size: a changed file is read again

    @property
    def gzip_etag(self) -> str:
        """The ETag of the compressed form (another representation, another tag)."""
        return self.etag[:-1] + '-gz"'


def media_type_of(path: Path) -> str:
    """The Content-Type of a file by its suffix (JavaScript as text/javascript)."""
    if path.suffix in (".js", ".mjs"):
        return "text/javascript; charset=utf-8"
    guessed = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    if guessed.startswith("text/") or guessed in ("application/json", "image/svg+xml"):
        return f"{guessed}; charset=utf-8" if guessed.startswith("text/") else guessed
    return guessed


def _compressible(media_type: str) -> bool:
    return media_type.partition(";")[0].strip() in COMPRESSIBLE


class FileCache:
    """Files read and compressed once per version, shared by every request."""

    def __init__(self) -> None:
        self._files: dict[Path, CachedFile] = {}
        self._lock = threading.Lock()

    def get(self, path: Path) -> CachedFile | None:
        """The file at ``path`` (None when it is not a regular file)."""
        try:
            info = path.stat()
        except OSError:
            return None
        if not path.is_file():
            return None
        stamp = (info.st_mtime_ns, info.st_size)
        cached = self._files.get(path)
        if cached is not None and cached.stamp == stamp:
            return cached
        try:
            body = path.read_bytes()
        except OSError:
            return None
        media_type = media_type_of(path)
        gzipped = None
        if _compressible(media_type) and len(body) >= 256:
            packed = gzip.compress(body, compresslevel=9, mtime=0)
            gzipped = packed if len(packed) < len(body) else None
        found = CachedFile(
            body, gzipped, media_type, f'"{hashlib.sha256(body).hexdigest()[:20]}"', stamp
        )
        if len(body) <= MAX_CACHED_FILE_BYTES:
            with self._lock:
                self._files[path] = found
        return found


def accepts_gzip(request: Request) -> bool:
    """Whether the request's ``Accept-Encoding`` takes gzip (and not with ``q=0``)."""
    for part in request.headers.get("accept-encoding", "").split(","):
        coding, _, params = part.strip().partition(";")
        if coding.strip().lower() not in ("gzip", "*"):
            continue
        q = params.strip().replace(" ", "")
        return not (q.startswith("q=0") and q.strip("q=0.") == "")
    return False


def none_match(header: str, etag: str) -> bool:
    """Whether an ``If-None-Match`` value matches ``etag`` (the client holds it: 304).

    Weak comparison (RFC 9110, 13.1.2 and 8.8.3.2): ``W/"x"`` and ``"x"`` match
    each other, in a comma-separated list too; ``*`` matches any current file.
    """
    header = header.strip()
    if header == "*":
        return True
    opaque = etag.removeprefix("W/")
    return any(tag == opaque for tag in _ENTITY_TAG.findall(header))


def file_response(request: Request, found: CachedFile, cache_control: str) -> Response:
    """The answer for one cached file: 304 when the client holds it, gzip when it takes it."""
    use_gzip = found.gzipped is not None and accepts_gzip(request)
    etag = found.gzip_etag if use_gzip else found.etag
    headers = {"Cache-Control": cache_control, "ETag": etag}
    if found.gzipped is not None:
        headers["Vary"] = "Accept-Encoding"
    held = request.headers.get("if-none-match")
    if held and none_match(held, etag):
        return Response(status_code=304, headers=headers)
    if use_gzip:
        headers["Content-Encoding"] = "gzip"
        assert found.gzipped is not None
        return Response(found.gzipped, media_type=found.media_type, headers=headers)
    return Response(found.body, media_type=found.media_type, headers=headers)


def _asset_path(root: Path, name: str) -> Path | None:
    """``root/name`` when every part of ``name`` is a plain name (no dot-files, no ``..``)."""
    parts = name.split("/")
    if not parts or any(not _ASSET_PART.match(p) for p in parts):
        return None
    return root.joinpath(*parts)


def mount_dashboard(app: FastAPI, root: Path) -> None:
    """``/``, ``/assets/*``, ``/favicon.ico`` and top-level build files, from memory.

    A missing build gives a small page at ``/`` naming how to build it, and 404s.
    """
    cache = FileCache()
    assets = root / "assets"

    @app.get("/", include_in_schema=False)
    def index(request: Request) -> Response:
        found = cache.get(root / "index.html")
        if found is None:
            return HTMLResponse(NOT_BUILT_PAGE, headers={"Cache-Control": REVALIDATE})
        return file_response(request, found, REVALIDATE)

    @app.get("/assets/{name:path}", include_in_schema=False)
    def asset(request: Request, name: str) -> Response:
        path = _asset_path(assets, name)
        found = cache.get(path) if path is not None else None
        if found is None:
            raise StarletteHTTPException(404, "no such resource")
        return file_response(request, found, IMMUTABLE)

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon(request: Request) -> Response:
        found = cache.get(root / "favicon.ico")
        if found is not None:
            return file_response(request, found, FAVICON_CACHE)
        return Response(
            FAVICON_SVG, media_type="image/svg+xml", headers={"Cache-Control": FAVICON_CACHE}
        )

    @app.get("/{name}", include_in_schema=False)
    def root_file(request: Request, name: str) -> Response:
        # Files at the build's top level (manifest, robots): no sub-paths, no dot-files.
        if _ROOT_FILE.match(name) and name != "index.html":
            found = cache.get(root / name)
            if found is not None:
                return file_response(request, found, REVALIDATE)
        raise StarletteHTTPException(404, "no such resource")


class _HeadAnswered(OSError):
    """Raised into a streaming answer to a HEAD request: its headers are out; stop."""


class HeadMiddleware:
    """Answers ``HEAD`` as ``GET`` would, without the body.

    The request goes on as a ``GET``; its answer keeps every header (with the
    length the body would have) and loses the body. A streaming answer (the
    live stream) is ended as a lost client would end it once its headers are
    out: the send of its first chunk fails.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") != "HEAD":
            await self.app(scope, receive, send)
            return
        answered = False

        async def head_send(message: Message) -> None:
            nonlocal answered
            if answered:
                raise _HeadAnswered("the HEAD request was answered")
            if message["type"] == "http.response.body":
                await send({"type": "http.response.body", "body": b""})
                answered = True
                if message.get("more_body", False):
                    raise _HeadAnswered("the HEAD request was answered")
                return
            await send(message)

        try:
            await self.app({**scope, "method": "GET"}, receive, head_send)
        except Exception:
            if not answered:
                raise
            # The stream was stopped on purpose (or by the error it was told of).


class ServerTimeMiddleware:
    """Stamps every answer with the server's clock in ms (``X-Server-Time-Ms``)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def stamped(message: Message) -> None:
            if message["type"] == "http.response.start":
                stamp = str(time.time_ns() // 1_000_000).encode()
                headers = [*message.get("headers", []), (SERVER_TIME_HEADER, stamp)]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, stamped)
