"""What the benchmark importers share: the import error and checks of JSON values.

Every check names the file and the JSON path of the offending value
(``benchmarks[3].stats.min``), so that a bad file is fixed at the right place.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# The package's logger, so that skipped entries are logged under one name.
log = logging.getLogger(__package__)

_IDENTIFIER_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class BenchmarkImportError(ValueError):
    """A benchmark file that cannot be read; names the file and the JSON path."""

    def __init__(self, file: str | os.PathLike[str], where: str, problem: str) -> None:
        self.file = str(file)
        self.where = where
        self.problem = problem
        super().__init__(f"{self.file}: {where}: {problem}" if where else f"{self.file}: {problem}")


def join(parent: str, key: str | int) -> str:
    """Extend a JSON path: ``benchmarks`` + 3 -> ``benchmarks[3]``."""
    if isinstance(key, int):
        return f"{parent}[{key}]"
    if _IDENTIFIER_RE.match(key):
        return f"{parent}.{key}" if parent else key
    return f"{parent}[{json.dumps(key)}]"


def show(value: Any) -> str:
    """A short JSON rendering of a bad value for an error message."""
    try:
        text = json.dumps(value, allow_nan=True, default=str)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def read_json(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BenchmarkImportError(path, "", "no such file") from None
    except UnicodeDecodeError as exc:
        raise BenchmarkImportError(path, "", f"not UTF-8 text ({exc.reason})") from None
    except OSError as exc:
        raise BenchmarkImportError(path, "", f"cannot read: {exc.strerror or exc}") from None
    try:
        # asv writes NaN for skipped benchmarks; the json module accepts it.
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise BenchmarkImportError(
            path, "", f"malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None


def number(file: Path, where: str, value: Any, *, finite: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BenchmarkImportError(file, where, f"expected a number, got {show(value)}")
    if finite and not math.isfinite(value):
        raise BenchmarkImportError(file, where, f"expected a finite number, got {value!r}")
    return float(value)


def num(value: float) -> str:
    """A number as JSON wrote it: ``0``, not ``0.0``."""
    return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)


def non_negative(file: Path, where: str, value: float) -> float:
    """Times, sizes and rates cannot be below zero."""
    if value < 0:
        raise BenchmarkImportError(file, where, f"{num(value)} is negative")
    return value


def count(file: Path, where: str, value: float, least: int) -> float:
    """A whole number of at least ``least`` (rounds, iterations, outliers)."""
    if value != int(value):
        raise BenchmarkImportError(file, where, f"{num(value)} is not a whole number")
    if value < least:
        raise BenchmarkImportError(file, where, f"{num(value)} is less than {least}")
    return value


def ordered(
    file: Path,
    where_of: Callable[[str], str],
    stats: dict[str, float],
    pairs: tuple[tuple[str, str], ...],
) -> None:
    """Check ``stats[a] <= stats[b]`` for each pair present, allowing float rounding.

    ``where_of(a)`` gives the JSON path named in the error.
    """
    for smaller, larger in pairs:
        if smaller not in stats or larger not in stats:
            continue
        low, high = stats[smaller], stats[larger]
        # Quartiles and means are computed in floating point: allow their rounding.
        if low - high > 1e-9 * max(abs(low), abs(high)):
            raise BenchmarkImportError(
                file,
                where_of(smaller),
                f"{num(low)} is greater than {larger} ({num(high)}); "
                "the statistics contradict each other",
            )


def keep(file: Path, where: str, value: float) -> float:
    """Any finite number (a ``track_`` benchmark may record negative values)."""
    return value


def obj(file: Path, where: str, value: Any, what: str = "an object") -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BenchmarkImportError(file, where, f"expected {what}, got {show(value)}")
    return value


def as_list(file: Path, where: str, value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise BenchmarkImportError(file, where, f"expected a list, got {show(value)}")
    return value


def param_text(value: Any) -> str:
    """Parameter values become strings: text as is, anything else as JSON."""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, sort_keys=True, default=str)
    except (TypeError, ValueError):
        return repr(value)


def iso_to_ms(file: Path, where: str, value: Any) -> int:
    if not isinstance(value, str):
        raise BenchmarkImportError(file, where, f"expected an ISO 8601 date, got {show(value)}")
    try:
        stamp = datetime.fromisoformat(value)
    except ValueError:
        raise BenchmarkImportError(
            file, where, f"expected an ISO 8601 date, got {show(value)}"
        ) from None
    if stamp.tzinfo is None:  # older pytest-benchmark wrote naive UTC times
        stamp = stamp.replace(tzinfo=UTC)
    return int(stamp.timestamp() * 1000)


def record(
    problem: BenchmarkImportError, strict: bool, problems: list[BenchmarkImportError] | None
) -> None:
    if strict:
        raise problem
    log.warning("skipped benchmark entry: %s", problem)
    if problems is not None:
        problems.append(problem)
