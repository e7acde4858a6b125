"""Dependency vulnerabilities: pinned and locked PyPI versions matched against OSV.

Each manifest (requirements*.txt, requirements/*.txt, pyproject.toml,
poetry.lock, uv.lock, Pipfile.lock) is one file result, read whole: a
requirements file's ``-r`` includes and ``-c`` constraints are followed, and a
lock file beside a manifest pins what the manifest leaves as a range (see
``manifests.resolve_manifest``). Only exact versions are matched; a
requirement whose installed version still cannot be told (``requests>=2`` with
no constraint or lock) is not silently dropped: the file's result lists them
as a skip reason ("cannot tell the installed version"), so coverage says the
file was only partly checked. Results that depend on other files (includes, a
lock beside the manifest) are not cached by content.

The advisories come from a local OSV database (a directory of JSON records or
an ``all.zip``) when one is given, else from the OSV API when network access is
allowed. Severity follows ``secperf.security.osv``.
"""

from __future__ import annotations

import datetime
import logging
import time
import zipfile
from collections.abc import Sequence
from pathlib import Path

import packaging
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from secperf.model import Finding
from secperf.security.manifests import (
    Dependency,
    ManifestError,
    ManifestParse,
    manifest_kind,
    resolve_manifest,
)
from secperf.security.osv import (
    DEFAULT_API_URL,
    OsvApiError,
    OsvClient,
    OsvDatabase,
    OsvRecordError,
    RejectedRecord,
    Vulnerability,
    database_fingerprint,
    deduplicate,
    fixed_versions,
    is_affected,
    parse_record,
)
from secperf.security.redaction import redact_text
from secperf.security.scanners.interface import (
    FileResult,
    FingerprintCounter,
    Scanner,
    SourceFile,
    stable_hash,
)

log = logging.getLogger(__name__)

ADAPTER_VERSION = "4"  # 2: messages redacted; 3: includes, constraints, unpinned listed;
# 4: command-line credentials redacted (a skipped line may quote one)

# Loaded once per process, keyed by (path, fingerprint): workers receive the
# scanner pickled and must not ship the database with it.
_DATABASES: dict[tuple[str, str], OsvDatabase] = {}


def _load_database(path: str) -> OsvDatabase:
    key = (path, database_fingerprint(path))
    database = _DATABASES.get(key)
    if database is None:
        database = OsvDatabase.load(path)
        _DATABASES.clear()  # one database per process is plenty
        _DATABASES[key] = database
    return database


