"""``secperf correlate``: rank the metrics that scans affect, with the evidence."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from secperf.cli.common import console, err_console, fail, load_or_exit

if TYPE_CHECKING:
    from rich.table import Table

    from secperf.analysis.correlate_store import CorrelationRun
    from secperf.config import LoadedConfig
    from secperf.security.pacing.summary import ThrottlingWindow

#: Rows of the table; --json shows every series.
MAX_ROWS = 30
MIN_LEAD_LAG_SHOWN = 0.5  # |Pearson r| below this is not worth a line


def correlate(
    ctx: typer.Context,
    since: Annotated[
        str,
        typer.Option("--since", metavar="DURATION", help="How far back to look: 24h, 7d, 90m."),
    ] = "24h",
    metric: Annotated[
        list[str] | None,
        typer.Option("--metric", "-m", metavar="NAME", help="Only this metric (repeat for more)."),
    ] = None,
    alpha: Annotated[
        float, typer.Option("--alpha", help="False discovery rate for significance.")
    ] = 0.01,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Rank the metrics that scans affect, with the evidence; exit 3 without scans or data."""
    # The statistics (scipy) and the store load only when a correlation runs.
    import json

    from secperf.analysis.correlate_store import explain, format_duration, format_labels
    from secperf.commands.correlate import CorrelateUsageError, run_json
    from secperf.commands.correlate import correlate as run_correlate
    from secperf.model import ExitCode
    from secperf.timefmt import iso_seconds

    loaded = load_or_exit(ctx)
    try:
        run = run_correlate(loaded, since=since, metrics=metric, alpha=alpha)
    except CorrelateUsageError as exc:
        fail(str(exc))
    out, err = console(), err_console()
    throttling = _throttling(loaded, run.since_ms, run.until_ms)
    if as_json:
        # Plain text, never wrapped: scripts parse it.
        document = run_json(run)
        document["pacing"] = throttling.to_json() if throttling is not None else None
        out.print(json.dumps(document, indent=2), markup=False, highlight=False, soft_wrap=True)
    if not run.evaluable:
        err.print(
            f"cannot evaluate: {len(run.problems)} problem(s) between {iso_seconds(run.since_ms)}"
            f" and {iso_seconds(run.until_ms)}",
            markup=False,
        )
        for problem in run.problems:
            err.print(f"  - {problem}", markup=False)
        raise typer.Exit(int(ExitCode.CANNOT_EVALUATE))
    if as_json:
        return
    out.print(results_table(run))
    skipped = len(run.results) - len(run.tested)
    if len(run.tested) > MAX_ROWS:
        out.print(f"{len(run.tested) - MAX_ROWS} more series: use --json to see all")
    if skipped:
        reasons = sorted({r.reason for r in run.results if r.insufficient})
        out.print(
            f"{skipped} series had too little data around the scans (e.g. {reasons[0]})",
            markup=False,
        )
    strong = [p for p in run.lead_lags if abs(p.coefficient) >= MIN_LEAD_LAG_SHOWN]
    for pair in strong[:5]:
        direction = "follows" if pair.best_lag_ms >= 0 else "leads"
        out.print(
            f"lead/lag: {pair.name}{format_labels(pair.labels)} {direction} "
            f"{pair.security_name}{format_labels(pair.security_labels)} by "
            f"{format_duration(abs(pair.best_lag_ms))} (r={pair.coefficient:+.2f})",
            markup=False,
        )
    out.print(explain(run.tested[0], run.alpha), markup=False, soft_wrap=True)
    if throttling is not None and (line := throttling.sentence()) is not None:
        # Throttled scans moved the series less than they would have at full speed.
        out.print(line, markup=False, soft_wrap=True)
    if run.id is not None:
        out.print(f"stored as correlation run {run.id}", style="dim", markup=False)


def _throttling(loaded: LoadedConfig, since_ms: int, until_ms: int) -> ThrottlingWindow | None:
    """How the window's scans were paced (None when the store cannot say)."""
    from secperf.security.pacing.summary import throttling_in_window
    from secperf.store import Store

    try:
        with Store.open(loaded.config.store.url) as store:
            return throttling_in_window(store, since_ms, until_ms)
    except Exception:  # the correlation stands without it
        return None


def _num(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def results_table(run: CorrelationRun, limit: int = MAX_ROWS) -> Table:
    """The tested results, ranked (strongest evidence first).

    Numbers never wrap; only the series name folds, so the table stays readable
    in an 80-column terminal.
    """
    from rich import box
    from rich.markup import escape
    from rich.table import Table

    from secperf.analysis.correlate_store import format_duration, format_labels

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
