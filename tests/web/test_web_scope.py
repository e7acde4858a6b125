"""The API's target and host filters over a real store (SQLite and PostgreSQL).

The store holds two targets scanned from two hosts (``support.two_targets``).
Every GET path of the OpenAPI spec that takes ``target`` or ``host`` is
exercised, so an endpoint added with the parameter but without the filter
fails here, as does one whose data this store cannot tell apart (it must be
listed in ``NOT_OBSERVABLE`` with a reason).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from secperf.bus import AsyncEventBus
from secperf.events import AlertChanged, MetricsRecorded, ScanStarted
from secperf.model import Alert, AlertState, MetricKind, Sample, Severity
from secperf.store import Store
from secperf.web import create_app
from secperf.web.providers import analysis_providers
from support.prometheus import RunningApp, running_app
from support.two_targets import (
    ALPHA,
    BETA,
    HOST_ONE,
    HOST_TWO,
    HOUR,
    MARKERS,
    fill_two_targets,
    scan,
)

STREAM = "/api/v1/stream"
#: Required parameters of some paths, per scope parameter under test.
REQUIRED: dict[tuple[str, str], dict[str, str]] = {
    ("/api/v1/metrics/query", "target"): {"name": "vulnerability_count", "start_ms": "0"},
    ("/api/v1/metrics/query", "host"): {"name": "cpu_percent"},
}
#: Filters whose answers carry no name of any scope (nothing to tell apart here).
NOT_OBSERVABLE = {
    # Both targets have the same security series: the names are the same.
    ("/api/v1/metrics/names", "target"),
    # One plan for the target and host asked for: the plan names neither.
    ("/api/v1/schedule", "target"),
    ("/api/v1/schedule", "host"),
}
#: Filters that refuse a scope naming nothing stored (404 listing the known ones):
#: a compliance report of nothing would read as a clean one.
REFUSES_UNKNOWN = {("/api/v1/report", "target")}
PAIRS = {"target": (ALPHA, BETA), "host": (HOST_ONE, HOST_TWO)}


def _now() -> int:
    return time.time_ns() // 1_000_000


def _correlations() -> dict[str, Any]:
    """A correlation run's document: one series per host and per target."""
    return {
        "computed_ms": _now(),
        "results": [
            {"name": "cpu_percent", "labels": {"host": HOST_ONE}, "effect_pct": 12.0},
            {"name": "cpu_percent", "labels": {"host": HOST_TWO}, "effect_pct": 3.0},
            {"name": "vulnerability_count", "labels": {"host": HOST_ONE, "target": ALPHA}},
            {"name": "vulnerability_count", "labels": {"host": HOST_TWO, "target": BETA}},
        ],
    }


@pytest.fixture()
def store(store_url: str) -> Iterator[Store]:
    with Store.open(store_url) as opened:
        fill_two_targets(opened, _now())
        yield opened


def _client(store: Store) -> TestClient:
    providers = {**analysis_providers(store), "correlations": _correlations}
    return TestClient(create_app(store, AsyncEventBus(), **providers))


def _scoped_paths(spec: dict[str, Any]) -> dict[str, set[str]]:
    """GET paths of the spec and which of ``target``/``host`` each takes."""
    found: dict[str, set[str]] = {}
    for path, operations in spec["paths"].items():
        names = {p["name"] for p in operations.get("get", {}).get("parameters", [])}
        if names & {"target", "host"} and "{" not in path:
            found[path] = names & {"target", "host"}
    return found


def _text(path: str, document: Any) -> str:
    """The answer as text, less the overview's list of every host (the host picker's)."""
    if path == "/api/v1/overview":
        document = {**document, "performance": {**document["performance"], "hosts": None}}
    return json.dumps(document)


def _leaks(text: str, scope: str) -> bool:
    return any(marker in text for marker in MARKERS[scope])


