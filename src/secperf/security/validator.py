"""SecurityValidator: runs every scanner over a codebase, fast, and measures it.

One scan: discover files; for each (file, scanner) look the result up in the
content cache (unchanged files are neither rescanned nor, when their stat has
not changed, even read); scan the rest in a process pool in batches; apply
inline suppressions; compare with the baseline; build ``SecurityMetrics``; and
publish ``ScanStarted``, ``ViolationDetected`` and ``ScanCompleted`` events.
Persisting is the store's job: it subscribes to those events.
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
from collections import defaultdict, deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import (
    FIRST_COMPLETED,
    Future,
    InvalidStateError,
    ProcessPoolExecutor,
    wait,
)
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import psutil

from secperf.events import (
    Event,
    ScanCompleted,
    ScanStarted,
    ViolationDetected,
    new_event_id,
    now_ms,
)
from secperf.model import Finding, SecurityMetrics
from secperf.security.baseline import Baseline, Comparison, compare
from secperf.security.cache import ScanCache, cache_key, content_hash
from secperf.security.discovery import CandidateFile, FileDiscovery
from secperf.security.redaction import redact_optional, scrub_finding
from secperf.security.scanners.interface import FileResult, Scanner, SourceFile
from secperf.security.suppression import apply_inline_suppressions
from secperf.security.triage import (
    TriageDecision,
    TriageState,
    effective_state,
    false_positive_rate,
)

log = logging.getLogger(__name__)

Publish = Callable[[Event], None]
#: progress(phase, done, total): phases are "discover", "scan"
Progress = Callable[[str, int, int], None]
#: cost_probe(scan_id) starts measuring a scan's resource use and returns the
#: function that stops it and gives (cpu_seconds, peak_rss_bytes). If the scan
#: raises, the probe is not stopped here: its owner stops it.
CostProbe = Callable[[str], Callable[[], tuple[float, int]]]

_BINARY_PROBE = 8192
_SLOWEST_KEPT = 10
# Below this many (file, scanner) jobs a pool costs more than it saves.
_INLINE_LIMIT = 24
# Batches this large amortise pickling without starving the other workers.
_BATCH_BYTES = 256 * 1024
_BATCH_FILES = 64
# linux/prctl.h
_PR_SET_PDEATHSIG = 1
# How often a worker checks that its parent is alive (where prctl cannot tell it).
_PARENT_POLL_S = 0.5
# Results not cached (see ``SecurityValidator.scan``).
_NOT_CACHED = ("error:", "timed out", "out of memory")
# Skip reasons counted by their start, whatever detail follows.
_REASON_KINDS = ("timed out", "out of memory", "not UTF-8 text")


@dataclass(slots=True)
class ScanReport:
    """Everything one scan produced."""

    scan_id: str
    target: str
    metrics: SecurityMetrics
    findings: list[Finding]
    comparison: Comparison
    skipped: list[tuple[str, str, str]] = field(default_factory=list)  # (path, scanner, reason)
    unavailable: dict[str, str] = field(default_factory=dict)  # scanner -> reason
    suppressed: int = 0
    status: str = "ok"


# ----------------------------------------------------------------- worker side


@dataclass(frozen=True, slots=True)
class ScanLimits:
    """What scanning one file may cost, enforced in the worker processes.

    ``file_timeout_s``: a scanner still busy with one file after this long gives
    it up; the file is skipped "timed out after N s" and the worker goes on.
    ``memory_bytes``: how much memory a worker may take beyond what it has when
    it starts (its address space is capped there); a file that needs more is
    skipped "out of memory (limit N MiB)". None: no limit. A validator with a
    limit scans every file in its pool, never in its own process.
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
_alarm_armed = False
#: MemoryErrors seen in log records: bandit reports any error as "exception
#: while scanning file", but logs it while the exception is being handled.
_memory_errors_logged = 0


