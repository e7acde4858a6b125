"""SecurityValidator: runs every scanner over a codebase, fast, and measures it.

One scan: discover files; for each (file, scanner) look the result up in the
content cache (unchanged files are neither rescanned nor, when their stat has
not changed, even read); scan the rest in a process pool in batches (what runs
in a worker, and its limits, is workers.py); compare with the baseline; build
``SecurityMetrics``; publish ``ScanStarted``, ``ViolationDetected``, ``ScanCompleted``.
Persisting is the store's job: it subscribes to those events.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import resource
import time
from collections import defaultdict, deque
from collections.abc import Callable, Mapping, Sequence
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
from typing import Any, Protocol

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
from secperf.security.scanners.interface import FileResult, Scanner, SourceFile
from secperf.security.series import count_scan_findings
from secperf.security.triage import TriageDecision
from secperf.security.workers import (
    ScanLimits,
    init_worker,
    run_scanner_batch,
    scan_batch_in_worker,
)

log = logging.getLogger(__name__)

Publish = Callable[[Event], None]
#: Publishes several events in order, at once (``EventBus.publish_many_threadsafe``).
PublishMany = Callable[[Sequence[Event]], None]
#: progress(phase, done, total): phases are "discover", "scan"
Progress = Callable[[str, int, int], None]
#: cost_probe(scan_id) starts measuring a scan's resource use and returns the
#: function that stops it and gives (cpu_seconds, peak_rss_bytes). If the scan
#: raises, the probe is not stopped here: its owner stops it.
CostProbe = Callable[[str], Callable[[], tuple[float, int]]]
#: The triage decisions in force now, by fingerprint (e.g. ``Store.triage_all``).
TriageProvider = Callable[[], Mapping[str, TriageDecision]]


class ScanPacer(Protocol):
    """Paces a scan while its cache misses are scanned (``security.pacing``).

    ``scan_started`` is told the scan and how to find its worker processes;
    ``hold`` is called before each batch scanned in this process and may block
    (a pause between batches) until the scan should go on or ``stop`` is done;
    ``scan_finished`` runs however the scan ends and must leave no worker paused.
    """

    def scan_started(self, scan_id: str, worker_pids: Callable[[], list[int]]) -> None: ...

    def hold(self, stop: Future[None]) -> None: ...

    def scan_finished(self) -> None: ...


_SLOWEST_KEPT = 10
#: Why a discovered file was not scanned when no enabled scanner reads it.
NOT_READ = "no enabled scanner reads this file"
# Below this many (file, scanner) jobs a pool costs more than it saves.
_INLINE_LIMIT = 24
# Batches this large amortise pickling without starving the other workers.
_BATCH_BYTES = 256 * 1024
_BATCH_FILES = 64
# Results not cached (see ``SecurityValidator.scan``).
_NOT_CACHED = ("error:", "timed out", "out of memory")
# Skip reasons counted by kind, whatever detail follows: (kind, phrases that mark it).
# The phrase found first in a reason's first clause decides (a manifest problem,
# a SARIF log's skipped results: the detail after it quotes files and logs).
_REASON_KINDS = (
    ("SARIF results skipped", r"\d+ SARIF results? skipped"),
    ("OSV lookup failed", r"OSV lookup failed"),
    ("OSV records rejected", r"OSV records rejected"),
    # The deps scanner's requirements given as ranges (``UNPINNED_REASON``).
    ("unpinned requirements", r"cannot tell the installed version"),
    ("timed out", r"timed out"),
    ("out of memory", r"out of memory"),
    ("not UTF-8 text", r"not UTF-8|undecodable|UnicodeDecodeError"),
    ("binary file", r"binary file"),
    ("too large", r"too large"),
    ("unreadable", r"unreadable"),
    (
        "parse error",
        r"(?i:syntax error|parse error)|SyntaxError|malformed|invalid TOML|invalid JSON",
    ),
    # Dependency manifests' problems (``secperf.security.manifests``).
    ("invalid requirement", r"invalid requirement"),
    ("remote include not read", r"remote files are not read"),
    ("include outside the scan root", r"outside the scan root, not read"),
    ("includes nested too deep", r"includes nested deeper than"),
    ("unreadable include", r"cannot read it"),
    ("invalid manifest entry", r"expected an? |unsupported value|: not a string"),
)
_REASON_KIND = re.compile(
    "|".join(f"(?P<k{i}>{mark})" for i, (_, mark) in enumerate(_REASON_KINDS))
)
# Where a reason starts with the place it is about: a path (holding a "/" or a
# ".", or followed by a line number) and its line, ``requirements.txt:3: ``.
_LEADING_PLACE = re.compile(r"^(?:[^\s:;]*[/.][^\s:;]*|[^\s:;]+(?=:\d))(?::\d+)*: ")
# Details in parentheses: an exit status, a limit.
_PARENTHESES = re.compile(r"\s*\([^)]*\)")


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
    # Left out on purpose: (path, reason); a directory left out whole ends with "/".
    excluded: list[tuple[str, str]] = field(default_factory=list)
    # Scanners that had files to check and checked none of them: scanner -> first reason.
    failed_scanners: dict[str, str] = field(default_factory=dict)
    # What a user should know about this scan beyond its numbers (an old baseline ...).
    notes: list[str] = field(default_factory=list)
    # How the scan shared the machine (the ``scans.pacing`` document); None: not paced.
    pacing: dict[str, Any] | None = None
    # Files only importers of other tools' results read (SARIF logs): reports,
    # not code, so coverage leaves them out; their skips are in ``skipped``.
    reports: list[str] = field(default_factory=list)


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
        triage: Mapping[str, TriageDecision] | TriageProvider | None = None,
        publish: Publish | None = None,
        publish_many: PublishMany | None = None,
        progress: Progress | None = None,
        cost_probe: CostProbe | None = None,
        limits: ScanLimits | None = None,
    ) -> None:
        self.scanners = list(scanners)
        self.discovery = discovery or FileDiscovery()
        self.cache = cache
        self.jobs = jobs if jobs > 0 else (os.cpu_count() or 1)
        self.baseline = baseline
        # A provider is read at every scan, so a long-lived validator (``up``,
        # the agent) counts triage decisions made after it was built.
        self.triage_provider: TriageProvider | None = triage if callable(triage) else None
        self.triage: dict[str, TriageDecision] = (
            {} if triage is None or callable(triage) else dict(triage)
        )
        self.publish = publish
        self.publish_many = publish_many
        self.progress = progress
        self.cost_probe = cost_probe
        self.limits = limits or ScanLimits()
        self._pool: ProcessPoolExecutor | None = None
        self._stop: Future[None] = Future()
        #: "low": workers run niced (``security.pacing.priority``) and every
        #: scan goes to them, so this process itself is never reniced.
        self.priority = "normal"
        #: Throttles the scan within an impact budget while it runs; None: full speed.
        self.pacer: ScanPacer | None = None

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

    def _emit_all(self, events: Sequence[Event]) -> None:
        """Publish ``events`` in order: in one call when ``publish_many`` is set."""
        if self.publish_many is not None:
            self.publish_many(events)
        else:
            for event in events:
                self._emit(event)

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
        # Files only scanners of other tools' reports read (SARIF logs): their
        # results count, the files do not count in coverage.
        reports: set[str] = {
            relpath
            for relpath, indexes in wanted.items()
            if all(self.scanners[i].imports_results for i in indexes)
        }
        # Left out on purpose, each with its reason: discovery's exclusions, and
        # files no enabled scanner reads (a PNG for secrets, a README for bandit).
        excluded = list(discovered.excluded)
        excluded += [(c.relpath, NOT_READ) for c in discovered.files if c.relpath not in wanted]
        for relpath, reason in discovered.skipped:
            applicable = [s for _, s in available if s.applies_to(relpath)]
            if applicable:
                skipped.append((relpath, "*", reason))
                failed_files.add(relpath)
                if all(s.imports_results for s in applicable):
                    reports.add(relpath)
            else:
                excluded.append((relpath, NOT_READ))
        excluded.sort()
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
                    job.candidate.relpath, list(hit.findings), hit.skipped, 0.0, partial=hit.partial
                )
        fresh = self._run(root, misses, scan_id)
        results.update(fresh)
        if self.cache is not None and fresh:
            self.cache.put_many(
                [
                    (key, r.findings, r.skipped)
                    for key, r in fresh.items()
                    # Crashes may be transient, and a file's time or memory depends
                    # on the machine's load and the limits: scan such files again.
                    if r.cacheable and not (r.skipped or "").startswith(_NOT_CACHED)
                ],
                partial_keys={key for key, r in fresh.items() if r.partial},
            )

        findings: list[Finding] = []
        scanner_ms: dict[str, float] = defaultdict(float)
        file_ms: dict[str, float] = defaultdict(float)  # files scanned this time only
        scanner_jobs: dict[str, int] = defaultdict(int)
        scanner_failures: dict[str, str] = {}
        scanner_failed_jobs: dict[str, int] = defaultdict(int)
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
            if job.key in fresh:  # a cache hit took no time and opened no file
                file_ms[job.candidate.relpath] += result.duration_ms
            suppressed += result.suppressed
            scanner_jobs[scanner_id] += 1
            if result.skipped:
                skipped.append((job.candidate.relpath, scanner_id, result.skipped))
                failed_files.add(job.candidate.relpath)
                if not result.partial:
                    scanner_failed_jobs[scanner_id] += 1
                scanner_failures.setdefault(scanner_id, result.skipped)
            findings.extend(result.findings)
        interrupted = self.interrupted
        if interrupted:
            # Files the scan did not get to (not even read, or not by every scanner).
            unfinished.update(c.relpath for c in candidates if c.relpath not in digests)
            for relpath in sorted(unfinished - failed_files):
                skipped.append((relpath, "*", "interrupted"))
                failed_files.add(relpath)
        for _, _, reason in skipped:
            skip_reasons[reason_kind(reason)] += 1
        for scanner_id in unavailable:
            skip_reasons[f"{scanner_id}: unavailable"] += 1

        findings.sort(key=lambda f: (f.path, f.line, f.rule_id, f.fingerprint))
        comparison = compare(findings, self.baseline)
        if interrupted:
            comparison.fixed = []  # their files may simply not have been scanned
        finished_ms = now_ms()
        if self.triage_provider is not None:
            self.triage = dict(self.triage_provider())
        new_fingerprints = {f.fingerprint for f in comparison.new}
        counts = count_scan_findings(findings, new_fingerprints, self.triage, finished_ms)
        code = [c for c in candidates if c.relpath not in reports]
        eligible = len(code) + len(
            [p for p in failed_files if p not in wanted and p not in reports]
        )
        scanned_ok = len(code) - len([c for c in code if c.relpath in failed_files])
        hits = len(jobs) - len(misses)
        bytes_scanned = sum(c.size for c in candidates if c.relpath not in failed_files)
        lines = sum(n for path, n in line_counts.items() if path not in failed_files)
        read_now = {j.candidate.relpath for j in misses if j.key in fresh} - failed_files
        exclusion_reasons: dict[str, int] = defaultdict(int)
        for _, reason in excluded:
            exclusion_reasons[reason] += 1
        cpu_seconds, peak_rss_bytes = _stop_probe(stop_probe, usage_start)
        metrics = SecurityMetrics(
            scan_id=scan_id,
            target=str(root),
            started_ms=started_ms,
            finished_ms=finished_ms,
            scan_duration_ms=(time.perf_counter() - wall_start) * 1000,
            violations_found=counts.violations,
            false_positive_rate=counts.false_positive_rate,
            vulnerability_severity_counts=counts.violations_by_severity,
            scan_coverage_percent=100.0 * scanned_ok / eligible if eligible else 100.0,
            files_scanned=scanned_ok,
            files_skipped=eligible - scanned_ok,
            eligible_files=eligible,
            lines_scanned=lines,
            bytes_scanned=bytes_scanned,
            new_findings=counts.new_violations,
            existing_findings=counts.baselined_violations,
            # Baseline findings in files an interrupted scan did not get to are not fixed.
            fixed_findings=0 if interrupted else len(comparison.fixed),
            scanner_durations_ms=dict(scanner_ms),
            slowest_files_ms=dict(
                sorted(
                    ((path, ms) for path, ms in file_ms.items() if ms > 0),
                    key=lambda kv: kv[1],
                    reverse=True,
                )[:_SLOWEST_KEPT]
            ),
            skip_reasons=dict(skip_reasons),
            cache_hits=hits,
            cache_misses=len(misses),
            cache_hit_rate=hits / len(jobs) if jobs else 0.0,
            cpu_seconds=cpu_seconds,
            peak_rss_bytes=peak_rss_bytes,
            false_positives=counts.false_positives,
            accepted_risks=counts.accepted_risks,
            files_excluded=len(excluded),
            exclusion_reasons=dict(exclusion_reasons),
            files_read=len(read_now),
            lines_read=sum(line_counts.get(path, 0) for path in read_now),
        )
        # Unavailable optional scanners are reported, not a partial scan; files
        # that could not be scanned are.
        status = "interrupted" if interrupted else "partial" if failed_files else "ok"
        # One event per finding, handed to the bus in one call.
        self._emit_all(
            [
                ViolationDetected(
                    scan_id=scan_id,
                    finding=finding,
                    is_new=finding.fingerprint in new_fingerprints,
                )
                for finding in findings
            ]
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
            excluded=excluded,
            failed_scanners={
                scanner_id: scanner_failures[scanner_id]
                for scanner_id, total in scanner_jobs.items()
                if total and scanner_failed_jobs[scanner_id] == total
            },
            notes=[self.baseline.notice] if self.baseline and self.baseline.notice else [],
            reports=sorted(reports),
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

    def worker_pids(self) -> list[int]:
        """The pids of the pool's worker processes now (none without a pool)."""
        pool = self._pool
        if pool is None:
            return []
        return [p.pid for p in list((pool._processes or {}).values()) if p.pid is not None]

    def _run(self, root: Path, jobs: list[_Job], scan_id: str) -> dict[str, FileResult]:
        """``_scan_misses`` under the pacer, which always hears that the scan ended."""
        pacer = self.pacer
        if pacer is None or not jobs:
            return self._scan_misses(root, jobs)
        pacer.scan_started(scan_id, self.worker_pids)
        try:
            return self._scan_misses(root, jobs)
        finally:
            pacer.scan_finished()

    def _scan_misses(self, root: Path, jobs: list[_Job]) -> dict[str, FileResult]:
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
        inline = (
            (total <= _INLINE_LIMIT or self.jobs == 1)
            and not self.limits.enforced
            and self.priority != "low"
        )
        if inline:
            for index, batch in work:
                if self.pacer is not None:
                    self.pacer.hold(self._stop)
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
                        scan_batch_in_worker, item.scanner_index, str(root), sources
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
                initializer=init_worker,
                initargs=(tuple(self.scanners), os.getpid(), self.limits, self.priority),
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
        pool._call_queue.cancel_join_thread()  # type: ignore[attr-defined]  # exit must not wait on a full pipe
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


def reason_kind(reason: str) -> str:
    """The kind of a skip reason, for counting (``too large``, ``not UTF-8 text`` ...).

    Details (a file name, a line, a count, a byte offset, an error's text) stay
    in the per-file list; counts are by kind so that two offsets, or two
    manifests with the same problem, do not make two reasons. A reason made of
    several problems (``; ``) is counted by its first.
    """
    head = _LEADING_PLACE.sub("", reason.split("; ", 1)[0].strip(), count=1)
    found = _REASON_KIND.search(head)
    if found is not None and found.lastgroup is not None:
        return _REASON_KINDS[int(found.lastgroup[1:])][0]
    kind = _PARENTHESES.sub("", head.split(":", 1)[0]).strip()
    # semgrep's own message about the file (``semgrep: ...``).
    return "semgrep error" if kind == "semgrep" else kind or "other"


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
