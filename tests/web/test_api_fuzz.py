"""The HTTP API fuzzed with schemathesis against its own OpenAPI spec.

The real app runs under uvicorn on a loopback port over a real SQLite store
holding scans, findings, series, alerts, a silence, a correlation run, gate
runs and benchmark results; schemathesis reads ``/openapi.json`` from it and
sends valid and invalid requests to every operation, with and without the
bearer token. What must hold everywhere:

* no answer is a 5xx;
* every invalid request (negative generation mode) gets a 4xx, and every 4xx
  carries the one error shape ``{"error": {"code", "message", "where"}}`` with
  a non-empty message;
* every write sent without the token gets 401.

Bounded in time: a few derandomized examples per operation, no shrinking.
The live stream never ends, so it is left out of the generated cases and
checked by hand (a bad topic pattern gets 422).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from secperf.model import (
    Alert,
    AlertState,
    BenchmarkResult,
    ConditionStatus,
    Finding,
    GateCondition,
    GateResult,
    GateVerdict,
    MetricKind,
    Sample,
    SecurityMetrics,
    Severity,
    make_fingerprint,
)
from support.services import free_port

schemathesis = pytest.importorskip("schemathesis")
uvicorn = pytest.importorskip("uvicorn")

from schemathesis.config import SchemathesisConfig  # noqa: E402

TOKEN = "fuzz-test-token-0123456789"
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
STREAM_PATH = "/api/v1/stream"
HOUR_MS = 3_600_000

#: A few examples per operation, the same ones every run, without shrinking:
#: the whole module stays well under two minutes on two cores.
FUZZ_CONFIG = """
[generation]
mode = "all"
max-examples = 25
deterministic = true
no-shrink = true
database = "none"

[phases.stateful]
enabled = false
"""


# --------------------------------------------------------------------------- data


def _fill(store: Any, now_ms: int) -> None:
    """Two scans with findings, an hour of two series, alerts, a silence, gates, benchmarks."""
    findings = [
        Finding(
            fingerprint=make_fingerprint(f"R{i}", f"src/m{i}.py", f"code {i}"),
            rule_id=f"R{i}",
            scanner="bandit" if i % 2 else "secrets",
            severity=list(Severity)[i % len(Severity)],
            message=f"problem {i}",
            path=f"src/m{i}.py",
            line=i + 1,
        )
        for i in range(10)
    ]
    for n, (start, end) in enumerate(
        [(now_ms - 50 * 60_000, now_ms - 45 * 60_000), (now_ms - 20 * 60_000, now_ms - 15 * 60_000)]
    ):
        scan_id = f"scan-{n}"
        store.record_scan_started(scan_id, "demo", start, ["bandit", "secrets"])
        store.record_scan_completed(
            SecurityMetrics(
                scan_id=scan_id,
                target="demo",
                started_ms=start,
                finished_ms=end,
                scan_duration_ms=float(end - start),
                violations_found=len(findings),
                false_positive_rate=0.0,
                vulnerability_severity_counts={"critical": 2, "high": 2, "medium": 2, "low": 4},
                scan_coverage_percent=100.0,
                new_findings=2,
            ),
            "ok",
        )
        store.add_findings(scan_id, findings, [f.fingerprint for f in findings[:2]])
    store.write_samples(
        [
            Sample(name, {"host": "h1"}, now_ms - HOUR_MS + k * 10_000, 10.0 + k % 13)
            for k in range(360)
            for name in ("cpu_percent", "response_time_ms")
        ]
    )
    for state in (AlertState.FIRING, AlertState.RESOLVED):
        store.upsert_alert(
            Alert(
                fingerprint=f"alert-{state.value}",
                rule="HighCpu",
                state=state,
                severity=Severity.HIGH,
                kind=MetricKind.PERFORMANCE,
                labels={"alertname": "HighCpu", "host": "h1"},
                annotations={"summary": "CPU high"},
                value=90.0,
                active_since_ms=now_ms - 600_000,
                fired_at_ms=now_ms - 300_000,
                updated_ms=now_ms - 300_000,
            )
        )
    store.add_silence(
        [{"name": "host", "value": "h2", "op": "="}], now_ms, now_ms + HOUR_MS, "ana", "deploy"
    )
    store.add_gate_run(
        GateResult(
            run_id="gate-1",
            target="demo",
            started_ms=now_ms - 60_000,
            finished_ms=now_ms - 59_000,
            verdict=GateVerdict.PASS,
            conditions=(
                GateCondition("new_critical", "security", ConditionStatus.PASS, 0, 0, "none new"),
            ),
            summary="passed",
        )
    )
    store.add_benchmark_results(
        [
            BenchmarkResult(
                name="test_parse",
                source="pytest-benchmark",
                timestamp_ms=now_ms - k * HOUR_MS,
                machine="m1",
                commit=f"c{k}",
                stats={"median": 0.01 + k / 1000, "mean": 0.011},
            )
            for k in range(3)
        ]
    )


# --------------------------------------------------------------------------- server


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The real app over a filled SQLite store, served by uvicorn on a loopback port."""
    from secperf.analysis.advice import advice_json, build_advice
    from secperf.analysis.correlate_store import correlations_json, latest_run, run_correlation
    from secperf.bus.memory import AsyncEventBus
    from secperf.store import Store, StoreWriter
    from secperf.web.app import create_app

    now = int(time.time() * 1000)
    store = Store.open(tmp_path_factory.mktemp("fuzz") / "secperf.db")
    _fill(store, now)
    run_correlation(store, now - 2 * HOUR_MS, now, now_ms=now)

    def correlations() -> dict[str, Any]:
        return correlations_json(latest_run(store))

    def advice() -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = advice_json(build_advice(store, now))["advice"]
        return items

    writer = StoreWriter(store, flush_interval_s=0.2)
    app = create_app(
        store,
        AsyncEventBus(),
        token=TOKEN,
        writer=writer,
        manage_writer=True,
        correlations=correlations,
        advice=advice,
    )
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, name="fuzz-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the fuzzed server did not start on 127.0.0.1:{port}")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        store.close()


