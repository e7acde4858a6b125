"""The vocabulary shared by every part of secperf.

Pure data: enums and frozen dataclasses, plus a few pure helpers. Nothing here
does I/O or imports another secperf module, so every layer can depend on it.
Time is UTC in integer milliseconds; durations are float milliseconds.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from typing import Any, Literal, get_args

# --------------------------------------------------------------------------- metrics


class MetricKind(StrEnum):
    """Which side of secperf a metric belongs to."""

    PERFORMANCE = "performance"
    SECURITY = "security"


class MetricType(StrEnum):
    """The metrics secperf knows by name; each carries its unit and kind.

    Metrics outside this enum (scraped from Prometheus targets, ingested from
    applications) are accepted by name; ``MetricType.lookup`` returns None for them.
    """

    # performance
    CPU_PERCENT = "cpu_percent"
    MEMORY_PERCENT = "memory_percent"
    MEMORY_RSS_BYTES = "memory_rss_bytes"
    SWAP_PERCENT = "swap_percent"
    DISK_READ_BYTES = "disk_read_bytes"
    DISK_WRITE_BYTES = "disk_write_bytes"
    NET_SENT_BYTES = "net_sent_bytes"
    NET_RECV_BYTES = "net_recv_bytes"
    LOAD_1M = "load_1m"
    PROCESS_CPU_PERCENT = "process_cpu_percent"
    RESPONSE_TIME_MS = "response_time_ms"
    THROUGHPUT = "throughput"
    ERROR_RATE = "error_rate"
    BENCHMARK_TIME = "benchmark_time"
    # the rest of what the system and process collectors publish (perf/collectors/)
    LOAD_5M = "load_5m"
    LOAD_15M = "load_15m"
    MEMORY_USED_BYTES = "memory_used_bytes"
    MEMORY_AVAILABLE_BYTES = "memory_available_bytes"
    MEMORY_TOTAL_BYTES = "memory_total_bytes"
    SWAP_USED_BYTES = "swap_used_bytes"
    DISK_READ_OPS = "disk_read_ops"
    DISK_WRITE_OPS = "disk_write_ops"
    PROCESS_THREADS = "process_threads"
    PROCESS_OPEN_FILES = "process_open_files"
    PROCESS_READ_BYTES = "process_read_bytes"
    PROCESS_WRITE_BYTES = "process_write_bytes"
    PROCESS_READ_CHARS = "process_read_chars"
    PROCESS_WRITE_CHARS = "process_write_chars"
    # the resource use of scans (perf/impact.py)
    SCAN_PROCESS_CPU_PERCENT = "scan_process_cpu_percent"
    SCAN_PROCESS_RSS_BYTES = "scan_process_rss_bytes"
    HOST_CPU_PERCENT = "host_cpu_percent"
    # security
    SECURITY_SCAN_TIME = "security_scan_time"
    SECURITY_VIOLATIONS = "security_violations"
    SECURITY_FALSE_POSITIVES = "security_false_positives"
    VULNERABILITY_COUNT = "vulnerability_count"
    SECURITY_SCAN_COVERAGE = "security_scan_coverage"
    # derived from a scan's counted findings (security/series.py)
    SECURITY_NEW_FINDINGS = "security_new_findings"
    SECURITY_FINDINGS = "security_findings"

    @property
    def unit(self) -> str:
        """The unit of the metric's values (Prometheus-style base unit names)."""
        return _METRIC_UNITS[self]

    @property
    def kind(self) -> MetricKind:
        """Security or performance."""
        return MetricKind.SECURITY if self in _SECURITY_METRICS else MetricKind.PERFORMANCE

    @property
    def is_security(self) -> bool:
        return self.kind is MetricKind.SECURITY

    @classmethod
    def lookup(cls, name: str) -> MetricType | None:
        """The member named ``name``, or None for a metric outside the enum."""
        try:
            return cls(name)
        except ValueError:
            return None


