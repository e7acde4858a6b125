"""``secperf serve`` forwarding a real scan's findings to a real rsyslog.

Secrets are planted in the scanned files; the scan runs while rsyslog is down,
so the findings wait in the on-disk queue (seen in ``/metrics`` and
``/api/v1/integrations``); the server is killed with SIGKILL; rsyslog and the
server start again and every finding arrives once, in order, with no secret
value anywhere in what rsyslog wrote.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import pytest

from support.cli import clean_env, run_cli
from support.rsyslog import RsyslogFactory, RsyslogServer, rsyslog  # noqa: F401
from support.services import free_port

pytestmark = pytest.mark.slow

T = TypeVar("T")

AWS_KEY = "AKIAZ7QX4PLM2RT8WB6N"
GITHUB_TOKEN = "ghp_" + "R8kq2ZLm4Tx7Vb9Nc1Pw3Hs6Jd5Fg0Ya2Qe4"
PASSWORD = "Tr0ub4dor&3-correct-horse"
PLANTED = (AWS_KEY, GITHUB_TOKEN, PASSWORD)
SEQ_RE = re.compile(r'seq="(\d+)" key="([^"]+)"')


def _poll(condition: Callable[[], T | None], limit_s: float, what: str) -> T:
    """Poll ``condition`` until it gives a truthy value (deadline, never a fixed sleep)."""
    deadline = time.monotonic() + limit_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not reached within {limit_s} s")
        time.sleep(0.05)


def _get(url: str) -> bytes | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            body: bytes = response.read()
            return body
    except OSError:
        return None


@contextmanager
def _serving(project: Path, port: int, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("ab") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "secperf", "serve", "--port", str(port)],
            cwd=project,
            stdout=subprocess.DEVNULL,
            stderr=err,
            env=clean_env(),
        )
    try:
        _poll(lambda: _get(f"http://127.0.0.1:{port}/healthz"), 60, "secperf serve is up")
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _integrations(port: int) -> dict[str, Any]:
    body = _get(f"http://127.0.0.1:{port}/api/v1/integrations")
    assert body is not None
    outputs = json.loads(body)["siem"]["outputs"]
    assert len(outputs) == 1
    found: dict[str, Any] = outputs[0]
    return found


def test_a_scan_waits_out_an_outage_and_a_kill_and_arrives_once_without_secrets(
    tmp_path: Path,
    rsyslog: RsyslogFactory,  # noqa: F811
) -> None:
    server = rsyslog()  # not started: the SIEM is down
    project = tmp_path / "project"
    (project / "conf").mkdir(parents=True)
    (project / "conf" / "settings.py").write_text(
        f'AWS_ACCESS_KEY_ID = "{AWS_KEY}"\n'
        f'GITHUB_TOKEN = "{GITHUB_TOKEN}"\n'
        f'DB_PASSWORD = "{PASSWORD}"\n'
        "import subprocess\n"
        "subprocess.call('ls', shell=True)\n"
    )
    (project / "secperf.toml").write_text(
        "[scan]\n"
        'scanners = ["secrets", "bandit"]\n'
        "[monitor.impact]\nenabled = false\n"
        "[[siem.outputs]]\n"
        'name = "soc"\n'
        f'address = "tcp://127.0.0.1:{server.port}"\n'
        'format = "ecs"\n'
        # Findings only: the default alert rules fire on them too, as a count of their own.
        'events = ["finding.new", "secret", "finding.fixed"]\n'
        'retry_initial = "100ms"\n'
        'retry_max = "1s"\n'
    )
    port = free_port()
    log = tmp_path / "serve.log"

    with _serving(project, port, log) as first:
        scan = run_cli(["scan", "--format", "json"], cwd=project)
        assert scan.returncode in (0, 1), scan.stderr
        report = json.loads(scan.stdout)
        expected = len(report["findings"])
        assert expected >= 4
        waiting = _poll(
            lambda: (o := _integrations(port))["queued"] >= expected and o["failed"] > 0 and o,
            60,
            "the findings wait in the queue",
        )
        assert waiting["connected"] is False and waiting["healthy"] is False
        assert "cannot connect" in waiting["last_error"]
        metrics = (_get(f"http://127.0.0.1:{port}/metrics") or b"").decode()
        assert f'secperf_siem_queue_depth{{output="soc"}} {float(expected)}' in metrics
        assert re.search(r'secperf_siem_failed_total\{output="soc"\} [1-9]', metrics)
        first.send_signal(signal.SIGKILL)
        first.wait(30)

    assert (project / ".secperf" / "siem-soc.db").is_file()
    server.start()
    with _serving(project, port, log):
        _poll(lambda: len(server.lines()) >= expected, 60, "every finding reaches rsyslog")
        _poll(lambda: _integrations(port)["queued"] == 0, 30, "the queue is empty")
    server.stop()

    received = server.lines()
    assert len(received) == expected
    seqs = [int(SEQ_RE.search(line).group(1)) for line in received]  # type: ignore[union-attr]
    assert seqs == sorted(seqs) and len(set(seqs)) == expected
    keys = {SEQ_RE.search(line).group(2) for line in received}  # type: ignore[union-attr]
    assert len(keys) == expected
    whole = server.received.read_text(encoding="utf-8")
    for value in PLANTED:
        assert value not in whole
    docs = [json.loads(line[line.index("{") :]) for line in received]
    secrets = [d for d in docs if d["event"]["action"] == "secret-found"]
    assert secrets, [d["event"]["action"] for d in docs]
    assert all("****" in d["secperf"]["preview"] for d in secrets)
    assert {d["file"]["path"] for d in docs} == {"conf/settings.py"}
    assert "Traceback" not in log.read_text(errors="replace")


def test_serve_refuses_a_queue_it_cannot_open(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the queue directory should be")
    (tmp_path / "secperf.toml").write_text(
        f'[siem]\nqueue_dir = "{blocker}"\n[[siem.outputs]]\naddress = "tcp://127.0.0.1:9"\n'
    )
    done = run_cli(["serve", "--port", "0"], cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert "SIEM queue" in done.stderr and str(blocker) in done.stderr
    assert blocker.read_text().startswith("a file")


def test_serve_refuses_tls_files_it_cannot_load(tmp_path: Path) -> None:
    (tmp_path / "not-a-ca.pem").write_text("not a certificate")
    (tmp_path / "secperf.toml").write_text(
        '[[siem.outputs]]\nname = "soc"\naddress = "tls://127.0.0.1:6514"\n'
        'ca_file = "not-a-ca.pem"\n'
    )
    done = run_cli(["serve", "--port", "0"], cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert "SIEM output soc: cannot load its TLS files" in done.stderr
    assert "Traceback" not in done.stderr


def test_serve_refuses_a_tls_file_that_is_not_there_naming_the_key(tmp_path: Path) -> None:
    (tmp_path / "secperf.toml").write_text(
        '[[siem.outputs]]\nname = "soc"\naddress = "tls://127.0.0.1:6514"\n'
        'ca_file = "missing-ca.pem"\n'
    )
    done = run_cli(["serve", "--port", "0"], cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert "siem.outputs[0].ca_file: no such file:" in " ".join(done.stderr.split())
    assert "Traceback" not in done.stderr


def _actions(server: RsyslogServer) -> list[tuple[str, str]]:
    """(event action, file path) of every ECS message rsyslog received, in order."""
    docs = [json.loads(line[line.index("{") :]) for line in server.lines()]
    return [(d["event"]["action"], d["file"]["path"]) for d in docs]


def test_unchanged_scans_report_nothing_fixed_and_a_fix_reports_it_once(
    tmp_path: Path,
    rsyslog: RsyslogFactory,  # noqa: F811
) -> None:
    """The event log announces only first-seen findings: the others are still open."""
    server = rsyslog()
    server.start()
    project = tmp_path / "project"
    (project / "conf").mkdir(parents=True)
    (project / "conf" / "settings.py").write_text(
        f'AWS_ACCESS_KEY_ID = "{AWS_KEY}"\nGITHUB_TOKEN = "{GITHUB_TOKEN}"\n'
    )
    shell = "import subprocess\nsubprocess.call('ls', shell=True)\n"
    (project / "conf" / "deploy.py").write_text(shell)
    (project / "secperf.toml").write_text(
        "[scan]\n"
        'scanners = ["secrets", "bandit"]\n'
        "[monitor.impact]\nenabled = false\n"
        "[[siem.outputs]]\n"
        'name = "soc"\n'
        f'address = "tcp://127.0.0.1:{server.port}"\n'
        'format = "ecs"\n'
        'events = ["finding.new", "secret", "finding.fixed"]\n'
        'retry_initial = "100ms"\n'
        'retry_max = "1s"\n'
    )
    port = free_port()
    log = tmp_path / "serve.log"

    def scan() -> list[str]:
        done = run_cli(["scan", "--format", "json"], cwd=project)
        assert done.returncode in (0, 1), done.stderr
        return [f["path"] for f in json.loads(done.stdout)["findings"]]

    with _serving(project, port, log):
        first = scan()
        assert "conf/deploy.py" in first and "conf/settings.py" in first
        _poll(lambda: len(server.lines()) >= len(first), 60, "the first scan's findings arrive")
        assert scan() == first
        assert scan() == first
        # A new file's findings, judged after the two unchanged scans (events keep their
        # order): once they arrive, whatever those scans gave has arrived too.
        (project / "conf" / "extra.py").write_text(shell)
        added = len(scan()) - len(first)
        assert added > 0
        seen = len(first) + added
        _poll(lambda: len(server.lines()) >= seen, 60, "the new file's findings arrive")
        unchanged = _actions(server)
        (project / "conf" / "deploy.py").write_text("print('deployed')\n")
        fixed = first.count("conf/deploy.py")
        assert "conf/deploy.py" not in scan()
        _poll(lambda: len(server.lines()) >= seen + fixed, 60, "the fix arrives")
        _poll(lambda: _integrations(port)["queued"] == 0, 30, "the queue is empty")
    server.stop()

    assert [a for a in unchanged if a[0] == "finding-fixed"] == []
    assert unchanged[len(first) :] == [("finding-new", "conf/extra.py")] * added
    assert _actions(server)[seen:] == [("finding-fixed", "conf/deploy.py")] * fixed
    assert "Traceback" not in log.read_text(errors="replace")
