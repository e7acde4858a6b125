"""The ``bandit`` scanner: bandit's own checks, run in-process one file at a time.

Results equal the bandit CLI's on the same files (``bandit -f json FILE...``):
the same set of (file, line, test id). Each file goes through the very method
the CLI's ``BanditManager.run_tests`` calls for it (``_parse_file``: the
``# nosec`` comments, the AST visitor, every enabled test), fed with the bytes
the validator already read. One manager, with its loaded test set, is kept per
worker process and options; it is built on first use, so a ``BanditScanner``
stays a few plain attributes that pickle cheaply.

Severity mapping: bandit HIGH -> high, MEDIUM -> medium, LOW -> low,
UNDEFINED -> info. Nothing maps to critical: bandit rates code patterns, not
exploitability, so its HIGH is our high. Confidence is kept (lowercased) and
so is bandit's CWE id. ``column`` is 1-based (bandit's ``col_offset`` + 1).

A file bandit cannot scan (syntax error, NUL bytes, undecodable source) gets
``FileResult.skipped`` with bandit's own reason, as the CLI lists it under
``errors``.
"""

from __future__ import annotations

import io
import logging
import re
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

from secperf.model import Finding, Severity
from secperf.security.redaction import redact_text
from secperf.security.relpath import suffix_of
from secperf.security.scanners.interface import (
    FileResult,
    FingerprintCounter,
    Scanner,
    SourceFile,
    stable_hash,
)

#: Bumped when this adapter's output changes for the same bandit version.
ADAPTER_VERSION = "3"  # 2: snippets and messages redacted; 3: command-line credentials

#: Suffixes bandit treats as Python when it walks a directory, plus stub files.
PYTHON_SUFFIXES = frozenset({".py", ".pyi", ".pyw"})

#: bandit's hardcoded-password tests, whose message and code hold the password.
_PASSWORD_TESTS = frozenset({"B105", "B106", "B107"})
_QUOTED = re.compile(r"""(['"])((?:\\.|(?!\1).)*)\1""")

#: Lines of a flagged statement kept as its snippet (and hashed into its fingerprint).
MAX_SNIPPET_LINES = 10

_LEVELS = ("LOW", "MEDIUM", "HIGH")

_SEVERITY = {
    "HIGH": Severity.HIGH,
    "MEDIUM": Severity.MEDIUM,
    "LOW": Severity.LOW,
    "UNDEFINED": Severity.INFO,
}

#: (tests, skips, severity, confidence) -> a ready manager, per process.
_MANAGERS: dict[tuple[tuple[str, ...], tuple[str, ...], str, str], Any] = {}


def _level(value: str, what: str) -> str:
    level = value.strip().upper()
    if level not in _LEVELS:
        raise ValueError(f"bandit {what} level {value!r} is not one of low, medium, high")
    return level


def _check_test_ids(ids: Iterable[str], what: str) -> tuple[str, ...]:
    cleaned = tuple(sorted({i.strip() for i in ids if i.strip()}))
    if not cleaned:
        # Nothing to check: bandit's plugins (~0.15 s to load) wait for the first scan.
        return cleaned
    from bandit.core import extension_loader  # type: ignore[import-untyped]

    unknown = [i for i in cleaned if not extension_loader.MANAGER.check_id(i)]
    if unknown:
        raise ValueError(f"unknown bandit test id(s) in {what}: {', '.join(unknown)}")
    return cleaned


def bandit_version() -> str:
    """bandit's ``__version__`` (its distribution's version), read without importing bandit.

    ``import bandit`` loads every plugin through stevedore (~0.15 s), which a
    scan whose files are all cached does not need.
    """
    if not _VERSION:
        from importlib import metadata

        try:
            _VERSION.append(metadata.version("bandit"))
        except metadata.PackageNotFoundError:
            import bandit  # type: ignore[import-untyped]

            _VERSION.append(str(bandit.__version__))
    return _VERSION[0]


_VERSION: list[str] = []