_METRIC_UNITS: dict[MetricType, str] = {
    MetricType.CPU_PERCENT: "percent",
    MetricType.MEMORY_PERCENT: "percent",
    MetricType.MEMORY_RSS_BYTES: "bytes",
    MetricType.SWAP_PERCENT: "percent",
    # Counters are published as rates by the collectors.
    MetricType.DISK_READ_BYTES: "bytes_per_second",
    MetricType.DISK_WRITE_BYTES: "bytes_per_second",
    MetricType.NET_SENT_BYTES: "bytes_per_second",
    MetricType.NET_RECV_BYTES: "bytes_per_second",
    MetricType.LOAD_1M: "load",
    MetricType.PROCESS_CPU_PERCENT: "percent",
    MetricType.RESPONSE_TIME_MS: "milliseconds",
    MetricType.THROUGHPUT: "requests_per_second",
    MetricType.ERROR_RATE: "ratio",
    MetricType.BENCHMARK_TIME: "milliseconds",
    MetricType.LOAD_5M: "load",
    MetricType.LOAD_15M: "load",
    MetricType.MEMORY_USED_BYTES: "bytes",
    MetricType.MEMORY_AVAILABLE_BYTES: "bytes",
    MetricType.MEMORY_TOTAL_BYTES: "bytes",
    MetricType.SWAP_USED_BYTES: "bytes",
    MetricType.DISK_READ_OPS: "operations_per_second",
    MetricType.DISK_WRITE_OPS: "operations_per_second",
    MetricType.PROCESS_THREADS: "count",
    MetricType.PROCESS_OPEN_FILES: "count",
    MetricType.PROCESS_READ_BYTES: "bytes_per_second",
    MetricType.PROCESS_WRITE_BYTES: "bytes_per_second",
    MetricType.PROCESS_READ_CHARS: "bytes_per_second",
    MetricType.PROCESS_WRITE_CHARS: "bytes_per_second",
    MetricType.SCAN_PROCESS_CPU_PERCENT: "percent",
    MetricType.SCAN_PROCESS_RSS_BYTES: "bytes",
    MetricType.HOST_CPU_PERCENT: "percent",
    MetricType.SECURITY_SCAN_TIME: "milliseconds",
    MetricType.SECURITY_VIOLATIONS: "count",
    MetricType.SECURITY_FALSE_POSITIVES: "ratio",
    MetricType.VULNERABILITY_COUNT: "count",
    MetricType.SECURITY_SCAN_COVERAGE: "percent",
    MetricType.SECURITY_NEW_FINDINGS: "count",
    MetricType.SECURITY_FINDINGS: "count",
}

_SECURITY_METRICS = frozenset(
    {
        MetricType.SECURITY_SCAN_TIME,
        MetricType.SECURITY_VIOLATIONS,
        MetricType.SECURITY_FALSE_POSITIVES,
        MetricType.VULNERABILITY_COUNT,
        MetricType.SECURITY_SCAN_COVERAGE,
        MetricType.SECURITY_NEW_FINDINGS,
        MetricType.SECURITY_FINDINGS,
    }
)

#: Metric names follow Prometheus' rule so that every series can be exported.
METRIC_NAME_RE = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
LABEL_NAME_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
#: Bounds every way in (the JSON ingest, OTLP) applies to what a sender names
#: and labels: Prometheus sets none, but each name and value is kept in every
#: series key and shown everywhere, so a sender must not store megabytes in one.
MAX_METRIC_NAME_LENGTH = 200
MAX_LABEL_NAME_LENGTH = 200
MAX_LABEL_VALUE_LENGTH = 2000
MAX_LABELS_PER_SERIES = 64

#: Samples stamped further ahead than this are refused (clock skew allowance).
MAX_FUTURE_SKEW_MS = 10 * 60 * 1000


@dataclass(frozen=True, slots=True)
class Sample:
    """One value of one series at one instant (UTC milliseconds)."""

    name: str
    labels: dict[str, str]
    timestamp_ms: int
    value: float


def sample_problem(sample: Any, now_ms: int) -> str | None:
    """Why ``sample`` cannot be stored, or None when it is valid.

    Kept apart from ``Sample`` so that building samples on the hot path costs
    nothing; the store and the ingest API call it on everything they accept.
    """
    if not isinstance(sample, Sample):
        return f"expected a Sample, got {type(sample).__name__}"
    # Typed as Any: the point is to catch values that break the declared types.
    name: Any = sample.name
    labels: Any = sample.labels
    ts: Any = sample.timestamp_ms
    value: Any = sample.value
    if not isinstance(name, str) or not METRIC_NAME_RE.match(name):
        return f"metric name {name!r} must match {METRIC_NAME_RE.pattern}"
    if not isinstance(labels, dict):
        return f"{name}: labels must be a mapping of strings, got {type(labels).__name__}"
    for key, val in labels.items():
        if not isinstance(key, str) or not LABEL_NAME_RE.match(key):
            return f"{name}: label name {key!r} must match {LABEL_NAME_RE.pattern}"
        if not isinstance(val, str):
            return f"{name}: label {key!r} must be a string, got {type(val).__name__}"
    if isinstance(ts, bool) or not isinstance(ts, int):
        return f"{name}: timestamp_ms must be an integer, got {type(ts).__name__}"
    if ts < 0:
        return f"{name}: timestamp_ms {ts} is before 1970"
    if ts > now_ms + MAX_FUTURE_SKEW_MS:
        return f"{name}: timestamp_ms {ts} is more than 10 minutes in the future"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"{name}: value must be a number, got {type(value).__name__}"
    try:
        finite = math.isfinite(value)
    except OverflowError:  # an int too large for a float
        finite = False
    if not finite:
        return f"{name}: value {value!r} is not finite"
    return None


