"""What runs inside a scan worker process, and the limits it runs under.

``SecurityValidator`` (validator.py) starts a process pool with
``init_worker`` and hands it batches through ``scan_batch_in_worker``. In the
worker: the scanners it was given, the parent-death signal and a parent watch
(a worker never outlives a killed parent), Ctrl-C left to the parent, a
per-file time budget (SIGALRM) and a memory cap (``ScanLimits``).
``run_scanner_batch`` runs one scanner over a batch, going file by file when
the batch fails, turns a crash, a timeout or a MemoryError on one file into a
skip for that file, redacts once more and applies inline suppressions; the
validator also calls it in its own process for small scans without limits.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import resource
import signal
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import psutil

from secperf.security.redaction import redact_optional, scrub_finding
from secperf.security.scanners.interface import FileResult, Scanner, SourceFile
from secperf.security.suppression import apply_inline_suppressions

log = logging.getLogger(__name__)

_BINARY_PROBE = 8192
# linux/prctl.h
_PR_SET_PDEATHSIG = 1
# How often a worker checks that its parent is alive (where prctl cannot tell it).
_PARENT_POLL_S = 0.5


@dataclass(frozen=True, slots=True)
class ScanLimits:
    """What scanning one file may cost, enforced in the worker processes.

    ``file_timeout_s``: a scanner still busy with one file after this long gives
    it up; the file is skipped "timed out after N s" and the worker goes on.
    ``memory_bytes``: how much memory a worker may take beyond what it has when
    it starts (its address space is capped there); a file that needs more is
    skipped "out of memory (limit N MiB)". None: no limit. A validator with a
    limit scans every file in its pool, never in its own process. Programs a
    worker starts are not capped (``outside_memory_limit``): semgrep gets the
    limit through its own ``--max-memory`` (see ``SemgrepScanner``).
    """

    file_timeout_s: float | None = None
    memory_bytes: int | None = None

    @property
    def enforced(self) -> bool:
        """Whether any limit is set."""
        return bool(self.file_timeout_s or self.memory_bytes)

    @property
    def timeout_reason(self) -> str:
        return f"timed out after {self.file_timeout_s or 0:g} s"

    @property
    def memory_reason(self) -> str:
        if not self.memory_bytes:
            return "out of memory"
        return f"out of memory (limit {self.memory_bytes / 2**20:g} MiB)"


class _TimedOut(BaseException):
    """A file's time budget ran out (raised by SIGALRM in a worker).

    A BaseException, so that a scanner's ``except Exception`` cannot swallow it.
    """


_worker_scanners: Sequence[Scanner] = ()
_worker_limits = ScanLimits()
#: (this worker's soft RLIMIT_AS, the soft limit it had before): set by _limit_memory.
_memory_cap: tuple[int, int] | None = None
_alarm_armed = False
# The clock of a file's time budget: wall time, or, in a low-priority worker,
# CPU time (ITIMER_PROF): such a worker waits for the CPU, or is paused by the
# impact budget, for times that say nothing of the file it scans.
_budget_timer = signal.ITIMER_REAL
_budget_signal = signal.SIGALRM
#: MemoryErrors seen in log records: bandit reports any error as "exception
#: while scanning file", but logs it while the exception is being handled.
_memory_errors_logged = 0


def init_worker(
    scanners: Sequence[Scanner], parent_pid: int, limits: ScanLimits, priority: str = "normal"
) -> None:
    global _worker_scanners, _worker_limits, _budget_timer, _budget_signal
    _worker_scanners = scanners
    _worker_limits = limits
    if priority == "low":
        from secperf.security.pacing.priority import apply_low_priority

        apply_low_priority()
        _budget_timer, _budget_signal = signal.ITIMER_PROF, signal.SIGPROF
    # Workers may be forked while a server's handlers are installed: let SIGTERM
    # end them, and leave Ctrl-C (sent to the whole process group) to the parent,
    # which shuts the pool down.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _follow_parent(parent_pid)
    # A worker runs its tasks in its main thread, where SIGALRM handlers run.
    signal.signal(_budget_signal, _on_alarm)
    _count_logged_memory_errors()
    if limits.memory_bytes:
        _limit_memory(limits.memory_bytes)


def _follow_parent(parent_pid: int) -> None:
    """End this worker as soon as the process that started it dies, even by SIGKILL.

    Otherwise workers blocked on the task queue outlive a killed parent forever.
    On Linux the kernel kills the worker when the thread that forked it ends
    (PR_SET_PDEATHSIG): the parent's end, or, for a pool forked from a thread
    that ends before the pool does, a lost worker the validator replaces. A
    thread watching the parent's pid covers other systems and a parent that
    died before prctl took effect.
    """
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        except (OSError, AttributeError) as exc:
            log.debug("scan worker: prctl(PR_SET_PDEATHSIG) unavailable: %s", exc)
    if os.getppid() != parent_pid:
        os._exit(1)
    threading.Thread(
        target=_watch_parent, args=(parent_pid,), name="secperf-parent-watch", daemon=True
    ).start()


def _watch_parent(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(_PARENT_POLL_S)
    os._exit(1)


def _limit_memory(extra_bytes: int) -> None:
    """Cap this worker's address space at its current size plus ``extra_bytes``.

    Relative to the current size because a worker forked from a server inherits
    its address space (thread stacks, allocator arenas), mostly not resident.
    Only the soft limit is lowered, so that ``outside_memory_limit`` can lift it
    for the programs the worker starts.
    """
    global _memory_cap
    try:
        current = psutil.Process().memory_info().vms
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        limit = current + extra_bytes
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
        _memory_cap = (limit, soft)
    except (OSError, ValueError, psutil.Error) as exc:
        log.warning("scan worker: cannot limit its memory: %s", exc)


@contextlib.contextmanager
def outside_memory_limit() -> Iterator[None]:
    """Lift this worker's memory cap in the body; start other programs in there.

    A child process inherits the cap, and the cap is sized for secperf's own
    scanners: another program has memory behaviour of its own (semgrep-core
    reserves gigabytes of address space it never uses, and is killed under the
    cap), and a bound of its own (semgrep's ``--max-memory``). The body should
    only start the program (``subprocess.Popen``), not wait for it: meanwhile
    the worker itself is not capped. Outside a capped worker, this does nothing.
    """
    if _memory_cap is None:
        yield
        return
    limit, inherited = _memory_cap
    try:
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard != resource.RLIM_INFINITY and (
            inherited == resource.RLIM_INFINITY or inherited > hard
        ):
            inherited = hard
        resource.setrlimit(resource.RLIMIT_AS, (inherited, hard))
    except (OSError, ValueError) as exc:
        log.warning("scan worker: cannot lift its memory limit for a program: %s", exc)
        yield
        return
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def _count_logged_memory_errors() -> None:
    make_record = logging.getLogRecordFactory()

    def counting_factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        global _memory_errors_logged
        if isinstance(sys.exc_info()[1], MemoryError):
            _memory_errors_logged += 1
        return make_record(*args, **kwargs)

    logging.setLogRecordFactory(counting_factory)


def _on_alarm(signum: int, frame: FrameType | None) -> None:
    if _alarm_armed:
        raise _TimedOut


@contextlib.contextmanager
def _time_budget(seconds: float | None) -> Iterator[None]:
    """Raise ``_TimedOut`` in the body after ``seconds`` (in a worker; else no limit).

    CPython runs the handler between bytecodes and when C code checks for
    signals (``re`` does while matching), so bandit's AST walk and
    detect-secrets' regexes stop in time; one long C call (``ast.parse`` of a
    huge file) finishes first, and the memory limit bounds that.
    """
    global _alarm_armed
    if not seconds or signal.getsignal(_budget_signal) is not _on_alarm:
        yield
        return
    _alarm_armed = True
    signal.setitimer(_budget_timer, seconds)
    try:
        yield
    finally:
        # An alarm landing in here still raises _TimedOut: the caller handles it.
        signal.setitimer(_budget_timer, 0)
        _alarm_armed = False


def scan_batch_in_worker(index: int, root: str, files: list[SourceFile]) -> list[FileResult]:
    return run_scanner_batch(_worker_scanners[index], Path(root), files, _worker_limits)


def run_scanner_batch(
    scanner: Scanner, root: Path, files: list[SourceFile], limits: ScanLimits | None = None
) -> list[FileResult]:
    """Run one scanner over files, timing each and containing any crash.

    Binary files are skipped here; a scanner that raises on a file yields a
    skip for that file only; inline suppressions are applied here, where the
    content is at hand. ``limits`` give each file a time budget (in a worker
    process) and name the memory limit in skip reasons.
    """
    limits = limits or ScanLimits()
    results: list[FileResult] = []
    text_files: list[SourceFile] = []
    for source in files:
        if b"\x00" in source.content[:_BINARY_PROBE]:
            results.append(FileResult(source.relpath, skipped="binary file"))
        else:
            text_files.append(source)
    if text_files:
        results += _scan_text_batch(scanner, root, text_files, limits)
    return results


def _scan_text_batch(
    scanner: Scanner, root: Path, files: list[SourceFile], limits: ScanLimits
) -> list[FileResult]:
    results: list[FileResult] | None = None
    if type(scanner).scan_batch is not Scanner.scan_batch:
        start = time.perf_counter()
        logged = _memory_errors_logged
        try:
            # The batch gets one file's budget: ordinary files are far inside it
            # together, and a batch that overruns it is scanned again file by
            # file, each with its own budget, which finds the file at fault.
            with _time_budget(limits.file_timeout_s):
                results = scanner.scan_batch(root, files)
        except (_TimedOut, MemoryError):
            log.info("%s: a batch ran out of time or memory; going file by file", scanner.id)
        except Exception:  # one bad batch must not end the scan: go file by file
            log.exception("%s failed on a batch; retrying file by file", scanner.id)
        if results is not None and _memory_errors_logged != logged:
            results = None  # a file ran out of memory: find which
        if results is not None:
            share = (time.perf_counter() - start) * 1000 / max(1, len(files))
            for result in results:
                result.duration_ms = result.duration_ms or share
    if results is None:
        results = [_scan_one(scanner, root, source, limits) for source in files]
    by_path = {source.relpath: source for source in files}
    for result in results:
        if result.skipped and "MemoryError" in result.skipped:
            # A scanner that reports its own errors (detect-secrets) names the type.
            result.findings, result.skipped = [], limits.memory_reason
        # Scanners redact what they build; this last check before the cache, the
        # store and the bus keeps a scanner that forgot from leaking a secret.
        result.findings = [scrub_finding(f) for f in result.findings]
        result.skipped = redact_optional(result.skipped)
        source = by_path.get(result.relpath)
        if source is not None and result.findings:
            # Imported findings (SARIF) point into other files: their lines are not ours.
            own = [f for f in result.findings if f.path == result.relpath]
            others = [f for f in result.findings if f.path != result.relpath]
            kept, dropped = apply_inline_suppressions(source.content, own)
            result.findings = kept + others
            result.suppressed += dropped
    return results


def _scan_one(scanner: Scanner, root: Path, source: SourceFile, limits: ScanLimits) -> FileResult:
    start = time.perf_counter()
    logged = _memory_errors_logged
    try:
        with _time_budget(limits.file_timeout_s):
            result = scanner.scan_file(root, source)
    except _TimedOut:
        result = FileResult(source.relpath, skipped=limits.timeout_reason)
    except MemoryError:
        result = FileResult(source.relpath, skipped=limits.memory_reason)
    except Exception as exc:  # a crash on one file is a skip, not the end of the scan
        log.warning("%s crashed on %s: %s", scanner.id, source.relpath, exc)
        result = FileResult(source.relpath, skipped=f"error: {type(exc).__name__}: {exc}")
    else:
        if result.skipped and _memory_errors_logged != logged:
            result.findings, result.skipped = [], limits.memory_reason
    result.duration_ms = (time.perf_counter() - start) * 1000
    return result