def _init_worker(scanners: Sequence[Scanner], parent_pid: int, limits: ScanLimits) -> None:
    global _worker_scanners, _worker_limits
    _worker_scanners = scanners
    _worker_limits = limits
    # Workers may be forked while a server's handlers are installed: let SIGTERM
    # end them, and leave Ctrl-C (sent to the whole process group) to the parent,
    # which shuts the pool down.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _follow_parent(parent_pid)
    # A worker runs its tasks in its main thread, where SIGALRM handlers run.
    signal.signal(signal.SIGALRM, _on_alarm)
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
    """
    try:
        current = psutil.Process().memory_info().vms
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        limit = current + extra_bytes
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    except (OSError, ValueError, psutil.Error) as exc:
        log.warning("scan worker: cannot limit its memory: %s", exc)


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
    if not seconds or signal.getsignal(signal.SIGALRM) is not _on_alarm:
        yield
        return
    _alarm_armed = True
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        # An alarm landing in here still raises _TimedOut: the caller handles it.
        signal.setitimer(signal.ITIMER_REAL, 0)
        _alarm_armed = False


def _scan_batch_in_worker(index: int, root: str, files: list[SourceFile]) -> list[FileResult]:
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


# ----------------------------------------------------------------- main side


@dataclass(slots=True)
class _Job:
    scanner_index: int
    candidate: CandidateFile
    key: str


@dataclass(slots=True)
class _Batch:
    """Jobs of one scanner handed to a worker together."""

    scanner_index: int
    jobs: list[_Job]
    # Run with nothing else in flight: after a worker died, to find the culprit.
    alone: bool = False
    pool: ProcessPoolExecutor | None = None


class SecurityValidator:
    """Scans a codebase with several scanners, cached, parallel and timed."""

    def __init__(
        self,
        scanners: Sequence[Scanner],
        *,
        discovery: FileDiscovery | None = None,
        cache: ScanCache | None = None,
        jobs: int = 0,
        baseline: Baseline | None = None,
        triage: Mapping[str, TriageDecision] | None = None,
        publish: Publish | None = None,
        progress: Progress | None = None,
        cost_probe: CostProbe | None = None,
        limits: ScanLimits | None = None,
    ) -> None:
        self.scanners = list(scanners)
        self.discovery = discovery or FileDiscovery()
        self.cache = cache
        self.jobs = jobs if jobs > 0 else (os.cpu_count() or 1)
        self.baseline = baseline
        self.triage = dict(triage or {})
        self.publish = publish
        self.progress = progress
        self.cost_probe = cost_probe
        self.limits = limits or ScanLimits()
        self._pool: ProcessPoolExecutor | None = None
        self._stop: Future[None] = Future()

    def close(self) -> None:
        """Stop the worker pool (kept between scans for incremental rescans)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def interrupt(self) -> None:
        """Stop the running scan soon (callable from any thread); this validator scans no more.

        The scan stops its workers and completes with status ``interrupted``:
        what was scanned is reported and published, every file it did not get
        to is skipped with the reason "interrupted".
        """
        with contextlib.suppress(InvalidStateError):
            self._stop.set_result(None)

    @property
    def interrupted(self) -> bool:
        """Whether ``interrupt`` was called."""
        return self._stop.done()

    def _emit(self, event: Event) -> None:
        if self.publish is not None:
            self.publish(event)

    def scan(self, root: Path, paths: Sequence[str] = (".",)) -> ScanReport:
        """Scan ``paths`` under ``root`` and return the report (events published on the way)."""
        root = root.resolve()
        scan_id = new_event_id()
        started_ms = now_ms()
        wall_start = time.perf_counter()
        usage_start = _cpu_seconds()
        stop_probe = self._start_probe(scan_id)

        available: list[tuple[int, Scanner]] = []
        unavailable: dict[str, str] = {}
        for index, scanner in enumerate(self.scanners):
            reason = scanner.unavailable_reason()
            if reason is None:
                available.append((index, scanner))
            else:
                unavailable[scanner.id] = reason

        discovered = self.discovery.discover(root, paths)
        if self.progress:
            self.progress("discover", len(discovered.files), len(discovered.files))

        # Which scanners want which file decides eligibility (coverage's denominator).
        wanted: dict[str, list[int]] = {}
        for candidate in discovered.files:
            indexes = [i for i, s in available if s.applies_to(candidate.relpath)]
            if indexes:
                wanted[candidate.relpath] = indexes
        skipped: list[tuple[str, str, str]] = []
        failed_files: set[str] = set()
        for relpath, reason in discovered.skipped:
            if any(s.applies_to(relpath) for _, s in available):
                skipped.append((relpath, "*", reason))
                failed_files.add(relpath)
        candidates = [c for c in discovered.files if c.relpath in wanted]

        self._emit(
            ScanStarted(
                scan_id=scan_id,
                target=str(root),
                scanners=tuple(s.id for _, s in available),
                files_total=len(candidates) + len(failed_files),
            )
        )

        versions = {i: (s.version(), s.config_hash()) for i, s in available}
        digests, line_counts = self._digests(candidates, skipped, failed_files)

        jobs: list[_Job] = []
        for candidate in candidates:
            digest = digests.get(candidate.relpath)
            if digest is None:
                continue
            for index in wanted[candidate.relpath]:
                version, config_hash = versions[index]
                key = cache_key(
                    self.scanners[index].id, version, config_hash, candidate.relpath, digest
                )
                jobs.append(_Job(index, candidate, key))

        cached = self.cache.get_many([j.key for j in jobs]) if self.cache else {}
        misses = [j for j in jobs if j.key not in cached]
        results: dict[str, FileResult] = {}
        for job in jobs:
            hit = cached.get(job.key)
            if hit is not None:
                results[job.key] = FileResult(
                    job.candidate.relpath, list(hit.findings), hit.skipped, 0.0
                )
        fresh = self._run(root, misses)
        results.update(fresh)
        if self.cache is not None and fresh:
            self.cache.put_many(
                (key, r.findings, r.skipped)
                for key, r in fresh.items()
                # Crashes may be transient, and a file's time or memory depends
                # on the machine's load and the limits: scan such files again.
                if not (r.skipped or "").startswith(_NOT_CACHED)
            )

        findings: list[Finding] = []
        scanner_ms: dict[str, float] = defaultdict(float)
        file_ms: dict[str, float] = defaultdict(float)
        suppressed = 0
        skip_reasons: dict[str, int] = defaultdict(int)
        unfinished: set[str] = set()
        for job in jobs:
            result = results.get(job.key)
            if result is None:
                unfinished.add(job.candidate.relpath)
                continue
            scanner_id = self.scanners[job.scanner_index].id
            scanner_ms[scanner_id] += result.duration_ms
            file_ms[job.candidate.relpath] += result.duration_ms
            suppressed += result.suppressed
            if result.skipped:
                skipped.append((job.candidate.relpath, scanner_id, result.skipped))
                failed_files.add(job.candidate.relpath)
            findings.extend(result.findings)
        interrupted = self.interrupted
        if interrupted:
            # Files the scan did not get to (not even read, or not by every scanner).
            unfinished.update(c.relpath for c in candidates if c.relpath not in digests)
            for relpath in sorted(unfinished - failed_files):
                skipped.append((relpath, "*", "interrupted"))
                failed_files.add(relpath)
        for _, _, reason in skipped:
            skip_reasons[_reason_class(reason)] += 1
        for scanner_id in unavailable:
            skip_reasons[f"{scanner_id}: unavailable"] += 1

        findings.sort(key=lambda f: (f.path, f.line, f.rule_id, f.fingerprint))
        comparison = compare(findings, self.baseline)
        if interrupted:
            comparison.fixed = []  # their files may simply not have been scanned
        finished_ms = now_ms()
        eligible = len(candidates) + len([p for p in failed_files if p not in wanted])
        scanned_ok = len(candidates) - len([c for c in candidates if c.relpath in failed_files])
        hits = len(jobs) - len(misses)
        bytes_scanned = sum(c.size for c in candidates if c.relpath not in failed_files)
        lines = sum(n for path, n in line_counts.items() if path not in failed_files)
        cpu_seconds, peak_rss_bytes = _stop_probe(stop_probe, usage_start)
        metrics = SecurityMetrics(
            scan_id=scan_id,
            target=str(root),
            started_ms=started_ms,
            finished_ms=finished_ms,
            scan_duration_ms=(time.perf_counter() - wall_start) * 1000,
            violations_found=sum(
                1
                for f in findings
                if effective_state(self.triage.get(f.fingerprint), finished_ms)
                is not TriageState.FALSE_POSITIVE
            ),
            false_positive_rate=false_positive_rate(findings, self.triage, finished_ms),
            vulnerability_severity_counts=_severity_counts(findings),
            scan_coverage_percent=100.0 * scanned_ok / eligible if eligible else 100.0,
            files_scanned=scanned_ok,
            files_skipped=eligible - scanned_ok,
            eligible_files=eligible,
            lines_scanned=lines,
            bytes_scanned=bytes_scanned,
            new_findings=len(comparison.new),
            existing_findings=len(comparison.existing),
            # Baseline findings in files an interrupted scan did not get to are not fixed.
            fixed_findings=0 if interrupted else len(comparison.fixed),
            scanner_durations_ms=dict(scanner_ms),
            slowest_files_ms=dict(
                sorted(file_ms.items(), key=lambda kv: kv[1], reverse=True)[:_SLOWEST_KEPT]
            ),
            skip_reasons=dict(skip_reasons),
            cache_hits=hits,
            cache_misses=len(misses),
            cache_hit_rate=hits / len(jobs) if jobs else 0.0,
            cpu_seconds=cpu_seconds,
            peak_rss_bytes=peak_rss_bytes,
        )
        # Unavailable optional scanners are reported, not a partial scan; files
        # that could not be scanned are.
        status = "interrupted" if interrupted else "partial" if failed_files else "ok"
        new_fingerprints = {f.fingerprint for f in comparison.new}
        for finding in findings:
            self._emit(
                ViolationDetected(
                    scan_id=scan_id,
                    finding=finding,
                    is_new=finding.fingerprint in new_fingerprints,
                )
            )
        error = "; ".join(f"{k}: {v}" for k, v in unavailable.items()) or None
        self._emit(ScanCompleted(metrics=metrics, status=status, error=error))
        return ScanReport(
            scan_id=scan_id,
            target=str(root),
            metrics=metrics,
            findings=findings,
            comparison=comparison,
            skipped=skipped,
            unavailable=unavailable,
            suppressed=suppressed,
            status=status,
        )

    def _start_probe(self, scan_id: str) -> Callable[[], tuple[float, int]] | None:
        if self.cost_probe is None:
            return None
        try:
            return self.cost_probe(scan_id)
        except Exception:  # measuring must never fail the scan; rusage stands in
            log.exception("scan %s: starting the cost probe failed", scan_id)
            return None

    def _digests(
        self,
        candidates: list[CandidateFile],
        skipped: list[tuple[str, str, str]],
        failed_files: set[str],
    ) -> tuple[dict[str, str], dict[str, int]]:
        """Content hashes and line counts, reading only files whose size or mtime changed."""
        known = self.cache.known_files() if self.cache else {}
        digests: dict[str, str] = {}
        lines: dict[str, int] = {}
        changed: list[tuple[str, int, int, str, int]] = []
        for candidate in candidates:
            if self._stop.done():  # reading a large tree takes a while
                break
            seen = known.get(candidate.relpath)
            if seen is not None and seen[0] == candidate.size and seen[1] == candidate.mtime_ns:
                digests[candidate.relpath] = seen[2]
                lines[candidate.relpath] = seen[3]
                continue
            content = _read(candidate, skipped, failed_files)
            if content is None:
                continue
            # Not kept: files are read again batch by batch when scanned, so a
            # cold scan never holds the whole tree in memory.
            digest = content_hash(content)
            digests[candidate.relpath] = digest
            count = content.count(b"\n")
            lines[candidate.relpath] = count
            changed.append((candidate.relpath, candidate.size, candidate.mtime_ns, digest, count))
        if self.cache is not None and changed:
            self.cache.remember_files(changed)
        return digests, lines

    def _run(self, root: Path, jobs: list[_Job]) -> dict[str, FileResult]:
        """Scan the cache misses, in the pool unless there are only a few.

        Files are read when their batch is handed out, and only a few batches
        are in flight at once, so memory stays flat however large the tree.
        """
        results: dict[str, FileResult] = {}
        batches: dict[int, list[list[_Job]]] = defaultdict(list)
        sizes: dict[int, int] = defaultdict(int)
        for job in jobs:
            open_batches = batches[job.scanner_index]
            if (
                not open_batches
                or len(open_batches[-1]) >= _BATCH_FILES
                or sizes[job.scanner_index] >= _BATCH_BYTES
            ):
                open_batches.append([])
                sizes[job.scanner_index] = 0
            open_batches[-1].append(job)
            sizes[job.scanner_index] += job.candidate.size

        work = [(index, batch) for index, group in batches.items() for batch in group]
        total = sum(len(batch) for _, batch in work)
        done = 0
        if self.progress:
            self.progress("scan", done, total)
        # Limits hold only in worker processes (a SIGALRM budget needs a main
        # thread, and this process's memory must not be capped): with limits,
        # even a few files go to the pool.
        inline = (total <= _INLINE_LIMIT or self.jobs == 1) and not self.limits.enforced
        if inline:
            for index, batch in work:
                if self._stop.done():
                    break
                sources = _sources(batch, results)
                out = run_scanner_batch(self.scanners[index], root, sources, self.limits)
                done += len(batch)
                self._collect(batch, out, results)
                if self.progress:
                    self.progress("scan", done, total)
            return results

        # Largest batches first keeps both workers busy until the end.
        work.sort(key=lambda item: -sum(j.candidate.size for j in item[1]))
        queue: deque[_Batch] = deque(_Batch(index, batch) for index, batch in work)
        running: dict[Future[list[FileResult]], _Batch] = {}
        while (queue or running) and not self._stop.done():
            while queue and len(running) < 2 * self.jobs:
                if (queue[0].alone and running) or any(b.alone for b in running.values()):
                    break
                item = queue.popleft()
                sources = _sources(item.jobs, results)
                item.pool = self._ensure_pool()
                try:
                    future = item.pool.submit(
                        _scan_batch_in_worker, item.scanner_index, str(root), sources
                    )
                except BrokenProcessPool:  # broke since the last results: submit again
                    self._discard_pool(item.pool)
                    queue.appendleft(item)
                    break
                running[future] = item
            if not running:
                continue
            # The stop future wakes this wait when the scan is interrupted.
            waiting: list[Future[Any]] = [*running, self._stop]
            finished, _ = wait(waiting, return_when=FIRST_COMPLETED)
            for done_future in finished:
                if done_future not in running:
                    continue
                item = running.pop(done_future)
                try:
                    out = done_future.result()
                except BrokenProcessPool:
                    # A worker died (killed, crashed, out of memory) and took every
                    # batch in flight with it: run those alone, then file by file,
                    # until the file it dies on is known.
                    self._discard_pool(item.pool)
                    if not item.alone:
                        queue.appendleft(_Batch(item.scanner_index, item.jobs, alone=True))
                        continue
                    if len(item.jobs) > 1:
                        queue.extendleft(
                            _Batch(item.scanner_index, [job], alone=True)
                            for job in reversed(item.jobs)
                        )
                        continue
                    relpath = item.jobs[0].candidate.relpath
                    log.error("a scan worker died scanning %s", relpath)
                    out = [FileResult(relpath, skipped="error: the scan worker died on this file")]
                except Exception as exc:  # a task that failed: report its files, keep the rest
                    log.error("a scan worker failed: %s", exc)
                    out = [
                        FileResult(j.candidate.relpath, skipped=f"error: worker failed: {exc}")
                        for j in item.jobs
                    ]
                done += len(item.jobs)
                self._collect(item.jobs, out, results)
                if self.progress:
                    self.progress("scan", done, total)
        if self._stop.done():
            for future in running:
                future.cancel()
            # A running task cannot be cancelled: stop its worker.
            self._discard_pool(self._pool, kill=True)
        return results

    def _collect(
        self, batch: list[_Job], out: list[FileResult], results: dict[str, FileResult]
    ) -> None:
        by_path = {r.relpath: r for r in out}
        for job in batch:
            if job.key in results:  # unreadable when its batch was read
                continue
            result = by_path.get(job.candidate.relpath)
            if result is None:
                result = FileResult(job.candidate.relpath, skipped="error: scanner gave no result")
            results[job.key] = result

    def _ensure_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            # With fork (Linux) the workers start at the first submit, from the
            # thread calling this, which is the one PR_SET_PDEATHSIG ties them to.
            self._pool = ProcessPoolExecutor(
                max_workers=self.jobs,
                initializer=_init_worker,
                initargs=(tuple(self.scanners), os.getpid(), self.limits),
            )
        return self._pool

    def _discard_pool(self, pool: ProcessPoolExecutor | None, *, kill: bool = False) -> None:
        """Let go of ``pool`` if it is the current one (broken, or ``kill``: its workers killed)."""
        if pool is None or pool is not self._pool:
            return
        self._pool = None
        if kill:
            # No public way to stop a running task before Python 3.14's terminate_workers.
            for process in list((pool._processes or {}).values()):
                with contextlib.suppress(OSError, ValueError):
                    process.kill()
        pool.shutdown(wait=False, cancel_futures=True)