class DepsScanner(Scanner):
    """Known vulnerabilities of pinned PyPI dependencies, from OSV records."""

    id = "deps"

    def __init__(
        self,
        osv_db: str | None = None,
        network: bool = False,
        timeout: float = 30.0,
        api_url: str = DEFAULT_API_URL,
    ) -> None:
        self.osv_db = osv_db
        self.network = network
        self.timeout = timeout
        self.api_url = api_url

    def version(self) -> str:
        return f"{ADAPTER_VERSION}+packaging{packaging.__version__}"

    def config_hash(self) -> str:
        if self.osv_db:
            source = f"db:{database_fingerprint(self.osv_db)}"
        elif self.network:
            # The online database changes all the time: cached answers last one UTC day.
            day = datetime.datetime.now(datetime.UTC).date().isoformat()
            source = f"api:{self.api_url}:{day}"
        else:
            source = "none"
        return stable_hash(self.id, source)

    def unavailable_reason(self) -> str | None:
        if self.osv_db:
            path = Path(self.osv_db)
            if not path.exists():
                return f"OSV database {self.osv_db} does not exist"
            return None
        if self.network:
            return None
        return (
            "no OSV database: pass --osv-db PATH (a directory of OSV JSON records, or the "
            "PyPI export https://osv-vulnerabilities.storage.googleapis.com/PyPI/all.zip) "
            "or allow network access to query https://api.osv.dev"
        )

    def applies_to(self, relpath: str) -> bool:
        return manifest_kind(relpath) is not None

    def scan_file(self, root: Path, source: SourceFile) -> FileResult:
        return self.scan_batch(root, [source])[0]

    def scan_batch(self, root: Path, files: Sequence[SourceFile]) -> list[FileResult]:
        """Parse every manifest, look all pinned versions up at once, build findings."""
        started = time.perf_counter()
        parsed: list[tuple[SourceFile, ManifestParse | None, str | None]] = []
        for source in files:
            try:
                text = source.content.decode("utf-8-sig")
            except UnicodeDecodeError as exc:
                parsed.append((source, None, f"{source.relpath}: not UTF-8: {exc.reason}"))
                continue
            try:
                parsed.append((source, resolve_manifest(root, source.relpath, text), None))
            except ManifestError as exc:
                # Parse errors quote the line, which may hold an index URL's password.
                parsed.append((source, None, redact_text(str(exc))))

        pinned = sorted(
            {
                (dep.name, dep.version)
                for _, manifest, _ in parsed
                if manifest is not None
                for dep in manifest.dependencies
                if dep.version is not None
            }
        )
        lookup_error: str | None = None
        matches: dict[tuple[str, str], list[Vulnerability]] = {}
        rejected: list[RejectedRecord] = []
        if pinned:
            try:
                matches, rejected = self._lookup(pinned)
            except (OsvApiError, OSError, ValueError, zipfile.BadZipFile) as exc:
                lookup_error = redact_text(f"OSV lookup failed: {exc}")

        results: list[FileResult] = []
        for source, manifest, error in parsed:
            if manifest is None:
                results.append(FileResult(source.relpath, skipped=error))
                continue
            has_pins = any(dep.version is not None for dep in manifest.dependencies)
            if lookup_error and has_pins:
                results.append(FileResult(source.relpath, skipped=lookup_error))
                continue
            findings = self._findings(source.relpath, manifest.dependencies, matches)
            # Findings from the good lines are kept; the skip says the file was only partly read.
            skipped = redact_text("; ".join(manifest.problems[:5])) if manifest.problems else None
            if skipped and len(manifest.problems) > 5:
                skipped += f"; and {len(manifest.problems) - 5} more problems"
            # Likewise when advisories about its pins could not be read: the file
            # was checked against an incomplete database, which is not "ok".
            unused = _rejected_note(manifest.dependencies, rejected)
            if unused:
                skipped = f"{skipped}; {unused}" if skipped else unused
            unpinned = _unpinned_note(manifest.unpinned)
            if unpinned:
                skipped = f"{skipped}; {unpinned}" if skipped else unpinned
            depends_elsewhere = bool(manifest.read_files or manifest.includes or manifest.unpinned)
            results.append(
                FileResult(
                    source.relpath,
                    findings=findings,
                    skipped=skipped,
                    cacheable=not depends_elsewhere,
                    # Its pinned requirements were checked: the skip is about the rest.
                    partial=bool(skipped and manifest.dependencies),
                )
            )
        share = (time.perf_counter() - started) * 1000 / max(1, len(files))
        for result in results:
            result.duration_ms = share
        return results

    def _lookup(
        self, pinned: list[tuple[str, str]]
    ) -> tuple[dict[tuple[str, str], list[Vulnerability]], list[RejectedRecord]]:
        """The records affecting each pin, and the records that could not be used."""
        if self.osv_db:
            database = _load_database(self.osv_db)
            return {key: database.query(*key) for key in pinned}, database.rejected
        if not self.network:
            raise OSError(self.unavailable_reason())
        client = OsvClient(self.api_url, self.timeout)
        ids = client.query_batch(pinned)
        records: dict[str, Vulnerability | None] = {}
        rejected: list[RejectedRecord] = []
        for vuln_id in sorted({i for group in ids for i in group}):
            try:
                records[vuln_id] = parse_record(client.get(vuln_id), f"OSV API {vuln_id}")
            except OsvRecordError as exc:
                log.warning("skipped OSV record: %s", exc)
                records[vuln_id] = None
                # The API named this record for these pins: it concerns them.
                names = {
                    canonicalize_name(name)
                    for (name, _), group in zip(pinned, ids, strict=True)
                    if vuln_id in group
                }
                rejected.append(RejectedRecord(str(exc), frozenset(names)))
        found: dict[tuple[str, str], list[Vulnerability]] = {}
        for key, group in zip(pinned, ids, strict=True):
            # The API already matched; checking again keeps both paths' semantics equal.
            found[key] = [
                v for i in group if (v := records.get(i)) is not None and is_affected(v, *key)
            ]
        return found, rejected

    def _findings(
        self,
        relpath: str,
        dependencies: list[Dependency],
        matches: dict[tuple[str, str], list[Vulnerability]],
    ) -> list[Finding]:
        counter = FingerprintCounter()
        findings: list[Finding] = []
        for dep in sorted(dependencies, key=lambda d: (d.line, d.name)):
            if dep.version is None:
                continue
            for vuln, aliases in deduplicate(matches.get((dep.name, dep.version), [])):
                fixes = fixed_versions(vuln, dep.name, dep.version)
                upgrade = _first_above(fixes, dep.version)
                fix_text = f"; fixed in {upgrade}" if upgrade else "; no fixed version above it"
                # Advisory text is free text from outside; it goes through the redactor too.
                summary = vuln.summary or "known vulnerability"
                via = f" (via {dep.origin})" if dep.origin else ""
                findings.append(
                    Finding(
                        fingerprint=counter.fingerprint(
                            vuln.id, relpath, f"{dep.name}=={dep.version}"
                        ),
                        rule_id=vuln.id,
                        scanner=self.id,
                        severity=vuln.severity,
                        message=redact_text(
                            f"{dep.name} {dep.version}{via}: {vuln.id}: {summary}{fix_text}"
                        ),
                        path=relpath,
                        line=dep.line,
                        category="dependency",
                        confidence="high",
                        cwe=vuln.cwe,
                        snippet=f"{dep.name}=={dep.version}",
                        help_url=vuln.help_url,
                        properties={
                            "package": dep.name,
                            "installed_version": dep.version,
                            "specifier": dep.specifier,
                            "aliases": list(aliases),
                            "cves": [a for a in aliases if a.startswith("CVE-")],
                            "fixed_versions": fixes,
                            "manifest_line": dep.line,
                            "origin": dep.origin or None,
                            "cvss_vector": vuln.cvss_vector,
                            "cvss_score": vuln.cvss_score,
                            "severity_source": vuln.severity_source,
                            "osv_modified": vuln.modified,
                        },
                    )
                )
        return findings


