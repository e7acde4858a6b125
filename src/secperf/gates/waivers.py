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
from collections.abc import Mapping
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
    """The waiver file cannot be used; the message names the file, the entry and the key."""


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

    Raises ``WaiverError`` naming the file, the entry (``finding[2]``) and the key.
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
    unknown = sorted(set(document) - {"finding", "benchmark"})
    if unknown:
        raise WaiverError(
            f"{path}: {unknown[0]}: unknown table; expected [[finding]] or [[benchmark]] entries"
        )
    findings = tuple(
        _finding(path, i, entry) for i, entry in enumerate(_entries(path, document, "finding"))
    )
    benchmarks = tuple(
        _benchmark(path, i, entry) for i, entry in enumerate(_entries(path, document, "benchmark"))
    )
    return Waivers(findings, benchmarks, path)


def _entries(path: Path, document: Mapping[str, Any], table: str) -> list[Mapping[str, Any]]:
    value = document.get(table, [])
    if not isinstance(value, list):
        raise WaiverError(f"{path}: {table}: expected an array of tables [[{table}]]")
    for index, entry in enumerate(value):
        if not isinstance(entry, dict):
            raise WaiverError(f"{path}: {table}[{index}]: expected a table [[{table}]]")
    return value


def _fail(path: Path, where: str, key: str, problem: str) -> WaiverError:
    return WaiverError(f"{path}: {where}.{key}: {problem}")


def _check_keys(path: Path, where: str, entry: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
    for key in entry:
        if key not in allowed:
            raise _fail(path, where, key, f"unknown key; allowed keys: {', '.join(allowed)}")


def _text(path: Path, where: str, entry: Mapping[str, Any], key: str, *, required: bool) -> str:
    value = entry.get(key)
    if value is None:
        if required:
            raise _fail(path, where, key, "required key is missing; expected a non-empty string")
        return ""
    if not isinstance(value, str) or not value.strip():
        raise _fail(path, where, key, f"expected a non-empty string, got {value!r}")
    return value.strip()


def _expires(path: Path, where: str, entry: Mapping[str, Any]) -> date:
    value = entry.get("expires")
    if value is None:
        raise _fail(
            path, where, "expires", "required key is missing; expected a date such as 2026-10-01"
        )
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise _fail(path, where, "expires", f"expected a date such as 2026-10-01, got {value!r}")


def _finding(path: Path, index: int, entry: Mapping[str, Any]) -> FindingWaiver:
    where = f"finding[{index}]"
    _check_keys(path, where, entry, _FINDING_KEYS)
    owner = _text(path, where, entry, "owner", required=True)
    reason = _text(path, where, entry, "reason", required=True)
    expires = _expires(path, where, entry)
    fingerprint = _text(path, where, entry, "fingerprint", required=False) or None
    rule = _text(path, where, entry, "rule", required=False) or None
    glob = _text(path, where, entry, "path", required=False) or None
    if fingerprint is not None:
        if rule is not None or glob is not None:
            key = "rule" if rule is not None else "path"
            raise _fail(path, where, key, "give either fingerprint, or rule and path, not both")
        if len(fingerprint) < 8:
            raise _fail(path, where, "fingerprint", "give at least 8 characters of the fingerprint")
    elif rule is None:
        raise _fail(path, where, "fingerprint", "required: a fingerprint, or a rule and a path")
    elif glob is None:
        raise _fail(
            path, where, "path", 'required with rule: a path glob such as "tests/**" (or "*")'
        )
    return FindingWaiver(index, owner, reason, expires, fingerprint, rule, glob)


def _benchmark(path: Path, index: int, entry: Mapping[str, Any]) -> BenchmarkWaiver:
    where = f"benchmark[{index}]"
    _check_keys(path, where, entry, _BENCHMARK_KEYS)
    name = _text(path, where, entry, "name", required=True)
    owner = _text(path, where, entry, "owner", required=True)
    reason = _text(path, where, entry, "reason", required=True)
    expires = _expires(path, where, entry)
    return BenchmarkWaiver(index, name, _max_regression(path, where, entry), owner, reason, expires)


def _max_regression(path: Path, where: str, entry: Mapping[str, Any]) -> float:
    value = entry.get("max_regression")
    expected = 'a regression such as "15%" or 0.15'
    if value is None:
        raise _fail(path, where, "max_regression", f"required key is missing; expected {expected}")
    number: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str) and value.strip().endswith("%"):
        try:
            number = float(value.strip()[:-1]) / 100.0
        except ValueError:
            number = None
    if number is None or not math.isfinite(number) or number <= 0:
        raise _fail(path, where, "max_regression", f"expected {expected}, got {value!r}")
    return number