def _app_spec() -> dict[str, Any]:
    """The OpenAPI document the app publishes at ``/openapi.json``.

    Built from ``create_app`` at collection time (the spec does not depend on
    the store's content), so that schemathesis makes one test item per
    operation; ``test_served_spec_is_the_fuzzed_spec`` checks the running
    server publishes the same document.
    """
    import tempfile

    from secperf.bus.memory import AsyncEventBus
    from secperf.store import Store
    from secperf.web.app import create_app

    with tempfile.TemporaryDirectory(prefix="secperf-spec-") as tmp:
        store = Store.open(Path(tmp) / "spec.db")
        try:
            spec: dict[str, Any] = create_app(store, AsyncEventBus(), token=TOKEN).openapi()
        finally:
            store.close()
    return spec


def _schema(config: str) -> Any:
    loaded = schemathesis.openapi.from_dict(SPEC, config=SchemathesisConfig.from_str(config))
    return loaded.exclude(path=STREAM_PATH)


SPEC = _app_spec()
#: Requests carrying the token (schemathesis sends it as the spec's bearer scheme).
with_token = _schema(FUZZ_CONFIG + f'\n[auth.openapi.HTTPBearer]\nbearer = "{TOKEN}"\n')
#: Requests without any Authorization header.
without_token = _schema(
    FUZZ_CONFIG.replace("[generation]", "[generation]\nwith-security-parameters = false")
)


# --------------------------------------------------------------------------- checks


def _error_shape(response: Any, label: str) -> None:
    """A 4xx carries ``{"error": {"code", "message", "where"}}`` with a message."""
    try:
        body = response.json()
    except ValueError:
        raise AssertionError(f"{label}: {response.status_code} without a JSON body") from None
    error = body.get("error") if isinstance(body, dict) else None
    assert isinstance(error, dict), f"{label}: {response.status_code} without an error object"
    assert isinstance(error.get("code"), str) and error["code"], f"{label}: no error code"
    message = error.get("message")
    assert isinstance(message, str) and message.strip(), f"{label}: error without a message"
    assert "where" in error, f"{label}: error without 'where'"
    assert TOKEN not in response.text, f"{label}: the token is echoed"


