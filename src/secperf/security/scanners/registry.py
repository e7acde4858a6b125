"""The one list of scanners: for each id, what it does and how it is built from config.

Adding a scanner is writing its module (see ``interface.py``), naming it in
``model.ScannerId`` and giving it an entry here; ``[scan] scanners``, ``secperf
scan --scanners``, ``build_scanners`` and ``secperf config check`` all follow.
The names live in ``model.py`` because config, a layer below security, validates
``[scan] scanners`` and cannot read this module. Every shipped scanner runs by
default: ``[scan] scanners`` defaults to every id (config's default, for the same
reason); a scanner that cannot run here reports why and the scan goes on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from secperf.config import ScanConfig
from secperf.model import SCANNER_IDS, ScannerId
from secperf.security.redaction import DEFAULT_SECRET_KDF, SecretKdf
from secperf.security.scanners.bandit import BanditScanner
from secperf.security.scanners.deps import DepsScanner
from secperf.security.scanners.interface import Scanner
from secperf.security.scanners.sarif import DEFAULT_GLOBS, SarifScanner
from secperf.security.scanners.secrets import SecretsScanner
from secperf.security.scanners.semgrep import SemgrepScanner


@dataclass(frozen=True, slots=True)
class BuildContext:
    """What a scanner may be built from: the ``[scan]`` config and the run's inputs."""

    scan: ScanConfig
    salt: bytes  # the repository's salt for secret fingerprints
    osv_db: Path | None = None  # ``--osv-db``, before ``[scan.deps] osv_db``
    secret_kdf: SecretKdf = DEFAULT_SECRET_KDF  # the baseline's scrypt parameters


@dataclass(frozen=True, slots=True)
class ScannerSpec:
    """One scanner secperf ships: its id, a one-line description and its builder."""

    id: ScannerId
    description: str
    build: Callable[[BuildContext], Scanner]


def _bandit(ctx: BuildContext) -> Scanner:
    return BanditScanner(
        tests=ctx.scan.bandit.tests,
        skips=ctx.scan.bandit.skips,
        severity=ctx.scan.bandit.severity,
        confidence=ctx.scan.bandit.confidence,
    )


def _secrets(ctx: BuildContext) -> Scanner:
    return SecretsScanner(ctx.salt, kdf=ctx.secret_kdf)


def _deps(ctx: BuildContext) -> Scanner:
    db = ctx.osv_db or ctx.scan.deps.osv_db
    return DepsScanner(
        osv_db=str(db) if db else None,
        network=ctx.scan.deps.network,
        api_url=ctx.scan.deps.osv_api_url,
    )


def _semgrep(ctx: BuildContext) -> Scanner:
    return SemgrepScanner(
        rules=[str(r) for r in ctx.scan.semgrep.rules],
        executable=ctx.scan.semgrep.executable,
        timeout=ctx.scan.semgrep.timeout / 1000,
        memory_limit=ctx.scan.worker_memory_limit or None,
    )


def _sarif(ctx: BuildContext) -> Scanner:
    return SarifScanner(ctx.scan.sarif.files or DEFAULT_GLOBS)


#: Every scanner, in ``SCANNER_IDS`` order.
SCANNERS: tuple[ScannerSpec, ...] = (
    ScannerSpec("bandit", "Python SAST: bandit's checks, in-process per file", _bandit),
    ScannerSpec("secrets", "secrets: detect-secrets' plugins behind a keyword prefilter", _secrets),
    ScannerSpec("deps", "dependency vulnerabilities: pinned PyPI versions against OSV", _deps),
    ScannerSpec("semgrep", "custom rules through semgrep, when it is installed", _semgrep),
    ScannerSpec("sarif", "SARIF 2.1.0 reports of other tools found in the tree", _sarif),
)

_BY_ID: dict[str, ScannerSpec] = {spec.id: spec for spec in SCANNERS}


def expected_ids_text() -> str:
    """The ids as a sentence: ``bandit, secrets, deps, semgrep or sarif``."""
    *first, last = SCANNER_IDS
    return f"{', '.join(first)} or {last}"


def get_spec(scanner_id: str) -> ScannerSpec:
    """The scanner named ``scanner_id``; ``ValueError`` naming every id if there is none."""
    try:
        return _BY_ID[scanner_id]
    except KeyError:
        raise ValueError(
            f"unknown scanner {scanner_id!r}; expected {expected_ids_text()}"
        ) from None


__all__ = [
    "SCANNERS",
    "BuildContext",
    "ScannerSpec",
    "expected_ids_text",
    "get_spec",
]
