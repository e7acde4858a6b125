"""Time a command over several runs: wall time, exit code and peak memory of each run.

Each run is started by a small launcher process (never through a shell) that
forks the command and reaps it with ``os.wait4``, whose resource usage belongs
to that one child, so every run gets its own maximum RSS rather than a
high-water mark shared by all children or inherited from a large parent.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from secperf.events import now_ms
from secperf.model import BenchmarkResult
from secperf.perf.benchmarks import local_machine_info, machine_fingerprint

__all__ = [
    "CommandFailedError",
    "CommandTiming",
    "CommandTimingError",
    "time_command",
    "to_benchmark_result",
]

#: How much of a failing run's stderr goes into the error message.
_STDERR_TAIL_BYTES = 2000


class CommandTimingError(RuntimeError):
    """A command could not be timed (not found, failed, or timed out)."""


class CommandFailedError(CommandTimingError):
    """A run exited with a non-zero status (or was killed by a signal)."""

    def __init__(self, argv: Sequence[str], run: str, exit_code: int, stderr_tail: str) -> None:
        self.argv = tuple(argv)
        self.run = run
        self.exit_code = exit_code
        self.stderr_tail = stderr_tail
        how = f"was killed by signal {-exit_code}" if exit_code < 0 else f"exited with {exit_code}"
        message = f"{_show_argv(argv)}: run {run} {how}"
        if stderr_tail:
            message += f"; stderr ends with:\n{stderr_tail}"
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class CommandTiming:
    """Per-run measurements of one command (warm-up runs excluded)."""

    argv: tuple[str, ...]
    started_ms: int
    wall_s: tuple[float, ...]
    max_rss_bytes: tuple[int, ...]
    exit_codes: tuple[int, ...]
    user_s: tuple[float, ...] = ()
    system_s: tuple[float, ...] = ()
    warmup: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def runs(self) -> int:
        return len(self.wall_s)

    @property
    def median_s(self) -> float:
        return statistics.median(self.wall_s)

    @property
    def mad_s(self) -> float:
        """Median absolute deviation from the median (unscaled), in seconds."""
        centre = self.median_s
        return statistics.median(abs(x - centre) for x in self.wall_s)

    @property
    def mean_s(self) -> float:
        return statistics.fmean(self.wall_s)

    @property
    def min_s(self) -> float:
        return min(self.wall_s)

    @property
    def max_s(self) -> float:
        return max(self.wall_s)

    @property
    def peak_rss_bytes(self) -> int:
        """The largest maximum RSS of any measured run."""
        return max(self.max_rss_bytes, default=0)


def _show_argv(argv: Sequence[str]) -> str:
    text = " ".join(argv)
    return text if len(text) <= 120 else text[:117] + "..."


def _rss_bytes(ru_maxrss: int) -> int:
    # Linux reports kilobytes, macOS bytes.
    return ru_maxrss if sys.platform == "darwin" else ru_maxrss * 1024


def _tail(handle: IO[bytes]) -> str:
    handle.seek(0, os.SEEK_END)
    size = handle.tell()
    handle.seek(max(0, size - _STDERR_TAIL_BYTES))
    return handle.read().decode("utf-8", errors="replace").strip()


@dataclass(slots=True)
class _Run:
    wall_s: float
    exit_code: int
    max_rss_bytes: int
    user_s: float
    system_s: float
    timed_out: bool


# Linux folds the high-water RSS of the process that forks into the child's
# ru_maxrss (it survives exec), so a command forked from a large process would
# report that process's memory. A small launcher forks the command instead,
# times it and reports its own wait4 usage on stdout.
_LAUNCHER = """
import json, os, sys, time
argv = sys.argv[1:]
null = os.open(os.devnull, os.O_RDWR)
start = time.perf_counter()
pid = os.fork()
if pid == 0:
    os.dup2(null, 0)
    os.dup2(null, 1)
    try:
        os.execvp(argv[0], argv)
    except OSError as exc:
        os.write(2, (argv[0] + ": " + (exc.strerror or str(exc)) + "\\n").encode())
        os._exit(127)
