"""Build the configured scanners and validator from ``[scan]`` config."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from secperf.config import ScanConfig
from secperf.security.baseline import Baseline
from secperf.security.discovery import FileDiscovery
from secperf.security.scanners.bandit import BanditScanner
from secperf.security.scanners.deps import DepsScanner
from secperf.security.scanners.interface import Scanner
from secperf.security.scanners.sarif import DEFAULT_GLOBS, SarifScanner
from secperf.security.scanners.secrets import SecretsScanner
from secperf.security.scanners.semgrep import SemgrepScanner

CACHE_FILE = Path(".secperf") / "cache.db"


def build_scanners(
    scan: ScanConfig,
    salt: bytes,
    *,
    only: Sequence[str] | None = None,
    osv_db: Path | None = None,
) -> list[Scanner]:
    """The scanners ``[scan].scanners`` enables (or ``only``), configured."""
    wanted = list(only) if only else list(scan.scanners)
    scanners: list[Scanner] = []
    for scanner_id in wanted:
        if scanner_id == "bandit":
            scanners.append(
                BanditScanner(
                    tests=scan.bandit.tests,
                    skips=scan.bandit.skips,
                    severity=scan.bandit.severity,
                    confidence=scan.bandit.confidence,
                )
            )
        elif scanner_id == "secrets":
            scanners.append(SecretsScanner(salt))
        elif scanner_id == "deps":
            db = osv_db or scan.deps.osv_db
            scanners.append(
                DepsScanner(
                    osv_db=str(db) if db else None,
                    network=scan.deps.network,
                    api_url=scan.deps.osv_api_url,
                )
            )
        elif scanner_id == "semgrep":
            scanners.append(
                SemgrepScanner(
                    rules=[str(r) for r in scan.semgrep.rules],
                    executable=scan.semgrep.executable,
                    timeout=scan.semgrep.timeout / 1000,
                )
            )
        elif scanner_id == "sarif":
            scanners.append(SarifScanner(scan.sarif.files or DEFAULT_GLOBS))
        else:
            raise ValueError(
                f"unknown scanner {scanner_id!r}; expected bandit, secrets, deps, semgrep or sarif"
            )
    return scanners


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


__all__ = ["CACHE_FILE", "Baseline", "build_discovery", "build_scanners", "scan_paths"]