#: At most this many rejected records are named in one skip reason.
_REJECTED_SHOWN = 3
#: At most this many unpinned requirements are named in one skip reason.
_UNPINNED_SHOWN = 10
#: The start of the skip reason for requirements without a known version.
UNPINNED_REASON = "cannot tell the installed version"


def _unpinned_note(unpinned: list[Dependency]) -> str | None:
    """Why a manifest was only partly checked: requirements given as ranges or unpinned."""
    if not unpinned:
        return None
    shown = ", ".join(
        f"{dep.name}{dep.specifier or ' (any version)'} (line {dep.line}"
        + (f", from {dep.origin}" if dep.origin else "")
        + ")"
        for dep in unpinned[:_UNPINNED_SHOWN]
    )
    more = len(unpinned) - _UNPINNED_SHOWN
    if more > 0:
        shown += f" and {more} more"
    return (
        f"{UNPINNED_REASON} of {len(unpinned)} requirement(s), not checked: {shown};"
        " pin them (==), constrain them (-c) or commit a lock file"
    )


def _rejected_note(dependencies: list[Dependency], rejected: list[RejectedRecord]) -> str | None:
    """Why a manifest's check is incomplete: rejected records that may concern its pins."""
    names = {canonicalize_name(dep.name) for dep in dependencies if dep.version is not None}
    if not names:
        return None
    relevant = [r for r in rejected if r.concerns(names)]
    if not relevant:
        return None
    shown = "; ".join(r.problem for r in relevant[:_REJECTED_SHOWN])
    more = len(relevant) - _REJECTED_SHOWN
    if more > 0:
        shown += f"; and {more} more"
    return (
        f"OSV records rejected: {len(relevant)} record(s) that may concern these pins "
        f"could not be used, so vulnerabilities may be missing: {shown}"
    )


def _first_above(fixes: list[str], installed: str) -> str | None:
    """The smallest fixed version above ``installed`` (``fixes`` lists those first)."""
    if not fixes:
        return None
    try:
        return fixes[0] if Version(fixes[0]) > Version(installed) else None
    except InvalidVersion:
        return fixes[0]
