"""How long a scan will take and how much CPU it will use, predicted before it runs.

The model is small enough to explain in a few lines:

* each scanner's *work* (the time its workers spend on files, as
  ``SecurityMetrics.scanner_durations_ms`` measures it) is, when it has cache
  misses, a start-up (its workers load the scanner: bandit takes about a
  second) plus its missed kilobytes times its rate, in ms per KB. Both are a
  Theil-Sen line (the median of the pairwise slopes: a scan slowed by a busy
  machine barely moves it) through (missed KB, work) of the last
  ``HISTORY_SCANS`` scans of this target on this host whose prediction stored
  the inputs; with too few of them the rate is the median work per KB, and
  with none the built-in values below;
* the scan hands its misses to the workers in batches of one scanner (up to
  ``BATCH_KB`` or ``BATCH_FILES``, largest first); its *span* is the busiest
  worker's work when each scanner's work is cut into those batches and dealt
  out that way. A small scan is one batch of bandit that one worker runs while
  the other idles (its span is all its work); a large one is shared about
  evenly (half of it with two workers);
* a scan with cache misses lasts a fixed start-up plus its span times a
  factor (near 1 on a quiet machine): a Theil-Sen line through the same
  scans' (span, duration). Where a worker is much slower beside another
  (a busy machine, cores shared by hyperthreads) the span under-counts large
  scans, and a line through (work, duration) fits better, its slope the share
  of the work waited for; whichever of the two lies closer to this target's
  scans (the median relative distance) predicts, and the prediction says which
  (``duration_from``). Its CPU is a fixed part plus its work times a rate, a
  Theil-Sen line through (work, CPU). Span and work are what the scanner lines
  give for each past scan's stored inputs (so a bias of those lines is
  corrected rather than carried over); while they have not varied, the
  built-in slopes (1 per ms of span, 1 / workers per ms of work, 1 CPU second
  per second of work) and the median intercept;
* a scan with nothing to read (every file cached) lasts as long as the
  median such scan did (the cache lookups, the findings, the events), or,
  before any did, ``BUILTIN_WARM_MS`` plus ``BUILTIN_WARM_MS_PER_FILE`` per
  file it looks at. Its CPU is the median CPU of such scans where one was
  measured, else its duration (it runs in one process). A warm scan's CPU
  is counted in the clock's 10 ms ticks and often reads 0, which teaches
  nothing.

Built-in rates were measured on a copy of part of the standard library (76
files, 1.3 MB) on a loaded 2-core machine: bandit 3.3 ms per KB with one
worker and 9.2 with two (they compete for the cores), built in as 5, and a
second to load in a fresh worker; detect-secrets behind its prefilter 0.17 to
0.5 ms per KB. A warm scan of it (77 files) took 5 to 7 ms on a quiet machine,
of the demo's sample project (50 files) 4 to 7 ms, up to 40 ms under load.
They are a starting point, replaced as soon as history exists.
"""

from __future__ import annotations

import json
import logging
import math
import statistics
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, cast

from secperf.events import now_ms
from secperf.security.discovery import Discovery
from secperf.security.pacing.inputs import (
    KnownFiles,
    ScanInputs,
    gather_inputs,
    hand_over,
    hand_over_memo,
)

if TYPE_CHECKING:
    from secperf.security.pacing.reading import PredictionStore
    from secperf.security.validator import SecurityValidator

log = logging.getLogger(__name__)

