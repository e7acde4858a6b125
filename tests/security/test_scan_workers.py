"""Scan workers with real processes and real signals: they end with their parent,
each file has a time and memory budget, and a scan stopped by a signal is
recorded as interrupted.

``secperf scan``, ``gate`` and ``up`` run as real subprocesses (each in a
session of its own, so a signal sent to it reaches nothing else) with the real
bandit and detect-secrets on a generated project; the store they write is the
real SQLite file, read back afterwards.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from secperf.agent import Agent
from secperf.bus.memory import AsyncEventBus
from secperf.config import load_config
from secperf.events import Event, ScanCompleted, ScanStarted
from secperf.store import Store

#: Every test here runs secperf as real processes (signals, workers, servers).
pytestmark = pytest.mark.slow

FAKE_AWS_KEY = "AKIAZZZZZZZZEXAMPLE7"
SMALL_APP = (
    "import subprocess\n\n"
    f'AWS_ACCESS_KEY_ID = "{FAKE_AWS_KEY}"\n\n\n'
    "def run(cmd):\n"
    "    return subprocess.call(cmd, shell=True)\n"
)
UP = ["up", "--port", "0", "--no-monitor"]


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}"
        time.sleep(0.05)


def alive(process: psutil.Process) -> bool:
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def python_source(megabytes: float) -> str:
    """Valid Python of about ``megabytes`` MB, slow to walk and big to parse."""
    block = (
        "def f(cmd):\n"
        "    import subprocess\n"
        "    x = 'abc' + cmd\n"
        "    return subprocess.call(x, shell=True)\n\n"
    )
    return block * int(megabytes * 1_000_000 / len(block))


def busy_project(root: Path, files: int = 300) -> Path:
    """Enough code to keep two workers busy for a good while."""
    root.mkdir(parents=True)
    body = "".join(
        f"def f{i}(cmd):\n    import subprocess\n    return subprocess.call(cmd, shell=True)\n\n"
        for i in range(150)
    )
    for i in range(files):
        (root / f"m{i}.py").write_text(body)
    (root / "secperf.toml").write_text('[scan]\nscanners = ["bandit", "secrets"]\njobs = 2\n')
    return root


class Secperf:
    """``secperf`` subprocesses of one test; whatever is left of them is killed at the end."""

    def __init__(self, tmp_path: Path) -> None:
        home = tmp_path / "home"
        home.mkdir()
        self.env = {"PATH": "/usr/bin:/bin", "HOME": str(home)}
        self.log = tmp_path / "secperf.log"
        self.started: list[psutil.Process] = []

    def start(self, cwd: Path, *args: str) -> subprocess.Popen[bytes]:
        with self.log.open("ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "secperf", *args],
                cwd=cwd,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                start_new_session=True,
            )
        self.started.append(psutil.Process(proc.pid))
        return proc

    def run(self, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "secperf", *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=600,
            env=self.env,
        )

    def workers(self, proc: subprocess.Popen[bytes], count: int = 2) -> list[psutil.Process]:
        """The scan workers of ``proc``, once ``count`` of them exist."""
        parent = psutil.Process(proc.pid)
        found: list[psutil.Process] = []

        def started() -> bool:
            nonlocal found
            assert proc.poll() is None, f"secperf ended early:\n{self.log.read_text()}"
            found = parent.children(recursive=True)
            return len(found) >= count

        wait_until(started, "the scan workers to start")
        self.started += found
        return found

    def cleanup(self) -> None:
        for process in self.started:
            if alive(process):
                process.kill()


@pytest.fixture
def secperf(tmp_path: Path) -> Iterator[Secperf]:
    runner = Secperf(tmp_path)
    yield runner
    runner.cleanup()


def store_of(project: Path) -> Store:
    return Store.open(f"sqlite:///{project / '.secperf' / 'secperf.db'}")


@pytest.mark.parametrize("command", [["scan", "--no-cache"], UP], ids=["scan", "up"])
def test_workers_end_when_their_parent_is_killed(
    secperf: Secperf, tmp_path: Path, command: list[str]
) -> None:
    project = busy_project(tmp_path / "project")
    proc = secperf.start(project, *command)
    workers = secperf.workers(proc)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL
    wait_until(
        lambda: not any(alive(w) for w in workers), "the workers of the killed secperf to end", 30
    )


@pytest.mark.parametrize(
    ("command", "sig", "exit_code"),
    [
        (["scan", "--no-cache"], signal.SIGTERM, -signal.SIGTERM),
        (["scan", "--no-cache"], signal.SIGINT, 130),
        (["gate", "--no-cache"], signal.SIGTERM, -signal.SIGTERM),
        (UP, signal.SIGTERM, 0),
    ],
    ids=["scan-sigterm", "scan-ctrl-c", "gate-sigterm", "up-sigterm"],
)
def test_a_scan_stopped_by_a_signal_is_recorded_as_interrupted(
    secperf: Secperf,
    tmp_path: Path,
    command: list[str],
    sig: signal.Signals,
    exit_code: int,
) -> None:
    project = busy_project(tmp_path / "project")
    proc = secperf.start(project, *command)
    workers = secperf.workers(proc)
    if sig == signal.SIGINT:
        os.killpg(proc.pid, sig)  # Ctrl-C in a terminal reaches the whole process group
    else:
        proc.send_signal(sig)
    assert proc.wait(timeout=120) == exit_code, secperf.log.read_text()
    wait_until(lambda: not any(alive(w) for w in workers), "the workers to end", 30)

    store = store_of(project)
    try:
        scans = store.scans(limit=10)
    finally:
        store.close()
    assert [s.status for s in scans] == ["interrupted"], secperf.log.read_text()
    metrics = scans[0].metrics
    assert metrics is not None and scans[0].finished_ms is not None
    assert metrics.eligible_files == 301  # 300 modules and secperf.toml
    # Whatever was not scanned is accounted for, as interrupted.
    assert metrics.files_skipped == metrics.eligible_files - metrics.files_scanned > 0
    assert metrics.skip_reasons == {"interrupted": metrics.files_skipped}


def test_stopping_the_agent_mid_scan_publishes_the_scan_as_interrupted(tmp_path: Path) -> None:
    # `secperf agent` sets this stop event on SIGTERM and SIGINT.
    project = busy_project(tmp_path / "project")
    loaded = load_config(None, project)

    async def scenario() -> list[Event]:
        got: list[Event] = []

        async def handler(event: Event) -> None:
            got.append(event)

        bus = AsyncEventBus()
        await bus.subscribe(">", handler)
        stop = asyncio.Event()
        agent = Agent(
            loaded, bus, host="web-1", collectors=[], scan_root=project, scan_interval_s=3600
        )
        task = asyncio.create_task(agent.run(stop))
        deadline = asyncio.get_running_loop().time() + 60
        while not any(isinstance(e, ScanStarted) for e in got):
            assert asyncio.get_running_loop().time() < deadline, "the agent did not start a scan"
            await asyncio.sleep(0.05)
        stop.set()
        await task
        await bus.close()
        return got

    got = asyncio.run(scenario())
    completed = [e for e in got if isinstance(e, ScanCompleted)]
    assert [(e.status, e.host) for e in completed] == [("interrupted", "web-1")]
    metrics = completed[0].metrics
    assert metrics.skip_reasons == {"interrupted": metrics.files_skipped}
    assert metrics.files_skipped == metrics.eligible_files - metrics.files_scanned > 0


def test_a_file_over_its_time_budget_is_skipped_with_the_reason(
    secperf: Secperf, tmp_path: Path
) -> None:
    project = tmp_path / "project"
    (project / "app").mkdir(parents=True)
    (project / "app" / "handlers.py").write_text(SMALL_APP)
    for i in range(5):
        (project / "app" / f"m{i}.py").write_text(f"import os\nos.system('echo {i}')\n")
    (project / "big.py").write_text(python_source(5))  # minutes for bandit
    (project / "secperf.toml").write_text(
        '[scan]\nscanners = ["bandit", "secrets"]\nmax_file_size = "10MiB"\nfile_timeout = "2s"\n'
    )
    result = secperf.run(project, "scan", "--no-cache", "--format", "json")
    assert result.returncode == 1, result.stdout + result.stderr  # high findings
    report = json.loads(result.stdout)
    skipped = {(s["path"], s["scanner"]): s["reason"] for s in report["skipped"]}
    assert skipped[("big.py", "bandit")] == "timed out after 2 s"
    assert {path for path, _ in skipped} == {"big.py"}
    assert report["metrics"]["skip_reasons"]["timed out"] == len(skipped)
    assert report["status"] == "partial"
    found = {(f["rule_id"], f["path"]) for f in report["findings"]}
    assert ("B602", "app/handlers.py") in found
    assert ("aws-access-key", "app/handlers.py") in found
    assert {f"app/m{i}.py" for i in range(5)} <= {path for _, path in found}


def test_a_file_over_the_worker_memory_limit_is_skipped_with_the_reason(
    secperf: Secperf, tmp_path: Path
) -> None:
    project = tmp_path / "project"
    (project / "app").mkdir(parents=True)
    (project / "app" / "handlers.py").write_text(SMALL_APP)
    for i in range(5):
        (project / "app" / f"m{i}.py").write_text(f"import os\nos.system('echo {i}')\n")
    # Its syntax tree alone needs several hundred MiB.
    (project / "huge.py").write_text(python_source(3))
    (project / "secperf.toml").write_text(
        "[scan]\n"
        'scanners = ["bandit", "secrets"]\n'
        'max_file_size = "10MiB"\n'
        'file_timeout = "0"\n'
        'worker_memory_limit = "150MiB"\n'
    )
    result = secperf.run(project, "scan", "--no-cache", "--format", "json")
    assert result.returncode == 1, result.stdout + result.stderr
    report = json.loads(result.stdout)
    skipped = {(s["path"], s["scanner"]): s["reason"] for s in report["skipped"]}
    assert skipped == {("huge.py", "bandit"): "out of memory (limit 150 MiB)"}
    assert report["metrics"]["skip_reasons"] == {"out of memory": 1}
    found = {(f["rule_id"], f["path"]) for f in report["findings"]}
    assert ("B602", "app/handlers.py") in found
    assert ("aws-access-key", "app/handlers.py") in found
    assert {f"app/m{i}.py" for i in range(5)} <= {path for _, path in found}


def test_semgrep_runs_under_the_default_worker_memory_limit(
    secperf: Secperf, tmp_path: Path
) -> None:
    """semgrep-core reserves gigabytes of address space: the worker's cap must not reach it.

    semgrep runs through a wrapper that records the address-space limit it gets:
    whether semgrep-core fits under the worker's cap anyway depends on the
    worker's size and the machine, so the limit is checked as well as the scan.
    """
    semgrep = Path(sys.executable).parent / "semgrep"
    if not semgrep.is_file():
        pytest.skip("semgrep is not installed (pip install semgrep)")
    project = tmp_path / "project"
    (project / "rules").mkdir(parents=True)
    (project / "run.py").write_text('import subprocess\nsubprocess.call("ls", shell=True)\n')
    (project / "rules" / "r.yml").write_text(
        "rules:\n"
        "- id: sp\n"
        "  pattern: subprocess.call(...)\n"
        "  message: m\n"
        "  languages: [python]\n"
        "  severity: ERROR\n"
    )
    record = tmp_path / "limits.txt"
    wrapper = tmp_path / "semgrep-wrapper"
    wrapper.write_text(
        f"#!{sys.executable}\n"
        "import os, resource, sys\n"
        f"with open({str(record)!r}, 'a') as out:\n"
        "    soft = resource.getrlimit(resource.RLIMIT_AS)[0]\n"
        "    out.write(f'{sys.argv[1]} {soft}\\n')\n"
        f"os.execv({str(semgrep)!r}, [{str(semgrep)!r}, *sys.argv[1:]])\n"
    )
    wrapper.chmod(0o755)
    # No [scan] worker_memory_limit: the default 2 GiB applies.
    (project / "secperf.toml").write_text(
        f'[scan.semgrep]\nrules = ["rules/r.yml"]\nexecutable = "{wrapper}"\n'
    )
    assert load_config(project / "secperf.toml").config.scan.worker_memory_limit == 2 * 2**30
    result = secperf.run(project, "scan", "--scanners", "semgrep", "--no-cache", "--format", "json")
    assert result.returncode == 1, result.stdout + result.stderr  # a high finding
    report = json.loads(result.stdout)
    assert report["skipped"] == []
    assert report["status"] == "ok"
    found = [(f["scanner"], f["rule_id"], f["path"], f["line"]) for f in report["findings"]]
    assert found == [("semgrep", "sp", "run.py", 2)]
    # The scan ran in a capped worker; semgrep got this process's limit, not the cap.
    runs = [line.split() for line in record.read_text().splitlines()]
    own = str(resource.getrlimit(resource.RLIMIT_AS)[0])
    assert [soft for command, soft in runs if command == "scan"] == [own]
