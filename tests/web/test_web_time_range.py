"""The API's time range (``start_ms``/``end_ms``) over a real store (SQLite and PostgreSQL)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from secperf.bus import AsyncEventBus
from secperf.model import (
    BenchmarkResult,
    Finding,
    GateResult,
    GateVerdict,
    SecurityMetrics,
    Severity,
    make_fingerprint,
)
from secperf.store import Store
from secperf.web import create_app

HOUR = 3_600_000


def _now() -> int:
    return time.time_ns() // 1_000_000


# --------------------------------------------------------------------------- gate runs / benchmarks


@pytest.fixture()
def gate_store(store_url: str) -> Iterator[tuple[Store, int]]:
    """Gate runs and benchmark results 30 min, 3 h and 30 h ago, of two targets."""
    now = _now()
    with Store.open(store_url) as opened:
        for age_h, name in ((0.5, "recent"), (3, "earlier"), (30, "old")):
            started = now - int(age_h * HOUR)
            for target in ("api", "web"):
                opened.add_gate_run(
                    GateResult(
                        f"{name}-{target}",
                        target,
                        started,
                        started + 1000,
                        GateVerdict.PASS,
                        commit=f"{name}0123456789",
                    )
                )
            opened.add_benchmark_results(
                [
                    BenchmarkResult(
                        "test_parse",
                        "pytest-benchmark",
                        started,
                        "m1",
                        commit=f"{name}0123456789",
                        stats={"min": 0.009, "q1": 0.0095, "median": 0.01, "q3": 0.011},
                    )
                ]
            )
        yield opened, now


def _client(store: Store) -> TestClient:
    return TestClient(create_app(store, AsyncEventBus()))


def test_gate_runs_keep_the_runs_started_in_the_range(gate_store: tuple[Store, int]) -> None:
    store, now = gate_store
    with _client(store) as client:
        every = client.get("/api/v1/gate-runs").json()["runs"]
        assert [r["run_id"] for r in every if r["target"] == "api"] == [
            "recent-api",
            "earlier-api",
            "old-api",
        ]
        last_6h = client.get(
            "/api/v1/gate-runs", params={"start_ms": now - 6 * HOUR, "end_ms": now}
        ).json()["runs"]
        assert {r["run_id"] for r in last_6h} == {
            "recent-api",
            "recent-web",
            "earlier-api",
            "earlier-web",
        }
        scoped = client.get(
            "/api/v1/gate-runs",
            params={"target": "web", "start_ms": now - 6 * HOUR, "end_ms": now - HOUR},
        ).json()["runs"]
        assert [r["run_id"] for r in scoped] == ["earlier-web"]
        # Either bound alone.
        since = client.get("/api/v1/gate-runs", params={"start_ms": now - HOUR}).json()["runs"]
        assert {r["run_id"] for r in since} == {"recent-api", "recent-web"}
        until = client.get("/api/v1/gate-runs", params={"end_ms": now - 24 * HOUR}).json()["runs"]
        assert {r["run_id"] for r in until} == {"old-api", "old-web"}


def test_benchmarks_keep_the_results_timestamped_in_the_range(
    gate_store: tuple[Store, int],
) -> None:
    store, now = gate_store
    with _client(store) as client:
        every = client.get("/api/v1/benchmarks").json()
        assert [r["commit"][:3] for r in every["results"]] == ["old", "ear", "rec"]
        body = client.get(
            "/api/v1/benchmarks", params={"start_ms": now - 6 * HOUR, "end_ms": now}
        ).json()
        assert body["names"] == ["test_parse"]
        assert [r["commit"] for r in body["results"]] == ["earlier0123456789", "recent0123456789"]
        assert body["results"][0]["stats"]["q1"] == 0.0095


@pytest.mark.parametrize("path", ["/api/v1/gate-runs", "/api/v1/benchmarks"])
def test_a_reversed_or_invalid_range_is_refused_saying_where(
    gate_store: tuple[Store, int], path: str
) -> None:
    store, now = gate_store
    with _client(store) as client:
        reversed_ = client.get(path, params={"start_ms": now, "end_ms": now - HOUR})
        assert reversed_.status_code == 422
        error = reversed_.json()["error"]
        assert error["where"] == "query.end_ms" and "before start_ms" in error["message"]
        negative = client.get(path, params={"start_ms": -5})
        assert negative.status_code == 422
        assert "start_ms" in str(negative.json()["error"]["where"])
        text = client.get(path, params={"end_ms": "yesterday"})
        assert text.status_code == 422
        assert "end_ms" in str(text.json()["error"]["where"])


# --------------------------------------------------------------------------- findings' first seen


def test_findings_say_when_they_were_first_seen_as_the_finding_history_does(
    store_url: str,
) -> None:
    now = _now()
    found = [
        Finding(
            fingerprint=make_fingerprint(f"R{i}", f"src/m{i}.py", f"code {i}"),
            rule_id=f"R{i}",
            scanner="bandit",
            severity=Severity.HIGH,
            message="m",
            path=f"src/m{i}.py",
            line=1,
        )
        for i in range(3)
    ]
    ends: list[int] = []
    with Store.open(store_url) as store:
        # Scan 1 finds 0 and 1, scan 2 finds 1 and 2 (0 fixed), scan 3 finds all (0 back).
        for k, held in enumerate(([0, 1], [1, 2], [0, 1, 2])):
            start = now - (3 - k) * HOUR
            store.record_scan_started(f"scan-{k}", "api", start, ["bandit"])
            store.add_findings(f"scan-{k}", [found[i] for i in held], set())
            store.record_scan_completed(
                SecurityMetrics(
                    scan_id=f"scan-{k}",
                    target="api",
                    started_ms=start,
                    finished_ms=start + 5000,
                    scan_duration_ms=5000.0,
                    violations_found=len(held),
                    false_positive_rate=0.0,
                    vulnerability_severity_counts={"high": len(held)},
                    scan_coverage_percent=100.0,
                    files_scanned=3,
                    new_findings=0,
                    existing_findings=len(held),
                ),
                "ok",
            )
            ends.append(start + 5000)
        with _client(store) as client:
            body = client.get("/api/v1/findings", params={"target": "api"}).json()
        first = {f["rule_id"]: f["first_seen_ms"] for f in body["findings"]}
        assert first == {"R0": ends[0], "R1": ends[0], "R2": ends[1]}
        history = {lt.rule_id: lt.first_seen_ms for lt in store.finding_history("api", 0)}
        assert first == history
