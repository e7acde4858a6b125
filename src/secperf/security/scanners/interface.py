"""The scanner contract: adding a scanner is adding one module that implements it.

The validator discovers files, reads them once, checks the content-hash cache
and hands batches of uncached files to ``Scanner.scan_batch`` inside worker
processes. Scanners therefore must be picklable (plain attributes set in
``__init__``), must not touch the store or the bus, and must never raise for one
bad file: they return a ``FileResult`` with ``skipped`` set to the reason.
"""

from __future__ import annotations

import abc
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from secperf.model import Finding, make_fingerprint, normalise_code


@dataclass(frozen=True, slots=True)
class SourceFile:
    """One file to scan: its path relative to the scan root (POSIX) and its bytes."""

    relpath: str
    content: bytes


@dataclass(slots=True)
class FileResult:
    """What one scanner found in one file, or why it could not scan it."""

    relpath: str
    findings: list[Finding] = field(default_factory=list)
    skipped: str | None = None  # reason when the file could not be scanned
    duration_ms: float = 0.0
    suppressed: int = 0  # findings dropped by inline suppressions
    # False when the result depends on other files than this one (a requirements
    # file's -r includes, a lock file beside it): its content hash cannot key it.
    cacheable: bool = True
    # With ``skipped``: the rest of the file was checked (a manifest with a few
    # unpinned requirements); the file counts as skipped, but its scanner did work.
    partial: bool = False


class Scanner(abc.ABC):
    """A security scanner over files.

    ``id`` names it in config, findings and timings; ``version`` and
    ``config_hash`` enter the cache key so that a new tool version or a changed
    ruleset invalidates exactly the cached results it must.
    """

    id: str = ""
    #: True for a scanner that reads other tools' reports (SARIF), not code: the
    #: files it reads are not counted in the scan's coverage.
    imports_results: bool = False

    @abc.abstractmethod
    def version(self) -> str:
        """The version of the underlying tool (and of this adapter)."""

    @abc.abstractmethod
    def config_hash(self) -> str:
        """A stable hash of everything in the configuration that changes results."""

    def unavailable_reason(self) -> str | None:
        """None when the scanner can run here, else why not (e.g. not installed)."""
        return None

    @abc.abstractmethod
    def applies_to(self, relpath: str) -> bool:
        """Whether this scanner wants the file (decided from its path alone)."""

    def scan_batch(self, root: Path, files: Sequence[SourceFile]) -> list[FileResult]:
        """Scan several files; the default scans them one by one.

        Scanners with a high start-up cost (a subprocess) override this to
        handle the whole batch at once. One result per input file, same order.
        """
        return [self.scan_file(root, source) for source in files]

    @abc.abstractmethod
    def scan_file(self, root: Path, source: SourceFile) -> FileResult:
        """Scan one file. Never raises for a bad file: sets ``skipped`` instead."""


class FingerprintCounter:
    """Gives each finding its line-independent fingerprint.

    Identical normalised matches of one rule in one file are told apart by their
    occurrence index (0, 1, ...), counted in the order the scanner reports them,
    so callers must feed findings of a file sorted by position.
    """

    def __init__(self) -> None:
        self._seen: dict[tuple[str, str, str], int] = {}

    def fingerprint(self, rule_id: str, path: str, code: str) -> str:
        key = (rule_id, path, normalise_code(code))
        occurrence = self._seen.get(key, 0)
        self._seen[key] = occurrence + 1
        return make_fingerprint(rule_id, path, code, occurrence)


def stable_hash(*parts: str) -> str:
    """A short sha256 over ``parts``, for ``config_hash`` implementations."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode())
        digest.update(b"\x00")
    return digest.hexdigest()[:16]
