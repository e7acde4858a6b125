"""Serving the dashboard over a real uvicorn server: compression, caching, favicon, HEAD.

The dashboard build here is a small one written to a temporary directory
(the real build belongs to the dashboard), served by the real app.
"""

from __future__ import annotations

import gzip
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from secperf.bus import AsyncEventBus
from secperf.store import Store
from secperf.web import create_app
from secperf.web.app import CONTENT_SECURITY_POLICY
from support.prometheus import RunningApp, running_app

SCRIPT = "export function main() { return 'secperf dashboard'; }\n" * 400
STYLE = "body { color: #222; background: #fafafa; }\n.panel { padding: 1rem; }\n" * 200
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8
INDEX = (
    '<!doctype html><html><head><script type="module" src="/assets/index-Ab12Cd.js">'
    '</script><link rel="stylesheet" href="/assets/index-Ef34Gh.css"></head>'
    "<body><div id=app></div></body></html>" + "<!-- padding -->" * 40
)
IDENTITY = {"Accept-Encoding": "identity"}
GZIP = {"Accept-Encoding": "gzip, deflate"}


@pytest.fixture()
def build(tmp_path: Path) -> Path:
    root = tmp_path / "static"
    (root / "assets").mkdir(parents=True)
    (root / "index.html").write_text(INDEX)
    (root / "assets" / "index-Ab12Cd.js").write_text(SCRIPT)
    (root / "assets" / "index-Ef34Gh.css").write_text(STYLE)
    (root / "assets" / "logo-Zz99.png").write_bytes(PNG)
    (root / "private").mkdir()
    (root / "private" / "secret.txt").write_text("neither an asset nor a top-level file")
    return root


@pytest.fixture()
def server(tmp_path: Path, build: Path) -> Iterator[RunningApp]:
    with Store.open(tmp_path / "s.db") as store:
        app = create_app(store, AsyncEventBus(), static_dir=build, heartbeat_s=0.5)
        with running_app(app) as running:
            yield running


def _raw(client: httpx.Client, url: str, headers: dict[str, str]) -> tuple[httpx.Response, bytes]:
    """The response and its body as sent on the wire (not decoded)."""
    with client.stream("GET", url, headers=headers) as response:
        return response, b"".join(response.iter_raw())


def test_script_and_css_go_out_gzipped_to_clients_that_take_it(server: RunningApp) -> None:
    with httpx.Client(base_url=server.url) as client:
        for name, content, kind in (
            ("index-Ab12Cd.js", SCRIPT, "text/javascript"),
            ("index-Ef34Gh.css", STYLE, "text/css"),
        ):
            response, body = _raw(client, f"/assets/{name}", GZIP)
            assert response.status_code == 200
            assert response.headers["content-encoding"] == "gzip"
            assert response.headers["vary"] == "Accept-Encoding"
            assert response.headers["content-type"].startswith(kind)
            assert int(response.headers["content-length"]) == len(body) < len(content) // 5
            assert gzip.decompress(body).decode() == content
            plain, body = _raw(client, f"/assets/{name}", IDENTITY)
            assert "content-encoding" not in plain.headers
            assert body.decode() == content
            refused, body = _raw(client, f"/assets/{name}", {"Accept-Encoding": "gzip;q=0"})
            assert "content-encoding" not in refused.headers and body.decode() == content
        # An image is compressed already: sent as it is.
        image, body = _raw(client, "/assets/logo-Zz99.png", GZIP)
        assert "content-encoding" not in image.headers and body == PNG


def test_hashed_assets_are_immutable_and_the_page_is_revalidated(server: RunningApp) -> None:
    with httpx.Client(base_url=server.url) as client:
        asset = client.get("/assets/index-Ab12Cd.js")
        assert asset.headers["cache-control"] == "public, max-age=31536000, immutable"
        page = client.get("/")
        assert page.headers["cache-control"] == "no-cache"
        assert page.text == INDEX
        # Revalidation: the ETag of the form sent gives a 304 without a body.
        again = client.get("/", headers={"If-None-Match": page.headers["etag"]})
        assert again.status_code == 304 and again.content == b""
        for response in (asset, page):
            assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
            assert response.headers["x-content-type-options"] == "nosniff"