#: How many recent scans of a target and host the model learns from.
HISTORY_SCANS = 10
#: How many scans to read back to find ``HISTORY_SCANS`` usable ones.
_SCANS_READ = 50
#: Scans read at a time: enough for the history when the newest ones are all usable.
_PAGE = HISTORY_SCANS + 2
#: Worker time per KB of files scanned, by scanner, while there is no history (see above).
BUILTIN_MS_PER_KB: dict[str, float] = {
    "bandit": 5.0,
    "secrets": 0.17,
    "deps": 1.0,
    "semgrep": 1.0,
    "sarif": 0.5,
}
#: For a scanner not in the table.
DEFAULT_MS_PER_KB = 1.0
#: Work of a scanner with misses before its first byte (loading it in the workers), built in.
BUILTIN_SCANNER_STARTUP_MS: dict[str, float] = {
    "bandit": 800.0,
    "secrets": 150.0,
    "deps": 50.0,
    "semgrep": 1500.0,
    "sarif": 0.0,
}
#: A scan's fixed duration and CPU besides its scanners' work (discovery, digests, the
#: pool, cache writes, baseline, events), built in.
BUILTIN_STARTUP_MS = 100.0
BUILTIN_STARTUP_CPU_S = 0.1
#: A warm scan's duration, built in: a fixed part and a part per file looked at.
BUILTIN_WARM_MS = 3.0
BUILTIN_WARM_MS_PER_FILE = 0.04
#: How the validator cuts a scanner's misses into the batches it hands the workers
#: (``validator._BATCH_BYTES`` and ``_BATCH_FILES``; a test keeps them equal).
BATCH_KB = 256.0
BATCH_FILES = 64
#: CPU seconds per ms of scanner work, built in: the workers' time is CPU time.
BUILTIN_CPU_PER_WORK = 0.001
#: Statuses whose metrics describe a whole scan.
_WHOLE = ("ok", "partial")
HISTORY = "history"
BUILTIN = "builtin"


if TYPE_CHECKING:  # only for the type checker: classes cost the scan's start-up

    class CostMetrics(Protocol):
        """What the model reads of a scan's measured metrics (``SecurityMetrics`` has it)."""

        @property
        def scan_duration_ms(self) -> float: ...

        @property
        def scanner_durations_ms(self) -> Mapping[str, float]: ...

        @property
        def cache_misses(self) -> int: ...

        @property
        def cpu_seconds(self) -> float: ...

    class CostRecord(Protocol):
        """What the model reads of a stored scan (a ``StoredScan`` has it)."""

        @property
        def metrics(self) -> CostMetrics | None: ...

        @property
        def prediction(self) -> Mapping[str, Any] | None: ...

        @property
        def status(self) -> str: ...

        @property
        def owner_host(self) -> str | None: ...

        @property
        def is_import(self) -> bool: ...

    class CostRow(Protocol):
        """A stored scan with its documents still JSON text (``store.ScanCostRow``)."""

        @property
        def status(self) -> str: ...

        @property
        def owner_host(self) -> str | None: ...

        @property
        def metrics(self) -> str | None: ...

        @property
        def prediction(self) -> str | None: ...

    class CostRowStore(Protocol):
        """A store that reads scans for the model without decoding every document."""

        def scan_cost_rows(
            self, target: str, limit: int = 50, offset: int = 0
        ) -> Sequence[CostRow]: ...


class MeasuredCost:
    """The measured metrics the model reads, decoded from a stored metrics document.

    A plain class, not a dataclass: it is built on every scan's start-up.
    """

    __slots__ = ("cache_misses", "cpu_seconds", "scan_duration_ms", "scanner_durations_ms")

    def __init__(
        self,
        scan_duration_ms: float,
        scanner_durations_ms: dict[str, float],
        cache_misses: int,
        cpu_seconds: float,
    ) -> None:
        self.scan_duration_ms = scan_duration_ms
        self.scanner_durations_ms = scanner_durations_ms
        self.cache_misses = cache_misses
        self.cpu_seconds = cpu_seconds

    @classmethod
    def from_json(cls, text: str) -> MeasuredCost:
        """From ``SecurityMetrics``' stored JSON (``ValueError`` when it is not one)."""
        doc = json.loads(text)
        if not isinstance(doc, Mapping):
            raise ValueError("a scan's metrics are not a JSON object")
        durations = doc.get("scanner_durations_ms") or {}
        measured = cls(
            scan_duration_ms=float(doc.get("scan_duration_ms") or 0.0),
            scanner_durations_ms={str(k): float(v) for k, v in durations.items()},
            cache_misses=int(doc.get("cache_misses") or 0),
            cpu_seconds=float(doc.get("cpu_seconds") or 0.0),
        )
        numbers = [measured.scan_duration_ms, measured.cpu_seconds]
        if not all(math.isfinite(n) for n in [*numbers, *measured.scanner_durations_ms.values()]):
            # JSON allows Infinity: a cost no line can go through.
            raise ValueError("a scan's metrics hold a cost that is not a finite number")
        return measured


