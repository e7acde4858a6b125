"""``secperf up`` forwards its own scan's findings to a real rsyslog, previews only."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from support.cli import clean_env
from support.rsyslog import RsyslogFactory, rsyslog  # noqa: F401

pytestmark = pytest.mark.slow

AWS_KEY = "AKIAZ7QX4PLM2RT8WB6N"


def test_up_forwards_its_scan_in_ecs(
    tmp_path: Path,
    rsyslog: RsyslogFactory,  # noqa: F811
) -> None:
    server = rsyslog()
    server.start()
    project = tmp_path / "project"
    project.mkdir()
    (project / "app.py").write_text(f'AWS_ACCESS_KEY_ID = "{AWS_KEY}"\n')
    (project / "secperf.toml").write_text(
        '[scan]\nscanners = ["secrets"]\n'
        "[monitor.impact]\nenabled = false\n"
        "[[siem.outputs]]\n"
        'name = "soc"\n'
        f'address = "tcp://127.0.0.1:{server.port}"\n'
        'format = "ecs"\n'
        'events = ["secret", "finding.new"]\n'
    )
    log = tmp_path / "up.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "secperf", "up", "--port", "0", "--no-monitor", "--no-watch"],
            cwd=project,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=clean_env(),
        )
    try:
        deadline = time.monotonic() + 90
        while not server.lines():
            assert process.poll() is None, log.read_text(errors="replace")
            assert time.monotonic() < deadline, "no message reached rsyslog within 90 s"
            time.sleep(0.1)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    server.stop()
    lines = server.lines()
    assert len(lines) == 1, lines
    doc = json.loads(lines[0][lines[0].index("{") :])
    assert doc["event"]["action"] == "secret-found"
    assert doc["file"]["path"] == "app.py"
    assert "****" in doc["secperf"]["preview"]
    assert AWS_KEY not in server.received.read_text(encoding="utf-8")
    assert (project / ".secperf" / "siem-soc.db").is_file()
    assert "Traceback" not in log.read_text(errors="replace")