# --------------------------------------------------------------------------- security

#: The scanners secperf ships, in the order they run. Only the names live here,
#: so that config (which may not import security) can validate ``[scan] scanners``;
#: ``security/scanners/registry.py`` says what each one is and how it is built.
ScannerId = Literal["bandit", "secrets", "deps", "semgrep", "sarif"]
SCANNER_IDS: tuple[ScannerId, ...] = get_args(ScannerId)

_SEVERITY_RANK = {"info": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}


class Severity(StrEnum):
    """One severity scale for every scanner and alert, ordered info < ... < critical."""

    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    INFO = "info"

    @property
    def rank(self) -> int:
        return _SEVERITY_RANK[self.value]

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Severity):
            return NotImplemented
        return self.rank < other.rank

    def __le__(self, other: object) -> bool:
        if not isinstance(other, Severity):
            return NotImplemented
        return self.rank <= other.rank

    def __gt__(self, other: object) -> bool:
        if not isinstance(other, Severity):
            return NotImplemented
        return self.rank > other.rank

    def __ge__(self, other: object) -> bool:
        if not isinstance(other, Severity):
            return NotImplemented
        return self.rank >= other.rank

    @classmethod
    def parse(cls, text: str) -> Severity:
        """Parse a severity name case-insensitively; raises ValueError naming the choices."""
        try:
            return cls(text.strip().lower())
        except ValueError:
            allowed = ", ".join(s.value for s in cls)
            raise ValueError(f"unknown severity {text!r}; expected one of {allowed}") from None


def normalise_code(code: str) -> str:
    """Collapse white space so that re-indenting code keeps its fingerprint."""
    return " ".join(code.split())


def make_fingerprint(rule_id: str, path: str, code: str, occurrence: int = 0) -> str:
    """Line-independent finding identity: rule + path + normalised code + occurrence.

    ``occurrence`` tells apart identical matches in one file (0 for the first).
    """
    digest = hashlib.sha256()
    for part in (rule_id, path, normalise_code(code), str(occurrence)):
        digest.update(part.encode("utf-8", "surrogatepass"))
        digest.update(b"\x00")
    return digest.hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class Finding:
    """One security finding from any scanner.

    ``snippet`` is the matched code for code findings and a redacted preview for
    secrets. Neither a secret's value nor any hash of it is held here: scanners
    pass every snippet and message through ``secperf.security.redaction`` before
    building a finding, so whatever serialises a finding may show all its fields.
    """

    fingerprint: str
    rule_id: str
    scanner: str
    severity: Severity
    message: str
    path: str
    line: int = 0
    end_line: int | None = None
    column: int | None = None
    category: str = "sast"  # sast | secret | dependency | custom | imported
    confidence: str | None = None  # high | medium | low
    cwe: int | None = None
    snippet: str | None = None
    help_url: str | None = None
    properties: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SecurityMetrics:
    """What one scan measured: its cost, its coverage and what it found.

    The counts follow one vocabulary (``secperf.security.series``): a finding
    is a *violation* unless triage set it aside when the scan ended (a false
    positive, or an accepted risk that has not expired); findings suppressed
    inline are never reported. ``violations_found`` counts violations and
    ``vulnerability_severity_counts`` splits exactly those by severity (its
    values sum to ``violations_found``). ``new_findings`` counts the
    violations the baseline does not hold, ``existing_findings`` those it
    does (``new_findings + existing_findings == violations_found``).
    ``false_positives`` and ``accepted_risks`` count the findings set aside;
    ``false_positive_rate`` is false positives / all findings reported.

    ``kind`` is ``"scan"`` for a scan secperf ran and ``"import"`` for an
    import of another tool's results (a SARIF upload): an import measured no
    coverage (``scan_coverage_percent`` means nothing there) and is not a scan
    window for correlation.
    """

    scan_id: str
    target: str
    started_ms: int
    finished_ms: int
    scan_duration_ms: float
    violations_found: int
    false_positive_rate: float
    vulnerability_severity_counts: dict[str, int]
    scan_coverage_percent: float
    files_scanned: int = 0
    files_skipped: int = 0
    lines_scanned: int = 0
    new_findings: int = 0
    existing_findings: int = 0
    fixed_findings: int = 0
    eligible_files: int = 0
    bytes_scanned: int = 0
    scanner_durations_ms: dict[str, float] = field(default_factory=dict)
    slowest_files_ms: dict[str, float] = field(default_factory=dict)
    skip_reasons: dict[str, int] = field(default_factory=dict)
    cache_hits: int = 0
    cache_misses: int = 0
    cache_hit_rate: float = 0.0
    cpu_seconds: float = 0.0
    peak_rss_bytes: int = 0
    false_positives: int = 0
    accepted_risks: int = 0
    kind: str = "scan"  # "scan" | "import"
    # Left out on purpose (exclude rules, git-ignored, include globs): paths (a
    # directory left out whole counts once), and how many per reason.
    files_excluded: int = 0
    exclusion_reasons: dict[str, int] = field(default_factory=dict)
    # Read and scanned this time (cache misses), as opposed to covered from the cache.
    files_read: int = 0
    lines_read: int = 0