class CostHistoryScan:
    """A stored scan (never an import) as the model reads it (plain, as ``MeasuredCost``)."""

    __slots__ = ("metrics", "owner_host", "prediction", "status")
    is_import = False

    def __init__(
        self,
        metrics: MeasuredCost | None,
        prediction: dict[str, Any] | None,
        status: str,
        owner_host: str | None,
    ) -> None:
        self.metrics = metrics
        self.prediction = prediction
        self.status = status
        self.owner_host = owner_host


class ScannerPrediction(NamedTuple):
    """One scanner's share of a predicted scan.

    A named tuple, as ``CostModel``: a frozen dataclass costs each scan's
    start-up about a millisecond more to define.
    """

    duration_ms: float
    cpu_s: float
    #: The rate used, worker ms per KB missed, and whether it came from history.
    ms_per_kb: float
    basis: str
    #: The scanner's start-up in the workers, ms of work, when it has misses.
    startup_ms: float = 0.0

    def to_document(self) -> dict[str, Any]:
        """As stored in the ``prediction`` document's ``per_scanner``."""
        return {
            "duration_ms": round(self.duration_ms, 1),
            "cpu_s": round(self.cpu_s, 3),
            "ms_per_kb": round(self.ms_per_kb, 4),
            "startup_ms": round(self.startup_ms, 1),
            "basis": self.basis,
        }


class CostModel(NamedTuple):
    """The fitted model: per-scanner lines and the whole scan's (see the module docstring)."""

    ms_per_kb: dict[str, float]
    scanner_startup_ms: dict[str, float]
    rate_scans: dict[str, int]
    startup_ms: float
    #: Duration per ms of the whole scan's span (or work, see ``by_span``).
    wall_per_work: float
    startup_cpu_s: float
    cpu_per_work: float
    #: A warm scan's duration and CPU; None: none in the history (see ``warm_cost``).
    warm_ms: float | None
    warm_cpu_s: float | None
    history_scans: int
    #: Whether the duration line runs on the span (else on the work): see ``fit_model``.
    by_span: bool = True

    def warm_cost(self, files: int) -> tuple[float, float]:
        """(duration ms, CPU s) of a scan with nothing to read, of ``files`` files."""
        duration_ms = self.warm_ms
        if duration_ms is None:
            duration_ms = BUILTIN_WARM_MS + BUILTIN_WARM_MS_PER_FILE * files
        if self.warm_cpu_s is not None:
            return duration_ms, self.warm_cpu_s
        return duration_ms, duration_ms / 1000  # one process, busy all along

    def rate(self, scanner: str) -> tuple[float, float, str]:
        """The scanner's (ms per KB, start-up ms) and their basis (history or built in)."""
        if self.rate_scans.get(scanner, 0) > 0:
            return self.ms_per_kb[scanner], self.scanner_startup_ms[scanner], HISTORY
        return (
            BUILTIN_MS_PER_KB.get(scanner, DEFAULT_MS_PER_KB),
            BUILTIN_SCANNER_STARTUP_MS.get(scanner, 0.0),
            BUILTIN,
        )


