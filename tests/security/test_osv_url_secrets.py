"""``scan.deps.osv_api_url`` is configurable (a private mirror): its errors show it masked.

Real HTTP servers on 127.0.0.1 answer 500 or garbage, a password in the URL
makes urllib quote it back, and ``secperf scan`` runs the deps scanner
against such a mirror from a real config file. The URL's password and query
values never show; the host, path and what failed do.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from secperf.config.units import MASK
from secperf.security.osv import OsvApiError, OsvClient
from support.cli import run_cli
from support.services import free_port

SECRETS = ("OsvTok7x", "OsvPw9x")


class Mirror:
    """A local server answering every request with ``status`` and ``body``."""

    def __init__(self, status: int, body: bytes) -> None:
        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _answer

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def failing() -> Iterator[Mirror]:
    mirror = Mirror(500, b"down\n")
    yield mirror
    mirror.close()


@pytest.fixture
def garbage() -> Iterator[Mirror]:
    mirror = Mirror(200, b"<html>not json</html>")
    yield mirror
    mirror.close()


def lookup_error(base_url: str) -> str:
    with pytest.raises(OsvApiError) as failed:
        OsvClient(base_url, timeout=5).query_batch([("requests", "2.19.0")])
    text = str(failed.value)
    for secret in SECRETS:
        assert secret not in text, (secret, text)
    return text


def test_an_http_error_shows_the_url_masked(failing: Mirror) -> None:
    assert lookup_error(f"{failing.base}/osv?key=OsvTok7x") == (
        f"OSV API {failing.base}/osv?key={MASK}: HTTP 500 Internal Server Error"
    )


def test_an_unusable_answer_shows_the_url_masked(garbage: Mirror) -> None:
    assert lookup_error(f"{garbage.base}/osv?key=OsvTok7x").startswith(
        f"OSV API {garbage.base}/osv?key={MASK}: invalid JSON answer:"
    )


def test_a_url_with_a_password_fails_without_showing_it(failing: Mirror) -> None:
    """The password goes out as Basic authentication; an error shows the URL masked."""
    port = failing.base.rsplit(":", 1)[1]
    assert lookup_error(f"http://osv:OsvPw9x@127.0.0.1:{port}") == (
        f"OSV API http://osv:{MASK}@127.0.0.1:{port}/v1/querybatch: HTTP 500 Internal Server Error"
    )
    nothing = free_port()
    assert lookup_error(f"http://osv:OsvPw9x@127.0.0.1:{nothing}").startswith(
        f"OSV API http://osv:{MASK}@127.0.0.1:{nothing}/v1/querybatch unreachable:"
    )


def test_a_refused_url_is_masked() -> None:
    with pytest.raises(ValueError, match="OSV API URL must be") as refused:
        OsvClient("ftp://osv:OsvPw9x@mirror.example.com/?key=OsvTok7x")
    assert f"'ftp://osv:{MASK}@mirror.example.com/?key={MASK}'" in str(refused.value)


def test_scan_says_the_lookup_failed_without_the_secret(tmp_path: Path, failing: Mirror) -> None:
    (tmp_path / "requirements.txt").write_text("requests==2.19.0\n")
    (tmp_path / "secperf.toml").write_text(
        '[scan]\nscanners = ["deps"]\n'
        f'[scan.deps]\nnetwork = true\nosv_api_url = "{failing.base}/osv?key=OsvTok7x"\n'
    )
    result = run_cli(["scan", "--no-cache", "--format", "json"], cwd=tmp_path)
    for secret in SECRETS:
        assert secret not in result.stdout and secret not in result.stderr, secret
    report = json.loads(result.stdout)
    assert f"OSV API {failing.base}/osv?key={MASK}: HTTP 500" in json.dumps(report)
