"""Build the configured scanners and validator from ``[scan]`` config."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from secperf.config import ScanConfig
from secperf.security.baseline import Baseline
from secperf.security.discovery import FileDiscovery
from secperf.security.scanners.interface import Scanner
from secperf.security.scanners.registry import BuildContext, get_spec

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
    ctx = BuildContext(scan=scan, salt=salt, osv_db=osv_db)
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


__all__ = ["CACHE_FILE", "Baseline", "build_discovery", "build_scanners", "scan_paths"]
