"""The ``secrets`` scanner: detect-secrets' plugins and filters behind a cheap prefilter.

Results equal ``detect-secrets scan --all-files --no-verify`` run from the scan
root on the same files: the same set of (file, line, secret type). We use
detect-secrets' default settings (every plugin with its default options and
the default filters) and follow ``detect_secrets.core.scan.scan_file`` step by
step: the filename filters, the non-eager transformers (the INI parser is tried
on every file, YAML on ``.yaml``), the per-line filters, the plugins, the
secret filters and, when the first pass found nothing, the eager INI
transformer. Like detect-secrets' ``SecretsCollection``, a secret of one type
is reported once per file, on the first line it appears (the other lines are
kept in ``properties["other_lines"]``).

What we add: lines are first searched for the needles of
``secrets_prefilter`` and only lines holding one reach the plugins, which
makes the scan many times faster with the same results. Network verification
of found secrets is never done (that is why parity is with ``--no-verify``;
without network access the plain CLI gives the same results): sending the
secrets of a codebase to third-party APIs is not something a scanner should do
on its own.

Nothing of the secret leaves this module but a redacted preview as the
snippet and a fingerprint keyed by ``secret_key`` (scrypt of the value under
the salt given to the constructor, slow and memory-hard so that testing
guesses against a fingerprint costs real time), and not the line itself.

Severity mapping (documented in one place, used by every report):

- high: formats that are credentials by construction - AWS access keys,
  private keys, tokens with a vendor prefix (GitHub, GitLab, Slack, Stripe,
  OpenAI, PyPI, npm, SendGrid, Square, Twilio, Telegram, Discord, Mailchimp,
  Artifactory), Azure storage keys and credentials in URLs (basic auth);
- medium: keyword assignments (``password = "..."``), high-entropy strings,
  JSON web tokens, and the keyword-shaped IBM, Cloudant and SoftLayer keys;
- low: public IPv4 addresses (not a secret, an exposure hint).

Confidence is high for the prefixed formats, medium for keyword matches and
low for entropy and IP matches. ``column`` is 1-based; it is None for lines
produced by a transformer (INI/YAML), whose layout differs from the file's.
"""

from __future__ import annotations

import importlib.util
import io
import os
import re
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from secperf.model import Finding, Severity
from secperf.security.redaction import (
    DEFAULT_SECRET_KDF,
    SecretKdf,
    check_salt,
    redact,
    secret_key,
)
from secperf.security.scanners.interface import (
    FileResult,
    FingerprintCounter,
    Scanner,
    SourceFile,
    stable_hash,
)

#: Bumped when this adapter's output changes for the same tool version.
# 2: findings keep no secret hash; 3: fingerprints from the preview; 4: scrypt of the value
ADAPTER_VERSION = "4"

CWE_HARD_CODED_CREDENTIALS = 798

#: detect-secrets filters that look at the file system rather than the path; we
#: already hold the file's bytes.
_FILESYSTEM_FILTERS = frozenset({"detect_secrets.filters.common.is_invalid_file"})

#: secret type -> (severity, confidence); types not listed are medium/medium.
_RATING: dict[str, tuple[Severity, str]] = {
    "AWS Access Key": (Severity.HIGH, "high"),
    "Private Key": (Severity.HIGH, "high"),
    "GitHub Token": (Severity.HIGH, "high"),
    "GitLab Token": (Severity.HIGH, "high"),
    "Slack Token": (Severity.HIGH, "high"),
    "Stripe Access Key": (Severity.HIGH, "high"),
    "OpenAI Token": (Severity.HIGH, "high"),
    "PyPI Token": (Severity.HIGH, "high"),
    "NPM tokens": (Severity.HIGH, "high"),
    "SendGrid API Key": (Severity.HIGH, "high"),
    "Square OAuth Secret": (Severity.HIGH, "high"),
    "Twilio API Key": (Severity.HIGH, "high"),
    "Telegram Bot Token": (Severity.HIGH, "high"),
    "Discord Bot Token": (Severity.HIGH, "high"),
    "Mailchimp Access Key": (Severity.HIGH, "high"),
    "Artifactory Credentials": (Severity.HIGH, "high"),
    "Azure Storage Account access key": (Severity.HIGH, "high"),
    "Basic Auth Credentials": (Severity.HIGH, "high"),
    "Secret Keyword": (Severity.MEDIUM, "medium"),
    "Base64 High Entropy String": (Severity.MEDIUM, "low"),
    "Hex High Entropy String": (Severity.MEDIUM, "low"),
    "JSON Web Token": (Severity.MEDIUM, "medium"),
    "Public IP (ipv4)": (Severity.LOW, "low"),
}


def rating_of(secret_type: str) -> tuple[Severity, str]:
    """The (severity, confidence) secperf gives a detect-secrets secret type."""
    return _RATING.get(secret_type, (Severity.MEDIUM, "medium"))


