"""Time a command over several runs: wall time, exit code and peak memory of each run.

Each run is started with ``subprocess.Popen`` (never through a shell) and reaped
with ``os.wait4``, whose resource usage belongs to that one child, so every run
gets its own maximum RSS rather than a high-water mark shared by all children.
"""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

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


def _run_once(
    argv: Sequence[str],
    timeout_s: float | None,
    cwd: str | os.PathLike[str] | None,
    env: Mapping[str, str] | None,
    stderr: IO[bytes],
) -> _Run:
    stderr.seek(0)
    stderr.truncate()
    lock = threading.Lock()
    state = {"exited": False, "timed_out": False}
    start = time.perf_counter()
    try:
        proc = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=dict(env) if env is not None else None,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    except FileNotFoundError:
        raise CommandTimingError(f"{argv[0]}: command not found") from None
    except PermissionError:
        raise CommandTimingError(f"{argv[0]}: permission denied") from None
    except NotADirectoryError:
        raise CommandTimingError(f"{cwd}: not a directory") from None

    def kill() -> None:
        # The child stays a zombie until ``exited`` is set, so its pid cannot be reused here.
        with lock:
            if not state["exited"]:
                state["timed_out"] = True
                os.kill(proc.pid, signal.SIGKILL)

    timer = threading.Timer(timeout_s, kill) if timeout_s is not None else None
    if timer is not None:
        timer.daemon = True
        timer.start()
    try:
        if hasattr(os, "waitid"):
            # Wait for the exit without reaping, so the timer can never signal a reused pid.
            os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)
            end = time.perf_counter()
            with lock:
                state["exited"] = True
            _, status, usage = os.wait4(proc.pid, 0)
        else:
            _, status, usage = os.wait4(proc.pid, 0)
            end = time.perf_counter()
            with lock:
                state["exited"] = True
    finally:
        if timer is not None:
            timer.cancel()
    exit_code = os.waitstatus_to_exitcode(status)
    proc.returncode = exit_code  # reaped here: stop Popen from waiting for it again
    return _Run(
        wall_s=end - start,
        exit_code=exit_code,
        max_rss_bytes=_rss_bytes(usage.ru_maxrss),
        user_s=usage.ru_utime,
        system_s=usage.ru_stime,
        timed_out=state["timed_out"],
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

    started_ms = int(time.time() * 1000)
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
