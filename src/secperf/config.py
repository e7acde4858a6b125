"""secperf's configuration: where it is read from, what it may hold, and what is wrong with it.

Sources, first found wins: an explicit file; ``secperf.toml`` in the project
directory; the ``[tool.secperf]`` table of ``pyproject.toml``; the defaults.
Every section is a frozen pydantic model that forbids unknown keys. Any problem
raises one ``ConfigError`` whose message lists each wrong key (one per line) with
the file, the dotted key and what is allowed.

Units in the validated config: durations are integer milliseconds, sizes are
integer bytes, fractions are floats (``"5%"`` is 0.05), percentages are floats
from 0 to 100, and relative paths are resolved against the project root.
"""

from __future__ import annotations

import copy
import ipaddress
import json
import math
import os
import re
import socket
import tomllib
import types
import typing
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit, urlunsplit

import annotated_types
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    Strict,
    ValidationError,
    ValidationInfo,
    model_validator,
)
from pydantic.fields import FieldInfo

from secperf.model import LABEL_NAME_RE, METRIC_NAME_RE, Severity

CONFIG_FILE_NAME = "secperf.toml"
PYPROJECT_FILE_NAME = "pyproject.toml"
PYPROJECT_PREFIX = "tool.secperf."

#: The scanners secperf ships; ``scan.scanners`` may name only these.
ScannerId = Literal["bandit", "secrets", "deps", "semgrep", "sarif"]
SCANNER_IDS: tuple[ScannerId, ...] = typing.get_args(ScannerId)

#: A token shorter than this is refused: it would be guessable.
MIN_TOKEN_LENGTH = 16

MASK = "********"


class ConfigError(Exception):
    """A configuration that cannot be used; ``str(error)`` is the full message.

    ``problems`` holds one line per wrong key, each naming the file and the key.
    """

    def __init__(self, problems: Sequence[str], source: Path | None = None) -> None:
        self.problems: tuple[str, ...] = tuple(problems)
        self.source = source
        super().__init__("\n".join(self.problems))


# --------------------------------------------------------------------------- units

_DURATION_UNITS_MS: dict[str, float] = {
    "ms": 1,
    "s": 1_000,
    "m": 60_000,
    "h": 3_600_000,
    "d": 86_400_000,
    "w": 604_800_000,
}
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_DURATION_EXAMPLES = "'500ms', '15s', '5m', '24h' or '30d'"


def parse_duration_ms(text: str) -> int:
    """Parse a duration such as ``"500ms"``, ``"15s"``, ``"1h30m"`` or ``"30d"`` to milliseconds.

    A bare number is refused (is ``30`` seconds or milliseconds?) except ``"0"``.
    Raises ValueError naming the accepted forms.
    """
    if not isinstance(text, str):
        raise ValueError(f"expected a duration string such as {_DURATION_EXAMPLES}")
    stripped = text.strip()
    if stripped == "0":
        return 0
    pos = 0
    total = 0.0
    for match in _DURATION_PART.finditer(stripped):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _DURATION_UNITS_MS[match.group(2)]
        pos = match.end()
    if pos == 0 or pos != len(stripped):
        raise ValueError(
            f"invalid duration {text!r}; use a number with a unit (ms, s, m, h, d, w) "
            f"such as {_DURATION_EXAMPLES}"
        )
    return round(total)


def parse_duration_s(text: str) -> float:
    """Parse a duration (see ``parse_duration_ms``) to seconds."""
    return parse_duration_ms(text) / 1000.0


def format_duration_ms(ms: int) -> str:
    """The shortest exact duration string for ``ms`` (``300000`` -> ``"5m"``)."""
    if ms == 0:
        return "0s"
    for unit in ("w", "d", "h", "m", "s"):
        size = int(_DURATION_UNITS_MS[unit])
        if ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


_SIZE_UNITS: dict[str, int] = {
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "tb": 1000**4,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
}
_SIZE_RE = re.compile(r"^(\d+(?:\.\d+)?)\s*([a-zA-Z]*)$")


def parse_size_bytes(value: str | int) -> int:
    """Parse a size such as ``"512KB"`` (1000-based) or ``"1MiB"`` (1024-based) to bytes.

    A plain non-negative integer is taken as bytes. Raises ValueError otherwise.
    """
    if isinstance(value, bool):
        raise ValueError("expected a size such as '512KB' or '1MiB', not a boolean")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"a size cannot be negative, got {value}")
        return value
    if isinstance(value, str):
        match = _SIZE_RE.match(value.strip())
        if match:
            unit = match.group(2).lower() or "b"
            if unit in _SIZE_UNITS:
                return round(float(match.group(1)) * _SIZE_UNITS[unit])
    raise ValueError(
        f"invalid size {value!r}; use bytes or a number with a unit "
        "(B, KB, MB, GB, KiB, MiB, GiB) such as '512KB' or '1MiB'"
    )


def format_size_bytes(size: int) -> str | int:
    """The shortest exact size for ``size`` (``1048576`` -> ``"1MiB"``), or the bytes."""
    if size == 0:
        return 0
    for unit in ("TiB", "GiB", "MiB", "KiB", "TB", "GB", "MB", "KB"):
        factor = _SIZE_UNITS[unit.lower()]
        if size % factor == 0:
            return f"{size // factor}{unit}"
    return size


def mask_url(url: str) -> str:
    """``url`` with any password replaced by asterisks (for display only)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:{MASK}@{netloc}"))


def is_loopback_host(host: str) -> bool:
    """Whether binding ``host`` keeps the server reachable from this machine only."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


# --------------------------------------------------------------------------- field types


@dataclass(frozen=True, slots=True)
class _Expect:
    """Annotation marker: how to describe a type in errors and how to export it."""

    text: str
    export: Callable[[Any], Any] | None = None


def _duration(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, str):
        raise ValueError("")
    return parse_duration_ms(value)


def _positive_duration(value: Any) -> int:
    ms = _duration(value)
    if ms <= 0:
        raise ValueError("it must be longer than 0")
    return ms


def _size(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError("")
    return parse_size_bytes(value)


def _number_or_percent(value: Any, scale: float) -> float:
    if isinstance(value, bool):
        raise ValueError("")
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str) and value.strip().endswith("%"):
        try:
            number = float(value.strip()[:-1]) * scale
        except ValueError:
            raise ValueError("") from None
    else:
        raise ValueError("")
    if not math.isfinite(number):
        raise ValueError("")
    return number


