"""``secperf correlate``: run a correlation over the store and print the ranking.

The command computes a fresh run (``analysis.correlate_store.run_correlation``),
stores it, and prints a Rich table ranked by evidence with one sentence on the
top result, or the run as JSON. When there are no scans or too little data it
says exactly what is missing and returns 3 (cannot evaluate).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from secperf.analysis.correlate_store import (
    CorrelationRun,
    correlations_json,
    explain,
    format_duration,
    format_labels,
    iso_ms,
    lead_lag_json,
    run_correlation,
)
from secperf.config import LoadedConfig, parse_duration_ms
from secperf.store import Store

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_CANNOT_EVALUATE = 3
MAX_ROWS = 30
MIN_LEAD_LAG_SHOWN = 0.5  # |Pearson r| below this is not worth a line


def _num(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def results_table(run: CorrelationRun, limit: int = MAX_ROWS) -> Table:
    """The tested results, ranked (strongest evidence first).

    Numbers never wrap; only the series name folds, so the table stays readable
    in an 80-column terminal.
    """
    table = Table(
        title=f"Scan effect on {run.n_series} series over {run.n_scans} scans",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        padding=(0, 1),
        collapse_padding=True,
    )
    table.add_column("series", overflow="fold", min_width=16, ratio=1)
    for header in ("effect %", "q", "KS p", "MW p", "volume", "onset", "in/quiet"):
        table.add_column(header, justify="right", no_wrap=True)
    table.add_column("sig", justify="center", no_wrap=True)
    for r in run.tested[:limit]:
        table.add_row(
            escape(f"{r.name}{format_labels(r.labels)}"),
            _num(r.effect_pct, "+.1f"),
            _num(r.q_value, ".1g"),
            _num(r.ks_p, ".1g"),
            _num(r.mw_p, ".1g"),
            _num(r.volume_score, "+.2f"),
            "-" if r.onset_lag_ms is None else format_duration(r.onset_lag_ms),
            f"{r.n_inside}/{r.n_quiet}",
            "[green]✓[/green]" if r.significant else "",
        )
    return table


def run_json(run: CorrelationRun) -> dict[str, Any]:
    """The API document plus the run's range, counts, problems and lead/lag pairs."""
    doc = correlations_json(run)
    doc.update(
        {
            "id": run.id,
            "since_ms": run.since_ms,
            "until_ms": run.until_ms,
            "alpha": run.alpha,
            "n_scans": run.n_scans,
            "n_series": run.n_series,
            "problems": list(run.problems),
            "lead_lag": lead_lag_json(run),
            "explanation": explain(run.tested[0], run.alpha) if run.tested else None,
        }
    )
    return doc


def correlate_command(
    loaded: LoadedConfig,
    *,
    since: str,
    metrics: Sequence[str] | None,
    alpha: float,
    as_json: bool,
    console: Console,
    err_console: Console,
    now_ms: int | None = None,
) -> int:
    """Run, store and print a correlation; returns the exit code."""
    try:
        window = parse_duration_ms(since)
    except ValueError as exc:
        err_console.print(f"--since: {exc}", markup=False)
        return EXIT_USAGE
    if window <= 0:
        err_console.print(f"--since: {since!r} must be a positive duration", markup=False)
        return EXIT_USAGE
    if not 0 < alpha < 1:
        err_console.print(f"--alpha: must be between 0 and 1, got {alpha}", markup=False)
        return EXIT_USAGE
    until = now_ms if now_ms is not None else time.time_ns() // 1_000_000
    with Store.open(loaded.config.store.url) as store:
        run = run_correlation(
            store, until - window, until, alpha=alpha, metrics=metrics, now_ms=until
        )
    if as_json:
        # Plain text, never wrapped: scripts parse it.
        console.print(
            json.dumps(run_json(run), indent=2), markup=False, highlight=False, soft_wrap=True
        )
    if not run.evaluable:
        err_console.print(
            f"cannot evaluate: {len(run.problems)} problem(s) between {iso_ms(run.since_ms)}"
            f" and {iso_ms(run.until_ms)}",
            markup=False,
        )
        for problem in run.problems:
            err_console.print(f"  - {problem}", markup=False)
        return EXIT_CANNOT_EVALUATE
    if as_json:
        return EXIT_OK
    console.print(results_table(run))
    skipped = len(run.results) - len(run.tested)
    if len(run.tested) > MAX_ROWS:
        console.print(f"{len(run.tested) - MAX_ROWS} more series: use --json to see all")
    if skipped:
        reasons = sorted({r.reason for r in run.results if r.insufficient})
        console.print(
            f"{skipped} series had too little data around the scans (e.g. {reasons[0]})",
            markup=False,
        )
    strong = [p for p in run.lead_lags if abs(p.coefficient) >= MIN_LEAD_LAG_SHOWN]
    for pair in strong[:5]:
        direction = "follows" if pair.best_lag_ms >= 0 else "leads"
        console.print(
            f"lead/lag: {pair.name}{format_labels(pair.labels)} {direction} "
            f"{pair.security_name}{format_labels(pair.security_labels)} by "
            f"{format_duration(abs(pair.best_lag_ms))} (r={pair.coefficient:+.2f})",
            markup=False,
        )
    console.print(explain(run.tested[0], run.alpha), markup=False, soft_wrap=True)
    if run.id is not None:
        console.print(f"stored as correlation run {run.id}", style="dim", markup=False)
    return EXIT_OK
