"""Import SARIF 2.1.0 reports of other tools found in the tree as findings.

Each SARIF file is one file result; its findings point at the paths the report
names. How severities are read, and which results are skipped, is documented
in ``secperf.security.sarif_import``. A log with skipped results keeps its valid
findings and lists the skipped ones as the file's skip reason (as the deps
scanner does for a manifest with unreadable lines), so the scan says it was
partial. Such a log was partly checked (``FileResult.partial``) when any of its
results was read whole; a log whose every result was skipped, or that cannot
be read at all, checked nothing.

The logs are reports, not code: their results belong to the scan (counted as
its findings, in its series), but the log files are not counted in the scan's
coverage (``imports_results``), so a scan with SARIF logs covers what its code
scanners covered.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from pathlib import Path

from secperf.security.relpath import name_of
from secperf.security.sarif_import import SarifError, import_sarif
from secperf.security.scanners.interface import FileResult, Scanner, SourceFile, stable_hash

ADAPTER_VERSION = "4"  # 2: redacted text, nonsense locations skipped; 3: partial logs;
# 4: command-line credentials redacted
DEFAULT_GLOBS = ("*.sarif", "*.sarif.json")
#: Skipped results named one by one in a file's skip reason.
MAX_SKIPS_SHOWN = 5


class SarifScanner(Scanner):
    """Findings read from SARIF files whose paths match the configured globs.

    A glob without ``/`` matches the file name anywhere in the tree; one with
    ``/`` matches the whole path relative to the scan root.
    """

    id = "sarif"
    imports_results = True

    def __init__(self, files: Sequence[str] = DEFAULT_GLOBS) -> None:
        self.files = list(files)

    def version(self) -> str:
        return ADAPTER_VERSION

    def config_hash(self) -> str:
        return stable_hash(self.id, *self.files)

    def unavailable_reason(self) -> str | None:
        if not self.files:
            return "no SARIF file globs configured"
        return None

    def applies_to(self, relpath: str) -> bool:
        name = name_of(relpath)
        for pattern in self.files:
            target = relpath if "/" in pattern else name
            if fnmatch.fnmatchcase(target, pattern):
                return True
        return False

    def scan_file(self, root: Path, source: SourceFile) -> FileResult:
        try:
            imported = import_sarif(source.content, root, source.relpath)
        except SarifError as exc:
            return FileResult(source.relpath, skipped=f"malformed SARIF in {source.relpath}: {exc}")
        except RecursionError:
            return FileResult(
                source.relpath, skipped=f"malformed SARIF in {source.relpath}: nested too deeply"
            )
        # The valid results are kept; the skip says the log was only partly imported.
        skipped = skipped_summary(imported.skipped)
        return FileResult(
            source.relpath,
            findings=imported.findings,
            skipped=skipped,
            # Some results were read: the log was checked, if not whole.
            partial=skipped is not None and imported.checked > 0,
        )


def skipped_summary(skipped: Sequence[str], shown: int = MAX_SKIPS_SHOWN) -> str | None:
    """The results a log left out, as one skip reason (the first ``shown`` of them in full)."""
    if not skipped:
        return None
    count = f"{len(skipped)} SARIF result{'s' if len(skipped) != 1 else ''} skipped"
    reason = f"{count}: {'; '.join(skipped[:shown])}"
    if len(skipped) > shown:
        reason += f"; and {len(skipped) - shown} more"
    return reason
