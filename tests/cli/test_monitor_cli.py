"""`secperf monitor` end to end, in-process (Ctrl-C on a real process), on the real SQLite store."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from secperf.config import Config
from secperf.perf.collectors.factory import build_collectors
from secperf.perf.collectors.process import ProcessCollector
from secperf.perf.collectors.prometheus import PrometheusCollector
from secperf.perf.collectors.system import SystemCollector
from secperf.store import Store
from support.cli import CliResult, run_cli

FAR_FUTURE_MS = 2**53


def env_for(cwd: Path) -> dict[str, str]:
    home = cwd.parent / "home"
    home.mkdir(exist_ok=True)
    # A wide console so that Rich does not fold the words the tests look for.
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "COLUMNS": "200"}


def secperf(cwd: Path, *args: str) -> CliResult:
    return run_cli(args, cwd=cwd, env=env_for(cwd))


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    root.mkdir()
    (root / "secperf.toml").write_text('[store]\nurl = "data/secperf.db"\n')
    return root


def test_monitor_stores_samples_and_shows_a_down_target(project: Path) -> None:
    port = closed_port()
    (project / "secperf.toml").write_text(
        '[store]\nurl = "data/secperf.db"\n'
        "[[monitor.prometheus.targets]]\n"
        f'name = "gone"\nurl = "http://127.0.0.1:{port}/metrics"\n'
        'interval = "1s"\ntimeout = "500ms"\n'
    )
    result = secperf(project, "monitor", "--duration", "3s", "--interval", "500ms")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "gone" in result.stdout and "down" in result.stdout
    assert "cannot connect" in result.stdout
    assert "stored" in result.stdout

    with Store.open(project / "data" / "secperf.db") as store:
        cpu = store.query("cpu_percent", {}, 0, FAR_FUTURE_MS)
        total = [s for s in cpu if "cpu" not in s.labels]
        assert total, "no host-wide cpu_percent series stored"
        assert len(total[0].timestamps) >= 2
        assert all(0.0 <= v <= 100.0 for v in total[0].values)
        assert store.query("memory_percent", {}, 0, FAR_FUTURE_MS)
        own = store.query("memory_rss_bytes", {}, 0, FAR_FUTURE_MS)
        assert own and max(own[0].values) > 0
        up = store.query("up", {"job": "gone"}, 0, FAR_FUTURE_MS)
        assert up and set(up[0].values.tolist()) == {0.0}


@pytest.mark.slow
def test_ctrl_c_stops_cleanly_and_keeps_what_was_collected(project: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "secperf", "monitor", "--interval", "500ms", "--no-process"],
        cwd=project,
        env=env_for(project),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        db = project / "data" / "secperf.db"
        # Wait for the first flush: the command is collecting (bounded, not timed).
        for _ in range(200):
            if db.exists():
                with Store.open(db) as store:
                    if store.query("cpu_percent", {}, 0, FAR_FUTURE_MS):
                        break
            time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, stdout + stderr
    assert "Traceback" not in stderr
    assert "stored" in stdout
    with Store.open(db) as store:
        written = store.sample_count()
        assert store.query("cpu_percent", {}, 0, FAR_FUTURE_MS)
    # Every sample the summary counts was flushed before exit.
    reported = int(stdout.split("stored ", 1)[1].split(" ", 1)[0])
    assert written >= reported > 0


def test_nothing_to_collect_is_a_usage_error(project: Path) -> None:
    (project / "secperf.toml").write_text(
        '[store]\nurl = "data/secperf.db"\n[monitor.system]\nenabled = false\n'
    )
    result = secperf(project, "monitor", "--no-process", "--duration", "1s")
    assert result.returncode == 2
    assert "nothing to collect" in result.stderr
    assert "monitor.system.enabled = false" in result.stderr
    assert "--no-process" in result.stderr


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--interval", "fast"], "invalid duration 'fast'"),
        (["--duration", "0"], "must be longer than 0"),
    ],
)
def test_bad_options_name_the_option(project: Path, args: list[str], expected: str) -> None:
    result = secperf(project, "monitor", *args)
    assert result.returncode == 2
    assert expected in result.stderr
    assert not (project / "data").exists()


def test_collectors_follow_the_config() -> None:
    config = Config.model_validate(
        {
            "monitor": {
                "interval": "2s",
                "process": {"interval": "5s", "names": ["postgres"]},
                "prometheus": {
                    "targets": [
                        {"name": "node", "url": "http://127.0.0.1:9100/metrics"},
                        {
                            "name": "app",
                            "url": "http://127.0.0.1:8000/metrics",
                            "interval": "30s",
                            "timeout": "2s",
                            "labels": {"env": "dev"},
                        },
                    ]
                },
            }
        }
    )
    plan = build_collectors(config.monitor)
    by_name = {c.name: c for c in plan.collectors}
    assert set(by_name) == {"system", "process", "prometheus:node", "prometheus:app"}
    assert isinstance(by_name["system"], SystemCollector)
    assert by_name["system"].interval_s == 2.0  # inherited from monitor.interval
    process = by_name["process"]
    assert isinstance(process, ProcessCollector)
    assert process.interval_s == 5.0 and process.names == frozenset({"postgres"})
    app = by_name["prometheus:app"]
    assert isinstance(app, PrometheusCollector)
    assert (app.interval_s, app.timeout_s) == (30.0, 2.0)
    assert app.targets[0].job == "app" and dict(app.targets[0].labels) == {"env": "dev"}
    assert by_name["prometheus:node"].interval_s == 15.0

    # The command line's interval replaces the system and process intervals only.
    faster = build_collectors(config.monitor, interval_s=0.5, process=False)
    assert [c.name for c in faster.collectors] == ["system", "prometheus:node", "prometheus:app"]
    assert faster.collectors[0].interval_s == 0.5
    assert faster.switched_off == {"process": "--no-process"}
    plan.close()
    faster.close()


def test_switched_off_in_config() -> None:
    config = Config.model_validate(
        {
            "monitor": {
                "process": {"enabled": False},
                "prometheus": {
                    "enabled": False,
                    "targets": [{"name": "node", "url": "http://127.0.0.1:9100/metrics"}],
                },
            }
        }
    )
    plan = build_collectors(config.monitor)
    assert plan.names == ["system"]
    assert plan.switched_off == {
        "process": "monitor.process.enabled = false",
        "prometheus": "monitor.prometheus.enabled = false",
    }
    off = build_collectors(Config.model_validate({"monitor": {"enabled": False}}).monitor)
    assert off.collectors == [] and set(off.switched_off) == {"system", "process", "prometheus"}
