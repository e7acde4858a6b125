"""The REST API over a real SQLite store and the real bus, through FastAPI's TestClient."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from secperf.alerts.engine import AlertEngine
from secperf.bus import AsyncEventBus
from secperf.events import AlertChanged
from secperf.model import (
    Alert,
    AlertState,
    BenchmarkResult,
    Finding,
    GateResult,
    GateVerdict,
    MetricKind,
    Sample,
    SecurityMetrics,
    Severity,
)
from secperf.security.scanners.interface import SourceFile
from secperf.security.scanners.secrets import SecretsScanner
from secperf.store import Store
from secperf.web import create_app
from support.factories import make_scan_metrics
from support.leaks import value_hashes
from support.paths import FIXTURES as FIXTURES_DIR

TOKEN = "api-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
AWS_KEY = "AKIAZ7Q2XK4LMN8PQRST"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzzQ8v3Kd9a"
HOUR = 3_600_000


def _now() -> int:
    return time.time_ns() // 1_000_000


def _secret_findings() -> list[Finding]:
    """Findings of the real secrets scanner over a file holding a fake AWS key."""
    source = SourceFile(
        "config/settings.py",
        f'AWS_ACCESS_KEY_ID = "{AWS_KEY}"\naws_secret_access_key = "{AWS_SECRET}"\n'.encode(),
    )
    result = SecretsScanner(b"web-test-salt").scan_batch(Path("."), [source])[0]
    assert result.findings, "the secrets scanner found nothing to test with"
    return result.findings


def _code_finding(n: int, severity: Severity, path: str) -> Finding:
    return Finding(
        fingerprint=f"{n:032x}",
        rule_id=f"B{600 + n}",
        scanner="bandit",
        severity=severity,
        message=f"issue {n}",
        path=path,
        line=n,
        snippet="subprocess.call(cmd, shell=True)",
    )


def _metrics(scan_id: str, finished: int, found: list[Finding], new: int) -> SecurityMetrics:
    return make_scan_metrics(scan_id, finished, found, new=new)


def _alert(fp: str, state: AlertState, updated: int, **labels: str) -> Alert:
    return Alert(
        fingerprint=fp,
        rule="cpu_high",
        state=state,
        severity=Severity.HIGH,
        kind=MetricKind.PERFORMANCE,
        labels={"host": "h1", **labels},
        value=93.0,
        active_since_ms=updated - 60_000,
        fired_at_ms=updated if state is AlertState.FIRING else None,
        updated_ms=updated,
    )


@pytest.fixture()
def store(tmp_path: Path) -> Iterator[Store]:
    now = _now()
    with Store.open(tmp_path / "s.db") as opened:
        # Two scans: the newer one has the secrets and one new code finding.
        old = [_code_finding(1, Severity.MEDIUM, "src/app.py")]
        opened.record_scan_started("scan-old", "repo", now - 2 * HOUR, ["bandit"])
        opened.add_findings("scan-old", old, {old[0].fingerprint})
        opened.record_scan_completed(
            _metrics("scan-old", now - 2 * HOUR + 2000, old, 1), "ok", host="h1"
        )
        new = [*old, _code_finding(2, Severity.HIGH, "src/db.py"), *_secret_findings()]
        fresh = {f.fingerprint for f in new[1:]}
        opened.record_scan_started("scan-new", "repo", now - HOUR, ["bandit", "secrets"])
        opened.add_findings("scan-new", new, fresh)
        opened.record_scan_completed(
            _metrics("scan-new", now - HOUR + 2000, new, len(fresh)), "ok", host="h1"
        )
        # Performance: one hour of CPU at 1 s for host h1 (plus one core).
        start = now - HOUR
        opened.write_samples(
            [
                Sample("cpu_percent", {"host": "h1"}, start + i * 1000, float(i % 100))
                for i in range(3600)
            ]
            + [Sample("cpu_percent", {"host": "h1", "cpu": "0"}, now - 1000, 50.0)]
            + [Sample("memory_percent", {"host": "h1"}, now - 1000, 61.5)]
        )
        firing = _alert("a" * 16, AlertState.FIRING, now - 1000)
        opened.record_alert_transition(
            AlertChanged(alert=firing, previous_state=AlertState.PENDING, ts_ms=now - 1000)
        )
        opened.upsert_alert(_alert("b" * 16, AlertState.PENDING, now - 500, host="h2"))
        opened.add_silence(
            [{"name": "host", "value": "h1", "op": "="}], now - 1000, now + HOUR, "ops", "deploy"
        )
        opened.add_gate_run(
            GateResult(
                "run-1", "repo", now - 5000, now - 4000, GateVerdict.BLOCK, summary="2 new high"
            )
        )
        opened.add_benchmark_results(
            [
                BenchmarkResult(
                    "test_parse", "pytest-benchmark", now - 9000, "m1", stats={"median": 0.01}
                )
            ]
        )
        yield opened


def _client(store: Store, **kw: Any) -> TestClient:
    return TestClient(create_app(store, AsyncEventBus(), token=TOKEN, **kw))


def test_health_overview_and_openapi(store: Store) -> None:
    with _client(store) as client:
        assert client.get("/healthz").json() == {
            "status": "ok",
            "version": "0.1.0",
            "store": "sqlite",
            "bus": "memory",
        }
        overview = client.get("/api/v1/overview").json()
        security = overview["security"]
        assert security["last_scan"]["scan_id"] == "scan-new"
        assert security["severity_counts"]["high"] >= 1
        assert security["new_findings"] >= 2
        assert security["coverage_percent"] == 95.0
        assert [t["scan_id"] for t in security["trend"]] == ["scan-old", "scan-new"]
        perf = overview["performance"]
        assert perf["latest"]["cpu_percent"] == float(3599 % 100)  # the host-wide series
        assert perf["latest"]["memory_percent"] == 61.5
        assert perf["hosts"] == ["h1"]
        # The firing alert on h1 is silenced: counted apart, not listed as firing.
        assert overview["alerts"]["firing"] == []
        assert overview["alerts"]["silenced"] == 1
        assert overview["alerts"]["pending"] == 1
        assert overview["scan_running"] is None
        spec = client.get("/openapi.json").json()
        assert "/api/v1/metrics/query" in spec["paths"]
        assert "/api/v1/ingest/metrics" in spec["paths"]


def test_metric_listing_and_downsampled_query(store: Store) -> None:
    now = _now()
    with _client(store) as client:
        # Recording the two scans stored their security series too.
        names = client.get("/api/v1/metrics/names").json()["names"]
        assert names == sorted(names)
        security = {
            "security_false_positives",
            "security_findings",
            "security_new_findings",
            "security_scan_coverage",
            "security_scan_time",
            "security_violations",
            "vulnerability_count",
        }
        assert set(names) == {"cpu_percent", "memory_percent"} | security
        series = client.get("/api/v1/metrics?host=h1").json()["series"]
        assert {s["name"] for s in series} == {"cpu_percent", "memory_percent"} | security
        query = client.get(
            "/api/v1/metrics/query",
            params=[
                ("name", "cpu_percent"),
                ("match", "host=h1"),
                ("start_ms", str(now - HOUR)),
                ("end_ms", str(now)),
                ("points", "100"),
            ],
        ).json()
        # Both h1 series match host=h1; the host-wide one has 3,600 points -> <= 100 steps.
        whole = next(s for s in query["series"] if s["labels"] == {"host": "h1"})
        assert 90 <= len(whole["timestamps_ms"]) <= 100
        assert all(
            lo <= a <= hi
            for lo, a, hi in zip(whole["min"], whole["avg"], whole["max"], strict=True)
        )
        raw = client.get(
            "/api/v1/metrics/query",
            params={"name": "memory_percent", "start_ms": now - HOUR, "end_ms": now},
        ).json()["series"][0]
        assert raw["avg"] == raw["min"] == raw["max"] == [61.5]
        bad = client.get("/api/v1/metrics/query", params={"name": "cpu_percent", "match": "nope"})
        assert bad.status_code == 422
        assert bad.json()["error"]["where"] == "query.match[0]"
        empty = client.get(
            "/api/v1/metrics/query", params={"name": "cpu_percent", "start_ms": 10, "end_ms": 5}
        )
        assert empty.status_code == 422
        assert client.get("/api/v1/metrics/query?name=1bad").status_code == 422


def test_scans_and_findings_with_filters(store: Store) -> None:
    with _client(store) as client:
        scans = client.get("/api/v1/scans?limit=10").json()["scans"]
        assert [s["scan_id"] for s in scans] == ["scan-new", "scan-old"]
        assert client.get("/api/v1/scans/missing").status_code == 404
        latest = client.get("/api/v1/findings").json()
        assert latest["scan_id"] == "scan-new"
        by_fp = {f["fingerprint"]: f for f in latest["findings"]}
        assert len(by_fp) >= 3
        high = client.get("/api/v1/findings?severity=high&scanner=bandit").json()["findings"]
        assert [f["rule_id"] for f in high] == ["B602"]
        in_src = client.get("/api/v1/findings", params={"path": "src/*"}).json()["findings"]
        assert {f["path"] for f in in_src} == {"src/app.py", "src/db.py"}
        new_only = client.get("/api/v1/findings?new=true").json()["findings"]
        assert "0" * 31 + "1" not in {f["fingerprint"] for f in new_only}
        old = client.get("/api/v1/findings?scan_id=scan-old").json()["findings"]
        assert len(old) == 1 and old[0]["state"] == "open" and old[0]["triage"] is None
        assert client.get("/api/v1/findings?severity=urgent").status_code == 422
        assert client.get("/api/v1/findings?state=closed").status_code == 422


def test_triage_round_trip(store: Store) -> None:
    fp = f"{2:032x}"
    later = _now() + 30 * 86_400_000
    with _client(store) as client:
        url = f"/api/v1/findings/{fp}/triage"
        body = {
            "state": "accepted_risk",
            "reason": "behind VPN",
            "author": "ana",
            "expires_ms": later,
        }
        response = client.post(url, json=body, headers=AUTH)
        assert response.status_code == 200, response.text
        decided = response.json()
        assert decided["state"] == "accepted_risk"
        assert decided["reason"] == "behind VPN"
        assert decided["expires_ms"] == later
        accepted = client.get("/api/v1/findings?state=accepted_risk").json()["findings"]
        assert [f["fingerprint"] for f in accepted] == [fp]
        assert accepted[0]["triage"]["author"] == "ana"
        missing_reason = client.post(url, json={"state": "open", "author": "ana"}, headers=AUTH)
        assert missing_reason.status_code == 422
        assert missing_reason.json()["error"]["where"] == "body.reason"
        past = client.post(url, json={**body, "expires_ms": 5}, headers=AUTH)
        assert past.json()["error"]["where"] == "body.expires_ms"
        wrong_state = client.post(url, json={**body, "state": "fixed"}, headers=AUTH)
        assert wrong_state.json()["error"]["where"] == "body.state"
        unknown = client.post(f"/api/v1/findings/{'f' * 32}/triage", json=body, headers=AUTH)
        assert unknown.status_code == 404


def test_baselines(store: Store) -> None:
    with _client(store) as client:
        assert client.get("/api/v1/baselines").json() == {"baselines": []}
        saved = client.post("/api/v1/baselines/default", json={}, headers=AUTH).json()
        assert saved["name"] == "default"
        assert saved["fingerprints"] == len(client.get("/api/v1/findings").json()["findings"])
        older = client.post(
            "/api/v1/baselines/release", json={"scan_id": "scan-old"}, headers=AUTH
        ).json()
        assert older["fingerprints"] == 1
        listed = {
            b["name"]: b["fingerprints"]
            for b in client.get("/api/v1/baselines").json()["baselines"]
        }
        assert listed == {"default": saved["fingerprints"], "release": 1}
        gone = client.post("/api/v1/baselines/x", json={"scan_id": "nope"}, headers=AUTH)
        assert gone.status_code == 404
        assert client.post("/api/v1/baselines/bad name", json={}, headers=AUTH).status_code in (
            404,
            422,
        )


def test_alerts_ack_silences_without_an_engine(store: Store) -> None:
    with _client(store) as client:
        alerts = client.get("/api/v1/alerts").json()["alerts"]
        by_fp = {a["fingerprint"]: a for a in alerts}
        assert by_fp["a" * 16]["silenced"] is True  # host=h1 is silenced
        assert by_fp["b" * 16]["silenced"] is False
        firing = client.get("/api/v1/alerts?state=firing").json()["alerts"]
        assert [a["state"] for a in firing] == ["firing"]
        history = client.get(f"/api/v1/alerts/{'a' * 16}/history").json()["transitions"]
        assert [(t["from"], t["to"]) for t in history] == [("pending", "firing")]
        acked = client.post(
            f"/api/v1/alerts/{'a' * 16}/ack", json={"author": "ana", "note": "on it"}, headers=AUTH
        )
        assert acked.status_code == 200
        assert acked.json()["acknowledged_by"] == "ana"
        assert (
            client.get("/api/v1/alerts?state=firing").json()["alerts"][0]["acknowledgement_note"]
            == "on it"
        )
        assert (
            client.post(
                "/api/v1/alerts/nope/ack", json={"author": "a", "note": ""}, headers=AUTH
            ).status_code
            == 404
        )
        silences = client.get("/api/v1/silences?active=true").json()["silences"]
        assert len(silences) == 1 and silences[0]["active"] is True
        created = client.post(
            "/api/v1/silences",
            json={
                "matchers": [{"name": "host", "value": "h[23]", "op": "=~"}],
                "ends_ms": _now() + HOUR,
                "author": "ana",
                "reason": "noisy",
            },
            headers=AUTH,
        ).json()
        assert created["active"] is True
        assert client.get("/api/v1/alerts").json()["alerts"][-1]["silenced"] is True
        bad_regex = client.post(
            "/api/v1/silences",
            json={
                "matchers": [{"name": "host", "value": "(", "op": "=~"}],
                "ends_ms": _now() + HOUR,
                "author": "ana",
                "reason": "x",
            },
            headers=AUTH,
        )
        assert bad_regex.status_code == 422
        assert bad_regex.json()["error"]["where"] == "body.matchers[0]"
        mute_all = client.post(
            "/api/v1/silences",
            json={
                "matchers": [{"name": "host", "value": ".*", "op": "=~"}],
                "ends_ms": _now() + HOUR,
                "author": "a",
                "reason": "x",
            },
            headers=AUTH,
        )
        assert mute_all.status_code == 422
        deleted = client.delete(f"/api/v1/silences/{created['id']}", headers=AUTH)
        assert deleted.json() == {"id": created["id"], "expired": True}
        assert client.delete(f"/api/v1/silences/{created['id']}", headers=AUTH).status_code == 404


def test_alerts_through_the_real_alert_engine(store: Store) -> None:
    engine = AlertEngine(store, AsyncEventBus(), [])
    with _client(store, alert_engine=engine) as client:
        acked = client.post(
            f"/api/v1/alerts/{'a' * 16}/ack", json={"author": "bo", "note": "looking"}, headers=AUTH
        )
        assert acked.status_code == 200, acked.text
        assert acked.json()["acknowledged_by"] == "bo"
        assert "context" in acked.json()
        assert store.alerts([AlertState.FIRING])[0].acknowledged_by == "bo"
        missing = client.post("/api/v1/alerts/zzz/ack", json={"author": "bo"}, headers=AUTH)
        assert missing.status_code == 404
        created = client.post(
            "/api/v1/silences",
            json={
                "matchers": [{"name": "host", "value": "h9"}],
                "ends_ms": _now() + HOUR,
                "author": "bo",
                "reason": "test",
            },
            headers=AUTH,
        )
        assert created.status_code == 200, created.text
        assert (
            client.delete(f"/api/v1/silences/{created.json()['id']}", headers=AUTH).status_code
            == 200
        )


def test_analysis_providers_gate_runs_and_benchmarks(store: Store) -> None:
    with _client(store) as client:
        assert client.get("/api/v1/correlations").json() == {"computed_ms": None, "results": []}
        assert client.get("/api/v1/advice").json()["advice"] == []
        runs = client.get("/api/v1/gate-runs").json()["runs"]
        assert runs[0]["run_id"] == "run-1" and runs[0]["verdict"] == "block"
        bench = client.get("/api/v1/benchmarks?name=test_parse").json()
        assert bench["names"] == ["test_parse"]
        assert bench["results"][0]["stats"]["median"] == 0.01

    def correlations() -> dict[str, Any]:
        return {"computed_ms": 5, "results": [{"name": "cpu_percent", "effect_pct": 12.5}]}

    def advice() -> list[dict[str, Any]]:
        return [{"id": "a1", "title": "Scan less often", "evidence": []}]

    with _client(store, correlations=correlations, advice=advice) as client:
        assert client.get("/api/v1/correlations").json()["results"][0]["effect_pct"] == 12.5
        assert client.get("/api/v1/advice").json()["advice"][0]["id"] == "a1"

    def broken() -> list[dict[str, Any]]:
        raise RuntimeError("statistics failed")

    with _client(store, advice=broken) as client:
        failed = client.get("/api/v1/advice")
        assert failed.status_code == 503
        assert "statistics failed" not in failed.text


def test_annotations_for_chart_overlays(store: Store) -> None:
    now = _now()
    with _client(store) as client:
        window = client.get(f"/api/v1/annotations?start_ms={now - 90 * 60_000}&end_ms={now}").json()
        assert [s["scan_id"] for s in window["scans"]] == ["scan-new"]
        assert window["findings"] and all(f["scan_id"] == "scan-new" for f in window["findings"])
        assert [a["state"] for a in window["alerts"]] == ["firing"]
        wide = client.get(f"/api/v1/annotations?start_ms={now - 3 * HOUR}&end_ms={now}").json()
        assert [s["scan_id"] for s in wide["scans"]] == ["scan-old", "scan-new"]


def test_dashboard_or_a_not_built_page(store: Store, tmp_path: Path) -> None:
    empty = tmp_path / "no-build"
    empty.mkdir()
    with _client(store, static_dir=empty) as client:
        page = client.get("/")
        assert page.status_code == 200
        assert "not built" in page.text
        assert client.get("/assets/app.js").status_code == 404
    built = tmp_path / "build"
    (built / "assets").mkdir(parents=True)
    (built / "index.html").write_text("<!doctype html><title>secperf ui</title>")
    (built / "assets" / "app.js").write_text("console.log(1)")
    (built / "favicon.svg").write_text("<svg/>")
    with _client(store, static_dir=built) as client:
        assert "secperf ui" in client.get("/").text
        assert client.get("/assets/app.js").text == "console.log(1)"
        assert client.get("/favicon.svg").status_code == 200
        assert client.get("/assets/../index.html").status_code in (200, 404)
        assert client.get("/.env").status_code == 404


def test_no_api_answer_carries_a_secret(store: Store) -> None:
    """A fake AWS key found by the real secrets scanner: only its redacted preview leaves."""
    assert _secret_findings()
    # Findings keep no hash of a secret; were one kept, it would be this one.
    secret_hashes = {
        h for value in (AWS_KEY, AWS_SECRET) for h in value_hashes(b"web-test-salt", value)
    }
    sarif = (FIXTURES_DIR / "sarif" / "gitleaks.sarif").read_bytes()
    gitleaks_secrets = ["AKIAQX3EXAMPLE7TOKEN", "sk_live_4eC39HqLyjWDarjtT1zdp7dc"]
    assert all(s.encode() in sarif for s in gitleaks_secrets)
    now = _now()
    with _client(store) as client:
        upload = client.post(
            "/api/v1/ingest/sarif?target=leaky",
            content=sarif,
            headers={**AUTH, "Content-Type": "application/json"},
        )
        assert upload.status_code == 200
        scan_id = upload.json()["scan_id"]
        paths = [
            "/api/v1/overview",
            "/api/v1/findings",
            "/api/v1/findings?scan_id=scan-new",
            f"/api/v1/findings?scan_id={scan_id}",
            "/api/v1/findings?severity=info&limit=5000",
            "/api/v1/scans",
            "/api/v1/scans/scan-new",
            f"/api/v1/scans/{scan_id}",
            f"/api/v1/annotations?start_ms={now - 3 * HOUR}&end_ms={now + 1000}",
            "/api/v1/alerts",
            "/api/v1/baselines",
            "/metrics",
        ]
        bodies = {path: client.get(path).text for path in paths}
    secret_findings = [
        f
        for f in json.loads(bodies["/api/v1/findings?scan_id=scan-new"])["findings"]
        if f["scanner"] == "secrets"
    ]
    assert secret_findings and all("*" in (f["snippet"] or "") for f in secret_findings)
    for path, body in bodies.items():
        for value in [AWS_KEY, AWS_SECRET, *gitleaks_secrets, *secret_hashes]:
            assert value not in body, f"{path} leaks {value[:4]}..."
        assert "secret_hash" not in body, path


def test_error_where_is_the_full_location_of_the_field(store: Store) -> None:
    with _client(store) as client:
        now = _now()
        checks = [
            # Raised by the routes themselves, which name the bare parameter.
            (
                "query.end_ms",
                client.get(
                    "/api/v1/metrics/query",
                    params={"name": "cpu_percent", "start_ms": 10, "end_ms": 5},
                ),
            ),
            ("query.end_ms", client.get(f"/api/v1/annotations?start_ms={now}&end_ms={now - HOUR}")),
            (
                "path.fingerprint",
                client.post(
                    f"/api/v1/findings/{'f' * 32}/triage",
                    json={"state": "false_positive", "reason": "test data", "author": "ana"},
                    headers=AUTH,
                ),
            ),
            # Found by FastAPI's validation: already located, and must stay so.
            ("query.start_ms", client.get("/api/v1/annotations?start_ms=-1")),
        ]
        for where, response in checks:
            assert response.status_code in (404, 422), response.text
            assert response.json()["error"]["where"] == where, response.text
        # A body that is not JSON: its location is the body, not "body[17]".
        broken = client.post(
            f"/api/v1/findings/{2:032x}/triage",
            content=b'{"state": "open",,}',
            headers={**AUTH, "Content-Type": "application/json"},
        )
        assert broken.status_code == 422, broken.text
        error = broken.json()["error"]
        assert error["where"] == "body"
        assert error["message"].startswith("body: invalid JSON at character 17")
