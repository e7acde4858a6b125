"""What a report records of the configuration: its hash and the scanners' versions."""

from __future__ import annotations

from secperf.compliance.digest import data_sha256
from secperf.config import Config
from secperf.config.export import export_config


def config_sha256(config: Config) -> str:
    """SHA-256 of the configuration as ``secperf config show`` exports it (secrets masked)."""
    return data_sha256(export_config(config))


def scanner_versions(config: Config) -> dict[str, str]:
    """Each enabled scanner's version as its cache key uses it (tool and adapter)."""
    # Loaded here: building the scanners brings the security package.
    from secperf.security.factory import build_scanners

    out: dict[str, str] = {}
    for scanner_id in config.scan.scanners:
        try:
            # Only the version is read: the salt (which changes secret fingerprints,
            # not versions) is a placeholder, so no project's salt is read or shown.
            (scanner,) = build_scanners(config.scan, b"report", only=[scanner_id])
            out[scanner_id] = scanner.version()
        except Exception as exc:  # a missing optional tool must not stop the report
            out[scanner_id] = f"unknown ({type(exc).__name__}: {exc})"
    return out