_, status, ru = os.wait4(pid, 0)
wall = time.perf_counter() - start
code = os.waitstatus_to_exitcode(status)
sys.stdout.write(json.dumps([wall, code, ru.ru_maxrss, ru.ru_utime, ru.ru_stime]))
"""


def _run_once(
    argv: Sequence[str],
    timeout_s: float | None,
    cwd: str | os.PathLike[str] | None,
    env: Mapping[str, str] | None,
    stderr: IO[bytes],
) -> _Run:
    stderr.seek(0)
    stderr.truncate()
    search_path = (env or os.environ).get("PATH", os.defpath)
    if os.sep not in argv[0] and shutil.which(argv[0], path=search_path) is None:
        raise CommandTimingError(f"{argv[0]}: command not found")
    # The launcher leads its own session so that a timeout kills the command too.
    proc = subprocess.Popen(
        [sys.executable, "-S", "-c", _LAUNCHER, *argv],
        cwd=cwd,
        env=dict(env) if env is not None else None,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=stderr,
        start_new_session=True,
    )
    timed_out = False
    try:
        report, _ = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        timed_out = True
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        report, _ = proc.communicate()
    except BaseException:
        # Ctrl-C or SIGTERM reaches only us (the command leads its own session):
        # without this the command would go on running after secperf stopped.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise
    try:
        wall, exit_code, maxrss, user, system = json.loads(report)
    except ValueError:
        if not timed_out and proc.returncode not in (0, None):
            raise CommandTimingError(
                f"{_show_argv(argv)}: could not be started: {_tail(stderr) or proc.returncode}"
            ) from None
        wall, exit_code, maxrss, user, system = float(timeout_s or 0.0), -9, 0, 0.0, 0.0
    return _Run(
        wall_s=float(wall),
        exit_code=int(exit_code),
        max_rss_bytes=_rss_bytes(int(maxrss)),
        user_s=float(user),
        system_s=float(system),
        timed_out=timed_out,
    )


def time_command(
    argv: Sequence[str],
    runs: int = 10,
    warmup: int = 1,
    timeout_s: float | None = None,
    cwd: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    *,
    allow_failure: bool = False,
) -> CommandTiming:
    """Run ``argv`` ``warmup`` times unmeasured, then ``runs`` times measured.

    Output goes to /dev/null (stderr is kept for error messages). A run that
    exits non-zero raises ``CommandFailedError`` unless ``allow_failure``; a run
    that exceeds ``timeout_s`` is killed and raises ``CommandTimingError``.
    """
    args = [str(a) for a in argv]
    if not args or not args[0]:
        raise ValueError("argv must name a command")
    if runs < 1:
        raise ValueError(f"runs must be at least 1, got {runs}")
    if warmup < 0:
        raise ValueError(f"warmup must be 0 or more, got {warmup}")
    if timeout_s is not None and timeout_s <= 0:
        raise ValueError(f"timeout_s must be positive, got {timeout_s}")
    if cwd is not None and not Path(cwd).is_dir():
        raise CommandTimingError(f"{cwd}: working directory does not exist")

    started_ms = now_ms()
    measured: list[_Run] = []
    with tempfile.TemporaryFile() as stderr:
        for index in range(warmup + runs):
            run = _run_once(args, timeout_s, cwd, env, stderr)
            label = f"{index + 1} (warm-up)" if index < warmup else str(index - warmup + 1)
            if run.timed_out:
                raise CommandTimingError(
                    f"{_show_argv(args)}: run {label} took longer than {timeout_s} s and was killed"
                )
            if run.exit_code != 0 and not allow_failure:
                raise CommandFailedError(args, label, run.exit_code, _tail(stderr))
            if index >= warmup:
                measured.append(run)
    return CommandTiming(
        argv=tuple(args),
        started_ms=started_ms,
        wall_s=tuple(r.wall_s for r in measured),
        max_rss_bytes=tuple(r.max_rss_bytes for r in measured),
        exit_codes=tuple(r.exit_code for r in measured),
        user_s=tuple(r.user_s for r in measured),
        system_s=tuple(r.system_s for r in measured),
        warmup=warmup,
    )


def to_benchmark_result(
    timing: CommandTiming,
    name: str,
    commit: str | None = None,
    machine: str | None = None,
    machine_info: dict[str, Any] | None = None,
) -> BenchmarkResult:
    """A stored form of ``timing``: source "command", per-run seconds as ``data``.

    ``machine`` is a fingerprint; when omitted it is this machine's
    (``machine_fingerprint(local_machine_info())``).
    """
    if machine_info is None and machine is None:
        machine_info = local_machine_info()
    if machine is None:
        assert machine_info is not None
        machine = machine_fingerprint(machine_info)
    return BenchmarkResult(
        name=name,
        source="command",
        timestamp_ms=timing.started_ms,
        machine=machine,
        commit=commit,
        status="ok",  # failing runs were either refused or explicitly allowed
        stats={
            "median": timing.median_s,
            "mad": timing.mad_s,
            "min": timing.min_s,
            "max": timing.max_s,
            "mean": timing.mean_s,
            "max_rss_bytes": float(timing.peak_rss_bytes),
            "rounds": float(timing.runs),
        },
        data=timing.wall_s,
        machine_info=machine_info or {},
        extra={
            "argv": list(timing.argv),
            "warmup": timing.warmup,
            "exit_codes": list(timing.exit_codes),
            "max_rss_bytes_per_run": list(timing.max_rss_bytes),
            "user_s": list(timing.user_s),
            "system_s": list(timing.system_s),
            "unit": "seconds",
        },
    )
