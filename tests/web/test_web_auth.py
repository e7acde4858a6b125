"""The server's own security: tokens, bind address, body limit, headers, no CORS."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from secperf.bus import AsyncEventBus
from secperf.config import ServerConfig
from secperf.store import Store
from secperf.web import UnsafeBindError, check_bind, create_app
from support.cli import run_cli
from support.services import free_port

TOKEN = "tok-0123456789abcdef-SECRET"
SILENCE = {
    "matchers": [{"name": "rule", "value": "cpu_high", "op": "="}],
    "ends_ms": time.time_ns() // 1_000_000 + 86_400_000,
    "author": "ana",
    "reason": "maintenance",
}


@pytest.fixture()
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "s.db") as opened:
        yield opened


def _client(store: Store, **kw: object) -> TestClient:
    return TestClient(create_app(store, AsyncEventBus(), **kw))  # type: ignore[arg-type]


def test_writes_need_the_bearer_token(store: Store) -> None:
    with _client(store, token=TOKEN) as client:
        missing = client.post("/api/v1/silences", json=SILENCE)
        assert missing.status_code == 401
        assert missing.headers["www-authenticate"] == "Bearer"
        assert missing.json()["error"]["code"] == "unauthorized"
        wrong = client.post(
            "/api/v1/silences", json=SILENCE, headers={"Authorization": "Bearer nope-nope"}
        )
        assert wrong.status_code == 403
        basic = client.post(
            "/api/v1/silences", json=SILENCE, headers={"Authorization": f"Basic {TOKEN}"}
        )
        assert basic.status_code == 401
        good = client.post(
            "/api/v1/silences", json=SILENCE, headers={"Authorization": f"Bearer {TOKEN}"}
        )
        assert good.status_code == 200, good.text
        for response in (missing, wrong, basic, good):
            assert TOKEN not in response.text
        # Reads on loopback need no token.
        assert client.get("/api/v1/silences").status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("post", "/api/v1/findings/abc/triage", {"state": "open", "reason": "x", "author": "a"}),
        ("post", "/api/v1/baselines/default", {}),
        ("post", "/api/v1/alerts/abc/ack", {"author": "a", "note": ""}),
        ("post", "/api/v1/silences", SILENCE),
        ("delete", "/api/v1/silences/1", None),
        ("post", "/api/v1/ingest/metrics", {"samples": []}),
        ("post", "/api/v1/ingest/sarif", {"version": "2.1.0", "runs": []}),
    ],
)
def test_every_write_endpoint_is_refused_without_a_configured_token(
    store: Store, method: str, path: str, body: object
) -> None:
    with _client(store) as client:
        response = client.request(method.upper(), path, json=body)
        assert response.status_code == 403
        error = response.json()["error"]
        assert error["code"] == "no_token_configured"
        assert "SECPERF_TOKEN" in error["message"]
    with _client(store, token=TOKEN) as client:
        assert client.request(method.upper(), path, json=body).status_code == 401


def test_reads_need_the_token_when_bound_beyond_loopback(store: Store) -> None:
    config = ServerConfig(host="0.0.0.0", token=TOKEN)
    with _client(store, config=config) as client:
        assert client.get("/api/v1/overview").status_code == 401
        assert client.get("/metrics").status_code == 401
        auth = {"Authorization": f"Bearer {TOKEN}"}
        assert client.get("/api/v1/overview", headers=auth).status_code == 200
        assert client.get("/metrics", headers=auth).status_code == 200
        # Liveness and the page that asks for the token stay open.
        assert client.get("/healthz").status_code == 200
        assert client.get("/").status_code == 200


def test_non_loopback_bind_without_a_token_is_refused() -> None:
    with pytest.raises(UnsafeBindError, match="SECPERF_TOKEN"):
        check_bind("0.0.0.0", None)
    with pytest.raises(UnsafeBindError, match="16 characters"):
        check_bind("192.168.1.5", "short")
    check_bind("127.0.0.1", None)
    check_bind("::1", None)
    check_bind("localhost", None)
    check_bind("0.0.0.0", TOKEN)


def test_bodies_over_the_limit_get_413_before_parsing(store: Store) -> None:
    config = ServerConfig(max_request_bytes=1000)
    with _client(store, config=config, token=TOKEN) as client:
        auth = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
        big = b'{"samples": [' + b" " * 2000 + b"]}"
        declared = client.post("/api/v1/ingest/metrics", content=big, headers=auth)
        assert declared.status_code == 413
        assert declared.json()["error"]["code"] == "too_large"

        def chunks() -> Iterator[bytes]:
            yield b'{"samples": ['
            for _ in range(40):
                yield b" " * 100
            yield b"]}"

        chunked = client.post("/api/v1/ingest/metrics", content=chunks(), headers=auth)
        assert chunked.status_code == 413
        small = client.post("/api/v1/ingest/metrics", json={"samples": []}, headers=auth)
        assert small.status_code == 200


def test_security_headers_and_no_cors(store: Store) -> None:
    with _client(store) as client:
        for path in ("/", "/api/v1/overview", "/metrics", "/healthz", "/nowhere"):
            response = client.get(path, headers={"Origin": "https://evil.example"})
            assert response.headers["x-content-type-options"] == "nosniff"
            csp = response.headers["content-security-policy"]
            assert "default-src 'self'" in csp
            assert "connect-src 'self'" in csp
            assert "img-src 'self' data:" in csp
            assert "style-src 'self' 'unsafe-inline'" in csp
            assert "access-control-allow-origin" not in response.headers
            assert "server" not in response.headers
        preflight = client.options(
            "/api/v1/silences",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
        )
        assert "access-control-allow-origin" not in preflight.headers
        assert preflight.status_code == 405


def _serve_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("SECPERF_")}


def test_cli_serve_refuses_a_public_address_without_a_token(tmp_path: Path) -> None:
    result = run_cli(["serve", "--host", "0.0.0.0", "--port", "0"], cwd=tmp_path)
    assert result.returncode == 2
    assert "SECPERF_TOKEN" in result.stderr
    assert "0.0.0.0" in result.stderr


@pytest.mark.slow
def test_cli_serve_runs_until_interrupted(tmp_path: Path) -> None:
    port = free_port()
    env = {**_serve_env(), "SECPERF_TOKEN": TOKEN}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "secperf",
            "serve",
            "--port",
            str(port),
            "--store",
            str(tmp_path / "served.db"),
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert f"http://127.0.0.1:{port}" in line, line
        assert TOKEN not in line
        health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10)
        assert health.json()["status"] == "ok"
        assert "server" not in health.headers
        ingest = httpx.post(
            f"http://127.0.0.1:{port}/api/v1/ingest/metrics",
            json={"samples": [{"name": "app_up", "value": 1}]},
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=10,
        )
        assert ingest.json() == {"accepted": 1}
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # The writer flushed at shutdown: the sample is in the store.
    with Store.open(tmp_path / "served.db") as store:
        assert store.list_metric_names() == ["app_up"]


def test_serve_with_an_unreachable_bus_is_one_clear_error(tmp_path: Path) -> None:
    result = run_cli(["serve", "--bus", "nats://127.0.0.1:1", "--port", "0"], cwd=tmp_path)
    assert result.returncode == 2
    assert "cannot reach the NATS server at nats://127.0.0.1:1" in result.stderr
    assert "Traceback" not in result.stderr
