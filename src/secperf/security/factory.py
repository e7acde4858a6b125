"""Build the configured scanners and validator from ``[scan]`` config.

``ScanOptions`` carries what a command or the agent may override of ``[scan]``;
``make_validator`` is the one place a ``SecurityValidator`` is put together.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from secperf.config import ScanConfig
from secperf.events import Event
from secperf.security.baseline import (
    BASELINE_FILE,
    Baseline,
    load_baseline,
    project_salt,
    project_secret_kdf,
)
from secperf.security.cache import ScanCache
from secperf.security.discovery import FileDiscovery
from secperf.security.redaction import DEFAULT_SECRET_KDF, SecretKdf
from secperf.security.scanners.interface import Scanner
from secperf.security.scanners.registry import BuildContext, get_spec
from secperf.security.triage import TriageDecision
from secperf.security.validator import (
    Progress,
    PublishMany,
    SecurityValidator,
    TriageProvider,
)
from secperf.security.workers import ScanLimits

CACHE_FILE = Path(".secperf") / "cache.db"


@dataclass(frozen=True, slots=True)
class ScanOptions:
    """What the command line may override of ``[scan]``."""

    root: Path
    scanners: Sequence[str] | None = None
    jobs: int | None = None
    use_cache: bool = True
    osv_db: Path | None = None
    paths: Sequence[str] | None = None


def baseline_path(root: Path) -> Path:
    """Where the repository's baseline file is."""
    return root / BASELINE_FILE


def load_project_baseline(root: Path) -> Baseline | None:
    """The repository's baseline; raises BaselineError naming the file when malformed."""
    return load_baseline(baseline_path(root))


def build_scanners(
    scan: ScanConfig,
    salt: bytes,
    *,
    only: Sequence[str] | None = None,
    osv_db: Path | None = None,
    secret_kdf: SecretKdf = DEFAULT_SECRET_KDF,
) -> list[Scanner]:
    """The scanners ``[scan].scanners`` enables (or ``only``), configured."""
    wanted = list(only) if only else list(scan.scanners)
    ctx = BuildContext(scan=scan, salt=salt, osv_db=osv_db, secret_kdf=secret_kdf)
    return [get_spec(scanner_id).build(ctx) for scanner_id in wanted]


def build_discovery(scan: ScanConfig) -> FileDiscovery:
    """File discovery with the configured globs, .gitignore handling and size limit."""
    return FileDiscovery(
        include=scan.include,
        exclude=scan.all_excludes,
        respect_gitignore=scan.respect_gitignore,
        max_file_size=scan.max_file_size,
    )


def scan_paths(scan: ScanConfig, root: Path) -> list[str]:
    """``[scan].paths`` relative to ``root`` (config resolves them to absolute paths)."""
    paths: list[str] = []
    for path in scan.paths:
        resolved = Path(path).resolve()
        paths.append(
            resolved.relative_to(root).as_posix() if resolved.is_relative_to(root) else str(path)
        )
    return paths or ["."]


def make_validator(
    scan_cfg: ScanConfig,
    options: ScanOptions,
    baseline: Baseline | None,
    triage: dict[str, TriageDecision] | TriageProvider,
    publish: Callable[[Event], None] | None,
    progress: Progress | None,
    *,
    publish_many: PublishMany | None = None,
) -> SecurityValidator:
    """A validator configured from ``[scan]`` with the command line's overrides."""
    salt = project_salt(options.root, baseline)
    scanners = build_scanners(
        scan_cfg,
        salt,
        only=options.scanners,
        osv_db=options.osv_db,
        secret_kdf=project_secret_kdf(baseline),
    )
    cache = None
    if options.use_cache and scan_cfg.cache:
        cache = ScanCache(options.root / CACHE_FILE)
    return SecurityValidator(
        scanners,
        discovery=build_discovery(scan_cfg),
        cache=cache,
        jobs=options.jobs if options.jobs is not None else scan_cfg.jobs,
        baseline=baseline,
        triage=triage,
        publish=publish,
        publish_many=publish_many,
        progress=progress,
        limits=ScanLimits(
            file_timeout_s=scan_cfg.file_timeout / 1000 or None,
            memory_bytes=scan_cfg.worker_memory_limit or None,
        ),
    )


__all__ = [
    "CACHE_FILE",
    "Baseline",
    "ScanOptions",
    "baseline_path",
    "build_discovery",
    "build_scanners",
    "load_project_baseline",
    "make_validator",
    "scan_paths",
]