@dataclass(frozen=True, slots=True)
class ScanPrediction:
    """A scan's predicted duration and CPU, per scanner, with what it was predicted from."""

    duration_ms: float
    cpu_s: float
    basis: str
    history_scans: int
    per_scanner: dict[str, ScannerPrediction]
    inputs: ScanInputs
    made_ms: int
    startup_ms: float = 0.0
    startup_cpu_s: float = 0.0
    unavailable: dict[str, str] = field(default_factory=dict)
    #: What the duration was predicted from: ``span`` or ``work`` (see ``fit_model``);
    #: "" for a warm scan.
    duration_from: str = ""

    @property
    def basis_text(self) -> str:
        """``history of 5 scans`` or ``built-in throughputs``."""
        if self.basis == HISTORY:
            plural = "" if self.history_scans == 1 else "s"
            return f"history of {self.history_scans} scan{plural}"
        return "built-in throughputs (no scan history of this target on this host yet)"

    def to_document(self) -> dict[str, Any]:
        """The ``scans.prediction`` document (see the contract in docs/api.md)."""
        return {
            "duration_ms": round(self.duration_ms, 1),
            "cpu_s": round(self.cpu_s, 3),
            "basis": self.basis,
            "history_scans": self.history_scans,
            "per_scanner": {sid: p.to_document() for sid, p in self.per_scanner.items()},
            "startup": {
                "duration_ms": round(self.startup_ms, 1),
                "cpu_s": round(self.startup_cpu_s, 3),
            },
            "inputs": self.inputs.to_document(),
            "made_ms": self.made_ms,
            **({"duration_from": self.duration_from} if self.duration_from else {}),
        }

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> ScanPrediction:
        """Read a stored document back (``ValueError`` when it is not one)."""
        try:
            per = doc.get("per_scanner") or {}
            startup = doc.get("startup") or {}
            return cls(
                duration_ms=float(doc["duration_ms"]),
                cpu_s=float(doc["cpu_s"]),
                basis=str(doc.get("basis", BUILTIN)),
                history_scans=int(doc.get("history_scans", 0)),
                per_scanner={
                    str(sid): ScannerPrediction(
                        float(p.get("duration_ms", 0.0)),
                        float(p.get("cpu_s", 0.0)),
                        float(p.get("ms_per_kb", 0.0)),
                        str(p.get("basis", BUILTIN)),
                        float(p.get("startup_ms", 0.0)),
                    )
                    for sid, p in per.items()
                    if isinstance(p, Mapping)
                },
                inputs=ScanInputs.from_document(doc.get("inputs") or {}),
                made_ms=int(doc.get("made_ms", 0)),
                startup_ms=float(startup.get("duration_ms", 0.0)),
                startup_cpu_s=float(startup.get("cpu_s", 0.0)),
                duration_from=str(doc.get("duration_from") or ""),
            )
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
            raise ValueError(f"not a scan prediction document: {exc}") from None


# --------------------------------------------------------------------------- fitting


def usable_history(records: Iterable[CostRecord], host: str) -> list[CostRecord]:
    """The newest ``HISTORY_SCANS`` whole scans (not imports) run on ``host``, newest first."""
    out: list[CostRecord] = []
    for record in records:
        metrics = record.metrics
        if metrics is None or record.is_import or record.status not in _WHOLE:
            continue
        if record.owner_host and host and record.owner_host != host:
            continue
        if metrics.scan_duration_ms <= 0:
            continue
        out.append(record)
        if len(out) >= HISTORY_SCANS:
            break
    return out


def _stored_inputs(record: CostRecord) -> ScanInputs | None:
    doc = record.prediction
    if not doc or not isinstance(doc.get("inputs"), Mapping):
        return None
    return ScanInputs.from_document(doc["inputs"])


def theil_sen(xs: Sequence[float], ys: Sequence[float]) -> tuple[float, float] | None:
    """(intercept, slope) by Theil-Sen, or None when the x values do not vary."""
    slopes = [
        (ys[j] - ys[i]) / (xs[j] - xs[i])
        for i in range(len(xs))
        for j in range(i + 1, len(xs))
        if xs[j] != xs[i]
    ]
    if not slopes:
        return None
    slope = statistics.median(slopes)
    intercept = statistics.median(y - slope * x for x, y in zip(xs, ys, strict=True))
    return intercept, slope