def rule_id_of(secret_type: str) -> str:
    """A rule id usable in suppressions: ``AWS Access Key`` -> ``aws-access-key``."""
    return re.sub(r"[^a-z0-9]+", "-", secret_type.lower()).strip("-")


@dataclass(frozen=True, slots=True)
class RawSecret:
    """One secret as detect-secrets reports it, before it is reduced to a Finding.

    Lives only inside the scanner; ``value`` never leaves this module.
    """

    secret_type: str
    line: int
    value: str
    column: int | None
    other_lines: tuple[int, ...] = ()

    def __repr__(self) -> str:  # the value must not reach logs through a repr
        return f"RawSecret({self.secret_type!r}, line={self.line}, value={redact(self.value)!r})"


class _NamedText(io.TextIOWrapper):
    """A text file over bytes with a ``name``, as detect-secrets' transformers expect."""

    def __init__(self, content: bytes, name: str) -> None:
        super().__init__(io.BytesIO(content), encoding="utf-8")
        self._display_name = name

    @property
    def name(self) -> str:
        return self._display_name


@contextmanager
def _default_detect_secrets_settings() -> Iterator[None]:
    """detect-secrets' default plugins and filters, restoring the caller's settings after."""
    from detect_secrets.settings import default_settings

    with default_settings():
        yield


class _Engine:
    """detect-secrets' plugins and filters, prepared once per settings context."""

    def __init__(self, use_prefilter: bool) -> None:
        from detect_secrets.core import scan as ds_scan
        from detect_secrets.settings import get_plugins
        from detect_secrets.util.code_snippet import get_code_snippet

        self._scan = ds_scan
        self._snippet = get_code_snippet
        self.plugins: list[Any] = list(get_plugins())
        self.filename_filters: list[Any] = [
            f
            for f in ds_scan.get_filters_with_parameter("filename")
            if f.path not in _FILESYSTEM_FILTERS and f.injectable_variables == {"filename"}
        ]
        # The prefilter reads detect-secrets' keyword list: it loads with the plugins.
        from secperf.security.scanners import secrets_prefilter

        self.needles = secrets_prefilter.build_needles(self.plugins) if use_prefilter else None

    def filename_excluded(self, filename: str) -> bool:
        from detect_secrets.util.inject import call_function_with_arguments

        return any(
            bool(call_function_with_arguments(f, filename=filename)) for f in self.filename_filters
        )

    def scan_lines(
        self, filename: str, lines: list[str], candidates: Sequence[int] | None
    ) -> list[tuple[str, int, str, str]]:
        """(type, line number, value, stripped line) for each secret, in detect-secrets' order.

        ``candidates`` are the 1-based line numbers worth scanning; None scans all.
        Mirrors ``detect_secrets.core.scan._process_line_based_plugins``.
        """
        ds = self._scan
        numbers: Sequence[int] = candidates if candidates is not None else range(1, len(lines) + 1)
        found: list[tuple[str, int, str, str]] = []
        for number in numbers:
            line = lines[number - 1].rstrip()
            context = self._snippet(lines=lines, line_number=number)
            if ds._is_filtered_out(
                required_filter_parameters=["line"],
                filename=filename,
                line=line,
                context=context,
            ):
                continue
            for plugin in self.plugins:
                for secret in ds._scan_line(
                    plugin=plugin,
                    filename=filename,
                    line=line,
                    line_number=number,
                    context=context,
                ):
                    if ds._is_filtered_out(
                        required_filter_parameters=["context"],
                        filename=secret.filename,
                        secret=secret.secret_value,
                        plugin=plugin,
                        line=line,
                        context=context,
                    ):
                        continue
                    found.append((secret.type, number, cast(str, secret.secret_value), line))
        return found


