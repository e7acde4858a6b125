"""Timing real commands: per-run wall time, exit code and each run's own peak RSS."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest

from secperf.perf.benchmarks import local_machine_info, machine_fingerprint
from secperf.perf.command_timing import (
    CommandFailedError,
    CommandTimingError,
    time_command,
    to_benchmark_result,
)

PY = sys.executable
MB = 1024 * 1024


def test_runs_after_warmup_are_measured(tmp_path: Path) -> None:
    log = tmp_path / "runs.log"
    script = f"open({str(log)!r}, 'a').write('x\\n')"
    timing = time_command([PY, "-c", script], runs=3, warmup=2)
    assert len(log.read_text().splitlines()) == 5  # warm-ups ran too, but are not measured
    assert timing.runs == 3 and timing.warmup == 2
    assert timing.exit_codes == (0, 0, 0)
    assert all(t > 0 for t in timing.wall_s)
    assert timing.min_s <= timing.median_s <= timing.max_s
    assert timing.median_s == statistics.median(timing.wall_s)
    assert timing.mad_s == statistics.median(abs(t - timing.median_s) for t in timing.wall_s)
    assert len(timing.user_s) == len(timing.system_s) == 3


def test_each_run_has_its_own_peak_rss() -> None:
    big = time_command([PY, "-c", f"b = b'x' * {80 * MB}"], runs=2, warmup=0)
    small = time_command([PY, "-c", "pass"], runs=2, warmup=0)
    assert all(rss >= 80 * MB for rss in big.max_rss_bytes)
    # A shared RUSAGE_CHILDREN high-water mark would report the big run's peak here.
    assert all(rss < 60 * MB for rss in small.max_rss_bytes)
    assert big.peak_rss_bytes == max(big.max_rss_bytes)


def test_failure_stops_with_the_exit_code_and_stderr() -> None:
    argv = [PY, "-c", "import sys; sys.stderr.write('disk on fire\\n'); sys.exit(3)"]
    with pytest.raises(CommandFailedError) as caught:
        time_command(argv, runs=2, warmup=0)
    assert caught.value.exit_code == 3
    assert caught.value.run == "1"
    assert "run 1 exited with 3" in str(caught.value)
    assert "disk on fire" in str(caught.value)

    with pytest.raises(CommandFailedError, match=r"run 1 \(warm-up\) exited with 3"):
        time_command(argv, runs=1, warmup=1)


def test_allow_failure_records_exit_codes() -> None:
    timing = time_command([PY, "-c", "raise SystemExit(2)"], runs=2, warmup=0, allow_failure=True)
    assert timing.exit_codes == (2, 2)
    assert len(timing.wall_s) == 2


def test_signal_death_is_reported() -> None:
    argv = [PY, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGTERM)"]
    with pytest.raises(CommandFailedError, match="killed by signal 15"):
        time_command(argv, runs=1, warmup=0)


def test_timeout_kills_the_run() -> None:
    with pytest.raises(CommandTimingError, match=r"took longer than 0\.3 s and was killed"):
        time_command([PY, "-c", "import time; time.sleep(30)"], runs=1, warmup=0, timeout_s=0.3)


def test_no_shell_cwd_and_env(tmp_path: Path) -> None:
    out = tmp_path / "seen.json"
    script = (
        "import json, os, sys; "
        "seen = [sys.argv[1:], os.getcwd(), os.environ.get('SECPERF_X')]; "
        f"json.dump(seen, open({str(out)!r}, 'w'))"
    )
    tricky = "$(touch pwned); echo hi > pwned"
    env = dict(os.environ, SECPERF_X="42")
    time_command([PY, "-c", script, tricky], runs=1, warmup=0, cwd=tmp_path, env=env)
    argv, cwd, value = json.loads(out.read_text())
    assert argv == [tricky]
    assert Path(cwd) == tmp_path
    assert value == "42"
    assert not (tmp_path / "pwned").exists()


def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(CommandTimingError, match="no-such-command-xyz: command not found"):
        time_command(["no-such-command-xyz"], runs=1)
    with pytest.raises(ValueError, match="argv must name a command"):
        time_command([])
    with pytest.raises(ValueError, match="runs must be at least 1"):
        time_command([PY, "-c", "pass"], runs=0)
    with pytest.raises(ValueError, match="warmup must be 0 or more"):
        time_command([PY, "-c", "pass"], warmup=-1)
    with pytest.raises(CommandTimingError, match="working directory does not exist"):
        time_command([PY, "-c", "pass"], cwd=tmp_path / "missing")


def test_to_benchmark_result() -> None:
    timing = time_command([PY, "-c", "pass"], runs=3, warmup=0)
    result = to_benchmark_result(timing, "python-startup", commit="abc123")
    assert result.source == "command"
    assert result.name == "python-startup"
    assert result.commit == "abc123"
    assert result.status == "ok"
    assert result.data == timing.wall_s
    assert result.stats["median"] == timing.median_s
    assert result.stats["mad"] == timing.mad_s
    assert result.stats["rounds"] == 3
    assert result.stats["max_rss_bytes"] == timing.peak_rss_bytes > 0
    assert set(result.stats) == {"median", "mad", "min", "max", "mean", "max_rss_bytes", "rounds"}
    assert result.machine == machine_fingerprint(local_machine_info())
    assert result.timestamp_ms == timing.started_ms
    assert result.extra["argv"] == [PY, "-c", "pass"]
    assert to_benchmark_result(timing, "x", machine="m1").machine == "m1"


def _gone(pid: int) -> bool:
    """Whether ``pid`` has exited (a zombie waiting for its reaper counts as exited)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "\nState:\tZ" in status


def test_interrupt_kills_the_running_command(tmp_path: Path) -> None:
    """Ctrl-C while a command is timed ends the command too (it runs in its own session)."""
    pid_file = tmp_path / "pid"
    script = (
        "import sys\n"
        "from secperf.perf.command_timing import time_command\n"
        "time_command(['sh', '-c', 'echo $$ > \"$1\"; exec sleep 60', 'sh', sys.argv[1]],"
        " runs=1, warmup=0)\n"
    )
    parent = subprocess.Popen([PY, "-c", script, str(pid_file)], stderr=subprocess.PIPE)
    try:
        for _ in range(300):  # the command writes its pid once it started
            if pid_file.exists() and pid_file.read_text().strip():
                break
            time.sleep(0.05)
        pid = int(pid_file.read_text())
        parent.send_signal(signal.SIGINT)
        _, err = parent.communicate(timeout=30)
        assert b"KeyboardInterrupt" in err
        for _ in range(100):
            if _gone(pid):
                break
            time.sleep(0.05)
        assert _gone(pid), "the timed command outlived the interrupted timer"
    finally:
        parent.kill()
        parent.wait()
        if pid_file.exists() and pid_file.read_text().strip():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid_file.read_text()), signal.SIGKILL)
