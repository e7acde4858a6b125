"""A scrape target's URL may carry a password or a ``?token=``: no log, error or table shows them.

Real targets on 127.0.0.1 (the exposition server, a port nothing listens on)
and the real ``secperf monitor`` command line on a real config file. Each
failure still names the target (job, scheme, host, path, the parameters'
names) and what went wrong.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from secperf.config.units import MASK
from secperf.events import now_ms
from secperf.perf.collectors.prometheus import PrometheusCollector, ScrapeTarget
from support.cli import run_cli
from support.exporters import exposition_server
from support.services import free_port

__all__ = ["exposition_server"]  # a fixture used below

SECRETS = ("PromTok7x", "PromPw9")


def assert_no_secret(*texts: str | None) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in (text or ""), (secret, text)


def test_a_failed_scrape_logs_and_keeps_the_url_masked(
    exposition_server: str, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"{exposition_server}/500?token=PromTok7x"
    collector = PrometheusCollector([ScrapeTarget(url, job="api")])
    with caplog.at_level(logging.WARNING):
        collector.collect(now_ms())
    status = collector.status[url]
    assert not status.up and status.last_error == "HTTP 404 Not Found"
    assert_no_secret(caplog.text, status.last_error)
    assert (
        f"scrape of {exposition_server}/500?token={MASK} (job api) failed: HTTP 404 Not Found"
    ) in caplog.text


def test_a_url_with_a_password_fails_without_showing_it(caplog: pytest.LogCaptureFixture) -> None:
    """The password goes out as Basic authentication; nothing listens, and no log shows it."""
    port = free_port()
    url = f"http://scrape:PromPw9@127.0.0.1:{port}/metrics?token=PromTok7x"
    collector = PrometheusCollector([ScrapeTarget(url, job="api")])
    with caplog.at_level(logging.WARNING):
        collector.collect(now_ms())
    error = collector.status[url].last_error
    assert_no_secret(caplog.text, error, collector.last_error)
    assert error is not None and "Connection refused" in error
    assert f"scrape of http://scrape:{MASK}@127.0.0.1:{port}/metrics?token={MASK} (job api)" in (
        caplog.text
    )


def test_a_bad_target_is_refused_with_its_url_masked() -> None:
    with pytest.raises(ValueError, match="must be an http") as not_http:
        ScrapeTarget("ftp://scrape:PromPw9@h.example.com/metrics?token=PromTok7x")
    assert str(not_http.value) == (
        f"scrape target 'ftp://scrape:{MASK}@h.example.com/metrics?token={MASK}'"
        " must be an http:// or https:// URL"
    )
    with pytest.raises(ValueError, match="label name") as bad_label:
        ScrapeTarget("http://h.example.com/metrics?token=PromTok7x", labels={"0bad": "x"})
    assert_no_secret(str(bad_label.value))
    target = ScrapeTarget("http://scrape:PromPw9@h.example.com/m?token=PromTok7x", job="api")
    assert repr(target) == (
        f"ScrapeTarget('http://scrape:{MASK}@h.example.com/m?token={MASK}', job='api', labels={{}})"
    )


def test_monitor_shows_a_down_target_with_its_url_masked(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()
    (tmp_path / "secperf.toml").write_text(
        '[store]\nurl = "data/secperf.db"\n'
        "[[monitor.prometheus.targets]]\n"
        f'name = "gone"\nurl = "http://127.0.0.1:{port}/metrics?token=PromTok7x"\n'
        'interval = "500ms"\ntimeout = "400ms"\n'
    )
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "COLUMNS": "200"}
    with caplog.at_level(logging.WARNING):
        result = run_cli(
            ["monitor", "--duration", "2s", "--no-system", "--no-process"], cwd=tmp_path, env=env
        )
    assert result.returncode == 0, result.stdout + result.stderr
    assert_no_secret(result.stdout, result.stderr, caplog.text)
    # The table of scrape targets: job, the URL masked, down, and why.
    row = next(line for line in result.stdout.splitlines() if "gone" in line)
    assert f"http://127.0.0.1:{port}/metrics?token={MASK}" in row
    assert "down" in row and "cannot connect" in row
    assert f"scrape of http://127.0.0.1:{port}/metrics?token={MASK} (job gone) failed" in (
        caplog.text
    )