def test_every_get_path_that_takes_a_scope_keeps_to_it(store: Store) -> None:
    with _client(store) as client:
        scoped = _scoped_paths(client.get("/openapi.json").json())
        assert {"/api/v1/overview", "/api/v1/findings", "/api/v1/alerts", STREAM} <= set(scoped)
        assert {"/api/v1/fleet/targets", "/api/v1/fleet/hosts", "/api/v1/gate-runs"} <= set(scoped)
        for path, params in scoped.items():
            if path == STREAM:
                continue  # a stream never ends: see the stream test below
            for param in sorted(params):
                extra = REQUIRED.get((path, param), {})
                unfiltered = client.get(path, params=extra)
                assert unfiltered.status_code == 200, (path, unfiltered.text)
                observed = False
                for wanted, other in (PAIRS[param], PAIRS[param][::-1]):
                    observed |= _leaks(_text(path, unfiltered.json()), other)
                    answer = client.get(path, params={**extra, param: wanted})
                    assert answer.status_code == 200, (path, param, answer.text)
                    assert not _leaks(_text(path, answer.json()), other), (path, param, wanted)
                unknown = client.get(path, params={**extra, param: "no-such-scope"})
                if (path, param) in REFUSES_UNKNOWN:
                    assert unknown.status_code == 404, (path, param, unknown.text)
                    assert unknown.json()["error"]["where"] == f"query.{param}"
                else:
                    assert unknown.status_code == 200, (path, param, unknown.text)
                    text = _text(path, unknown.json())
                    assert not any(_leaks(text, s) for s in PAIRS[param]), (path, param)
                assert observed or (path, param) in NOT_OBSERVABLE, (
                    f"{path}?{param}= : this store cannot show whether it filters"
                )


def test_scope_parameters_are_validated_alike(store: Store) -> None:
    with _client(store) as client:
        scoped = _scoped_paths(client.get("/openapi.json").json())
        for path, params in scoped.items():
            for param in params:
                extra = REQUIRED.get((path, param), {})
                for bad in ("", "x" * 256):
                    answer = client.get(path, params={**extra, param: bad})
                    assert answer.status_code == 422, (path, param, answer.status_code)
                    assert answer.json()["error"]["where"] == f"query.{param}"


def test_the_overview_names_its_target_and_an_import_does_not_switch_it(store: Store) -> None:
    now = _now()
    with _client(store) as client:
        shown = client.get("/api/v1/overview").json()
        assert shown["target"] == BETA  # the most recently scanned
        assert shown["security"]["last_scan"]["target"] == BETA
        assert [t["scan_id"] for t in shown["security"]["trend"]] == [f"{BETA}-scan-1"]
        # Another tool's results for a third project, newer than every scan.
        scan(
            store,
            "gamma-import",
            "gamma-project",
            HOST_ONE,
            now,
            [Severity.CRITICAL] * 3,
            kind="import",
        )
        after = client.get("/api/v1/overview").json()
        assert after["target"] == BETA
        assert after["security"]["severity_counts"]["critical"] == 0
        assert after["security"]["severity_counts"]["low"] == 1
        # Asked for, the import's target shows its own numbers, and only them.
        gamma = client.get("/api/v1/overview", params={"target": "gamma-project"}).json()
        assert gamma["target"] == "gamma-project"
        assert gamma["security"]["severity_counts"]["critical"] == 3
        assert gamma["security"]["last_scan"]["kind"] == "import"
        alpha = client.get("/api/v1/overview", params={"target": ALPHA}).json()["security"]
        assert [t["scan_id"] for t in alpha["trend"]] == [f"{ALPHA}-scan-1", f"{ALPHA}-scan-2"]
        assert alpha["severity_counts"]["high"] == 1 and alpha["severity_counts"]["medium"] == 1


def test_a_store_of_imports_only_shows_the_newest_imports_target(tmp_path: Any) -> None:
    with Store.open(tmp_path / "imports.db") as opened, _client(opened) as client:
        assert client.get("/api/v1/overview").json()["target"] is None
        now = _now()
        scan(opened, "old-import", "old-project", HOST_ONE, now - HOUR, [], kind="import")
        scan(opened, "new-import", "new-project", HOST_ONE, now, [Severity.LOW], kind="import")
        shown = client.get("/api/v1/overview").json()
        assert shown["target"] == "new-project"
        assert shown["security"]["last_scan"]["scan_id"] == "new-import"


def test_silenced_alerts_are_counted_apart(store: Store) -> None:
    with _client(store) as client:
        overview = client.get("/api/v1/overview").json()
        firing = {a["fingerprint"] for a in overview["alerts"]["firing"]}
        assert firing == {"a1" * 8, "b2" * 8}
        assert overview["alerts"]["silenced"] == 1
        listed = client.get("/api/v1/alerts").json()
        assert listed["counts"] == {"firing": 2, "silenced": 1}
        # The list itself still shows the silenced alert, marked.
        assert {a["fingerprint"]: a["silenced"] for a in listed["alerts"]}["c3" * 8] is True
        alpha = client.get("/api/v1/alerts", params={"target": ALPHA}).json()["counts"]
        assert alpha == {"firing": 1, "silenced": 1}
        only_firing = client.get("/api/v1/alerts", params={"state": "firing", "host": HOST_TWO})
        assert only_firing.json()["counts"] == {"firing": 1, "silenced": 0}


