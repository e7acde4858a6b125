"""Waivers: time-limited exceptions to the gate, kept in the repository.

``secperf-waivers.toml`` holds two arrays of tables::

    [[finding]]                       # by fingerprint ...
    fingerprint = "3f1c9a0e..."
    owner = "alice"
    reason = "test fixture, not shipped"
    expires = 2026-10-01

    [[finding]]                       # ... or by rule and path glob
    rule = "B101"
    path = "tests/**"
    owner = "bob"
    reason = "asserts are fine in tests"
    expires = "2026-12-31"

    [[benchmark]]
    name = "tests/test_parse.py::test_big"   # a glob is allowed
    max_regression = "15%"
    owner = "carol"
    reason = "new validation step, tracked in #123"
    expires = 2026-09-15

A waiver holds before its ``expires`` date (UTC) and is expired from that day
on: an expired waiver no longer waives, and the gate says so. Path globs use
``fnmatch`` rules on the repository-relative POSIX path, where ``*`` also
crosses directories and a leading ``**/`` may match nothing.
"""

from __future__ import annotations

import fnmatch
import math
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, TypeVar

from secperf.model import Finding

WAIVERS_FILE = "secperf-waivers.toml"

_FINDING_KEYS = ("fingerprint", "rule", "path", "owner", "reason", "expires")
_BENCHMARK_KEYS = ("name", "max_regression", "owner", "reason", "expires")

W = TypeVar("W", "FindingWaiver", "BenchmarkWaiver")


class WaiverError(ValueError):
    """The waiver file cannot be used; ``str(error)`` is the full message.

    ``problems`` holds one line per problem, each naming the file, the waiver
    (``finding[2]``, and what it waives when that can be told) and the key, as
    ``ConfigError`` does for a config: every problem of the file at once.
    """

    def __init__(self, problems: str | Sequence[str]) -> None:
        self.problems: tuple[str, ...] = (
            (problems,) if isinstance(problems, str) else tuple(problems)
        )
        super().__init__("\n".join(self.problems))


@dataclass(frozen=True, slots=True)
class FindingWaiver:
    """Waives findings by fingerprint, or by rule id and path glob."""

    index: int
    owner: str
    reason: str
    expires: date
    fingerprint: str | None = None
    rule: str | None = None
    path: str | None = None

    def matches(self, finding: Finding) -> bool:
        """Whether this waiver is about ``finding`` (expired or not)."""
        if self.fingerprint is not None:
            return finding.fingerprint.startswith(self.fingerprint)
        assert self.rule is not None and self.path is not None
        return finding.rule_id == self.rule and path_matches(finding.path, self.path)

    @property
    def target(self) -> str:
        """What the waiver covers, for reports."""
        if self.fingerprint is not None:
            return f"fingerprint {self.fingerprint}"
        return f"rule {self.rule} in {self.path}"


@dataclass(frozen=True, slots=True)
class BenchmarkWaiver:
    """Allows a benchmark (name or glob) to be slower by up to ``max_regression``."""

    index: int
    name: str
    max_regression: float  # a fraction: 0.15 = 15 %
    owner: str
    reason: str
    expires: date

    def matches(self, benchmark: str) -> bool:
        return benchmark == self.name or fnmatch.fnmatchcase(benchmark, self.name)


def is_expired(expires: date, today: date) -> bool:
    """A waiver is expired on its expiry date and after it."""
    return today >= expires


def describe(waiver: FindingWaiver | BenchmarkWaiver, today: date) -> str:
    """One line for a report: who waived it, why, and until when (or since when expired)."""
    if is_expired(waiver.expires, today):
        return f"waiver expired on {waiver.expires.isoformat()} (owner: {waiver.owner})"
    return f"waived until {waiver.expires.isoformat()} (owner: {waiver.owner}: {waiver.reason})"


def path_matches(path: str, pattern: str) -> bool:
    """``fnmatch`` on a POSIX path; ``**/x`` also matches ``x`` at the top level."""
    if fnmatch.fnmatchcase(path, pattern):
        return True
    return pattern.startswith("**/") and fnmatch.fnmatchcase(path, pattern[3:])


