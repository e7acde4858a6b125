"""A URL's ``user:password`` authenticates, as curl and Prometheus' basic_auth do.

urllib alone reads ``user:password@host`` as a host and a port, so a notifier,
a scrape target or an OSV mirror configured that way failed. Each client is
run here against a real server on 127.0.0.1 that answers only with the right
``Authorization: Basic`` header, and that records the path it was asked for.
"""

from __future__ import annotations

import asyncio
import base64
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from secperf.alerts.grouping import Notification
from secperf.alerts.notifiers import WebhookNotifier
from secperf.events import now_ms
from secperf.model import Alert, AlertState, MetricKind, Severity, labels_fingerprint
from secperf.perf.collectors.prometheus import PrometheusCollector, ScrapeTarget
from secperf.security.osv import OsvClient
from secperf.url_auth import without_credentials

USER, PASSWORD = "svc", "p@ss:w0rd"
#: As written in a URL: "@" and ":" percent-encoded, as curl expects them too.
USERINFO = "svc:p%40ss%3Aw0rd"
EXPECTED = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()


class Guarded:
    """A server that answers 401 unless the request carries the expected credentials."""

    def __init__(self, body: bytes, content_type: str) -> None:
        self.seen: list[tuple[str, str | None]] = []
        seen = self.seen

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                auth = self.headers.get("Authorization")
                seen.append((self.path, auth))
                ok = auth == EXPECTED
                self.send_response(200 if ok else 401)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body) if ok else 0))
                self.end_headers()
                if ok:
                    self.wfile.write(body)

            do_GET = do_POST = _answer

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.netloc = f"127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def guarded_json() -> Iterator[Guarded]:
    server = Guarded(json.dumps({"results": [{}]}).encode(), "application/json")
    yield server
    server.close()


@pytest.fixture
def guarded_metrics() -> Iterator[Guarded]:
    server = Guarded(b"# TYPE jobs_total counter\njobs_total 7\n", "text/plain; version=0.0.4")
    yield server
    server.close()


def test_credentials_leave_the_url_for_a_basic_header() -> None:
    url, header = without_credentials(f"https://{USERINFO}@hooks.example.com:8443/x?y=1")
    assert url == "https://hooks.example.com:8443/x?y=1"
    assert header == {"Authorization": EXPECTED}
    assert without_credentials("https://hooks.example.com/x") == (
        "https://hooks.example.com/x",
        {},
    )


def notification() -> Notification:
    labels = {"alertname": "HostHighCpu", "host": "a", "severity": "high"}
    alert = Alert(
        fingerprint=labels_fingerprint(labels),
        rule="HostHighCpu",
        state=AlertState.FIRING,
        severity=Severity.HIGH,
        kind=MetricKind.PERFORMANCE,
        labels=labels,
        value=95.0,
        active_since_ms=1_700_000_000_000,
        fired_at_ms=1_700_000_000_000,
        updated_ms=1_700_000_000_000,
    )
    return Notification("secperf", "g", {"alertname": "HostHighCpu"}, (alert,), alert.updated_ms)


def test_a_webhook_with_credentials_in_its_url_authenticates(guarded_json: Guarded) -> None:
    notifier = WebhookNotifier(f"http://{USERINFO}@{guarded_json.netloc}/hook?team=db")
    asyncio.run(notifier.send(notification()))
    assert guarded_json.seen == [("/hook?team=db", EXPECTED)]


def test_a_configured_authorization_header_wins_over_the_url(guarded_json: Guarded) -> None:
    notifier = WebhookNotifier(
        f"http://nobody:wrong@{guarded_json.netloc}/hook", headers={"Authorization": EXPECTED}
    )
    asyncio.run(notifier.send(notification()))
    assert guarded_json.seen == [("/hook", EXPECTED)]


def test_a_scrape_target_with_credentials_in_its_url_is_scraped(guarded_metrics: Guarded) -> None:
    url = f"http://{USERINFO}@{guarded_metrics.netloc}/metrics"
    collector = PrometheusCollector([ScrapeTarget(url, job="jobs")])
    samples = collector.collect(now_ms())
    assert collector.status[url].up, collector.status[url].last_error
    assert {(s.name, s.value) for s in samples if s.name == "jobs_total"} == {("jobs_total", 7.0)}
    assert guarded_metrics.seen == [("/metrics", EXPECTED)]


def test_an_osv_mirror_with_credentials_in_its_url_is_asked(guarded_json: Guarded) -> None:
    client = OsvClient(f"http://{USERINFO}@{guarded_json.netloc}", timeout=5)
    client.query_batch([("requests", "2.19.0")])
    assert guarded_json.seen == [("/v1/querybatch", EXPECTED)]