def _read(
    candidate: CandidateFile, skipped: list[tuple[str, str, str]], failed_files: set[str]
) -> bytes | None:
    try:
        return candidate.path.read_bytes()
    except OSError as exc:
        skipped.append((candidate.relpath, "*", f"unreadable: {exc.strerror or exc}"))
        failed_files.add(candidate.relpath)
        return None


def _sources(batch: list[_Job], results: dict[str, FileResult]) -> list[SourceFile]:
    """Read a batch's files; an unreadable one gets its skip result right away."""
    sources: list[SourceFile] = []
    for job in batch:
        try:
            content = job.candidate.path.read_bytes()
        except OSError as exc:
            results[job.key] = FileResult(
                job.candidate.relpath, skipped=f"unreadable: {exc.strerror or exc}"
            )
            continue
        sources.append(SourceFile(job.candidate.relpath, content))
    return sources


def _reason_class(reason: str) -> str:
    """A short class of a skip reason, for counting (``too large``, ``timed out`` ...)."""
    for kind in _REASON_KINDS:
        if reason.startswith(kind):
            return kind
    return reason.split(":", 1)[0].strip() or "other"


def _severity_counts(findings: list[Finding]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for finding in findings:
        counts[finding.severity.value] = counts.get(finding.severity.value, 0) + 1
    return counts


def _stop_probe(
    stop: Callable[[], tuple[float, int]] | None, usage_start: float
) -> tuple[float, int]:
    """The probe's (cpu_seconds, peak_rss_bytes), or this process's rusage without one."""
    if stop is not None:
        try:
            return stop()
        except Exception:  # measuring must never fail the scan
            log.exception("the scan's cost probe failed; using resource usage instead")
    return _cpu_seconds() - usage_start, _peak_rss_bytes()


def _cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _peak_rss_bytes() -> int:
    # ru_maxrss is in KiB on Linux; this is the largest single process.
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return int(max(own, children) * 1024)
