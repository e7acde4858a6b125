"""The validator's machinery: discovery, cache, pool, suppressions, baseline, metrics, events.

A small marker scanner defined here exercises the mechanics with exact,
predictable findings; the real scanners are covered in their own tests and in
tests/test_scan_integration.py.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from secperf.events import Event, ScanCompleted, ScanStarted, ViolationDetected
from secperf.model import Severity
from secperf.security.baseline import baseline_from_findings, load_baseline, save_baseline
from secperf.security.cache import ScanCache
from secperf.security.discovery import FileDiscovery
from secperf.security.scanners.interface import (
    FileResult,
    FingerprintCounter,
    Scanner,
    SourceFile,
    stable_hash,
)
from secperf.security.triage import TriageDecision, TriageState
from secperf.security.validator import ScanReport, SecurityValidator, reason_kind
from secperf.security.workers import ScanLimits


class MarkerScanner(Scanner):
    """Flags every line containing ``marker``; crashes on files named ``boom.py``."""

    id = "marker"

    def __init__(self, marker: str = "DANGER", tool_version: str = "1") -> None:
        self.marker = marker
        self.tool_version = tool_version

    def version(self) -> str:
        return self.tool_version

    def config_hash(self) -> str:
        return stable_hash(self.marker)

    def applies_to(self, relpath: str) -> bool:
        return relpath.endswith(".py")

    def scan_file(self, root: Path, source: SourceFile) -> FileResult:
        if source.relpath.endswith("boom.py"):
            raise RuntimeError("scanner bug")
        try:
            text = source.content.decode("utf-8")
        except UnicodeDecodeError:
            return FileResult(source.relpath, skipped="undecodable: not UTF-8")
        counter = FingerprintCounter()
        findings = []
        for number, line in enumerate(text.splitlines(), start=1):
            if self.marker in line:
                from secperf.model import Finding

                findings.append(
                    Finding(
                        fingerprint=counter.fingerprint("M001", source.relpath, line),
                        rule_id="M001",
                        scanner=self.id,
                        severity=Severity.HIGH,
                        message=f"{self.marker} found",
                        path=source.relpath,
                        line=number,
                        snippet=line.strip(),
                    )
                )
        return FileResult(source.relpath, findings)


def write(root: Path, relpath: str, text: str | bytes) -> Path:
    path = root / relpath
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    write(root, "app/main.py", "x = 1\ny = DANGER\n")
    write(root, "app/util.py", "def f():\n    return DANGER  # one\n\nz = DANGER\n")
    write(root, "app/clean.py", "print('fine')\n")
    write(root, "README.md", "DANGER in prose is not scanned\n")
    return root


def make(root: Path, **kwargs: object) -> tuple[SecurityValidator, list[Event]]:
    events: list[Event] = []
    kwargs.setdefault("cache", ScanCache(root / ".secperf" / "cache.db"))
    kwargs.setdefault("jobs", 1)
    kwargs.setdefault("discovery", FileDiscovery(exclude=[".secperf/"]))
    scanners = kwargs.pop("scanners", [MarkerScanner()])
    validator = SecurityValidator(scanners, publish=events.append, **kwargs)  # type: ignore[arg-type]
    return validator, events


def test_scan_finds_times_and_publishes(project: Path) -> None:
    validator, events = make(project)
    report = validator.scan(project)
    assert [(f.path, f.line) for f in report.findings] == [
        ("app/main.py", 2),
        ("app/util.py", 2),
        ("app/util.py", 4),
    ]
    m = report.metrics
    assert m.violations_found == 3
    assert m.files_scanned == 3 and m.eligible_files == 3 and m.files_skipped == 0
    assert m.scan_coverage_percent == 100.0
    assert m.vulnerability_severity_counts == {"high": 3}
    assert m.cache_misses == 3 and m.cache_hits == 0
    assert set(m.scanner_durations_ms) == {"marker"}
    assert m.lines_scanned == 2 + 4 + 1
    assert m.new_findings == 3  # no baseline: everything is new
    assert isinstance(events[0], ScanStarted)
    assert events[0].files_total == 3
    assert [type(e) for e in events[1:]] == [ViolationDetected] * 3 + [ScanCompleted]
    completed = events[-1]
    assert isinstance(completed, ScanCompleted) and completed.metrics == m


def test_findings_are_handed_over_in_one_call_with_publish_many(project: Path) -> None:
    """One ViolationDetected per finding still, but one hand-over to the bus for all of them."""
    batches: list[list[Event]] = []
    validator, events = make(project, publish_many=lambda evs: batches.append(list(evs)))
    report = validator.scan(project)
    assert len(batches) == 1
    assert [type(e) for e in batches[0]] == [ViolationDetected] * 3
    assert [e.finding for e in batches[0]] == report.findings  # type: ignore[attr-defined]
    # The scan's start and end still go one by one, around the batch.
    assert [type(e) for e in events] == [ScanStarted, ScanCompleted]


def test_warm_rescan_hits_the_cache_without_reading(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    validator, _ = make(project)
    first = validator.scan(project)
    reads: list[str] = []
    original = Path.read_bytes

    def counting(self: Path) -> bytes:
        reads.append(self.name)
        return original(self)

    monkeypatch.setattr(Path, "read_bytes", counting)
    second = validator.scan(project)
    assert reads == []
    assert second.metrics.cache_hits == 3 and second.metrics.cache_misses == 0
    assert second.findings == first.findings
    assert second.metrics.lines_scanned == first.metrics.lines_scanned == 7


def test_cache_invalidation_by_edit_config_and_version(project: Path) -> None:
    validator, _ = make(project)
    validator.scan(project)
    path = project / "app/clean.py"
    path.write_text("print('now DANGER')\n")
    os.utime(path, ns=(1, 1))  # a different mtime, whatever the clock granularity
    edited = validator.scan(project)
    assert edited.metrics.cache_misses == 1
    assert any(f.path == "app/clean.py" for f in edited.findings)

    cache = validator.cache
    changed_rule, _ = make(project, scanners=[MarkerScanner(marker="print")], cache=cache)
    assert changed_rule.scan(project).metrics.cache_misses == 3

    new_version, _ = make(project, scanners=[MarkerScanner(tool_version="2")], cache=cache)
    assert new_version.scan(project).metrics.cache_misses == 3
    again, _ = make(project, scanners=[MarkerScanner(tool_version="2")], cache=cache)
    assert again.scan(project).metrics.cache_misses == 0


def test_fingerprints_survive_moving_code(project: Path) -> None:
    validator, _ = make(project)
    before = {f.fingerprint for f in validator.scan(project).findings}
    path = project / "app/util.py"
    path.write_text("\n\n# moved down\ndef f():\n        return DANGER  # one\n\nz = DANGER\n")
    after_report = validator.scan(project)
    after = {f.fingerprint for f in after_report.findings}
    assert before == after
    assert sorted(f.line for f in after_report.findings if f.path == "app/util.py") == [5, 7]


def test_baseline_new_existing_fixed(project: Path, tmp_path: Path) -> None:
    validator, _ = make(project)
    report = validator.scan(project)
    baseline_path = tmp_path / "baseline.json"
    save_baseline(baseline_path, baseline_from_findings(report.findings, "00ff", 1))
    baseline = load_baseline(baseline_path)
    assert baseline is not None and baseline.salt == "00ff"

    (project / "app/main.py").write_text("x = 1\n")  # fixes one
    write(project, "app/new.py", "w = DANGER\n")  # adds one
    later, events = make(project, baseline=baseline)
    result = later.scan(project)
    assert [f.path for f in result.comparison.new] == ["app/new.py"]
    assert len(result.comparison.existing) == 2
    assert len(result.comparison.fixed) == 1
    assert result.metrics.new_findings == 1 and result.metrics.fixed_findings == 1
    flags = {e.finding.path: e.is_new for e in events if isinstance(e, ViolationDetected)}
    assert flags["app/new.py"] is True and flags["app/util.py"] is False


def test_bad_files_are_skipped_with_reasons_and_coverage_shows_it(project: Path) -> None:
    write(project, "app/boom.py", "DANGER\n")
    write(project, "app/latin.py", b"x = '\xe9t\xe9'\n")
    write(project, "app/blob.py", b"\x00\x01\x02DANGER")
    write(project, "app/huge.py", "# " + "x" * 5000 + "\n")
    (project / "app/loop.py").symlink_to(project / "app/loop.py")
    validator, _ = make(project, discovery=FileDiscovery(exclude=[".secperf/"], max_file_size=4096))
    report = validator.scan(project)
    reasons = {path: reason for path, _, reason in report.skipped}
    assert reasons["app/boom.py"].startswith("error: RuntimeError: scanner bug")
    assert reasons["app/latin.py"] == "undecodable: not UTF-8"
    assert reasons["app/blob.py"] == "binary file"
    assert reasons["app/huge.py"].startswith("too large")
    assert reasons["app/loop.py"] == "broken or looping symlink"
    m = report.metrics
    assert m.eligible_files == 8
    assert m.files_scanned == 3
    assert m.scan_coverage_percent == pytest.approx(100 * 3 / 8)
    assert report.status == "partial"
    assert len(report.findings) == 3  # the good files still count


def test_crashes_are_not_cached(project: Path) -> None:
    write(project, "app/boom.py", "DANGER\n")
    validator, _ = make(project)
    validator.scan(project)
    second = validator.scan(project)
    assert second.metrics.cache_misses == 1  # boom.py is tried again


def test_inline_suppressions(project: Path) -> None:
    write(
        project,
        "app/sup.py",
        "a = DANGER  # secperf: ignore[M001]\nb = DANGER  # secperf: ignore[B101]\n"
        "c = DANGER  # secperf: ignore\n",
    )
    validator, _ = make(project)
    report = validator.scan(project)
    assert [f.line for f in report.findings if f.path == "app/sup.py"] == [2]
    assert report.suppressed == 2


def test_gitignore_include_exclude(project: Path) -> None:
    write(project, ".gitignore", "build/\n*.gen.py\n!keep.gen.py\n")
    write(project, "build/out.py", "DANGER\n")
    write(project, "app/x.gen.py", "DANGER\n")
    write(project, "app/keep.gen.py", "DANGER\n")
    write(project, "vendor/.gitignore", "*.py\n")
    write(project, "vendor/lib.py", "DANGER\n")
    write(project, "tests/t.py", "DANGER\n")
    validator, _ = make(project, discovery=FileDiscovery(exclude=[".secperf/", "tests/"]))
    paths = {f.path for f in validator.scan(project).findings}
    assert paths == {"app/main.py", "app/util.py", "app/keep.gen.py"}
    only_app, _ = make(project, discovery=FileDiscovery(include=["app/util.py"]))
    assert {f.path for f in only_app.scan(project).findings} == {"app/util.py"}
    no_git, _ = make(
        project, discovery=FileDiscovery(exclude=[".secperf/"], respect_gitignore=False)
    )
    assert "build/out.py" in {f.path for f in no_git.scan(project).findings}


def test_false_positive_rate_from_triage(project: Path) -> None:
    validator, _ = make(project)
    findings = validator.scan(project).findings
    triage = {
        findings[0].fingerprint: TriageDecision(
            findings[0].fingerprint, TriageState.FALSE_POSITIVE, "ana", "test data", 1
        ),
        findings[1].fingerprint: TriageDecision(
            findings[1].fingerprint, TriageState.FALSE_POSITIVE, "ana", "expired", 1, expires_ms=2
        ),
    }
    triaged, _ = make(project, triage=triage)
    metrics = triaged.scan(project).metrics
    assert metrics.false_positive_rate == pytest.approx(1 / 3)
    assert metrics.violations_found == 2


def test_process_pool_gives_the_same_results(project: Path) -> None:
    for i in range(40):
        write(project, f"pkg/m{i}.py", f"v{i} = 'DANGER'\nok = {i}\n")
    inline, _ = make(project, jobs=1, cache=None)
    pooled, _ = make(project, jobs=2, cache=None)
    try:
        a = inline.scan(project)
        b = pooled.scan(project)
    finally:
        pooled.close()
    assert a.findings == b.findings
    assert b.metrics.files_scanned == 43


# --------------------------------------------------------------------------- limits and faults


class TroubleScanner(MarkerScanner):
    """A marker scanner with a fault per file name, run in real worker processes.

    ``stall.py`` never finishes (a pure-Python loop, as an AST walk); ``hog.py``
    asks for 8 GiB; ``swallow.py`` does too but, as bandit does, catches the
    error, logs it and reports a vague skip; ``die.py`` kills its worker;
    ``slow*.py`` sleep, after noting the worker's pid in ``flags``.
    """

    def __init__(self, flags: Path | None = None) -> None:
        super().__init__()
        self.flags = flags

    def scan_file(self, root: Path, source: SourceFile) -> FileResult:
        name = Path(source.relpath).name
        if name == "stall.py":
            while True:
                pass
        if name == "hog.py":
            bytearray(8 * 2**30)
        if name == "swallow.py":
            try:
                bytearray(8 * 2**30)
            except Exception:
                logging.getLogger("trouble").error("exception on %s", name)
                return FileResult(source.relpath, skipped="exception while scanning file")
        if name == "die.py":
            os.kill(os.getpid(), signal.SIGKILL)
        if name.startswith("slow") and self.flags is not None:
            (self.flags / f"{os.getpid()}-{name}").write_text(str(os.getpid()))
            time.sleep(120)
        return super().scan_file(root, source)


class BatchTroubleScanner(TroubleScanner):
    """The same faults behind a ``scan_batch`` of its own (as the secrets scanner has)."""

    id = "batch-marker"

    def scan_batch(self, root: Path, files: Sequence[SourceFile]) -> list[FileResult]:
        return [self.scan_file(root, source) for source in files]


def skips_of(report: ScanReport) -> dict[str, str]:
    return {path: reason for path, _, reason in report.skipped}


@pytest.mark.parametrize("scanner", [TroubleScanner(), BatchTroubleScanner()], ids=lambda s: s.id)
def test_a_file_over_its_time_budget_is_skipped_and_the_scan_goes_on(
    project: Path, scanner: Scanner
) -> None:
    write(project, "app/stall.py", "x = DANGER\n")
    validator, events = make(project, scanners=[scanner], limits=ScanLimits(file_timeout_s=1.5))
    try:
        report = validator.scan(project)
    finally:
        validator.close()
    assert skips_of(report) == {"app/stall.py": "timed out after 1.5 s"}
    assert [(f.path, f.line) for f in report.findings] == [
        ("app/main.py", 2),
        ("app/util.py", 2),
        ("app/util.py", 4),
    ]
    m = report.metrics
    assert m.skip_reasons == {"timed out": 1}
    assert m.files_scanned == 3 and m.files_skipped == 1
    assert report.status == "partial"
    completed = events[-1]
    assert isinstance(completed, ScanCompleted) and completed.status == "partial"


def test_a_timed_out_file_is_not_cached(project: Path) -> None:
    write(project, "app/stall.py", "x = DANGER\n")
    validator, _ = make(project, scanners=[TroubleScanner()], limits=ScanLimits(file_timeout_s=1))
    try:
        validator.scan(project)
        again = validator.scan(project)
    finally:
        validator.close()
    # The other files come from the cache; the timed-out one is tried again.
    assert again.metrics.cache_hits == 3 and again.metrics.cache_misses == 1
    assert skips_of(again) == {"app/stall.py": "timed out after 1 s"}


@pytest.mark.parametrize("scanner", [TroubleScanner(), BatchTroubleScanner()], ids=lambda s: s.id)
@pytest.mark.parametrize("name", ["hog.py", "swallow.py"])
def test_a_file_over_the_memory_limit_is_skipped_and_the_worker_goes_on(
    project: Path, scanner: Scanner, name: str
) -> None:
    write(project, f"app/{name}", "x = DANGER\n")
    for i in range(6):  # scanned after it, by the same worker
        write(project, f"app/zz{i}.py", "y = DANGER\n")
    limits = ScanLimits(memory_bytes=256 * 2**20)
    validator, _ = make(project, scanners=[scanner], limits=limits)
    try:
        report = validator.scan(project)
    finally:
        validator.close()
    assert skips_of(report) == {f"app/{name}": "out of memory (limit 256 MiB)"}
    assert report.metrics.skip_reasons == {"out of memory": 1}
    assert report.metrics.files_scanned == 9
    assert len(report.findings) == 3 + 6


def test_a_worker_that_dies_costs_only_the_file_it_died_on(project: Path) -> None:
    write(project, "app/die.py", "x = DANGER\n")
    for i in range(30):
        write(project, f"pkg/m{i}.py", f"v{i} = 'DANGER'\n")
    validator, _ = make(
        project, scanners=[TroubleScanner()], jobs=2, limits=ScanLimits(file_timeout_s=60)
    )
    try:
        report = validator.scan(project)
        # The pool was rebuilt: the validator still scans.
        write(project, "pkg/new.py", "w = DANGER\n")
        again = validator.scan(project)
    finally:
        validator.close()
    assert skips_of(report) == {"app/die.py": "error: the scan worker died on this file"}
    assert report.metrics.files_scanned == 33
    assert len(report.findings) == 3 + 30
    assert again.metrics.files_scanned == 34


def test_interrupt_stops_the_scan_and_its_workers_and_reports_it(
    project: Path, tmp_path: Path
) -> None:
    import psutil

    flags = tmp_path / "flags"
    flags.mkdir()
    for i in range(4):
        write(project, f"app/slow{i}.py", "x = DANGER\n")
    validator, events = make(
        project, scanners=[TroubleScanner(flags)], jobs=2, limits=ScanLimits(file_timeout_s=600)
    )
    reports: list[ScanReport] = []
    thread = threading.Thread(target=lambda: reports.append(validator.scan(project)))
    thread.start()
    try:
        wait_until(lambda: any(flags.iterdir()), "a worker to be busy with a slow file")
        # The pid is in the flag's name: its content may not be written yet.
        workers = {int(p.name.split("-", 1)[0]) for p in flags.iterdir()}
        validator.interrupt()
        thread.join(timeout=60)
        assert not thread.is_alive(), "the scan did not stop"
    finally:
        validator.interrupt()
        validator.close()
    report = reports[0]
    assert report.status == "interrupted"
    completed = events[-1]
    assert isinstance(completed, ScanCompleted) and completed.status == "interrupted"
    assert completed.metrics == report.metrics
    m = report.metrics
    # The quick files may or may not have been scanned before a slow one stalled
    # their worker; every other file is accounted for as interrupted.
    assert m.skip_reasons["interrupted"] == m.eligible_files - m.files_scanned >= 4
    assert {r for _, _, r in report.skipped} == {"interrupted"}
    wait_until(
        lambda: not any(psutil.pid_exists(pid) and _alive(pid) for pid in workers),
        "the busy workers to end",
    )
    # An interrupted validator scans no more.
    assert validator.scan(project).metrics.files_scanned == 0


def _alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_reason_kinds_count_timeouts_and_memory_together() -> None:
    assert reason_kind("timed out after 1.5 s") == "timed out"
    assert reason_kind("out of memory (limit 2048 MiB)") == "out of memory"
    assert reason_kind("too large: 5 bytes > limit 1") == "too large"
    assert reason_kind("not UTF-8 text (undecodable byte at offset 7)") == "not UTF-8 text"


@pytest.mark.parametrize(
    ("reason", "kind"),
    [
        # discovery and the validator
        ("unreadable: Permission denied", "unreadable"),
        ("unreadable directory: Permission denied", "unreadable"),
        ("broken or looping symlink", "broken or looping symlink"),
        ("error: the scan worker died on this file", "error"),
        ("error: RuntimeError: scanner bug", "error"),
        ("interrupted", "interrupted"),
        # bandit, secrets, semgrep
        ("syntax error while parsing AST from file", "parse error"),
        ("binary file (NUL bytes), not Python source", "binary file"),
        ("bandit failed: ValueError: odd", "bandit failed"),
        ("secrets scan failed: KeyError", "secrets scan failed"),
        ("semgrep timed out after 30 s", "timed out"),
        ("semgrep failed (exit 2): invalid rule", "semgrep failed"),
        ("semgrep: Syntax error at line app/x.py:3", "parse error"),
        ("semgrep: could not read rule", "semgrep error"),
        ("semgrep could not start: [Errno 2] No such file", "semgrep could not start"),
        # deps: the manifest's name, line and counts are details
        (
            "requirements.txt:1: invalid requirement: Expected end or semicolon",
            "invalid requirement",
        ),
        (
            "requirements-dev.txt:2: -r https://example.com/r.txt: remote files are not read",
            "remote include not read",
        ),
        (
            "a/requirements.txt:3: -r ../../x.txt: outside the scan root, not read",
            "include outside the scan root",
        ),
        ("requirements.txt:1: -r other.txt: cannot read it: No such file", "unreadable include"),
        ("pyproject.toml: invalid TOML: Expected '=' (at line 1, column 5)", "parse error"),
        ("Pipfile.lock:4: invalid JSON: Expecting value", "parse error"),
        ("Pipfile.lock: default: expected an object", "invalid manifest entry"),
        ("Pipfile.lock:5: default.rich.version: not a string", "invalid manifest entry"),
        ("requirements.txt: not UTF-8: invalid start byte", "not UTF-8 text"),
        (
            "setup.txt: not a dependency manifest this scanner reads",
            "not a dependency manifest this scanner reads",
        ),
        (
            "cannot tell the installed version of 3 requirement(s), not checked: flask>=2 (line 1)",
            "unpinned requirements",
        ),
        (
            "requirements.txt:1: invalid requirement: x; cannot tell the installed version of 1",
            "invalid requirement",
        ),
        ("OSV lookup failed: <urlopen error timed out>", "OSV lookup failed"),
        ("OSV records rejected: 2 record(s) that may concern these pins", "OSV records rejected"),
        # sarif: the count and the quoted log are details
        (
            "1 SARIF result skipped: runs[0].results[1].region.startLine: -5 is not a line number",
            "SARIF results skipped",
        ),
        (
            "12 SARIF results skipped: runs[0].results[0]...uri: 'malformed/timed out.py'",
            "SARIF results skipped",
        ),
        ("malformed SARIF in reports/x.sarif: invalid JSON at line 1 column 31", "parse error"),
    ],
)
def test_reason_kinds_leave_out_file_names_and_counts(reason: str, kind: str) -> None:
    assert reason_kind(reason) == kind