def _line(
    xs: Sequence[float], ys: Sequence[float], prior_slope: float, prior_intercept: float
) -> tuple[float, float]:
    """A robust line through (work, cost) points (see the module docstring).

    Theil-Sen when at least three points spread over the work axis; else the
    intercept is the median cost of the nearly warm scans (work under 5 % of
    the largest), or the built-in one, and the slope the median of what the
    other scans cost per unit of work above it, or the built-in one.
    """
    if not xs:
        return prior_intercept, prior_slope
    top = max(xs)
    if len(xs) >= 3 and top > 0 and top - min(xs) > 0.2 * top:
        fitted = theil_sen(xs, ys)
        if fitted is not None and fitted[1] > 0 and math.isfinite(fitted[1]):
            return max(0.0, fitted[0]), fitted[1]
    warm = [y for x, y in zip(xs, ys, strict=True) if x <= 0.05 * top]
    intercept = statistics.median(warm) if warm else prior_intercept
    per_work = [(y - intercept) / x for x, y in zip(xs, ys, strict=True) if x > 0.05 * top > 0]
    slope = statistics.median(per_work) if per_work else prior_slope
    return max(0.0, intercept), slope if slope > 0 else prior_slope


def _scanner_line(points: Sequence[tuple[float, float]], scanner: str) -> tuple[float, float]:
    """(start-up ms, ms per KB) of one scanner from its (missed KB, work ms) points."""
    xs = [x for x, _ in points]
    top = max(xs)
    if len(points) >= 3 and top > 0 and top - min(xs) > 0.2 * top:
        fitted = theil_sen(xs, [y for _, y in points])
        if fitted is not None and fitted[1] > 0 and math.isfinite(fitted[1]):
            return max(0.0, fitted[0]), fitted[1]
    startup = BUILTIN_SCANNER_STARTUP_MS.get(scanner, 0.0)
    # Too few points for a line: the built-in start-up, the median rate above it.
    rates = [max(0.0, y - startup) / x for x, y in points if x > 0]
    rate = statistics.median(rates) if rates else 0.0
    return startup, rate if rate > 0 else BUILTIN_MS_PER_KB.get(scanner, DEFAULT_MS_PER_KB)


def batch_work(startup_ms: float, rate: float, misses: int, missed_kb: float) -> list[float]:
    """One scanner's work (ms) cut as the validator cuts its misses into batches.

    Batches fill up to ``BATCH_KB`` (the last one holds the rest) or hold
    ``BATCH_FILES`` files; the scanner's start-up goes to the first batch.
    """
    if misses <= 0:
        return []
    full, rest = divmod(missed_kb, BATCH_KB)
    sizes = [BATCH_KB] * int(full) + ([rest] if rest > 0 else [])
    by_files = math.ceil(misses / BATCH_FILES)
    if len(sizes) < by_files:  # many small files: cut by count, about evenly
        sizes = [missed_kb / by_files] * by_files
    work = [rate * size for size in sizes] or [0.0]
    work[0] += startup_ms
    return work


def span(batches: Iterable[float], workers: int) -> float:
    """The busiest worker's work when ``batches`` are dealt out largest first, as the scan does."""
    loads = [0.0] * max(1, workers)
    for work in sorted(batches, reverse=True):
        loads[loads.index(min(loads))] += work
    return max(loads)


def _predicted_work(
    lines: Mapping[str, tuple[float, float]], inputs: ScanInputs
) -> tuple[float, float]:
    """(work, span) in ms the scanner lines give for ``inputs``; built-in lines for others."""
    total = 0.0
    batches: list[float] = []
    for scanner, scanner_inputs in inputs.per_scanner.items():
        if scanner_inputs.misses <= 0:
            continue
        startup, rate = lines.get(
            scanner,
            (
                BUILTIN_SCANNER_STARTUP_MS.get(scanner, 0.0),
                BUILTIN_MS_PER_KB.get(scanner, DEFAULT_MS_PER_KB),
            ),
        )
        missed_kb = scanner_inputs.missed_bytes / 1024
        total += startup + rate * missed_kb
        batches += batch_work(startup, rate, scanner_inputs.misses, missed_kb)
    return total, span(batches, inputs.jobs)