def today_utc(now_ms: int) -> date:
    """The UTC calendar day of a millisecond timestamp."""
    return datetime.fromtimestamp(now_ms / 1000, tz=UTC).date()


@dataclass(frozen=True, slots=True)
class Waivers:
    """Every waiver of a repository; empty when there is no waiver file."""

    findings: tuple[FindingWaiver, ...] = ()
    benchmarks: tuple[BenchmarkWaiver, ...] = ()
    source: Path | None = None

    def for_finding(self, finding: Finding, today: date) -> FindingWaiver | None:
        """The waiver about ``finding``: an active one first, else the latest-expiring one."""
        found = [w for w in self.findings if w.matches(finding)]
        return _pick(found, today)

    def for_benchmark(self, name: str, today: date) -> BenchmarkWaiver | None:
        """The waiver about benchmark ``name``: an active one first, else an expired one."""
        found = [w for w in self.benchmarks if w.matches(name)]
        return _pick(found, today)


def _pick(found: list[W], today: date) -> W | None:
    if not found:
        return None
    active = [w for w in found if not is_expired(w.expires, today)]
    pool = active or found
    return max(pool, key=lambda w: w.expires)


# --------------------------------------------------------------------------- loading


def load_waivers(path: Path) -> Waivers:
    """Read and validate a waiver file; a missing file means no waivers.

    Raises ``WaiverError`` with every problem of the file, one line each, naming
    the file, the waiver (``finding[2]``) and the key.
    """
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return Waivers(source=None)
    except OSError as exc:
        raise WaiverError(f"{path}: cannot read the waiver file: {exc.strerror or exc}") from None
    try:
        document = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise WaiverError(f"{path}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise WaiverError(f"{path}: not valid TOML: {exc}") from None
    problems: list[str] = [
        f"{path}: {table}: unknown table; expected [[finding]] or [[benchmark]] entries"
        for table in sorted(set(document) - {"finding", "benchmark"})
    ]
    findings: list[FindingWaiver] = []
    for index, entry in _entries(path, document, "finding", problems):
        check = _Check(path, f"finding[{index}]", _finding_hint(entry), problems)
        finding = _finding(check, index, entry)
        if finding is not None:
            findings.append(finding)
    benchmarks: list[BenchmarkWaiver] = []
    for index, entry in _entries(path, document, "benchmark", problems):
        check = _Check(path, f"benchmark[{index}]", _benchmark_hint(entry), problems)
        benchmark = _benchmark(check, index, entry)
        if benchmark is not None:
            benchmarks.append(benchmark)
    if problems:
        raise WaiverError(problems)
    return Waivers(tuple(findings), tuple(benchmarks), path)


def _entries(
    path: Path, document: Mapping[str, Any], table: str, problems: list[str]
) -> list[tuple[int, Mapping[str, Any]]]:
    """The tables of ``[[table]]`` with their index; what is not a table is a problem."""
    value = document.get(table, [])
    if not isinstance(value, list):
        problems.append(f"{path}: {table}: expected an array of tables [[{table}]]")
        return []
    entries: list[tuple[int, Mapping[str, Any]]] = []
    for index, entry in enumerate(value):
        if isinstance(entry, dict):
            entries.append((index, entry))
        else:
            problems.append(f"{path}: {table}[{index}]: expected a table [[{table}]]")
    return entries


def _shown(value: Any) -> str | None:
    """A waiver's identifying value, for naming it in a problem; None when unusable."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    return repr(text if len(text) <= 60 else text[:57] + "...")


def _finding_hint(entry: Mapping[str, Any]) -> str:
    """What a finding waiver waives, as far as it can be told: ``fingerprint '0123abcd'``."""
    fingerprint = _shown(entry.get("fingerprint"))
    if fingerprint is not None:
        return f"fingerprint {fingerprint}"
    rule, glob = _shown(entry.get("rule")), _shown(entry.get("path"))
    if rule is not None and glob is not None:
        return f"rule {rule} in {glob}"
    return f"rule {rule}" if rule is not None else ""


def _benchmark_hint(entry: Mapping[str, Any]) -> str:
    name = _shown(entry.get("name"))
    return f"benchmark {name}" if name is not None else ""


@dataclass(slots=True)
class _Check:
    """One waiver being read: where it is, what it waives, and the file's problems so far."""

    path: Path
    where: str  # finding[2]
    hint: str  # fingerprint '0123abcd' (empty when nothing tells the waiver apart)
    problems: list[str]
    failed: bool = False

    def fail(self, key: str, problem: str) -> None:
        hint = f" [waiver of {self.hint}]" if self.hint else ""
        self.problems.append(f"{self.path}: {self.where}.{key}: {problem}{hint}")
        self.failed = True


def _check_keys(check: _Check, entry: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
    for key in entry:
        if key not in allowed:
            check.fail(key, f"unknown key; allowed keys: {', '.join(allowed)}")


def _text(check: _Check, entry: Mapping[str, Any], key: str, *, required: bool) -> str | None:
    """The key's text; "" when it is optional and absent; None when it is wrong."""
    value = entry.get(key)
    if value is None:
        if required:
            check.fail(key, "required key is missing; expected a non-empty string")
            return None
        return ""
    if not isinstance(value, str) or not value.strip():
        check.fail(key, f"expected a non-empty string, got {value!r}")
        return None
    return value.strip()


def _expires(check: _Check, entry: Mapping[str, Any]) -> date | None:
    value = entry.get("expires")
    if value is None:
        check.fail("expires", "required key is missing; expected a date such as 2026-10-01")
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    check.fail("expires", f"expected a date such as 2026-10-01, got {value!r}")
    return None


def _finding(check: _Check, index: int, entry: Mapping[str, Any]) -> FindingWaiver | None:
    _check_keys(check, entry, _FINDING_KEYS)
    owner = _text(check, entry, "owner", required=True)
    reason = _text(check, entry, "reason", required=True)
    expires = _expires(check, entry)
    fingerprint = _text(check, entry, "fingerprint", required=False)
    rule = _text(check, entry, "rule", required=False)
    glob = _text(check, entry, "path", required=False)
    if fingerprint:
        if rule or glob:
            key = "rule" if rule else "path"
            check.fail(key, "give either fingerprint, or rule and path, not both")
        if len(fingerprint) < 8:
            check.fail("fingerprint", "give at least 8 characters of the fingerprint")
    elif fingerprint is not None and rule is not None and glob is not None:
        # Each of the three is absent or valid: what is missing of the pair?
        if not rule:
            check.fail("fingerprint", "required: a fingerprint, or a rule and a path")
        elif not glob:
            check.fail("path", 'required with rule: a path glob such as "tests/**" (or "*")')
    if check.failed:
        return None
    assert owner and reason and expires is not None
    return FindingWaiver(
        index, owner, reason, expires, fingerprint or None, rule or None, glob or None
    )


def _benchmark(check: _Check, index: int, entry: Mapping[str, Any]) -> BenchmarkWaiver | None:
    _check_keys(check, entry, _BENCHMARK_KEYS)
    name = _text(check, entry, "name", required=True)
    max_regression = _max_regression(check, entry)
    owner = _text(check, entry, "owner", required=True)
    reason = _text(check, entry, "reason", required=True)
    expires = _expires(check, entry)
    if check.failed:
        return None
    assert name and owner and reason and expires is not None and max_regression is not None
    return BenchmarkWaiver(index, name, max_regression, owner, reason, expires)


def _max_regression(check: _Check, entry: Mapping[str, Any]) -> float | None:
    value = entry.get("max_regression")
    expected = 'a regression such as "15%" or 0.15'
    if value is None:
        check.fail("max_regression", f"required key is missing; expected {expected}")
        return None
    number: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str) and value.strip().endswith("%"):
        try:
            number = float(value.strip()[:-1]) / 100.0
        except ValueError:
            number = None
    if number is None or not math.isfinite(number) or number <= 0:
        check.fail("max_regression", f"expected {expected}, got {value!r}")
        return None
    return number
