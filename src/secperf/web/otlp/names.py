"""OpenTelemetry metric and attribute names as secperf (Prometheus-style) names.

Follows the OpenTelemetry-to-Prometheus compatibility rules: characters a
metric name cannot hold become ``_`` (runs of them collapse into one); the
unit becomes a suffix (``s`` -> ``_seconds``, ``By`` -> ``_bytes``,
``By/s`` -> ``_bytes_per_second``, ``{request}`` -> nothing, ``1`` on an
OpenTelemetry gauge -> ``_ratio``, on a sum of either kind nothing) unless
the name already ends with it; monotonic counters end in ``_total``.

Names are bounded as the JSON ingest bounds them (``MAX_METRIC_NAME_LENGTH``,
``MAX_LABEL_NAME_LENGTH`` in ``model.py``): a name longer as sent, or once
cleaned and suffixed, raises ``NameTooLong``. The length is checked before the
caches are consulted, so that no sender can fill them with long strings.
"""

from __future__ import annotations

import re
from functools import lru_cache

from secperf.model import (
    LABEL_NAME_RE,
    MAX_LABEL_NAME_LENGTH,
    MAX_METRIC_NAME_LENGTH,
    METRIC_NAME_RE,
)

_INVALID_METRIC_CHARS = re.compile(r"[^a-zA-Z0-9_:]+")
_INVALID_LABEL_CHARS = re.compile(r"[^a-zA-Z0-9_]+")
_REPEATED_UNDERSCORES = re.compile(r"__+")
_ANNOTATION = re.compile(r"\{[^}]*\}")

#: UCUM units as Prometheus spells them in a suffix.
_MAIN_UNITS = {
    "d": "days",
    "h": "hours",
    "min": "minutes",
    "s": "seconds",
    "ms": "milliseconds",
    "us": "microseconds",
    "ns": "nanoseconds",
    "By": "bytes",
    "KiBy": "kibibytes",
    "MiBy": "mebibytes",
    "GiBy": "gibibytes",
    "TiBy": "tebibytes",
    "KBy": "kilobytes",
    "MBy": "megabytes",
    "GBy": "gigabytes",
    "TBy": "terabytes",
    "bit": "bits",
    "m": "meters",
    "V": "volts",
    "A": "amperes",
    "J": "joules",
    "W": "watts",
    "g": "grams",
    "Cel": "celsius",
    "Hz": "hertz",
    "%": "percent",
}
#: The denominator of a ``x/y`` unit.
_PER_UNITS = {
    "s": "second",
    "m": "minute",
    "h": "hour",
    "d": "day",
    "w": "week",
    "mo": "month",
    "y": "year",
}


class MetricNameError(ValueError):
    """A metric name that cannot become a secperf name (empty once cleaned)."""


class NameTooLong(ValueError):
    """A metric name, unit or attribute key longer than secperf stores.

    The message gives the length and the bound, never the name itself (it may
    be megabytes long).
    """

    def __init__(self, what: str, length: int, limit: int) -> None:
        super().__init__(f"{what} is {length} characters long; at most {limit}")
        self.what = what
        self.length = length
        self.limit = limit


def check_metric_name_length(name: str, what: str = "the metric name") -> str:
    """``name`` when it fits the bound on stored metric names; else ``NameTooLong``."""
    if len(name) > MAX_METRIC_NAME_LENGTH:
        raise NameTooLong(what, len(name), MAX_METRIC_NAME_LENGTH)
    return name


def _clean_metric_name(name: str) -> str:
    cleaned = _REPEATED_UNDERSCORES.sub("_", _INVALID_METRIC_CHARS.sub("_", name))
    if cleaned and cleaned[0].isdigit():
        cleaned = f"_{cleaned}"
    return cleaned


def _unit_word(unit: str) -> str:
    word = _MAIN_UNITS.get(unit)
    if word is not None:
        return word
    return _INVALID_LABEL_CHARS.sub("_", unit).strip("_")


def unit_suffix(unit: str, *, gauge: bool) -> str:
    """The suffix a unit adds (``""`` for none): ``By/s`` -> ``bytes_per_second``."""
    unit = _ANNOTATION.sub("", unit).strip()
    if not unit:
        return ""
    if unit == "1":
        # Dimensionless: a ratio on a gauge only. Sums (up-down counters too)
        # of unit "1" are mostly counts of things, so the OpenTelemetry
        # Collector and Prometheus add nothing to them; neither does secperf.
        return "ratio" if gauge else ""
    main, _, per = unit.partition("/")
    parts: list[str] = []
    if main:
        parts.append(_unit_word(main))
    if per:
        per_word = _PER_UNITS.get(per) or _INVALID_LABEL_CHARS.sub("_", per).strip("_")
        if per_word:
            parts.append(f"per_{per_word}")
    return "_".join(p for p in parts if p)


def metric_name(name: str, unit: str, *, gauge: bool, counter: bool = False) -> str:
    """The secperf name of an OpenTelemetry metric.

    ``gauge`` is true for an OpenTelemetry Gauge only: unit ``1`` adds
    ``_ratio`` to gauges alone, as the OpenTelemetry Collector and Prometheus
    translate it (an up-down counter of unit ``1`` is a count, not a ratio).
    Raises ``MetricNameError`` when nothing usable is left, ``NameTooLong``
    when the name or unit as sent, or the name made of them, is over the bound.
    """
    check_metric_name_length(name)
    if len(unit) > MAX_METRIC_NAME_LENGTH:
        raise NameTooLong("the unit", len(unit), MAX_METRIC_NAME_LENGTH)
    made = _metric_name(name, unit, gauge=gauge, counter=counter)
    return check_metric_name_length(made, "the metric name with its unit and type suffixes")


@lru_cache(maxsize=4096)
def _metric_name(name: str, unit: str, *, gauge: bool, counter: bool) -> str:
    # A trailing "_" (from "app.") would double the one before the suffix.
    base = _clean_metric_name(name).rstrip("_")
    if not base:
        raise MetricNameError(f"metric name {name!r} has no character a metric name can use")
    suffix = unit_suffix(unit, gauge=gauge)
    if suffix and not base.endswith(f"_{suffix}") and base != suffix:
        base = f"{base}_{suffix}"
    if counter and not base.endswith("_total"):
        base = f"{base}_total"
    if not METRIC_NAME_RE.match(base):  # by construction; kept as a guard
        raise MetricNameError(f"metric name {name!r} becomes {base!r}, which is not valid")
    return base


def label_name(key: str) -> str | None:
    """The label name of an attribute key (None when nothing usable is left).

    Raises ``NameTooLong`` when the key, as sent or cleaned, is over the bound.
    """
    if len(key) > MAX_LABEL_NAME_LENGTH:
        raise NameTooLong("the attribute key", len(key), MAX_LABEL_NAME_LENGTH)
    name = _label_name(key)
    if name is not None and len(name) > MAX_LABEL_NAME_LENGTH:
        raise NameTooLong("the label name it makes", len(name), MAX_LABEL_NAME_LENGTH)
    return name


@lru_cache(maxsize=4096)
def _label_name(key: str) -> str | None:
    cleaned = _INVALID_LABEL_CHARS.sub("_", key)
    if not cleaned or cleaned.strip("_") == "":
        return None
    if cleaned[0].isdigit():
        cleaned = f"key_{cleaned}"
    return cleaned if LABEL_NAME_RE.match(cleaned) else None
