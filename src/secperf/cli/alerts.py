"""``secperf alerts`` (list, ack, silence, unsilence) and ``secperf rules check``."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from secperf.cli.common import author_option, console, err_console, fail, load_or_exit
from secperf.model import Alert, AlertState, ExitCode

app = typer.Typer(
    help="List, acknowledge and silence alerts.", no_args_is_help=True, rich_markup_mode=None
)
rules_app = typer.Typer(help="Check alert rule files.", no_args_is_help=True, rich_markup_mode=None)

_STATE_STYLE = {
    AlertState.FIRING: "bold red",
    AlertState.PENDING: "yellow",
    AlertState.ERROR: "magenta",
    AlertState.NODATA: "blue",
    AlertState.RESOLVED: "green",
    AlertState.INACTIVE: "dim",
}
_HIDDEN_LABELS = frozenset({"alertname", "severity"})


@app.command("list")
def alerts_list(
    ctx: typer.Context,
    state_filter: Annotated[
        list[str] | None,
        typer.Option(
            "--state",
            "-s",
            help="Only alerts in this state (repeat, or comma-separate): firing, pending, "
            "resolved, nodata, error, inactive. Default: all but inactive.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Stored alerts, newest change first: state, severity, rule, labels, value, ack, silenced."""
    # The store loads only when a command reads it.
    from secperf.commands.alerts import (
        AlertsCommandError,
        alerts_json,
        parse_states,
        stored_alerts,
    )
    from secperf.commands.scanning import open_store
    from secperf.events import now_ms

    try:
        states = parse_states(state_filter)
    except AlertsCommandError as exc:
        fail(str(exc))
    loaded = load_or_exit(ctx)
    now = now_ms()
    with open_store(loaded) as store:
        rows = stored_alerts(store, states, now)
    if as_json:
        typer.echo(json.dumps(alerts_json(rows), indent=2))
        return
    if not rows:
        shown = ", ".join(s.value for s in states)
        console().print(f"no alerts ({shown})", markup=False)
        return
    console().print(alerts_table(rows, now))


@app.command("ack")
def alerts_ack(
    ctx: typer.Context,
    fingerprint: Annotated[
        str, typer.Argument(help="The alert's fingerprint, or a unique prefix of 6+ characters.")
    ],
    author: Annotated[
        str | None, typer.Option("--author", "-a", help="Who acknowledges (default: you).")
    ] = None,
    note: Annotated[str, typer.Option("--note", "-n", help="Why, or what is being done.")] = "",
) -> None:
    """Acknowledge an alert with an author and a note (cleared when it fires again)."""
    from secperf.commands.alerts import AlertsCommandError, acknowledge
    from secperf.commands.scanning import open_store
    from secperf.events import now_ms

    loaded = load_or_exit(ctx)
    try:
        with open_store(loaded) as store:
            alert = acknowledge(store, fingerprint, author_option(author), note, now_ms())
    except AlertsCommandError as exc:
        fail(str(exc))
    console().print(
        f"acknowledged {alert.fingerprint} ({alert.rule}, {alert.state.value})"
        f" by {alert.acknowledged_by}" + (f": {note}" if note else ""),
        markup=False,
        soft_wrap=True,
    )


@app.command("silence")
def alerts_silence(
    ctx: typer.Context,
    matchers: Annotated[
        list[str],
        typer.Argument(
            help='Label matchers in PromQL form: job="api", env!="dev", severity=~"high|critical".'
        ),
    ],
    duration: Annotated[
        str, typer.Option("--duration", "-d", help="How long, e.g. 30m, 2h, 1d.")
    ] = "2h",
    starts: Annotated[
        str | None,
        typer.Option(
            "--starts",
            help="When it starts: now (default), a duration from now (30m) or an ISO date-time.",
        ),
    ] = None,
    author: Annotated[
        str | None, typer.Option("--author", "-a", help="Who silences (default: you).")
    ] = None,
    reason: Annotated[str, typer.Option("--reason", "-r", help="Why (required).")] = "",
) -> None:
    """Mute alerts matching every matcher for a while; prints the silence id."""
    from secperf.commands.alerts import AlertsCommandError, add_silence, silence_line
    from secperf.commands.scanning import open_store
    from secperf.events import now_ms

    if not reason.strip():
        fail("--reason: required: say why these alerts are silenced")
    loaded = load_or_exit(ctx)
    now = now_ms()
    try:
        with open_store(loaded) as store:
            silence = add_silence(
                store,
                matchers,
                duration=duration,
                starts=starts,
                author=author_option(author),
                reason=reason,
                now_ms=now,
            )
    except AlertsCommandError as exc:
        fail(str(exc))
    console().print(silence_line(silence, now), markup=False, soft_wrap=True)