def test_if_none_match_compares_weakly_takes_lists_and_a_star(server: RunningApp) -> None:
    with httpx.Client(base_url=server.url) as client:
        for url, headers in (("/", IDENTITY), ("/assets/index-Ab12Cd.js", GZIP)):
            first = client.get(url, headers=headers)
            etag = first.headers["etag"]
            for held in (
                etag,
                f"W/{etag}",  # a proxy that changed the body's encoding weakens the tag
                f'"other", {etag}',
                f'W/"other",W/{etag}',
                "*",
            ):
                again = client.get(url, headers={**headers, "If-None-Match": held})
                assert again.status_code == 304, held
                assert again.content == b"" and again.headers["etag"] == etag
            for held in ('"other"', 'W/"other", "more"', etag.strip('"'), ""):
                again = client.get(url, headers={**headers, "If-None-Match": held})
                assert again.status_code == 200, held
                assert again.content == first.content


def test_a_changed_page_is_served_anew(server: RunningApp, build: Path) -> None:
    with httpx.Client(base_url=server.url) as client:
        first = client.get("/")
        (build / "index.html").write_text(INDEX.replace("padding", "rebuilt"))
        deadline = time.monotonic() + 10
        while "rebuilt" not in client.get("/").text:  # mtime granularity: poll
            assert time.monotonic() < deadline, "the new page was never served"
            (build / "index.html").write_text(INDEX.replace("padding", "rebuilt") + " ")
            time.sleep(0.05)
        assert client.get("/").headers["etag"] != first.headers["etag"]


def test_only_files_inside_the_build_are_served(server: RunningApp) -> None:
    with httpx.Client(base_url=server.url) as client:
        for path in (
            "/private/secret.txt",
            "/assets/%2e%2e/private/secret.txt",
            "/assets/..%2fprivate/secret.txt",
            "/assets/.hidden",
            "/assets/nope.js",
            "/.env",
        ):
            assert client.get(path).status_code == 404, path


def test_the_favicon_is_served(server: RunningApp) -> None:
    with httpx.Client(base_url=server.url) as client:
        icon = client.get("/favicon.ico")
        assert icon.status_code == 200
        assert icon.headers["content-type"] == "image/svg+xml"
        assert icon.content.startswith(b"<svg") and b"</svg>" in icon.content


def test_head_answers_wherever_get_does_without_a_body(server: RunningApp) -> None:
    with httpx.Client(base_url=server.url, timeout=httpx.Timeout(10.0)) as client:
        for path in (
            "/",
            "/assets/index-Ab12Cd.js",
            "/favicon.ico",
            "/healthz",
            "/api/v1/overview",
            "/api/v1/alerts",
            "/api/v1/fleet/targets",
            "/openapi.json",
            "/api/v1/stream",  # a stream: its headers, then the answer ends
        ):
            got = client.get(path) if path != "/api/v1/stream" else None
            head = client.head(path)
            assert head.status_code == 200, path
            assert head.content == b"", path
            if got is not None:
                assert head.headers["content-type"] == got.headers["content-type"], path
        # HEAD of a write-only path is refused as its GET would be.
        assert client.head("/api/v1/ingest/sarif").status_code == 405


def test_the_stream_is_not_compressed(server: RunningApp) -> None:
    with (
        httpx.Client(base_url=server.url, timeout=httpx.Timeout(10.0)) as client,
        client.stream("GET", "/api/v1/stream", headers=GZIP) as response,
    ):
        assert response.headers["content-type"].startswith("text/event-stream")
        assert "content-encoding" not in response.headers
        first = next(response.iter_raw())
        assert first.startswith(b"retry: ")


def test_every_answer_carries_the_servers_clock(server: RunningApp) -> None:
    with httpx.Client(base_url=server.url) as client:
        before = time.time_ns() // 1_000_000
        overview = client.get("/api/v1/overview")
        alerts = client.get("/api/v1/alerts")
        after = time.time_ns() // 1_000_000
        for response in (overview, alerts, client.get("/api/v1/nope"), client.get("/")):
            stamp = int(response.headers["x-server-time-ms"])
            assert before <= stamp <= after + 1000
        assert before <= overview.json()["server_ms"] <= after
        assert before <= alerts.json()["server_ms"] <= after