def _misfit(line: tuple[float, float], xs: Sequence[float], ys: Sequence[float]) -> float:
    """The median relative distance of (x, y) points from ``line`` (intercept, slope)."""
    return statistics.median(
        abs(line[0] + line[1] * x - y) / y for x, y in zip(xs, ys, strict=True) if y > 0
    )


def fit_model(history: Sequence[CostRecord], jobs: int) -> CostModel:
    """Fit the model on ``history`` (see ``usable_history``); built-in values without it."""
    points: dict[str, list[tuple[float, float]]] = {}
    work: list[float] = []
    durations: list[float] = []
    cpus: list[float] = []
    warm_durations: list[float] = []
    warm_cpus: list[float] = []
    # The inputs of each scan with misses (None: not stored), in the order of ``work``.
    working_inputs: list[ScanInputs | None] = []
    for record in history:
        metrics = record.metrics
        assert metrics is not None
        measured = metrics.scanner_durations_ms
        total = sum(measured.values())
        inputs = _stored_inputs(record)
        if total <= 0 or metrics.cache_misses == 0:
            warm_durations.append(metrics.scan_duration_ms)
            if metrics.cpu_seconds > 0:
                warm_cpus.append(metrics.cpu_seconds)
        else:
            work.append(total)
            durations.append(metrics.scan_duration_ms)
            cpus.append(metrics.cpu_seconds)
            working_inputs.append(inputs)
        if inputs is None:
            continue
        for scanner, scanner_inputs in inputs.per_scanner.items():
            spent = measured.get(scanner)
            if spent is None or scanner_inputs.misses <= 0 or spent <= 0:
                continue
            points.setdefault(scanner, []).append((scanner_inputs.missed_bytes / 1024, spent))
    lines = {scanner: _scanner_line(p, scanner) for scanner, p in points.items()}
    # The whole-scan lines are fitted on the work these scanner lines predict for
    # each past scan (its measured work where its inputs were not stored), so a
    # bias of the scanner lines is corrected, not compounded.
    predicted = [
        (w, w / max(1, jobs)) if inputs is None else _predicted_work(lines, inputs)
        for w, inputs in zip(work, working_inputs, strict=True)
    ]
    work = [w for w, _ in predicted]
    spans = [s for _, s in predicted]
    # The duration follows the span where the scanners' rates hold whatever the
    # number of busy workers; where a worker is much slower beside another (a
    # loaded machine, cores shared by hyperthreads), the work fits better, with
    # the share of it waited for learned as a slope. Whichever line lies closer
    # to this target's scans is used.
    by_span = True
    startup_ms, wall_per_work = _line(spans, durations, 1.0, BUILTIN_STARTUP_MS)
    if len(durations) >= 3:
        on_work = _line(work, durations, 1.0 / max(1, jobs), BUILTIN_STARTUP_MS)
        if _misfit(on_work, work, durations) < _misfit(
            (startup_ms, wall_per_work), spans, durations
        ):
            by_span = False
            startup_ms, wall_per_work = on_work
    # A scan without a cost probe measured its CPU as 0: not a point of the CPU line.
    cpu_points = [(w, c) for w, c in zip(work, cpus, strict=True) if c > 0]
    startup_cpu_s, cpu_per_work = _line(
        [w for w, _ in cpu_points],
        [c for _, c in cpu_points],
        BUILTIN_CPU_PER_WORK,
        BUILTIN_STARTUP_CPU_S,
    )
    return CostModel(
        ms_per_kb={s: line[1] for s, line in lines.items()},
        scanner_startup_ms={s: line[0] for s, line in lines.items()},
        rate_scans={s: len(p) for s, p in points.items()},
        startup_ms=startup_ms,
        wall_per_work=wall_per_work,
        startup_cpu_s=startup_cpu_s,
        cpu_per_work=cpu_per_work,
        warm_ms=statistics.median(warm_durations) if warm_durations else None,
        warm_cpu_s=statistics.median(warm_cpus) if warm_cpus else None,
        history_scans=len(history),
        by_span=by_span,
    )


