"""Notifiers against real receivers: a local webhook server and a real Alertmanager."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from secperf.alerts import AlertEngine, GroupSettings, rule_from_dict
from secperf.alerts.grouping import Notification
from secperf.alerts.notifiers import (
    AlertmanagerNotifier,
    LogNotifier,
    NotifierRunner,
    WebhookNotifier,
    notifier_from_config,
)
from secperf.bus.memory import AsyncEventBus
from secperf.config import NotifierConfig
from secperf.model import Alert, AlertState, MetricKind, Sample, Severity, labels_fingerprint
from secperf.store import Store
from support.alertmanager import alertmanager, get_json  # noqa: F401
from support.services import free_port

T0 = 1_700_000_000_000


class Receiver:
    """A webhook receiver of the test's own: records each JSON body it gets."""

    def __init__(self, fail_first: int = 0, status: int = 500) -> None:
        self.bodies: list[Any] = []
        self.attempts = 0
        self.fail_first = fail_first
        self.status = status
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                receiver.attempts += 1
                if receiver.attempts <= receiver.fail_first:
                    self.send_response(receiver.status)
                    self.end_headers()
                    return
                receiver.bodies.append(json.loads(body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def make_alert(host: str, state: AlertState = AlertState.FIRING) -> Alert:
    labels = {"alertname": "HostHighCpu", "host": host, "severity": "high"}
    return Alert(
        fingerprint=labels_fingerprint(labels),
        rule="HostHighCpu",
        state=state,
        severity=Severity.HIGH,
        kind=MetricKind.PERFORMANCE,
        labels=labels,
        annotations={"summary": f"CPU 95 % on {host}", "runbook_url": "https://rb/cpu"},
        value=95.0,
        active_since_ms=T0,
        fired_at_ms=T0 + 300_000,
        resolved_at_ms=T0 + 900_000 if state is AlertState.RESOLVED else None,
        updated_ms=T0 + 300_000,
    )


def notification(*alerts: Alert) -> Notification:
    return Notification(
        "secperf", '{}:{alertname="HostHighCpu"}', {"alertname": "HostHighCpu"}, alerts, T0
    )


def test_webhook_sends_the_alertmanager_v4_payload() -> None:
    async def main(url: str) -> NotifierRunner:
        runner = NotifierRunner(WebhookNotifier(url, external_url="http://secperf:8765"))
        runner.start()
        runner.submit(notification(make_alert("a"), make_alert("b", AlertState.RESOLVED)))
        await runner.wait_idle()
        await runner.close()
        return runner

    with Receiver() as receiver:
        runner = asyncio.run(main(receiver.url))
    assert runner.stats().sent == 1
    (body,) = receiver.bodies
    assert set(body) == {
        "version",
        "groupKey",
        "truncatedAlerts",
        "status",
        "receiver",
        "groupLabels",
        "commonLabels",
        "commonAnnotations",
        "externalURL",
        "alerts",
    }
    assert body["version"] == "4"
    assert body["groupKey"] == '{}:{alertname="HostHighCpu"}'
    assert body["status"] == "firing"
    assert body["receiver"] == "secperf"
    assert body["groupLabels"] == {"alertname": "HostHighCpu"}
    assert body["commonLabels"] == {"alertname": "HostHighCpu", "severity": "high"}
    assert body["commonAnnotations"] == {"runbook_url": "https://rb/cpu"}
    assert body["externalURL"] == "http://secperf:8765"
    firing, resolved = body["alerts"]
    assert set(firing) == {
        "status",
        "labels",
        "annotations",
        "startsAt",
        "endsAt",
        "generatorURL",
        "fingerprint",
    }
    assert firing["status"] == "firing"
    assert firing["startsAt"] == "2023-11-14T22:18:20.000Z"
    assert firing["endsAt"] == "0001-01-01T00:00:00Z"
    assert firing["generatorURL"].startswith("http://secperf:8765/")
    assert firing["fingerprint"] == make_alert("a").fingerprint
    assert resolved["status"] == "resolved"
    assert resolved["endsAt"] == "2023-11-14T22:28:20.000Z"


def test_webhook_retries_with_backoff_then_succeeds() -> None:
    async def main(url: str) -> NotifierRunner:
        runner = NotifierRunner(WebhookNotifier(url), backoff_s=0.01, max_attempts=4)
        runner.start()
        runner.submit(notification(make_alert("a")))
        await runner.wait_idle()
        await runner.close()
        return runner

    with Receiver(fail_first=2) as receiver:
        runner = asyncio.run(main(receiver.url))
    stats = runner.stats()
    assert (stats.sent, stats.retries, stats.failed) == (1, 2, 0)
    assert receiver.attempts == 3 and len(receiver.bodies) == 1


def test_refusing_receiver_is_not_retried_and_dead_one_is_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def main(urls: list[str]) -> list[NotifierRunner]:
        runners = [
            NotifierRunner(WebhookNotifier(u, timeout_s=1), backoff_s=0.01, max_attempts=3)
            for u in urls
        ]
        for r in runners:
            r.start()
            r.submit(notification(make_alert("a")))
        for r in runners:
            await r.wait_idle()
            await r.close()
        return runners

    dead = f"http://127.0.0.1:{free_port()}/hook"
    with Receiver(fail_first=10, status=400) as refusing, caplog.at_level(logging.WARNING):
        bad_request, down = asyncio.run(main([refusing.url, dead]))
    assert (bad_request.stats().failed, bad_request.stats().retries) == (1, 0)
    assert refusing.attempts == 1
    assert (down.stats().failed, down.stats().retries, down.stats().sent) == (1, 2, 0)
    assert "giving up" in caplog.text


def test_log_notifier_and_notifiers_from_config() -> None:
    log_notifier = LogNotifier()
    asyncio.run(log_notifier.send(notification(make_alert("a"))))
    assert log_notifier.lines == ["[firing] HostHighCpu (high) CPU 95 % on a"]
    built = notifier_from_config(
        NotifierConfig(kind="alertmanager", url="http://127.0.0.1:9093"), "http://x"
    )
    assert isinstance(built, AlertmanagerNotifier)
    assert built.url == "http://127.0.0.1:9093/api/v2/alerts"
    webhook = notifier_from_config(NotifierConfig(kind="webhook", url="http://h/x"), "http://x")
    assert isinstance(webhook, WebhookNotifier)


def test_engine_to_webhook_end_to_end(tmp_path: Path) -> None:
    """From a stored sample to the receiver's payload, through the engine and grouping."""

    async def main(url: str) -> None:
        store = Store.open(tmp_path / "e.db")
        bus = AsyncEventBus()
        clock = [T0]
        engine = AlertEngine(
            store,
            bus,
            [
                rule_from_dict(
                    {
                        "name": "HostHighCpu",
                        "metric": "cpu_percent",
                        "aggregation": "last",
                        "threshold": 90.0,
                        "severity": "high",
                    }
                )
            ],
            notifiers=[WebhookNotifier(url)],
            group_settings=GroupSettings(group_wait_ms=0, group_interval_ms=60_000),
            clock=lambda: clock[0],
            min_firing_ms=0,
            persist_transitions=True,
        )
        await engine.start(run_loop=False)
        store.write_samples([Sample("cpu_percent", {"host": "a"}, T0, 97.0)], now_ms=T0)
        await engine.evaluate()
        await engine.wait_notifications()
        clock[0] += 60_000
        store.write_samples([Sample("cpu_percent", {"host": "a"}, clock[0], 5.0)], now_ms=clock[0])
        await engine.evaluate()
        await engine.wait_notifications()
        await engine.stop()
        await bus.close()
        # Without a StoreWriter the engine stored the transitions itself.
        fp = engine.alerts()[0].fingerprint
        assert [t.to_state for t in store.alert_history(fp)] == [
            AlertState.FIRING,
            AlertState.RESOLVED,
        ]
        store.close()

    with Receiver() as receiver:
        asyncio.run(main(receiver.url))
    assert [b["status"] for b in receiver.bodies] == ["firing", "resolved"]
    assert receiver.bodies[0]["alerts"][0]["labels"]["host"] == "a"
    assert receiver.bodies[0]["alerts"][0]["annotations"]["summary"].startswith(
        "HostHighCpu: cpu_percent last 97 > 90 — "
    )


def test_real_alertmanager_receives_the_alert(alertmanager: str) -> None:  # noqa: F811
    async def main() -> NotifierRunner:
        notifier = AlertmanagerNotifier(alertmanager, timeout_s=5)
        runner = NotifierRunner(notifier, backoff_s=0.05)
        runner.start()
        firing = make_alert("a")
        runner.submit(Notification("secperf", "{}:{}", {}, (firing,), T0))
        await runner.wait_idle()
        await runner.close()
        return runner

    runner = asyncio.run(main())
    assert runner.stats().sent == 1, runner.stats()
    alerts = get_json(f"{alertmanager}/api/v2/alerts")
    assert len(alerts) == 1
    got = alerts[0]
    assert got["labels"] == {"alertname": "HostHighCpu", "host": "a", "severity": "high"}
    assert got["annotations"]["summary"] == "CPU 95 % on a"
    assert got["status"]["state"] == "active"
    assert got["startsAt"].startswith("2023-11-14T22:18:20")
    assert got["generatorURL"].endswith(make_alert("a").fingerprint)


def test_engine_pushes_to_real_alertmanager_and_resolves(
    alertmanager: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    async def main() -> list[dict[str, Any]]:
        store = Store.open(tmp_path / "am.db")
        bus = AsyncEventBus()
        import time

        now = int(time.time() * 1000) - 5000  # the resolution must lie in the past
        clock = [now]
        engine = AlertEngine(
            store,
            bus,
            [
                rule_from_dict(
                    {
                        "name": "Disk",
                        "metric": "disk_write_bytes",
                        "aggregation": "last",
                        "threshold": 1e6,
                        "severity": "critical",
                    }
                )
            ],
            notifiers=[AlertmanagerNotifier(alertmanager, timeout_s=5)],
            clock=lambda: clock[0],
            min_firing_ms=0,
        )
        await engine.start(run_loop=False)
        store.write_samples([Sample("disk_write_bytes", {"host": "z"}, now, 5e6)], now_ms=now)
        await engine.evaluate()
        await engine.wait_notifications()
        active = get_json(f"{alertmanager}/api/v2/alerts?active=true")
        clock[0] += 1000
        store.write_samples(
            [Sample("disk_write_bytes", {"host": "z"}, clock[0], 1.0)], now_ms=clock[0]
        )
        await engine.evaluate()
        await engine.wait_notifications()
        await engine.stop()
        await bus.close()
        store.close()
        return active  # type: ignore[no-any-return]

    active = asyncio.run(main())
    assert [a["labels"]["alertname"] for a in active] == ["Disk"]
    assert active[0]["labels"]["severity"] == "critical"
    # The resolution was pushed with an end time: Alertmanager no longer lists it as active.
    assert get_json(f"{alertmanager}/api/v2/alerts?active=true&silenced=false") == []