def _check(case: Any, response: Any, *, with_token: bool) -> None:
    label = f"{case.method} {case.formatted_path}"
    status = response.status_code
    assert status < 500, f"{label}: server error {status}: {response.text[:500]}"
    if 400 <= status < 500:
        _error_shape(response, label)
    documented_write = case.operation.method.upper() in WRITE_METHODS
    if not with_token and documented_write and case.method.upper() == case.operation.method.upper():
        # The body limit answers before anything else; every other write needs the token.
        assert status in (401, 413), (
            f"{label}: write without the token got {status}: {response.text[:300]}"
        )
        if status == 401:
            assert response.headers.get("www-authenticate") == ["Bearer"], (
                f"{label}: 401 without 'WWW-Authenticate: Bearer'"
            )


# --------------------------------------------------------------------------- tests


@with_token.parametrize()  # type: ignore[untyped-decorator]
def test_fuzz_with_token(case: Any, base_url: str) -> None:
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import negative_data_rejection

    response = case.call_and_validate(
        base_url=base_url,
        checks=[not_a_server_error, negative_data_rejection],
        timeout=30,
    )
    _check(case, response, with_token=True)


@without_token.parametrize()  # type: ignore[untyped-decorator]
def test_fuzz_without_token(case: Any, base_url: str) -> None:
    from schemathesis.checks import not_a_server_error

    # Drop any Authorization header the generator made up: this run has none.
    if case.headers:
        case.headers = {k: v for k, v in case.headers.items() if k.lower() != "authorization"}
    response = case.call_and_validate(base_url=base_url, checks=[not_a_server_error], timeout=30)
    _check(case, response, with_token=False)


@pytest.mark.parametrize(
    "topics", ["security..scan", "a.>.b", "*x", " , ,>.>"], ids=lambda t: repr(t)
)
def test_stream_refuses_bad_topic_patterns(base_url: str, topics: str) -> None:
    response = httpx.get(f"{base_url}{STREAM_PATH}", params={"topics": topics}, timeout=10)
    assert response.status_code == 422
    assert response.json()["error"]["where"] == "query.topics"
    assert response.json()["error"]["message"]


def test_stream_opens_with_a_valid_pattern(base_url: str) -> None:
    with (
        httpx.Client(timeout=10) as client,
        client.stream("GET", f"{base_url}{STREAM_PATH}", params={"topics": "security.>"}) as r,
    ):
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        first = next(r.iter_text())
        assert first.startswith("retry: ")


def test_served_spec_is_the_fuzzed_spec(base_url: str) -> None:
    assert httpx.get(f"{base_url}/openapi.json", timeout=10).json() == SPEC


def test_spec_lists_every_api_route() -> None:
    paths = set(SPEC["paths"])
    for expected in (
        "/api/v1/overview",
        "/api/v1/metrics/query",
        "/api/v1/findings",
        "/api/v1/findings/{fingerprint}/triage",
        "/api/v1/alerts/{fingerprint}/ack",
        "/api/v1/silences",
        "/api/v1/ingest/metrics",
        "/api/v1/ingest/sarif",
        "/api/v1/gate-runs",
        "/api/v1/benchmarks",
        STREAM_PATH,
    ):
        assert expected in paths, f"{expected} is missing from /openapi.json"


def test_write_with_a_malformed_body_and_no_token_gets_401(base_url: str) -> None:
    # The token is checked before the body is parsed: nothing about the
    # payload is told to a client without the token.
    response = httpx.post(
        f"{base_url}/api/v1/silences",
        content=b"{not json",
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"


def test_spec_says_reads_take_the_token_optionally_and_writes_need_it() -> None:
    for path, operations in SPEC["paths"].items():
        for method, operation in operations.items():
            security = operation.get("security")
            if method == "get" and security:
                assert {} in security, f"GET {path}: reads on loopback need no token"
            if method in ("post", "delete"):
                assert security == [{"HTTPBearer": []}], f"{method.upper()} {path}"
                invalid = operation["responses"].get("422")
                if invalid is not None:
                    ref = invalid["content"]["application/json"]["schema"]["$ref"]
                    assert ref == "#/components/schemas/Error"
