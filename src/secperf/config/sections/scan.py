"""``[scan]``: what is scanned, by which scanners with which settings, and what fails a scan."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, Strict

from secperf.config.fields import (
    Bool,
    DurationMs,
    Expect,
    Glob,
    HttpUrl,
    NonEmptyStr,
    NonNegInt,
    PositiveDurationMs,
    PositiveSizeBytes,
    Regex,
    ResolvedPath,
    Section,
    SeverityLevel,
    validate_size,
)
from secperf.config.sections.impact import ImpactConfig
from secperf.config.sections.schedule import ScheduleConfig
from secperf.config.units import (
    format_size_bytes,
    mask_url,
    parse_duration_ms,
    parse_size_bytes,
)
from secperf.model import SCANNER_IDS, ScannerId, Severity

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
    str, Strict(), Field(pattern=r"^B\d{3}$"), Expect("a bandit test id such as 'B101'")
]
PluginName = Annotated[
    str,
    Strict(),
    Field(pattern=r"^[A-Za-z][A-Za-z0-9_]*$"),
    Expect("a detect-secrets plugin class name such as 'AWSKeyDetector'"),
]

BanditLevel = Literal["low", "medium", "high"]


class BanditConfig(Section):
    """``[scan.bandit]``: which bandit tests run and the lowest levels reported."""

    skips: list[BanditTestId] = []
    tests: list[BanditTestId] = []
    severity: BanditLevel = "low"
    confidence: BanditLevel = "low"


class SecretsConfig(Section):
    """``[scan.secrets]``: detect-secrets' plugins and line filters."""

    exclude_lines: list[Regex] = []
    # Plugin class name -> on/off; plugins not named keep detect-secrets' default.
    plugins: dict[PluginName, Bool] = {}


class DepsConfig(Section):
    """``[scan.deps]``: the OSV data that dependency versions are matched against."""

    osv_db: ResolvedPath | None = None
    network: Bool = False
    osv_api_url: HttpUrl = "https://api.osv.dev"
    manifests: list[Glob] = []

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        # A private OSV mirror's URL may carry a password or a ?token=.
        for name, value in super().__repr_args__():
            yield name, mask_url(value) if name == "osv_api_url" else value


class SemgrepConfig(Section):
    """``[scan.semgrep]``: local rule files for semgrep, when it is installed."""

    rules: list[ResolvedPath] = []
    timeout: PositiveDurationMs = parse_duration_ms("5m")
    executable: NonEmptyStr = "semgrep"


class SarifImportConfig(Section):
    """``[scan.sarif]``: SARIF 2.1.0 files from other tools to import as findings."""

    files: list[Glob] = []


#: Less than this cannot even parse an ordinary file in a scan worker.
MIN_WORKER_MEMORY = parse_size_bytes("64MiB")


def _worker_memory(value: Any) -> int:
    size = validate_size(value)
    if 0 < size < MIN_WORKER_MEMORY:
        raise ValueError("")
    return size


WorkerMemory = Annotated[
    int,
    BeforeValidator(_worker_memory),
    Expect("0 (no limit) or a size of at least '64MiB' such as '2GiB'", format_size_bytes),
]


class ScanConfig(Section):
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
    impact: ImpactConfig = ImpactConfig()
    # Periodic scans of ``up`` besides its file watching; 0: none.
    every: DurationMs = 0
    schedule: ScheduleConfig = ScheduleConfig()

    @property
    def all_excludes(self) -> list[str]:
        """``exclude`` followed by ``extend_exclude``."""
        return [*self.exclude, *self.extend_exclude]

    @property
    def effective_jobs(self) -> int:
        """``jobs``, with 0 meaning the number of CPUs."""
        return self.jobs or os.cpu_count() or 1
