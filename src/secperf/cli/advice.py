"""``secperf advice``: the recommendations of the dashboard and the API, on the terminal."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated

import typer

from secperf.cli.common import SEVERITY_STYLE, console, load_or_exit, open_store

if TYPE_CHECKING:
    from rich.table import Table

    from secperf.analysis.advice import Advice


def advice(
    ctx: typer.Context,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the API's advice document (JSON).")
    ] = False,
) -> None:
    """Recommendations from the stored scans and metrics, each with its evidence and action."""
    # The analysis (and the store under it) loads only when the command runs.
    from secperf.analysis.advice import advice_json, build_advice
    from secperf.events import now_ms

    loaded = load_or_exit(ctx)
    with open_store(loaded) as store:
        # The same call as GET /api/v1/advice: one computation, two surfaces.
        items = build_advice(store, now_ms())
    if as_json:
        typer.echo(json.dumps(advice_json(items), indent=2))
        return
    if not items:
        console().print("no advice: nothing in the stored data calls for action", markup=False)
        return
    console().print(advice_table(items))


def advice_table(items: Sequence[Advice]) -> Table:
    """One row per advice: severity, what was seen with its evidence, what to do.

    Three columns fit 80 terminal columns; the text columns wrap, nothing is cut.
    """
    from rich.table import Table
    from rich.text import Text

    table = Table(title="advice", show_lines=True, expand=True)
    table.add_column("severity", no_wrap=True)
    table.add_column("seen", overflow="fold", ratio=3)
    table.add_column("do", overflow="fold", ratio=2)
    for item in items:
        seen = Text(item.title, style="bold")
        seen.append(f"\n{item.detail}" if item.detail else "")
        for evidence in item.evidence:
            seen.append(f"\n- {evidence.label}: {evidence.value}", style="dim")
        table.add_row(
            Text(item.severity.value, style=SEVERITY_STYLE[item.severity]),
            seen,
            Text(item.action),
        )
    return table