def test_findings_of_a_target_and_of_another_targets_scan(store: Store) -> None:
    with _client(store) as client:
        alpha = client.get("/api/v1/findings", params={"target": ALPHA}).json()
        assert alpha["scan_id"] == f"{ALPHA}-scan-2" and len(alpha["findings"]) == 2
        crossed = client.get(
            "/api/v1/findings", params={"target": ALPHA, "scan_id": f"{BETA}-scan-1"}
        ).json()
        assert crossed["findings"] == [] and crossed["scan_id"] is None


def test_advice_says_no_data_yet_on_an_empty_store(tmp_path: Any) -> None:
    with Store.open(tmp_path / "empty.db") as empty, _client(empty) as client:
        document = client.get("/api/v1/advice").json()
        assert document["advice"] == [] and document["status"] == "no_data"
        assert document["message"].startswith("no data yet")
        assert "nothing looks wrong" not in document["message"]


def test_advice_of_a_target_judges_that_targets_scans(store: Store) -> None:
    with _client(store) as client:
        beta = client.get("/api/v1/advice", params={"target": BETA}).json()
        assert beta["status"] == "ok"
        assert "coverage" in {a["id"] for a in beta["advice"]}  # 40 % scanned
        alpha = client.get("/api/v1/advice", params={"target": ALPHA}).json()
        assert "coverage" not in {a["id"] for a in alpha["advice"]}


# --------------------------------------------------------------------------- the stream


class _Events:
    """The event names and data of a stream, one frame at a time."""

    def __init__(self, response: httpx.Response) -> None:
        self.lines = response.iter_lines()

    def next(self) -> tuple[str, dict[str, Any]]:
        name, data = "", ""
        for line in self.lines:
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                data = line[6:]
            elif line == "" and data:
                return name, json.loads(data)["event"]
        raise AssertionError("the stream ended")


def _alert_event(host: str, target: str | None = None) -> AlertChanged:
    labels = {"host": host, **({"target": target} if target else {})}
    alert = Alert(
        fingerprint=f"{host}-alert",
        rule="cpu_high",
        state=AlertState.FIRING,
        severity=Severity.HIGH,
        kind=MetricKind.PERFORMANCE,
        labels=labels,
    )
    return AlertChanged(alert=alert, previous_state=AlertState.PENDING)


def _wait_for_clients(server: RunningApp, count: int) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if f"secperf_stream_clients {float(count)}" in httpx.get(f"{server.url}/metrics").text:
            return
        time.sleep(0.02)
    raise AssertionError(f"{count} stream client(s) never connected")


def test_the_stream_keeps_to_its_target_and_host(tmp_path: Any) -> None:
    with Store.open(tmp_path / "s.db") as opened:
        bus = AsyncEventBus()
        app = create_app(opened, bus, heartbeat_s=5, stream_metrics_per_second=1000)
        with running_app(app) as server, httpx.Client(timeout=httpx.Timeout(15.0)) as client:
            url = f"{server.url}{STREAM}"
            with (
                client.stream("GET", url, params={"target": ALPHA}) as by_target,
                client.stream("GET", url, params={"host": HOST_ONE}) as by_host,
            ):
                _wait_for_clients(server, 2)
                for event in (
                    ScanStarted(scan_id="b-1", target=BETA),
                    _alert_event(HOST_TWO, BETA),
                    MetricsRecorded(
                        samples=(
                            Sample("cpu_percent", {"host": HOST_TWO}, 1, 1.0),
                            Sample("cpu_percent", {"host": HOST_ONE}, 1, 2.0),
                        )
                    ),
                    ScanStarted(scan_id="a-1", target=ALPHA),
                    _alert_event(HOST_ONE, ALPHA),
                ):
                    server.call(bus.publish(event))
                target_events = _Events(by_target)
                # Beta's scan and alert, and the samples without a target, never come.
                name, data = target_events.next()
                assert (name, data["scan_id"]) == ("ScanStarted", "a-1")
                name, data = target_events.next()
                assert name == "AlertChanged" and data["alert"]["labels"]["target"] == ALPHA
                host_events = _Events(by_host)
                # Scans are about a target, not a host: both pass; host-two's alert does not.
                seen = [host_events.next() for _ in range(4)]
                assert [n for n, _ in seen] == [
                    "ScanStarted",
                    "MetricsRecorded",
                    "ScanStarted",
                    "AlertChanged",
                ]
                samples = seen[1][1]["samples"]
                assert [s["labels"]["host"] for s in samples] == [HOST_ONE]
                assert seen[3][1]["alert"]["labels"]["host"] == HOST_ONE