def _fraction(value: Any) -> float:
    return _number_or_percent(value, 0.01)


def _percent(value: Any) -> float:
    return _number_or_percent(value, 1.0)


def _severity(value: Any) -> Severity:
    if isinstance(value, Severity):
        return value
    if not isinstance(value, str):
        raise ValueError("")
    try:
        return Severity.parse(value)
    except ValueError:
        raise ValueError("") from None


def _regex(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("")
    try:
        re.compile(value)
    except re.error as exc:
        raise ValueError(f"invalid regular expression: {exc}") from None
    return value


def _root(info: ValidationInfo) -> Path:
    context = info.context if isinstance(info.context, Mapping) else {}
    root = context.get("root")
    return root if isinstance(root, Path) else Path.cwd()


def _path(value: Any, info: ValidationInfo) -> Path:
    if isinstance(value, Path):
        path = value
    elif isinstance(value, str) and value.strip():
        path = Path(value)
    else:
        raise ValueError("")
    path = path.expanduser()
    return path if path.is_absolute() else (_root(info) / path).resolve()


def _http_url(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("")
    return value


_MATCHER_RE = re.compile(
    r"""^\s*(?P<name>[a-zA-Z_][a-zA-Z0-9_]*)\s*(?P<op>=~|!~|!=|=)\s*
        (?:"(?P<quoted>(?:[^"\\]|\\.)*)"|(?P<bare>[^"\s]*))\s*$""",
    re.VERBOSE,
)


class Matcher(BaseModel):
    """A label matcher in PromQL form: ``name="v"``, ``name!="v"``, ``name=~"re"``, ``name!~"re"``.

    Regexes are anchored at both ends, as in Prometheus.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    op: Literal["=", "!=", "=~", "!~"]
    value: str

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether a label set satisfies this matcher (a missing label is "")."""
        actual = labels.get(self.name, "")
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        found = re.fullmatch(self.value, actual) is not None
        return found if self.op == "=~" else not found

    def __str__(self) -> str:
        return f"{self.name}{self.op}{json.dumps(self.value)}"


def _matcher(value: Any) -> Matcher:
    if isinstance(value, Matcher):
        return value
    if not isinstance(value, str):
        raise ValueError("")
    match = _MATCHER_RE.match(value)
    if not match:
        raise ValueError("")
    quoted = match.group("quoted")
    text = json.loads(f'"{quoted}"') if quoted is not None else match.group("bare")
    op = match.group("op")
    if op in ("=~", "!~"):
        _regex(text)
    return Matcher(name=match.group("name"), op=op, value=text)


Int = Annotated[int, Strict()]
NonNegInt = Annotated[int, Strict(), annotated_types.Ge(0)]
PositiveInt = Annotated[int, Strict(), annotated_types.Ge(1)]
Float = Annotated[float, Strict()]
Bool = Annotated[bool, Strict()]
Str = Annotated[str, Strict()]
NonEmptyStr = Annotated[str, Strict(), annotated_types.MinLen(1)]
Glob = Annotated[str, Strict(), annotated_types.MinLen(1), _Expect("a non-empty glob pattern")]
LabelName = Annotated[
    str,
    Strict(),
    Field(pattern=LABEL_NAME_RE.pattern),
    _Expect(f"a label name matching {LABEL_NAME_RE.pattern}"),
]
MetricName = Annotated[
    str,
    Strict(),
    Field(pattern=METRIC_NAME_RE.pattern),
    _Expect(f"a metric name matching {METRIC_NAME_RE.pattern}"),
]
DurationMs = Annotated[
    int,
    BeforeValidator(_duration),
    _Expect(f"a duration such as {_DURATION_EXAMPLES}", format_duration_ms),
]
PositiveDurationMs = Annotated[
    int,
    BeforeValidator(_positive_duration),
    _Expect(f"a duration longer than 0 such as {_DURATION_EXAMPLES}", format_duration_ms),
]
SizeBytes = Annotated[
    int,
    BeforeValidator(_size),
    _Expect("a size such as 1048576, '512KB' or '1MiB'", format_size_bytes),
]
# A limit of 0 bytes would refuse everything (every file too large, every body).
PositiveSizeBytes = Annotated[
    int,
    BeforeValidator(_size),
    _Expect("a size larger than 0 such as 1048576, '512KB' or '1MiB'", format_size_bytes),
    annotated_types.Gt(0),
]
Fraction = Annotated[
    float,
    BeforeValidator(_fraction),
    _Expect("a fraction from 0 to 1 such as 0.05 or '5%'"),
    annotated_types.Ge(0.0),
    annotated_types.Le(1.0),
]
OpenFraction = Annotated[
    float,
    BeforeValidator(_fraction),
    _Expect("a fraction strictly between 0 and 1 such as 0.99 or '99%'"),
    annotated_types.Gt(0.0),
    annotated_types.Lt(1.0),
]
Percent = Annotated[
    float,
    BeforeValidator(_percent),
    _Expect("a percentage from 0 to 100 such as 80 or '80%'"),
    annotated_types.Ge(0.0),
    annotated_types.Le(100.0),
]
SeverityLevel = Annotated[
    Severity,
    BeforeValidator(_severity),
    _Expect(
        "a severity: one of " + ", ".join(s.value for s in Severity),
        lambda sev: sev.value,
    ),
]
Regex = Annotated[str, BeforeValidator(_regex), _Expect("a regular expression")]
ResolvedPath = Annotated[
    Path, BeforeValidator(_path), _Expect("a path (relative to the project root)", str)
]
HttpUrl = Annotated[
    str, BeforeValidator(_http_url), _Expect("an http:// or https:// URL", mask_url)
]
LabelMatcher = Annotated[
    Matcher,
    BeforeValidator(_matcher),
    _Expect('a label matcher such as job="api", env!="dev" or path=~"/api/.*"', str),
]
BanditLevel = Literal["low", "medium", "high"]


class _Section(BaseModel):
    """Base of every config section: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


# --------------------------------------------------------------------------- [store]


def _store_url(value: Any, info: ValidationInfo) -> str:
    if value is None:
        return f"sqlite:///{_root(info) / '.secperf' / 'secperf.db'}"
    if not isinstance(value, str) or not value.strip():
        raise ValueError("")
    text = value.strip()
    if "://" not in text:
        return f"sqlite:///{_path(text, info)}"
    scheme, rest = text.split("://", 1)
    scheme = scheme.lower()
    if scheme == "sqlite":
        if not rest.startswith("/"):
            raise ValueError("")
        path = rest[1:]
        if path in ("", ":memory:"):
            return "sqlite://" if path == "" else "sqlite:///:memory:"
        return f"sqlite:///{_path(path, info)}"
    if scheme in ("postgresql", "postgres", "postgresql+psycopg"):
        # psycopg 3 is the driver secperf ships with; SQLAlchemy's bare
        # "postgresql://" would pick psycopg2.
        if not urlsplit(f"postgresql://{rest}").hostname and "host=" not in rest:
            raise ValueError("a PostgreSQL URL needs a host")
        return f"postgresql+psycopg://{rest}"
    raise ValueError(f"unsupported database {scheme!r}")


StoreUrl = Annotated[
    str,
    BeforeValidator(_store_url),
    _Expect(
        "a SQLite path, a sqlite:///PATH URL or a postgresql+psycopg://USER@HOST/DB URL",
        mask_url,
    ),
]


class StoreConfig(_Section):
    """``[store]``: where secperf keeps its data and for how long."""

    url: StoreUrl = Field(default=None, validate_default=True)
    retention: DurationMs = parse_duration_ms("30d")

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        # A PostgreSQL URL may carry a password.
        for name, value in super().__repr_args__():
            yield name, mask_url(value) if name == "url" else value

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith("sqlite:")


# --------------------------------------------------------------------------- [bus]


def _bus_url(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("")
    if value == "memory://":
        return value
    parts = urlsplit(value)
    if parts.scheme not in ("nats", "tls") or not parts.hostname:
        raise ValueError("")
    try:
        parts.port  # noqa: B018 (raises on a bad port)
    except ValueError:
        raise ValueError("the port must be a number from 1 to 65535") from None
    return value


BusUrl = Annotated[
    str,
    BeforeValidator(_bus_url),
    _Expect("'memory://' or a NATS URL such as 'nats://127.0.0.1:4222'", mask_url),
]
NatsName = Annotated[
    str,
    Strict(),
    Field(pattern=r"^[A-Za-z0-9_-]+$"),
    _Expect("a NATS name of letters, digits, '_' and '-'"),
]


class BusConfig(_Section):
    """``[bus]``: the in-process bus (default) or NATS JetStream."""

    url: BusUrl = "memory://"
    queue_size: PositiveInt = 10_000
    stream: NatsName = "SECPERF"
    subject_prefix: NatsName = "secperf"

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        for name, value in super().__repr_args__():
            yield name, mask_url(value) if name == "url" else value

    @property
    def is_nats(self) -> bool:
        return self.url != "memory://"


# --------------------------------------------------------------------------- [scan]

#: Excluded by default: VCS metadata, virtualenvs, caches and secperf's own data.
DEFAULT_EXCLUDES: tuple[str, ...] = (
    ".git/",
    ".hg/",
    ".svn/",
    ".bzr/",
    "CVS/",
    ".venv/",
    "venv/",
    ".tox/",
    ".nox/",
    ".eggs/",
    "*.egg-info/",
    "node_modules/",
    "__pycache__/",
    ".mypy_cache/",
    ".pytest_cache/",
    ".ruff_cache/",
    ".secperf/",
)


BanditTestId = Annotated[
    str, Strict(), Field(pattern=r"^B\d{3}$"), _Expect("a bandit test id such as 'B101'")
]
PluginName = Annotated[
    str,
    Strict(),
    Field(pattern=r"^[A-Za-z][A-Za-z0-9_]*$"),
    _Expect("a detect-secrets plugin class name such as 'AWSKeyDetector'"),
]


class BanditConfig(_Section):
    """``[scan.bandit]``: which bandit tests run and the lowest levels reported."""

    skips: list[BanditTestId] = []
    tests: list[BanditTestId] = []
    severity: BanditLevel = "low"
    confidence: BanditLevel = "low"


class SecretsConfig(_Section):
    """``[scan.secrets]``: detect-secrets' plugins and line filters."""

    exclude_lines: list[Regex] = []
    # Plugin class name -> on/off; plugins not named keep detect-secrets' default.
    plugins: dict[PluginName, Bool] = {}


class DepsConfig(_Section):
    """``[scan.deps]``: the OSV data that dependency versions are matched against."""

    osv_db: ResolvedPath | None = None
    network: Bool = False
    osv_api_url: HttpUrl = "https://api.osv.dev"
    manifests: list[Glob] = []


class SemgrepConfig(_Section):
    """``[scan.semgrep]``: local rule files for semgrep, when it is installed."""

    rules: list[ResolvedPath] = []
    timeout: PositiveDurationMs = parse_duration_ms("5m")
    executable: NonEmptyStr = "semgrep"


class SarifImportConfig(_Section):
    """``[scan.sarif]``: SARIF 2.1.0 files from other tools to import as findings."""

    files: list[Glob] = []


#: Less than this cannot even parse an ordinary file in a scan worker.
MIN_WORKER_MEMORY = parse_size_bytes("64MiB")


def _worker_memory(value: Any) -> int:
    size = _size(value)
    if 0 < size < MIN_WORKER_MEMORY:
        raise ValueError("")
    return size


WorkerMemory = Annotated[
    int,
    BeforeValidator(_worker_memory),
    _Expect("0 (no limit) or a size of at least '64MiB' such as '2GiB'", format_size_bytes),
]


class ScanConfig(_Section):
    """``[scan]``: what is scanned, by which scanners, and what fails the scan."""

    paths: list[ResolvedPath] = Field(default=["."], validate_default=True)
    include: list[Glob] = []
    exclude: list[Glob] = list(DEFAULT_EXCLUDES)
    extend_exclude: list[Glob] = []
    respect_gitignore: Bool = True
    max_file_size: PositiveSizeBytes = parse_size_bytes("1MiB")
    jobs: NonNegInt = 0
    # Per file and scanner; the standard library's slowest file takes about 4 s
    # in bandit on a loaded machine. 0: no limit.
    file_timeout: DurationMs = parse_duration_ms("60s")
    # What a worker may take beyond its size at start. 0: no limit.
    worker_memory_limit: WorkerMemory = parse_size_bytes("2GiB")
    scanners: list[ScannerId] = list(SCANNER_IDS)
    cache: Bool = True
    fail_on: SeverityLevel = Severity.HIGH
    bandit: BanditConfig = BanditConfig()
    secrets: SecretsConfig = SecretsConfig()
    deps: DepsConfig = DepsConfig()
    semgrep: SemgrepConfig = SemgrepConfig()
    sarif: SarifImportConfig = SarifImportConfig()

    @property
    def all_excludes(self) -> list[str]:
        """``exclude`` followed by ``extend_exclude``."""
        return [*self.exclude, *self.extend_exclude]

    @property
    def effective_jobs(self) -> int:
        """``jobs``, with 0 meaning the number of CPUs."""
        return self.jobs or os.cpu_count() or 1


# --------------------------------------------------------------------------- [monitor]


class SystemCollectorConfig(_Section):
    """``[monitor.system]``: CPU, memory, load, disk and network of the host."""

    enabled: Bool = True
    interval: PositiveDurationMs = parse_duration_ms("1s")
    per_cpu: Bool = True


class ProcessCollectorConfig(_Section):
    """``[monitor.process]``: chosen processes, and secperf's own."""

    enabled: Bool = True
    interval: PositiveDurationMs = parse_duration_ms("1s")
    pids: list[PositiveInt] = []
    names: list[NonEmptyStr] = []
    cmdline_patterns: list[Regex] = []
    include_self: Bool = True


class PrometheusTargetConfig(_Section):
    """``[[monitor.prometheus.targets]]``: one endpoint in the Prometheus text format."""

    name: NonEmptyStr
    url: HttpUrl
    interval: PositiveDurationMs = parse_duration_ms("15s")
    timeout: PositiveDurationMs = parse_duration_ms("5s")
    labels: dict[LabelName, Str] = {}


class PrometheusScrapeConfig(_Section):
    """``[monitor.prometheus]``: targets to scrape."""

    enabled: Bool = True
    targets: list[PrometheusTargetConfig] = []


class ImpactConfig(_Section):
    """``[monitor.impact]``: fine-grained sampling of the machine while a scan runs."""

    enabled: Bool = True
    interval: PositiveDurationMs = parse_duration_ms("100ms")


class MonitorConfig(_Section):
    """``[monitor]``: the collectors; ``interval`` is the default of system and process."""

    enabled: Bool = True
    interval: PositiveDurationMs = parse_duration_ms("1s")
    system: SystemCollectorConfig = SystemCollectorConfig()
    process: ProcessCollectorConfig = ProcessCollectorConfig()
    prometheus: PrometheusScrapeConfig = PrometheusScrapeConfig()
    impact: ImpactConfig = ImpactConfig()

    @model_validator(mode="before")
    @classmethod
    def _inherit_interval(cls, data: Any) -> Any:
        # The system and process collectors follow monitor.interval unless set.
        if not isinstance(data, dict) or "interval" not in data:
            return data
        try:
            _positive_duration(data["interval"])
        except ValueError:
            return data  # reported once, at monitor.interval
        data = dict(data)
        for sub in ("system", "process"):
            section = data.get(sub, {})
            if isinstance(section, dict) and "interval" not in section:
                data[sub] = {**section, "interval": data["interval"]}
        return data


# --------------------------------------------------------------------------- [alerts]

AGGREGATIONS = ("last", "avg", "min", "max", "p50", "p95", "p99", "rate", "increase", "count")
COMPARISONS = (">", ">=", "<", "<=", "==", "!=")


class AlertRuleConfig(_Section):
    """``[[alerts.rules]]``: a threshold on an aggregated metric, for either side."""

    name: NonEmptyStr
    metric: MetricName
    matchers: list[LabelMatcher] = []
    aggregation: Literal[
        "last", "avg", "min", "max", "p50", "p95", "p99", "rate", "increase", "count"
    ] = "last"
    window: PositiveDurationMs = parse_duration_ms("5m")
    op: Literal[">", ">=", "<", "<=", "==", "!="] = ">"
    threshold: Float
    resolve_threshold: Float | None = None
    for_: DurationMs = Field(default=0, alias="for")
    keep_firing_for: DurationMs = 0
    severity: SeverityLevel = Severity.MEDIUM
    labels: dict[LabelName, Str] = {}
    annotations: dict[NonEmptyStr, Str] = {}


class InhibitRuleConfig(_Section):
    """``[[alerts.inhibit_rules]]``: firing source alerts mute matching target alerts."""

    source_matchers: Annotated[list[LabelMatcher], annotated_types.MinLen(1)]
    target_matchers: Annotated[list[LabelMatcher], annotated_types.MinLen(1)]
    equal: list[LabelName] = []


class NotifierConfig(_Section):
    """``[[alerts.notifiers]]``: where alert notifications go."""

    kind: Literal["webhook", "alertmanager", "log"]
    url: HttpUrl | None = None
    timeout: PositiveDurationMs = parse_duration_ms("10s")
    send_resolved: Bool = True


class AlertsConfig(_Section):
    """``[alerts]``: rule evaluation and Alertmanager-style noise control."""

    evaluation_interval: PositiveDurationMs = parse_duration_ms("15s")
    group_by: list[LabelName] = ["alertname"]
    group_wait: DurationMs = parse_duration_ms("30s")
    group_interval: PositiveDurationMs = parse_duration_ms("5m")
    repeat_interval: PositiveDurationMs = parse_duration_ms("4h")
    default_rules: Bool = True
    rules: list[AlertRuleConfig] = []
    # TOML files of [[rules]] in the rule-file form, which also holds the
    # correlation kinds (scan_impact, unexplained_anomaly): see docs/alerts.md.
    rule_files: list[ResolvedPath] = []
    inhibit_rules: list[InhibitRuleConfig] = []
    notifiers: list[NotifierConfig] = []


# --------------------------------------------------------------------------- [gate]


class MaxNewConfig(_Section):
    """``[gate.max_new]``: the most new findings allowed per severity (unset: no limit)."""

    critical: NonNegInt | None = None
    high: NonNegInt | None = None
    medium: NonNegInt | None = None
    low: NonNegInt | None = None
    info: NonNegInt | None = None

    def limits(self) -> dict[Severity, int]:
        """The limits that are set, by severity."""
        return {sev: limit for sev in Severity if (limit := getattr(self, sev.value)) is not None}


class OverheadBudgetConfig(_Section):
    """``[gate.overhead_budget]``: the most a scan may cost the machine (unset: not checked)."""

    cpu_seconds: Annotated[float, Strict(), annotated_types.Gt(0.0)] | None = None
    peak_rss: SizeBytes | None = None
    host_cpu_percent: Percent | None = None


class GateConfig(_Section):
    """``[gate]``: the conditions of the CI quality gate."""

    fail_on: SeverityLevel = Severity.HIGH
    max_new: MaxNewConfig = MaxNewConfig()
    block_on_secrets: Bool = True
    block_on_fixable_deps: Bool = True
    block_on_expired_acceptances: Bool = True
    min_coverage: Percent | None = None
    min_effect: Fraction = 0.05
    confidence: OpenFraction = 0.99
    scan_time_budget: Fraction = 0.20
    overhead_budget: OverheadBudgetConfig = OverheadBudgetConfig()
    waivers: ResolvedPath = Field(default="secperf-waivers.toml", validate_default=True)


# --------------------------------------------------------------------------- [server]


def _host(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError("")
    try:
        ipaddress.ip_address(value.strip("[]"))
        return value
    except ValueError:
        pass
    if re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?", value):
        return value
    raise ValueError("")


class ServerConfig(_Section):
    """``[server]``: the API and dashboard server; binds loopback unless told otherwise."""

    host: Annotated[str, BeforeValidator(_host), _Expect("an IP address or a host name")] = (
        "127.0.0.1"
    )
    port: Annotated[int, Strict(), annotated_types.Ge(0), annotated_types.Le(65535)] = 8765
    # Prefer token_env: a token written in a committed file is no secret.
    token: SecretStr | None = None
    token_env: Annotated[
        str,
        Strict(),
        Field(pattern=r"^([A-Za-z_][A-Za-z0-9_]*)?$"),
        _Expect("an environment variable name (or '' to read none)"),
    ] = "SECPERF_TOKEN"
    max_request_bytes: PositiveSizeBytes = parse_size_bytes("10MiB")

    @property
    def is_loopback(self) -> bool:
        return is_loopback_host(self.host)

    @property
    def bind(self) -> str:
        """``host:port`` as a URL authority (IPv6 in brackets)."""
        host = f"[{self.host}]" if ":" in self.host and not self.host.startswith("[") else self.host
        return f"{host}:{self.port}"


# --------------------------------------------------------------------------- [agent]


class AgentConfig(_Section):
    """``[agent]``: a host that publishes its metrics and scans to a central server."""

    host_label: NonEmptyStr = Field(default_factory=socket.gethostname)
    scan_interval: DurationMs = parse_duration_ms("1h")


# --------------------------------------------------------------------------- the whole


class Config(_Section):
    """The whole validated configuration."""

    store: StoreConfig = Field(default_factory=StoreConfig)
    bus: BusConfig = BusConfig()
    scan: ScanConfig = Field(default_factory=ScanConfig)
    monitor: MonitorConfig = MonitorConfig()
    alerts: AlertsConfig = AlertsConfig()
    gate: GateConfig = Field(default_factory=GateConfig)
    server: ServerConfig = ServerConfig()
    agent: AgentConfig = Field(default_factory=AgentConfig)

    @model_validator(mode="before")
    @classmethod
    def _validate_missing_sections(cls, data: Any) -> Any:
        # Absent sections are validated from {} rather than built by their
        # default factories, so that their relative paths resolve against the
        # project root passed in the validation context.
        if not isinstance(data, dict):
            return data
        return {**{name: {} for name in cls.model_fields}, **data}


@dataclass(frozen=True, slots=True)
class LoadedConfig:
    """A validated config with where it came from.

    ``source`` is None when no file was found (defaults); ``root`` is the
    directory relative paths were resolved against; ``token_source`` says where
    the server token came from ("file", "env:NAME") or None when there is none.
    """

    config: Config
    source: Path | None
    root: Path
    token_source: str | None = None

    @property
    def key_prefix(self) -> str:
        """How keys are written in the source file (``tool.secperf.`` in pyproject)."""
        return PYPROJECT_PREFIX if self.source and self.source.name == PYPROJECT_FILE_NAME else ""


# --------------------------------------------------------------------------- loading


def load_config(path: Path | None = None, project_dir: Path | None = None) -> LoadedConfig:
    """Find, read and validate the configuration; raises ``ConfigError`` naming each problem.

    ``path`` is an explicit file (``secperf.toml`` or a ``pyproject.toml`` with a
    ``[tool.secperf]`` table). Without it, ``project_dir`` (default: the current
    directory) is searched for ``secperf.toml``, then ``pyproject.toml``.
    Relative paths in the file resolve against ``project_dir`` when given, else
    the file's directory.
    """
    base = (project_dir or Path.cwd()).resolve()
    prefix = ""
    data: dict[str, Any] = {}
    source: Path | None = None
    if path is not None:
        source = path
        document = _read_toml(path)
        if path.name == PYPROJECT_FILE_NAME:
            prefix = PYPROJECT_PREFIX
            section = _pyproject_section(path, document)
            if section is None:
                raise ConfigError(
                    [f"{_show_path(path)}: no [tool.secperf] table; add one or use secperf.toml"],
                    path,
                )
            data = section
        else:
            data = document
        root = base if project_dir is not None else path.resolve().parent
    else:
        root = base
        candidate = base / CONFIG_FILE_NAME
        pyproject = base / PYPROJECT_FILE_NAME
        if candidate.is_file():
            source = candidate
            data = _read_toml(candidate)
        elif pyproject.is_file():
            section = _pyproject_section(pyproject, _read_toml(pyproject))
            if section is not None:
                source, data, prefix = pyproject, section, PYPROJECT_PREFIX
    label = _show_path(source) if source is not None else "defaults"

    try:
        config = Config.model_validate(data, context={"root": root})
    except ValidationError as exc:
        problems = [f"{label}: {line}" for line in _describe_errors(exc, data, prefix)]
        # The token and cross-key checks still run on what did parse, so that
        # every problem is reported at once, not one round of fixes at a time.
        problems += [
            f"{label}: {prefix}{key}: {message}"
            for key, message in _checks_despite(exc, data, root, prefix)
        ]
        raise ConfigError(problems, source) from None

    config, token_source, token_problems = _resolve_token(config, prefix)
    problems = [
        f"{label}: {prefix}{key}: {message}"
        for key, message in [*token_problems, *_cross_checks(config, prefix)]
    ]
    if problems:
        raise ConfigError(problems, source)
    return LoadedConfig(config=config, source=source, root=root, token_source=token_source)


def _show_path(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _read_toml(path: Path) -> dict[str, Any]:
    shown = _show_path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError([f"{shown}: no such file"], path) from None
    except IsADirectoryError:
        raise ConfigError([f"{shown}: is a directory, not a TOML file"], path) from None
    except OSError as exc:
        raise ConfigError([f"{shown}: cannot read: {exc.strerror or exc}"], path) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            [f"{shown}: not valid UTF-8 (byte {exc.start}); TOML files must be UTF-8"], path
        ) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        where = re.search(r"\s*\(at line (\d+), column (\d+)\)", message)
        if where:
            reason = message[: where.start()] + message[where.end() :]
            message = f"line {where.group(1)}, column {where.group(2)}: {reason.strip()}"
        elif "(at end of document)" in message:
            reason = message.replace("(at end of document)", "").strip()
            message = f"at the end of the file: {reason}"
        raise ConfigError([f"{shown}: invalid TOML: {message}"], path) from None


def _pyproject_section(path: Path, document: dict[str, Any]) -> dict[str, Any] | None:
    tool = document.get("tool")
    if not isinstance(tool, dict) or "secperf" not in tool:
        return None
    section = tool["secperf"]
    if not isinstance(section, dict):
        raise ConfigError(
            [
                f"{_show_path(path)}: tool.secperf: expected a table [tool.secperf], "
                f"got {_show(section)}"
            ],
            path,
        )
    return section


def _resolve_token(config: Config, prefix: str) -> tuple[Config, str | None, list[tuple[str, str]]]:
    server = config.server
    problems: list[tuple[str, str]] = []
    if server.token is not None:
        if len(server.token.get_secret_value()) < MIN_TOKEN_LENGTH:
            problems.append(
                (
                    "server.token",
                    f"the token must be at least {MIN_TOKEN_LENGTH} characters long; "
                    f"generate one (python -c 'import secrets; print(secrets.token_urlsafe(32))') "
                    f"and prefer {prefix}server.token_env to keep it out of the file",
                )
            )
        return config, "file", problems
    if not server.token_env:
        return config, None, problems
    value = os.environ.get(server.token_env, "")
    if not value:
        return config, None, problems
    if len(value) < MIN_TOKEN_LENGTH:
        problems.append(
            (
                "server.token_env",
                f"the token in ${server.token_env} must be at least "
                f"{MIN_TOKEN_LENGTH} characters long",
            )
        )
    updated = server.model_copy(update={"token": SecretStr(value)})
    return (
        config.model_copy(update={"server": updated}),
        f"env:{server.token_env}",
        problems,
    )


def _cross_checks(config: Config, prefix: str = "") -> list[tuple[str, str]]:
    """Rules that span several keys; each problem as (dotted key, message)."""
    problems: list[tuple[str, str]] = []
    server = config.server
    if not server.is_loopback and server.token is None:
        where = f"${server.token_env}" if server.token_env else f"{prefix}server.token"
        problems.append(
            (
                "server.host",
                f"binding {server.host!r} exposes secperf beyond this machine and requires a "
                f"token; set {where} (at least {MIN_TOKEN_LENGTH} characters) or bind 127.0.0.1",
            )
        )
    if len(set(config.scan.scanners)) != len(config.scan.scanners):
        problems.append(("scan.scanners", "a scanner is listed more than once"))
    deps = config.scan.deps
    if deps.osv_db is not None and not (
        deps.osv_db.is_dir() or (deps.osv_db.is_file() and deps.osv_db.suffix == ".zip")
    ):
        problems.append(
            (
                "scan.deps.osv_db",
                f"expected a directory of OSV JSON files or an OSV all.zip; "
                f"{str(deps.osv_db)!r} is neither",
            )
        )
    for index, rule_path in enumerate(config.scan.semgrep.rules):
        if not rule_path.exists():
            problems.append((f"scan.semgrep.rules[{index}]", f"no such file: {str(rule_path)!r}"))
    seen: set[str] = set()
    for index, target in enumerate(config.monitor.prometheus.targets):
        key = f"monitor.prometheus.targets[{index}]"
        if target.name in seen:
            problems.append((f"{key}.name", f"target name {target.name!r} is used twice"))
        seen.add(target.name)
        if target.timeout > target.interval:
            problems.append(
                (
                    f"{key}.timeout",
                    f"the timeout ({format_duration_ms(target.timeout)}) must not be longer "
                    f"than the interval ({format_duration_ms(target.interval)})",
                )
            )
    seen = set()
    for index, rule in enumerate(config.alerts.rules):
        key = f"alerts.rules[{index}]"
        if rule.name in seen:
            problems.append((f"{key}.name", f"rule name {rule.name!r} is used twice"))
        seen.add(rule.name)
        problems.extend(_hysteresis_problem(key, rule))
    for index, notifier in enumerate(config.alerts.notifiers):
        if notifier.kind != "log" and notifier.url is None:
            problems.append(
                (f"alerts.notifiers[{index}].url", f"a {notifier.kind} notifier needs a url")
            )
    return problems


#: Keys a cross-key problem depends on beyond its own (dotted, without prefix).
_CHECK_INPUTS: dict[str, tuple[str, ...]] = {
    "server.host": ("server.token", "server.token_env"),
    "server.token_env": ("server.token",),
}


def _checks_despite(
    error: ValidationError, data: Mapping[str, Any], root: Path, prefix: str
) -> list[tuple[str, str]]:
    """Token and cross-key problems of a config that failed validation.

    The rejected values are removed (a list with a bad item goes whole, so that
    indexes stay right) and the rest validated again with defaults in their
    place; a problem that depends on a removed key is dropped, because the
    default, not the user's value, would have caused it.
    """
    pruned: Any = copy.deepcopy(dict(data))
    removed: list[str] = []
    for _ in range(5):  # each round removes at least one key, or gives up
        progress = False
        for item in error.errors(include_url=False):
            path = _prunable(tuple(item["loc"]), item["type"] == "missing")
            if path and _prune(pruned, path):
                removed.append(".".join(path))
                progress = True
        if not progress:
            return []
        try:
            config = Config.model_validate(pruned, context={"root": root})
        except ValidationError as again:
            error = again
            continue
        break
    else:
        return []
    _, _, token_problems = _resolve_token(config, prefix)
    return [
        (key, message)
        for key, message in [*token_problems, *_cross_checks(config, prefix)]
        if not any(_depends_on(key, gone) for gone in removed)
    ]


def _prunable(loc: tuple[int | str, ...], missing: bool) -> tuple[str, ...]:
    """The table keys leading to what an error points at: up to a list, a ``[key]``
    marker or a validator's name; for a missing key, the table that lacks it."""
    path: list[str] = []
    for part in loc[:-1] if missing else loc:
        if not isinstance(part, str) or part == "[key]":
            break
        path.append(part)
    return tuple(path)


def _prune(data: Any, path: tuple[str, ...]) -> bool:
    """Remove ``path`` from nested tables; False when it is not there."""
    for part in path[:-1]:
        data = data.get(part) if isinstance(data, dict) else None
    if isinstance(data, dict) and path and path[-1] in data:
        del data[path[-1]]
        return True
    return False


def _depends_on(key: str, gone: str) -> bool:
    """Whether the problem at ``key`` may come from the default put in place of ``gone``."""
    plain = _INDEX_RE.sub("", key)
    if plain == gone or plain.startswith(gone + ".") or gone.startswith(plain + "."):
        return True
    return gone in _CHECK_INPUTS.get(plain, ())


def _hysteresis_problem(key: str, rule: AlertRuleConfig) -> list[tuple[str, str]]:
    # The resolve threshold must lie on the "healthy" side of the firing one,
    # or the alert would resolve while it still meets its firing condition.
    resolve = rule.resolve_threshold
    if resolve is None:
        return []
    where = f"{key}.resolve_threshold"
    if rule.op in ("==", "!="):
        return [(where, f"is only allowed with op >, >=, < or <=, not {rule.op!r}")]
    if rule.op in (">", ">=") and resolve > rule.threshold:
        return [(where, f"must be <= threshold ({rule.threshold:g}) when op is {rule.op!r}")]
    if rule.op in ("<", "<=") and resolve < rule.threshold:
        return [(where, f"must be >= threshold ({rule.threshold:g}) when op is {rule.op!r}")]
    return []


# --------------------------------------------------------------------------- error text


def _show(value: Any) -> str:
    """A TOML-flavoured rendering of a bad value, kept short."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, dict):
        text = "a table"
    else:
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _unwrap(annotation: Any) -> tuple[Any, list[Any]]:
    """Strip Annotated and Optional; return the core type and the collected metadata."""
    metadata: list[Any] = []
    while True:
        origin = typing.get_origin(annotation)
        if origin is Annotated:
            args = typing.get_args(annotation)
            annotation = args[0]
            metadata.extend(args[1:])
            continue
        if origin in (typing.Union, types.UnionType):
            members = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(members) == 1:
                annotation = members[0]
                continue
        return annotation, metadata


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _fields_by_key(model: type[BaseModel]) -> dict[str, FieldInfo]:
    return {(info.alias or name): info for name, info in model.model_fields.items()}


def _bounds_text(metadata: Sequence[Any], noun: str) -> str:
    low = high = None
    low_op = high_op = ""
    for item in metadata:
        for attr, op in (("ge", ">="), ("gt", ">")):
            if getattr(item, attr, None) is not None:
                low, low_op = getattr(item, attr), op
        for attr, op in (("le", "<="), ("lt", "<")):
            if getattr(item, attr, None) is not None:
                high, high_op = getattr(item, attr), op
    if low is not None and high is not None and low_op == ">=" and high_op == "<=":
        return f"{noun} from {low} to {high}"
    text = noun
    if low is not None:
        text += f" {low_op} {low}"
    if high is not None:
        text += f"{' and' if low is not None else ''} {high_op} {high}"
    return text


def _describe_type(annotation: Any, metadata: Sequence[Any], key: str) -> str:
    """What a value of this type looks like, in words a TOML user understands."""
    core, inner = _unwrap(annotation)
    metadata = [*metadata, *inner]
    for item in metadata:
        if isinstance(item, _Expect):
            return item.text
    if core is bool:
        return "true or false"
    if core is int:
        return _bounds_text(metadata, "an integer")
    if core is float:
        return _bounds_text(metadata, "a number")
    if core is str:
        if any(getattr(item, "min_length", None) for item in metadata):
            return "a non-empty string"
        return "a string"
    if core is SecretStr:
        return "a string"
    if typing.get_origin(core) is Literal:
        return "one of " + ", ".join(str(a) for a in typing.get_args(core))
    if _is_model(core):
        return f"a table [{key}]"
    origin = typing.get_origin(core)
    if origin is list:
        (item_type,) = typing.get_args(core)
        item_core, item_metadata = _unwrap(item_type)
        custom = any(isinstance(item, _Expect) for item in item_metadata)
        if _is_model(item_core) and not custom:
            return f"an array of tables [[{key}]]"
        noun = (
            "a non-empty list" if any(getattr(m, "min_length", 0) for m in metadata) else "a list"
        )
        return f"{noun}; each item {_describe_type(item_type, [], key)}"
    if origin is dict:
        value_type = typing.get_args(core)[1]
        return f"a table of {_describe_type(value_type, [], key)} values"
    return "a valid value"


@dataclass(slots=True)
class _Located:
    """Where a pydantic error points: display key, the type expected there, context."""

    key: str
    annotation: Any
    metadata: list[Any]
    parent: type[BaseModel] | None  # the model holding the last key
    parent_key: str
    parent_is_array: bool
    known: bool  # whether the last key is a field of its parent
    hint: str  # e.g. "in rule 'high-cpu'"


def _locate(loc: tuple[int | str, ...], data: Any) -> _Located:
    current: Any = Config
    metadata: list[Any] = []
    parts: list[str] = []
    parent: type[BaseModel] | None = Config
    parent_key = ""
    parent_is_array = False
    known = True
    hint = ""
    raw: Any = data
    in_array_item = False
    for index, item in enumerate(loc):
        core, _ = _unwrap(current)
        if _is_model(core) and isinstance(item, str):
            parent, parent_key, parent_is_array = core, ".".join(parts), in_array_item
            in_array_item = False
            parts.append(item)
            raw = raw.get(item) if isinstance(raw, dict) else None
            info = _fields_by_key(core).get(item)
            if info is None:
                known = False
                break
            current, metadata = info.annotation, list(info.metadata)
            continue
        origin = typing.get_origin(core)
        if origin is list and isinstance(item, int):
            parts[-1] = f"{parts[-1]}[{item}]"
            raw = raw[item] if isinstance(raw, list) and item < len(raw) else None
            current, metadata = typing.get_args(core)[0], []
            item_core, _ = _unwrap(current)
            if _is_model(item_core):
                in_array_item = True
                if isinstance(raw, dict) and isinstance(raw.get("name"), str):
                    hint = (
                        f"in {parts[-1].split('.')[-1].split('[')[0].rstrip('s')} {raw['name']!r}"
                    )
            continue
        if origin is dict and isinstance(item, str):
            parts.append(item)
            raw = raw.get(item) if isinstance(raw, dict) else None
            # pydantic marks a bad key (rather than a bad value) with "[key]" next.
            is_key = index + 1 < len(loc) and loc[index + 1] == "[key]"
            current, metadata = typing.get_args(core)[0 if is_key else 1], []
            if is_key:
                break
            continue
        break  # a union tag or validator name: nothing more to show
    return _Located(
        key=".".join(parts),
        annotation=current,
        metadata=metadata,
        parent=parent,
        parent_key=parent_key,
        parent_is_array=parent_is_array,
        known=known,
        hint=hint,
    )


_INDEX_RE = re.compile(r"\[\d+\]")


_TOML_KINDS = {
    bool: "true or false",
    int: "an integer",
    float: "a number",
    list: "an array",
    dict: "a table",
}


def _describe_errors(exc: ValidationError, data: Any, prefix: str) -> list[str]:
    lines: list[str] = []
    for error in exc.errors(include_url=False):
        where = _locate(tuple(error["loc"]), data)
        key = f"{prefix}{where.key}" if where.key else prefix.rstrip(".") or "(top level)"
        etype = error["type"]
        if etype == "extra_forbidden" or not where.known:
            allowed = ", ".join(_fields_by_key(where.parent)) if where.parent else ""
            if where.parent_key:
                section = prefix + _INDEX_RE.sub("", where.parent_key)
                section = f"[[{section}]]" if where.parent_is_array else f"[{section}]"
                text = f"unknown key; allowed keys in {section}: {allowed}"
            elif prefix:
                text = f"unknown key; allowed keys in [{prefix.rstrip('.')}]: {allowed}"
            else:
                text = f"unknown key; allowed top-level keys: {allowed}"
        else:
            expected = _describe_type(where.annotation, where.metadata, f"{prefix}{where.key}")
            if etype == "missing":
                text = f"required key is missing; expected {expected}"
            elif _unwrap(where.annotation)[0] is SecretStr:
                # A wrongly typed token is still the token: never echo it.
                kind = _TOML_KINDS.get(type(error["input"]), "another kind of value")
                text = f"expected {expected}, got {kind} (not shown)"
            else:
                text = f"expected {expected}, got {_show(error['input'])}"
                detail = _error_detail(error)
                if detail:
                    text += f" ({detail})"
        if where.hint:
            text += f" [{where.hint}]"
        lines.append(f"{key}: {text}")
    return lines


def _error_detail(error: Mapping[str, Any]) -> str:
    """The part of a validator's message that the type description does not already say."""
    if error["type"] != "value_error":
        return ""
    message = str(error.get("msg", ""))
    message = message.removeprefix("Value error, ").strip().rstrip(",")
    if message.startswith("invalid duration") or message.startswith("invalid size"):
        return ""
    return message


# --------------------------------------------------------------------------- export


def export_config(model: BaseModel) -> dict[str, Any]:
    """The config as plain TOML-ready data, in the units a user writes.

    Durations come back as ``"15s"``, sizes as ``"1MiB"``; the token and any
    password in a URL are masked. Unset optional keys are left out.
    """
    out: dict[str, Any] = {}
    for name, info in type(model).model_fields.items():
        value = getattr(model, name)
        if value is None:
            continue
        out[info.alias or name] = _export_value(value, info.annotation, list(info.metadata))
    return out


def _export_value(value: Any, annotation: Any, metadata: list[Any]) -> Any:
    core, inner = _unwrap(annotation)
    for item in [*metadata, *inner]:
        if isinstance(item, _Expect) and item.export is not None:
            return item.export(value)
    if isinstance(value, SecretStr):
        return MASK
    if isinstance(value, BaseModel):
        return export_config(value)
    if isinstance(value, list):
        item_type = typing.get_args(core)[0] if typing.get_args(core) else Any
        return [_export_value(v, item_type, []) for v in value]
    if isinstance(value, dict):
        args = typing.get_args(core)
        value_type = args[1] if len(args) == 2 else Any
        return {k: _export_value(v, value_type, []) for k, v in value.items()}
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, Severity):
        return value.value
    return value


def to_toml(data: Mapping[str, Any]) -> str:
    """Render exported config data as TOML that ``load_config`` reads back."""
    lines: list[str] = []
    _emit_table(lines, data, [], array_item=False)
    return "\n".join(lines).strip() + "\n"


_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def _toml_key(key: str) -> str:
    return key if _BARE_KEY.match(key) else json.dumps(key)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        inner = ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items())
        return "{ " + inner + " }" if inner else "{}"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def _emit_table(
    lines: list[str], table: Mapping[str, Any], path: list[str], *, array_item: bool
) -> None:
    name = ".".join(_toml_key(p) for p in path)
    if path:
        lines.append("")
        lines.append(f"[[{name}]]" if array_item else f"[{name}]")
    nested: list[tuple[str, Any]] = []
    for key, value in table.items():
        is_table = isinstance(value, dict) and value
        is_array_of_tables = (
            isinstance(value, list) and value and all(isinstance(v, dict) for v in value)
        )
        if is_table or is_array_of_tables:
            nested.append((key, value))
        else:
            lines.append(f"{_toml_key(key)} = {_toml_value(value)}")
    for key, value in nested:
        if isinstance(value, dict):
            _emit_table(lines, value, [*path, key], array_item=False)
        else:
            for item in value:
                _emit_table(lines, item, [*path, key], array_item=True)