# --------------------------------------------------------------------------- predicting


def predict_from_model(
    model: CostModel, inputs: ScanInputs, scanners: Sequence[str], *, made_ms: int | None = None
) -> ScanPrediction:
    """Apply ``model`` to ``inputs`` for ``scanners``."""
    works: dict[str, float] = {}
    rates: dict[str, tuple[float, float, str]] = {}
    batches: list[float] = []
    # Warm means no misses, as ``fit_model`` counts it (misses of empty files may cost 0).
    warm = True
    for scanner in scanners:
        if scanner in inputs.unavailable:
            continue
        scanner_inputs = inputs.per_scanner.get(scanner)
        rate, startup, _ = rates[scanner] = model.rate(scanner)
        works[scanner] = 0.0
        if scanner_inputs is not None and scanner_inputs.misses > 0:
            warm = False
            missed_kb = scanner_inputs.missed_bytes / 1024
            works[scanner] = startup + rate * missed_kb
            batches += batch_work(startup, rate, scanner_inputs.misses, missed_kb)
    total_work = sum(works.values())
    waited = span(batches, inputs.jobs) if model.by_span else total_work
    waited_ms = model.wall_per_work * waited
    per_scanner = {
        # Each scanner's share of the time waited for the workers is its share of the work.
        scanner: ScannerPrediction(
            duration_ms=waited_ms * work / total_work if total_work > 0 else 0.0,
            cpu_s=model.cpu_per_work * work,
            ms_per_kb=rates[scanner][0],
            basis=rates[scanner][2],
            startup_ms=rates[scanner][1],
        )
        for scanner, work in works.items()
    }
    if not warm:
        startup_ms, startup_cpu_s = model.startup_ms, model.startup_cpu_s
    else:  # nothing to read: a warm scan
        startup_ms, startup_cpu_s = model.warm_cost(inputs.files)
    return ScanPrediction(
        duration_ms=startup_ms + waited_ms,
        cpu_s=startup_cpu_s + model.cpu_per_work * total_work,
        basis=HISTORY if model.history_scans else BUILTIN,
        history_scans=model.history_scans,
        per_scanner=per_scanner,
        inputs=inputs,
        made_ms=now_ms() if made_ms is None else made_ms,
        startup_ms=startup_ms,
        startup_cpu_s=startup_cpu_s,
        unavailable=dict(inputs.unavailable),
        duration_from="" if warm else ("span" if model.by_span else "work"),
    )


def _json_object(text: str | None) -> dict[str, Any] | None:
    if not text:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _decoded_history(rows: Iterable[CostRow], host: str) -> Iterator[CostHistoryScan]:
    """The rows that can be usable, decoded one by one (``usable_history`` stops early)."""
    for row in rows:
        if row.status not in _WHOLE or (row.owner_host and host and row.owner_host != host):
            continue
        if not row.metrics:
            continue
        try:
            metrics = MeasuredCost.from_json(row.metrics)
        except (ValueError, TypeError, AttributeError, OverflowError):
            continue
        if metrics.scan_duration_ms <= 0:
            continue
        yield CostHistoryScan(metrics, _json_object(row.prediction), row.status, row.owner_host)


def _previous_inputs(rows: Sequence[CostRow]) -> ScanInputs | None:
    """The inputs of the newest stored prediction, if they carry a fingerprint."""
    for row in rows:
        doc = _json_object(row.prediction)
        if doc is None:
            continue
        inputs = doc.get("inputs")
        if isinstance(inputs, Mapping) and inputs.get("tree"):
            return ScanInputs.from_document(inputs)
        return None
    return None


#: What the model learns from, and the last prediction's inputs (see ``read_history``).
StoredHistory = tuple[list["CostRecord"], ScanInputs | None]


def _cost_rows(store: CostRowStore, target: str) -> Iterator[CostRow]:
    """Up to ``_SCANS_READ`` rows, newest first, read a page at a time as they are used."""
    offset = 0
    while offset < _SCANS_READ:
        page = store.scan_cost_rows(target, limit=min(_PAGE, _SCANS_READ - offset), offset=offset)
        yield from page
        if len(page) < _PAGE:
            return
        offset += len(page)