class SecretsScanner(Scanner):
    """Hard-coded secrets, found by detect-secrets' plugins; stores no secret value.

    ``salt`` and ``kdf`` key the scrypt derivation of each secret (keep one
    per project so fingerprints agree across scans and machines).
    ``prefilter=False`` runs every line through the plugins, as detect-secrets
    itself does (for comparisons and benchmarks).
    """

    id = "secrets"

    def __init__(
        self, salt: bytes, *, prefilter: bool = True, kdf: SecretKdf = DEFAULT_SECRET_KDF
    ) -> None:
        self.salt = check_salt(salt)
        self.kdf = kdf
        self.prefilter = prefilter

    # ------------------------------------------------------------------ identity

    def version(self) -> str:
        python = f"{sys.version_info.major}.{sys.version_info.minor}"
        version = detect_secrets_version()
        return f"detect-secrets {version}; adapter {ADAPTER_VERSION}; python {python}"

    def config_hash(self) -> str:
        # The prefilter does not change results, so it stays out of the hash; the
        # salt and the derivation's parameters do change the fingerprints.
        kdf = f"{self.kdf.name}:{self.kdf.n}:{self.kdf.r}:{self.kdf.p}"
        return stable_hash("default-settings", "no-verify", self.salt.hex(), kdf)

    def applies_to(self, relpath: str) -> bool:
        """False for paths detect-secrets ignores by name (images, lock files, swagger...)."""
        if _known_filename_filters():
            # The same decision without importing detect-secrets: a scan whose
            # files are all cached never needs its plugins.
            return not _excluded_by_name(relpath)
        return not _path_filter().filename_excluded(relpath)

    # ------------------------------------------------------------------ scanning

    def scan_batch(self, root: Path, files: Sequence[SourceFile]) -> list[FileResult]:
        with _default_detect_secrets_settings():
            engine = _Engine(self.prefilter)
            # One derivation per distinct value in a batch (a test password
            # repeated across fixtures); dropped with the batch.
            keys: dict[str, str] = {}
            return [self._scan_one(engine, source, keys) for source in files]

    def scan_file(self, root: Path, source: SourceFile) -> FileResult:
        return self.scan_batch(root, [source])[0]

    def find_raw(self, source: SourceFile) -> list[RawSecret]:
        """The secrets of one file with their values, for tests and tools in this package.

        Raises UnicodeDecodeError for a file that is not UTF-8 text.
        """
        with _default_detect_secrets_settings():
            return _find_secrets(_Engine(self.prefilter), source)

    def _scan_one(self, engine: _Engine, source: SourceFile, keys: dict[str, str]) -> FileResult:
        started = time.perf_counter()
        result = FileResult(relpath=source.relpath)
        try:
            raw = _find_secrets(engine, source)
        except UnicodeDecodeError as exc:
            result.skipped = f"not UTF-8 text (undecodable byte at offset {exc.start})"
        except Exception as exc:  # a plugin failing on one file must not end the scan
            result.skipped = f"secrets scan failed: {type(exc).__name__}"
        else:
            result.findings = self._to_findings(source.relpath, raw, keys)
        result.duration_ms = (time.perf_counter() - started) * 1000.0
        return result

    def _to_findings(
        self, relpath: str, raw: list[RawSecret], keys: dict[str, str]
    ) -> list[Finding]:
        counter = FingerprintCounter()
        findings: list[Finding] = []
        for item in sorted(raw, key=lambda r: (r.line, r.column or 0, r.secret_type)):
            key = keys.get(item.value)
            if key is None:
                key = keys[item.value] = secret_key(self.salt, item.value, self.kdf)
            rule_id = rule_id_of(item.secret_type)
            severity, confidence = rating_of(item.secret_type)
            properties: dict[str, Any] = {"secret_type": item.secret_type}
            if item.other_lines:
                properties["other_lines"] = list(item.other_lines)
            findings.append(
                Finding(
                    fingerprint=counter.fingerprint(rule_id, relpath, key),
                    rule_id=rule_id,
                    scanner=self.id,
                    severity=severity,
                    message=f"{item.secret_type} found",
                    path=relpath,
                    line=item.line,
                    end_line=item.line,
                    column=item.column,
                    category="secret",
                    confidence=confidence,
                    cwe=CWE_HARD_CODED_CREDENTIALS,
                    snippet=redact(item.value),
                    properties=properties,
                )
            )
        return findings


def _find_secrets(engine: _Engine, source: SourceFile) -> list[RawSecret]:
    """detect-secrets' ``scan_file`` on in-memory bytes, deduplicated as its baseline is."""
    filename = source.relpath
    if engine.filename_excluded(filename):
        return []
    from detect_secrets.transformers import get_transformed_file

    ordered: list[tuple[str, int, str, str, bool]] = []
    with _NamedText(source.content, filename) as handle:
        # First pass: non-eager transformers (INI on every file, YAML), else the raw lines.
        lines = get_transformed_file(cast(Any, handle))
        transformed = bool(lines)
        if not lines:
            handle.seek(0)
            lines = handle.readlines()
        ordered = [(*hit, transformed) for hit in _scan_pass(engine, filename, lines, transformed)]
        if not ordered:
            # Second pass, as detect-secrets does when the first found nothing.
            handle.seek(0)
            eager = get_transformed_file(cast(Any, handle), use_eager_transformers=True)
            if eager:
                ordered = [(*hit, True) for hit in _scan_pass(engine, filename, eager, True)]
    return _dedupe(ordered)


def _scan_pass(
    engine: _Engine, filename: str, lines: list[str], transformed: bool
) -> list[tuple[str, int, str, str]]:
    candidates: list[int] | None = None
    if engine.needles is not None:
        if transformed:
            candidates = engine.needles.candidate_lines_of(lines)
        else:
            # readlines() split the text at "\n" only, so line numbers match the joined text.
            candidates = engine.needles.candidate_line_numbers("".join(lines))
    return engine.scan_lines(filename, lines, candidates)