class BanditScanner(Scanner):
    """Python SAST findings from bandit's plugins and blacklists.

    ``tests`` limits the run to those test ids (all when empty), ``skips`` drops
    ids; ``severity`` and ``confidence`` are the lowest levels reported (low,
    like the CLI's default). Unknown ids or levels raise ValueError.
    """

    id = "bandit"

    def __init__(
        self,
        *,
        tests: Iterable[str] = (),
        skips: Iterable[str] = (),
        severity: str = "low",
        confidence: str = "low",
    ) -> None:
        self.tests = _check_test_ids(tests, "tests")
        self.skips = _check_test_ids(skips, "skips")
        self.severity = _level(severity, "severity")
        self.confidence = _level(confidence, "confidence")

    # ------------------------------------------------------------------ identity

    def version(self) -> str:
        python = f"{sys.version_info.major}.{sys.version_info.minor}"
        # bandit parses with the running interpreter's ast, so Python's version matters too.
        return f"bandit {bandit_version()}; adapter {ADAPTER_VERSION}; python {python}"

    def config_hash(self) -> str:
        return stable_hash(
            "tests=" + ",".join(self.tests),
            "skips=" + ",".join(self.skips),
            "severity=" + self.severity,
            "confidence=" + self.confidence,
        )

    def applies_to(self, relpath: str) -> bool:
        return suffix_of(relpath).lower() in PYTHON_SUFFIXES

    # ------------------------------------------------------------------ scanning

    def scan_file(self, root: Path, source: SourceFile) -> FileResult:
        started = time.perf_counter()
        result = FileResult(relpath=source.relpath)
        try:
            self._scan_into(result, root, source)
        except Exception as exc:  # bandit failing on one file must not end the scan
            result.findings = []
            result.skipped = redact_text(f"bandit failed: {type(exc).__name__}: {exc}")
        result.duration_ms = (time.perf_counter() - started) * 1000.0
        return result

    def _manager(self) -> Any:
        key = (self.tests, self.skips, self.severity, self.confidence)
        manager = _MANAGERS.get(key)
        if manager is None:
            from bandit.core import config as b_config
            from bandit.core import manager as b_manager

            # bandit logs per-file problems (which we return as skip reasons) at
            # warning level; keep them out of stderr unless the application
            # configured logging itself.
            logger = logging.getLogger("bandit")
            if not logger.handlers:
                logger.addHandler(logging.NullHandler())
            profile = {"include": set(self.tests), "exclude": set(self.skips)}
            manager = b_manager.BanditManager(b_config.BanditConfig(), "file", profile=profile)
            _MANAGERS[key] = manager
        return manager

    def _scan_into(self, result: FileResult, root: Path, source: SourceFile) -> None:
        from bandit.core import metrics as b_metrics

        if b"\x00" in source.content:
            result.skipped = "binary file (NUL bytes), not Python source"
            return
        manager = self._manager()
        # The same name the CLI would use; bandit derives the module's qualified
        # name from it (looking for __init__.py files on the way up).
        fname = str(root.joinpath(*PurePosixPath(source.relpath).parts))
        manager.results = []
        manager.skipped = []
        manager.scores = []
        manager.metrics = b_metrics.Metrics()
        manager._parse_file(fname, io.BytesIO(source.content), [fname])
        if manager.skipped:
            result.skipped = redact_text("; ".join(str(r) for _, r in manager.skipped))
            return
        issues = manager.get_issue_list(sev_level=self.severity, conf_level=self.confidence)
        counts = manager.metrics.data.get(fname, {})
        result.suppressed = int(counts.get("nosec", 0)) + int(counts.get("skipped_tests", 0))
        result.findings = self._to_findings(source, issues)

    def _to_findings(self, source: SourceFile, issues: Sequence[Any]) -> list[Finding]:
        from bandit.core import docs_utils

        lines = source.content.decode("utf-8", errors="replace").splitlines()
        ordered = sorted(issues, key=lambda i: (i.lineno, i.col_offset, i.test_id))
        counter = FingerprintCounter()
        findings: list[Finding] = []
        for issue in ordered:
            first = int(issue.lineno)
            span = [int(n) for n in (issue.linerange or [first]) if int(n) > 0] or [first]
            start, end = min(span), max(span)
            shown = lines[max(start, 1) - 1 : min(end, start + MAX_SNIPPET_LINES - 1)]
            # A line flagged for any reason may hold a secret (a token beside
            # verify=False): the code is redacted before it is fingerprinted or kept.
            # The password tests quote the password they found, so every quoted
            # string of their code and message is taken for one.
            password_test = issue.test_id in _PASSWORD_TESTS
            code = redact_text("\n".join(shown), filename=source.relpath, strict=password_test)
            message = redact_text(issue.text, strict=password_test)
            # The password tests' fingerprints hide every quoted string, as they
            # always did, so that baselines keep them.
            identity = _QUOTED.sub('"<redacted>"', code) if password_test else code
            cwe = int(getattr(issue.cwe, "id", 0) or 0)
            findings.append(
                Finding(
                    fingerprint=counter.fingerprint(issue.test_id, source.relpath, identity),
                    rule_id=issue.test_id,
                    scanner=self.id,
                    severity=_SEVERITY.get(issue.severity, Severity.INFO),
                    message=message,
                    path=source.relpath,
                    line=first,
                    end_line=end,
                    column=int(issue.col_offset) + 1 if issue.col_offset >= 0 else None,
                    category="sast",
                    confidence=str(issue.confidence).lower(),
                    cwe=cwe or None,
                    snippet=code,
                    help_url=docs_utils.get_url(issue.test_id),
                    properties={"test_name": issue.test},
                )
            )
        return findings