def read_history(store: PredictionStore | None, *, target: str, host: str) -> StoredHistory:
    """The usable history of ``target`` on ``host``, and the newest prediction's inputs.

    A store with ``scan_cost_rows`` (the ``Store``) is read a page at a time,
    decoding only the rows the model keeps; any other through ``scans``.
    """
    if store is None:
        return [], None
    if hasattr(store, "scan_cost_rows"):
        light = cast("CostRowStore", store)
        seen: list[CostRow] = []

        def rows() -> Iterator[CostRow]:
            for row in _cost_rows(light, target):
                seen.append(row)
                yield row

        scans = usable_history(_decoded_history(rows(), host), host)
        return scans, _previous_inputs(seen)
    records = store.scans(limit=_SCANS_READ, target=target, kind="scan")
    return usable_history(records, host), None


def predict_scan(
    store: PredictionStore | None,
    *,
    target: str,
    host: str,
    inputs: ScanInputs,
    scanners: Sequence[str],
    history: StoredHistory | None = None,
) -> ScanPrediction:
    """Predict a scan of ``target`` on ``host`` from ``inputs``, learning from ``store``'s scans.

    ``history``: already read by ``read_history`` (else it is read here).
    """
    if history is None:
        history = read_history(store, target=target, host=host)
    return predict_from_model(fit_model(history[0], inputs.jobs), inputs, scanners)


def predict_validator_scan(
    store: PredictionStore | None,
    validator: SecurityValidator,
    root: Path,
    paths: Sequence[str],
    *,
    host: str,
    hand_over_walk: bool = False,
) -> ScanPrediction:
    """Predict the scan ``validator`` is about to run of ``paths`` under ``root``.

    ``hand_over_walk``: the validator's next scan reuses the walk and the
    stat memo read here (call it right before the scan), so predicting costs
    no second walk nor a second read of the memo.
    """
    target = str(root.resolve())
    history = read_history(store, target=target, host=host)
    walked: list[Discovery] = []
    memo: list[KnownFiles] = []
    inputs = gather_inputs(
        validator.scanners,
        validator.discovery,
        validator.cache,
        root,
        paths,
        jobs=validator.jobs,
        walked=walked,
        memo=memo,
        previous=history[1],
    )
    if hand_over_walk and walked:
        hand_over(validator, root, paths, walked[0])
        if validator.cache is not None and memo:
            hand_over_memo(validator.cache, memo[0])
    return predict_scan(
        store,
        target=target,
        host=host,
        inputs=inputs,
        scanners=[s.id for s in validator.scanners],
        history=history,
    )


def try_predict(
    store: PredictionStore | None,
    validator: SecurityValidator,
    root: Path,
    paths: Sequence[str],
    *,
    host: str,
) -> ScanPrediction | None:
    """Predict the validator's next scan, handing it the walk; None (logged) when that fails.

    Call it right before the scan. A failing prediction never fails the scan.
    """
    try:
        return predict_validator_scan(store, validator, root, paths, host=host, hand_over_walk=True)
    except Exception:
        log.exception("predicting the scan of %s failed; it runs without a prediction", root)
        return None


def record_prediction(
    store: PredictionStore,
    scan_id: str,
    prediction: ScanPrediction,
    *,
    target: str,
    started_ms: int,
) -> None:
    """Store ``prediction`` beside scan ``scan_id``'s actual cost; failures are logged."""
    try:
        store.record_scan_prediction(
            scan_id, prediction.to_document(), target=target, started_ms=started_ms
        )
    except Exception:
        log.exception("storing the prediction of scan %s failed", scan_id)


def absolute_percentage_error(predicted: float, actual: float) -> float | None:
    """|predicted - actual| / actual in %, or None when ``actual`` is not positive."""
    if actual <= 0:
        return None
    return abs(predicted - actual) / actual * 100.0