@app.command("unsilence")
def alerts_unsilence(
    ctx: typer.Context,
    silence_id: Annotated[int, typer.Argument(help="The silence id (printed by `silence`).")],
) -> None:
    """End a silence now."""
    from secperf.commands.alerts import AlertsCommandError, expire_silence
    from secperf.commands.scanning import open_store
    from secperf.events import now_ms

    loaded = load_or_exit(ctx)
    try:
        with open_store(loaded) as store:
            done = expire_silence(store, silence_id, now_ms())
    except AlertsCommandError as exc:
        fail(str(exc))
    if done.ended:
        console().print(f"silence {silence_id} ended", markup=False)
    else:
        console().print(f"silence {silence_id} had already ended; nothing to do", markup=False)


@rules_app.command("check")
def rules_check(
    file: Annotated[
        Path,
        typer.Argument(
            help="A rule file ([[rules]]), or secperf.toml / pyproject.toml with [alerts] rules."
        ),
    ],
) -> None:
    """Load every rule and print it OK or its problem; exit 2 when any is invalid."""
    from secperf.commands.alerts import check_rules, rules_report_lines

    report = check_rules(file)
    out = console()
    for is_problem, line in rules_report_lines(report):
        out.print(line, markup=False, soft_wrap=True, style="red" if is_problem else None)
    bad = sum(1 for c in report.checks if c.problem is not None) + len(report.file_problems)
    good = sum(1 for c in report.checks if c.problem is None)
    defaults = f" (+ {report.default_rules} default rules)" if report.default_rules else ""
    if bad:
        err_console().print(f"{bad} problem(s); {good} rule(s) valid{defaults}", markup=False)
        raise typer.Exit(int(ExitCode.USAGE))
    out.print(f"{good} rule(s) valid{defaults}", markup=False)


app.add_typer(rules_app, name="rules")


# --------------------------------------------------------------------------- display


def alerts_table(rows: Sequence[tuple[Alert, bool]], now_ms: int) -> Table:
    """The Rich table of ``alerts list``."""
    # The alert rules and the store load only when the command runs.
    from secperf.alerts.rules import format_value
    from secperf.commands.alerts import ago, alert_since
    from secperf.timefmt import iso_seconds

    table = Table(title=f"{len(rows)} alert(s)", title_justify="left")
    table.add_column("fingerprint", no_wrap=True)
    table.add_column("state", no_wrap=True)
    table.add_column("severity", no_wrap=True)
    table.add_column("rule")
    table.add_column("labels", overflow="fold")
    table.add_column("value", justify="right")
    table.add_column("since", no_wrap=True)
    table.add_column("ack", overflow="fold")
    table.add_column("silenced", no_wrap=True)
    for alert, silenced in rows:
        labels = ", ".join(
            f"{k}={v}" for k, v in sorted(alert.labels.items()) if k not in _HIDDEN_LABELS
        )
        ack = ""
        if alert.acknowledged_by:
            ack = alert.acknowledged_by
            if alert.acknowledgement_note:
                ack += f": {alert.acknowledgement_note}"
        since = alert_since(alert)
        style = _STATE_STYLE.get(alert.state, "")
        table.add_row(
            alert.fingerprint,
            f"[{style}]{alert.state.value}[/{style}]" if style else alert.state.value,
            alert.severity.value,
            escape(alert.rule),
            escape(labels),
            format_value(alert.value),
            f"{ago(since, now_ms)} ({iso_seconds(since)[11:19]})",
            escape(ack),
            "yes" if silenced else "",
        )
    return table