def _dedupe(ordered: list[tuple[str, int, str, str, bool]]) -> list[RawSecret]:
    """One entry per (type, value), on the first line detect-secrets yielded it."""
    first: dict[tuple[str, str], list[Any]] = {}
    for secret_type, number, value, line, transformed in ordered:
        key = (secret_type, value)
        if key in first:
            if number != first[key][0] and number not in first[key][2]:
                first[key][2].append(number)
            continue
        column = None if transformed else _column(line, value)
        first[key] = [number, column, []]
    return [
        RawSecret(
            secret_type=secret_type,
            line=entry[0],
            value=value,
            column=entry[1],
            other_lines=tuple(sorted(entry[2])),
        )
        for (secret_type, value), entry in first.items()
    ]


def _column(line: str, value: str) -> int | None:
    index = line.find(value)
    return index + 1 if index >= 0 else None


_PATH_FILTER: list[_Engine] = []


def default_plugins() -> list[Any]:
    """detect-secrets' default plugins, the ones this scanner runs (built once per process).

    ``secperf.security.redaction`` runs the same plugins over every snippet and
    message, so the redactor hides what this scanner would find.
    """
    return _path_filter().plugins


def _path_filter() -> _Engine:
    """An engine kept per process for ``applies_to`` (its filename filters are pure)."""
    if not _PATH_FILTER:
        with _default_detect_secrets_settings():
            _PATH_FILTER.append(_Engine(use_prefilter=False))
    return _PATH_FILTER[0]


#: The detect-secrets release whose filename filters ``_excluded_by_name`` mirrors.
_MIRRORED_VERSION = "1.5.0"
#: detect-secrets 1.5.0's ``is_non_text_file`` extensions.
_IGNORED_EXTENSIONS = frozenset(
    {
        ".7z", ".bin", ".bmp", ".bz2", ".class", ".css", ".dmg", ".doc", ".eot", ".exe",
        ".gif", ".gz", ".ico", ".iml", ".ipr", ".iws", ".jar", ".jpeg", ".jpg", ".lock",
        ".map", ".mo", ".pdf", ".png", ".prefs", ".psd", ".rar", ".realm", ".s7z", ".sum",
        ".svg", ".tar", ".tif", ".tiff", ".ttf", ".webp", ".woff", ".xls", ".xlsx", ".zip",
    }
)  # fmt: skip
#: detect-secrets 1.5.0's ``is_lock_file`` names.
_LOCK_FILES = frozenset(
    {
        "Brewfile.lock.json", "Cartfile.resolved", "composer.lock", "Gemfile.lock",
        "Package.resolved", "package-lock.json", "Podfile.lock", "yarn.lock", "Pipfile.lock",
        "poetry.lock", "Cargo.lock", "packages.lock.json",
    }
)  # fmt: skip
#: detect-secrets 1.5.0's default filters that look at the file name alone.
MIRRORED_FILENAME_FILTERS = frozenset(
    {
        "detect_secrets.filters.heuristic.is_non_text_file",
        "detect_secrets.filters.heuristic.is_swagger_file",
        "detect_secrets.filters.heuristic.is_lock_file",
    }
)
_VERSION: list[str] = []


def detect_secrets_version() -> str:
    """The installed detect-secrets' version, read without importing the package.

    Importing ``detect_secrets`` loads its plugins and ``requests`` (~0.1 s),
    which a scan whose files are all cached does not need.
    """
    if not _VERSION:
        _VERSION.append(_read_version() or _imported_version())
    return _VERSION[0]


def _read_version() -> str | None:
    spec = importlib.util.find_spec("detect_secrets")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        try:
            text = (Path(folder) / "__version__.py").read_text(encoding="utf-8")
        except OSError:
            continue
        match = re.search(r"""^VERSION\s*=\s*['"]([^'"]+)['"]""", text, re.MULTILINE)
        if match:
            return match.group(1)
    return None


def _imported_version() -> str:
    from detect_secrets.__version__ import VERSION

    return str(VERSION)


def _known_filename_filters() -> bool:
    """True when the installed detect-secrets is the release ``_excluded_by_name`` mirrors."""
    return detect_secrets_version() == _MIRRORED_VERSION


def _excluded_by_name(relpath: str) -> bool:
    """detect-secrets 1.5.0's default filename filters, as ``filename_excluded`` applies them."""
    # os.path, as detect-secrets' filters use it (Path.suffix differs on names like "a.").
    return (
        os.path.splitext(relpath)[1] in _IGNORED_EXTENSIONS  # noqa: PTH122
        or "swagger" in relpath
        or os.path.basename(relpath) in _LOCK_FILES  # noqa: PTH119
    )