# --------------------------------------------------------------------------- alerts


class AlertState(StrEnum):
    """Where an alert is in its lifecycle."""

    INACTIVE = "inactive"
    PENDING = "pending"
    FIRING = "firing"
    RESOLVED = "resolved"
    NODATA = "nodata"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert instance: a rule applied to one label set."""

    fingerprint: str
    rule: str
    state: AlertState
    severity: Severity
    kind: MetricKind
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    value: float | None = None
    active_since_ms: int | None = None
    fired_at_ms: int | None = None
    resolved_at_ms: int | None = None
    updated_ms: int = 0
    acknowledged_by: str | None = None
    acknowledgement_note: str | None = None


def labels_fingerprint(labels: dict[str, str]) -> str:
    """A stable identity for a label set (order-independent)."""
    digest = hashlib.sha256()
    for key in sorted(labels):
        digest.update(key.encode())
        digest.update(b"\x00")
        digest.update(labels[key].encode())
        digest.update(b"\x00")
    return digest.hexdigest()[:16]


# --------------------------------------------------------------------------- gate


class ExitCode(IntEnum):
    """The process exit codes every command uses."""

    OK = 0
    BLOCKED = 1
    USAGE = 2
    CANNOT_EVALUATE = 3


class GateVerdict(StrEnum):
    """The gate's answer; each maps to the CLI's exit code."""

    PASS = "pass"
    BLOCK = "block"
    CANNOT_EVALUATE = "cannot_evaluate"

    @property
    def exit_code(self) -> ExitCode:
        """The process exit code of this verdict."""
        return _VERDICT_EXIT[self]


_VERDICT_EXIT = {
    GateVerdict.PASS: ExitCode.OK,
    GateVerdict.BLOCK: ExitCode.BLOCKED,
    GateVerdict.CANNOT_EVALUATE: ExitCode.CANNOT_EVALUATE,
}


class ConditionStatus(StrEnum):
    """The outcome of one gate condition."""

    PASS = "pass"
    BLOCK = "block"
    CANNOT_EVALUATE = "cannot_evaluate"
    WAIVED = "waived"


@dataclass(frozen=True, slots=True)
class GateCondition:
    """One condition of the gate with what was measured and why it decided so."""

    name: str
    category: str  # security | performance | cost
    status: ConditionStatus
    measured: int | float | str | None
    threshold: int | float | str | None
    evidence: str = ""


@dataclass(frozen=True, slots=True)
class GateResult:
    """The gate's verdict over all its conditions."""

    run_id: str
    target: str
    started_ms: int
    finished_ms: int
    verdict: GateVerdict
    conditions: tuple[GateCondition, ...] = ()
    commit: str | None = None
    summary: str = ""


# --------------------------------------------------------------------------- benchmarks


@dataclass(frozen=True, slots=True)
class BenchmarkResult:
    """One benchmark's measurement on one commit and machine.

    ``stats`` holds the tool's summary statistics in seconds (min, max, mean,
    median, stddev, iqr, ops, rounds ...); ``data`` the per-round times in
    seconds when the tool recorded them. ``status`` is ok, skipped or failed.
    """

    name: str
    source: str  # pytest-benchmark | asv | command
    timestamp_ms: int
    machine: str  # a fingerprint of the machine the figures come from
    commit: str | None = None
    status: str = "ok"
    stats: dict[str, float] = field(default_factory=dict)
    data: tuple[float, ...] = ()
    params: dict[str, str] = field(default_factory=dict)
    machine_info: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ScanCost:
    """What one scan cost the machine: its own processes and the host around it."""

    scan_id: str
    started_ms: int
    finished_ms: int
    cpu_seconds: float
    peak_rss_bytes: int
    read_bytes: int
    write_bytes: int
    host_cpu_percent_avg: float | None = None
    host_cpu_percent_max: float | None = None
    samples: int = 0
