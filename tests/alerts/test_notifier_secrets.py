"""A notifier's failures never log its receiver's URL: only the notifier and scheme://host[:port].

A chat webhook's secret is its path (``https://hooks.slack.com/services/T000/
B000/XXXX``), other receivers take a password or a ``?token=``. The notifiers
are built from a real config file and deliver to real HTTP servers on
127.0.0.1 (answering 500 or 400, or not listening); each failure is logged by
the notifier runner as secperf logs it, and none of the secrets may appear
while the log still says which notifier, which host and what went wrong.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from secperf.alerts.grouping import Notification
from secperf.alerts.notifiers import (
    NotifierRunner,
    NotifyError,
    PermanentNotifyError,
    WebhookNotifier,
    notifier_from_config,
)
from secperf.config import load_config
from secperf.model import Alert, AlertState, MetricKind, Severity, labels_fingerprint
from support.services import free_port

T0 = 1_700_000_000_000
PATH_SECRET = "XXXXSECRET"
SECRETS = (PATH_SECRET, "QueryTok3nABC", "hookPw9", "T000", "B000")


class Receiver:
    """A local HTTP server answering every POST with ``status``; records the paths asked."""

    def __init__(self, status: int) -> None:
        self.paths: list[str] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.paths.append(self.path)
                self.send_response(status)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def failing() -> Iterator[Receiver]:
    receiver = Receiver(500)
    yield receiver
    receiver.close()


@pytest.fixture
def refusing() -> Iterator[Receiver]:
    receiver = Receiver(400)
    yield receiver
    receiver.close()


def notification() -> Notification:
    labels = {"alertname": "HostHighCpu", "host": "a", "severity": "high"}
    alert = Alert(
        fingerprint=labels_fingerprint(labels),
        rule="HostHighCpu",
        state=AlertState.FIRING,
        severity=Severity.HIGH,
        kind=MetricKind.PERFORMANCE,
        labels=labels,
        annotations={"summary": "CPU 95 % on a"},
        value=95.0,
        active_since_ms=T0,
        fired_at_ms=T0,
        updated_ms=T0,
    )
    return Notification("secperf", '{}:{alertname="HostHighCpu"}', {}, (alert,), T0)


def deliver_from_config(tmp_path: Path, urls: dict[str, str]) -> list[NotifierRunner]:
    """Build the notifiers of a real config file (kind -> url) and send each one notification."""
    text = "".join(
        f'[[alerts.notifiers]]\nkind = "{kind}"\nurl = "{url}"\ntimeout = "2s"\n\n'
        for kind, url in urls.items()
    )
    (tmp_path / "secperf.toml").write_text(text)
    config = load_config(project_dir=tmp_path).config

    async def main() -> list[NotifierRunner]:
        runners = [
            NotifierRunner(notifier_from_config(n, "http://secperf:8765"), backoff_s=0.01)
            for n in config.alerts.notifiers
        ]
        for runner in runners:
            runner.start()
            runner.submit(notification())
        for runner in runners:
            await runner.wait_idle()
            await runner.close()
        return runners

    return asyncio.run(main())


def assert_no_secret(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text, (secret, text)


def test_failed_deliveries_log_the_notifier_and_host_only(
    tmp_path: Path, failing: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    webhook = f"{failing.base}/services/T000/B000/{PATH_SECRET}?token=QueryTok3nABC"
    # An Alertmanager behind a proxy whose path is the secret.
    alertmanager = f"{failing.base}/am/{PATH_SECRET}"
    with caplog.at_level(logging.DEBUG):
        runners = deliver_from_config(tmp_path, {"webhook": webhook, "alertmanager": alertmanager})
    # The secret URLs were used as written: the receiver saw them.
    assert f"/services/T000/B000/{PATH_SECRET}?token=QueryTok3nABC" in failing.paths
    assert f"/am/{PATH_SECRET}/api/v2/alerts" in failing.paths
    assert [r.stats().failed for r in runners] == [1, 1]
    assert_no_secret(caplog.text)
    messages = [r.getMessage() for r in caplog.records]
    assert f"notifier webhook: giving up on {notification().group_key} after 4 attempts: " in (
        "\n".join(messages)
    )
    assert f"POST {failing.base}/…: HTTP 500" in caplog.text
    assert any(
        m.startswith("notifier alertmanager: attempt 1 failed")
        and f"POST {failing.base}/…: HTTP 500" in m
        for m in messages
    ), messages


def test_a_refusing_receiver_is_logged_without_its_url(
    tmp_path: Path, refusing: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    webhook = f"{refusing.base}/services/T000/B000/{PATH_SECRET}?token=QueryTok3nABC"
    with caplog.at_level(logging.DEBUG):
        (runner,) = deliver_from_config(tmp_path, {"webhook": webhook})
    assert runner.stats().failed == 1 and len(refusing.paths) == 1
    assert_no_secret(caplog.text)
    assert (
        f"notifier webhook: {notification().group_key} refused: POST {refusing.base}/…: HTTP 400"
    ) in caplog.text


def test_an_unreachable_receiver_is_logged_without_its_url(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    base = f"http://127.0.0.1:{free_port()}"
    webhook = f"{base}/services/T000/B000/{PATH_SECRET}?token=QueryTok3nABC"
    with caplog.at_level(logging.DEBUG):
        (runner,) = deliver_from_config(tmp_path, {"webhook": webhook})
    assert runner.stats().failed == 1
    assert_no_secret(caplog.text)
    assert f"POST {base}/…: <urlopen error [Errno 111] Connection refused>" in caplog.text


def test_a_url_with_a_password_is_logged_without_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The password goes out as Basic authentication; a failure never shows it."""
    base = f"http://127.0.0.1:{free_port()}"
    webhook = (
        f"http://hook:hookPw9@{base.removeprefix('http://')}/services/T000/B000/{PATH_SECRET}"
        "?token=QueryTok3nABC"
    )
    with caplog.at_level(logging.DEBUG):
        (runner,) = deliver_from_config(tmp_path, {"webhook": webhook})
    assert runner.stats().failed == 1
    assert_no_secret(caplog.text)
    assert f"POST {base}/…: <urlopen error [Errno 111] Connection refused>" in caplog.text


def test_errors_raised_by_the_notifiers_hold_no_secret(failing: Receiver) -> None:
    """What a notifier raises (and a caller other than the runner might show)."""
    not_http = WebhookNotifier(f"ftp://hooks.example.com/services/T000/B000/{PATH_SECRET}")
    with pytest.raises(PermanentNotifyError) as refused:
        asyncio.run(not_http.send(notification()))
    assert str(refused.value) == "not an http(s) URL: 'ftp://hooks.example.com/…'"
    to_failing = WebhookNotifier(f"{failing.base}/services/T000/B000/{PATH_SECRET}?token=x")
    with pytest.raises(NotifyError) as failed:
        asyncio.run(to_failing.send(notification()))
    assert str(failed.value) == f"POST {failing.base}/…: HTTP 500"
