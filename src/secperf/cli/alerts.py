"""``secperf alerts`` (list, ack, silence, unsilence) and ``secperf rules check``."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from secperf.cli.common import author_option, console, err_console, fail, load_or_exit
from secperf.model import Alert, AlertState, ExitCode

if TYPE_CHECKING:
    from secperf.alerts.rule_loading import RuleEntry
    from secperf.config import LoadedConfig
    from secperf.store import AlertTransition, Silence

app = typer.Typer(
    help="List, acknowledge and silence alerts.", no_args_is_help=True, rich_markup_mode=None
)
rules_app = typer.Typer(
    help="Check alert rules: the effective set, or one file.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

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
    out = console()
    out.print(alerts_table(rows, now, width=out.width))


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


@app.command("history")
def alerts_history(
    ctx: typer.Context,
    fingerprint: Annotated[
        str, typer.Argument(help="The alert's fingerprint, or a unique prefix of 6+ characters.")
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Every recorded state change of one alert, oldest first."""
    from secperf.commands.alerts import AlertsCommandError, resolve_alert
    from secperf.commands.scanning import open_store

    loaded = load_or_exit(ctx)
    try:
        with open_store(loaded) as store:
            alert = resolve_alert(store, fingerprint)
            history = store.alert_history(alert.fingerprint)
    except AlertsCommandError as exc:
        fail(str(exc))
    if as_json:
        typer.echo(
            json.dumps(
                [
                    {
                        "ts_ms": t.ts_ms,
                        "from_state": t.from_state.value,
                        "to_state": t.to_state.value,
                        "value": t.alert.value,
                        "summary": t.alert.annotations.get("summary", ""),
                    }
                    for t in history
                ],
                indent=2,
            )
        )
        return
    if not history:
        console().print(
            f"{alert.fingerprint} ({alert.rule}): no recorded state change", markup=False
        )
        return
    console().print(history_table(alert, history))


@app.command("silences")
def alerts_silences(
    ctx: typer.Context,
    show_all: Annotated[
        bool, typer.Option("--all", help="Also silences that ended or start later.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Silences in force now (every stored one with --all), newest first."""
    from secperf.commands.scanning import open_store
    from secperf.events import now_ms

    loaded = load_or_exit(ctx)
    now = now_ms()
    with open_store(loaded) as store:
        found = store.silences(active_at_ms=None if show_all else now)
    found = sorted(found, key=lambda s: s.created_ms, reverse=True)
    if as_json:
        typer.echo(
            json.dumps(
                [{**dataclasses.asdict(s), "active": s.active(now)} for s in found], indent=2
            )
        )
        return
    if not found:
        console().print(
            "no silences" + ("" if show_all else " in force (--all shows every one)"),
            markup=False,
        )
        return
    console().print(silences_table(found, now))


@rules_app.command("check")
def rules_check(
    ctx: typer.Context,
    file: Annotated[
        Path | None,
        typer.Argument(
            help="A rule file ([[rules]]), or secperf.toml / pyproject.toml with [alerts] rules. "
            "Default: the effective rules (defaults, configuration, rule files) with their source."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Load every rule and print it OK or its problem; exit 2 when any is invalid."""
    if file is None:
        _effective_rules_check(ctx, as_json=as_json)
        return
    from secperf.commands.alerts import check_rules, rules_report_lines

    report = check_rules(file)
    bad = sum(1 for c in report.checks if c.problem is not None) + len(report.file_problems)
    good = sum(1 for c in report.checks if c.problem is None)
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "valid": bad == 0,
                    "rules": [dataclasses.asdict(c) for c in report.checks],
                    "file_problems": report.file_problems,
                    "default_rules": report.default_rules,
                },
                indent=2,
            )
        )
        if bad:
            raise typer.Exit(int(ExitCode.USAGE))
        return
    out = console()
    for is_problem, line in rules_report_lines(report):
        out.print(line, markup=False, soft_wrap=True, style="red" if is_problem else None)
    defaults = f" (+ {report.default_rules} default rules)" if report.default_rules else ""
    if bad:
        err_console().print(f"{bad} problem(s); {good} rule(s) valid{defaults}", markup=False)
        raise typer.Exit(int(ExitCode.USAGE))
    out.print(f"{good} rule(s) valid{defaults}", markup=False)


def config_rules_source(loaded: LoadedConfig) -> str:
    """How rule sources name the config: ``secperf.toml: alerts``, ``pyproject.toml:
    tool.secperf.alerts`` or ``defaults: alerts`` without a config file."""
    from secperf.config import PYPROJECT_FILE_NAME, PYPROJECT_PREFIX

    if loaded.source is None:
        return "defaults: alerts"
    try:
        shown = str(loaded.source.resolve().relative_to(Path.cwd()))
    except ValueError:
        shown = str(loaded.source)
    prefix = PYPROJECT_PREFIX if loaded.source.name == PYPROJECT_FILE_NAME else ""
    return f"{shown}: {prefix}alerts"


def rule_problems_or_exit(loaded: LoadedConfig) -> None:
    """Exit 2 naming each rule file, rule and problem when a configured rule does not load."""
    from secperf.alerts.rule_loading import effective_rules

    found = effective_rules(loaded.config.alerts, source=config_rules_source(loaded))
    if found.problems:
        fail("\n".join(found.problems))


def _effective_rules_check(ctx: typer.Context, *, as_json: bool) -> None:
    from secperf.alerts.rule_loading import effective_rules
    from secperf.alerts.rules import rule_summary

    loaded = load_or_exit(ctx)
    found = effective_rules(loaded.config.alerts, source=config_rules_source(loaded))
    if as_json:
        items = []
        for entry in found.entries:
            rule = entry.rule
            items.append(
                {
                    "name": entry.name,
                    "source": entry.source,
                    "status": _entry_status(entry),
                    "replaced_by": entry.replaced_by,
                    "problem": entry.problem,
                    "kind": rule.kind if rule is not None else None,
                    "metric": rule.metric if rule is not None else None,
                    "severity": rule.severity.value if rule is not None else None,
                    "summary": rule_summary(rule) if rule is not None else None,
                }
            )
        typer.echo(json.dumps({"valid": not found.problems, "rules": items}, indent=2))
    else:
        console().print(_rules_table(found.entries))
        for problem in found.problems:
            if not any(problem == e.problem for e in found.entries):
                err_console().print(f"FAIL  {_shown_source(problem)}", markup=False, style="red")
    active = len(found.rules)
    if found.problems:
        if not as_json:
            err_console().print(
                f"{len(found.problems)} problem(s); {active} rule(s) in effect", markup=False
            )
        raise typer.Exit(int(ExitCode.USAGE))
    if not as_json:
        console().print(f"{active} rule(s) in effect, all valid", markup=False)


def _entry_status(entry: RuleEntry) -> str:
    if entry.problem is not None:
        return "invalid"
    if entry.replaced_by is not None:
        return "replaced"
    return "active"


def _rules_table(entries: Sequence[RuleEntry]) -> Table:
    """The effective rules: name and what each watches (or what is wrong), source, status.

    What replaced a rule, and an invalid rule's problems (one per line), go
    under its name, in the widest column: in the narrow status column they
    would fold into a word a line.
    """
    from secperf.alerts.rules import rule_summary

    table = Table(title=f"{len(entries)} rule(s)", title_justify="left", expand=True)
    table.add_column("rule", overflow="fold", ratio=3)
    table.add_column("source", overflow="fold", ratio=2)
    table.add_column("status", overflow="fold", ratio=1, min_width=8)
    for entry in entries:
        name = escape(entry.name or "(no name)")
        if entry.problem is not None:
            problems = "\n".join(escape(p) for p in _PROBLEM_SPLIT.split(_problem_only(entry)))
            cell = f"[bold]{name}[/bold]\n[red]{problems}[/red]"
            shown = "[red]invalid[/red]"
        else:
            cell = f"[bold]{name}[/bold]"
            if entry.rule is not None:
                cell += f"\n[dim]{escape(rule_summary(entry.rule))}[/dim]"
            if entry.replaced_by is not None:
                cell += f"\n[dim]replaced by {escape(_shown_source(entry.replaced_by))}[/dim]"
            shown = _entry_status(entry)
        table.add_row(cell, escape(_shown_source(entry.source)), shown)
    return table


#: Between two problems of one rule ("aggregation: ...; threshold: ..."), not inside
#: one ("invalid duration '5'; use a number with a unit").
_PROBLEM_SPLIT = re.compile(r"; (?=[\w.\[\]]+: )")


def _shown_source(source: str) -> str:
    """A rule's source with its file relative to the working directory, as the config's is."""
    path, sep, rest = source.partition(": ")
    if sep and Path(path).is_absolute():
        try:
            return f"{Path(path).relative_to(Path.cwd())}{sep}{rest}"
        except ValueError:
            return source
    return source


def _problem_only(entry: RuleEntry) -> str:
    """The problem without the source and name the other cells already show."""
    text = entry.problem or ""
    for lead in (f"{entry.source} ({entry.name!r}): ", f"{entry.source}: "):
        if text.startswith(lead):
            return text[len(lead) :]
    return text


app.add_typer(rules_app, name="rules")


# --------------------------------------------------------------------------- display


#: Below this width ``alerts list`` stacks cells so that no column is squeezed to nothing.
WIDE_TABLE = 120


def _state_cell(state: AlertState) -> str:
    style = _STATE_STYLE.get(state, "")
    return f"[{style}]{state.value}[/{style}]" if style else state.value


def _labels_text(alert: Alert, sep: str) -> str:
    return sep.join(f"{k}={v}" for k, v in sorted(alert.labels.items()) if k not in _HIDDEN_LABELS)


def _ack_text(alert: Alert) -> str:
    if not alert.acknowledged_by:
        return ""
    note = f": {alert.acknowledgement_note}" if alert.acknowledgement_note else ""
    return f"{alert.acknowledged_by}{note}"


def alerts_table(rows: Sequence[tuple[Alert, bool]], now_ms: int, width: int = 200) -> Table:
    """The Rich table of ``alerts list``.

    Wide terminals get one line per alert; below ``WIDE_TABLE`` columns the
    state goes under the fingerprint, the labels under the rule (one per line)
    and the acknowledgement and "silenced" into notes, so every cell keeps its text.
    Long values fold onto the next line rather than being cut with an ellipsis.
    """
    # The alert rules and the store load only when the command runs.
    from secperf.alerts.rules import format_value
    from secperf.commands.alerts import ago, alert_since
    from secperf.timefmt import iso_seconds

    wide = width >= WIDE_TABLE
    # Narrow: the ratios share the width out, so the rule and labels get the most.
    table = Table(title=f"{len(rows)} alert(s)", title_justify="left", expand=not wide)
    if wide:
        table.add_column("fingerprint", no_wrap=True)
        table.add_column("state", no_wrap=True)
        table.add_column("severity", no_wrap=True)
        table.add_column("rule", overflow="fold")
        table.add_column("labels", overflow="fold")
        table.add_column("value", justify="right", overflow="fold")
        table.add_column("since", no_wrap=True)
        table.add_column("ack", overflow="fold")
        table.add_column("silenced", no_wrap=True)
    else:
        table.add_column("alert", overflow="fold", min_width=8)
        table.add_column("rule / labels", overflow="fold", ratio=3, min_width=16)
        table.add_column("value", justify="right", overflow="fold", min_width=5)
        table.add_column("since", overflow="fold", min_width=6)
        table.add_column("notes", overflow="fold", ratio=2, min_width=12)
    for alert, silenced in rows:
        since = alert_since(alert)
        when = ago(since, now_ms)
        clock = iso_seconds(since)[11:19]
        if wide:
            table.add_row(
                alert.fingerprint,
                _state_cell(alert.state),
                alert.severity.value,
                escape(alert.rule),
                escape(_labels_text(alert, ", ")),
                format_value(alert.value),
                f"{when} ({clock})",
                escape(_ack_text(alert)),
                "yes" if silenced else "",
            )
            continue
        labels = _labels_text(alert, "\n")
        notes = [f"ack {_ack_text(alert)}"] if alert.acknowledged_by else []
        if silenced:
            notes.append("silenced")
        table.add_row(
            f"{alert.fingerprint}\n{_state_cell(alert.state)}\n{alert.severity.value}",
            f"[bold]{escape(alert.rule)}[/bold]" + (f"\n{escape(labels)}" if labels else ""),
            format_value(alert.value),
            f"{when}\n{clock}",
            escape("\n".join(notes)),
        )
    return table


def history_table(alert: Alert, history: Sequence[AlertTransition]) -> Table:
    """The Rich table of ``alerts history``: when, the change, the value, the summary."""
    from secperf.alerts.rules import format_value
    from secperf.timefmt import iso_seconds

    table = Table(
        title=escape(f"{alert.fingerprint} ({alert.rule}): {len(history)} change(s)"),
        title_justify="left",
        expand=True,
    )
    table.add_column("when (UTC)", overflow="fold", min_width=10)
    table.add_column("change", overflow="fold", min_width=10)
    table.add_column("value", justify="right", overflow="fold", min_width=5)
    table.add_column("summary", overflow="fold", ratio=1, min_width=20)
    for t in history:
        table.add_row(
            iso_seconds(t.ts_ms),
            f"{t.from_state.value} → {_state_cell(t.to_state)}",
            format_value(t.alert.value),
            escape(t.alert.annotations.get("summary", "")),
        )
    return table


def silences_table(silences: Sequence[Silence], now_ms: int) -> Table:
    """The Rich table of ``alerts silences``: id, matchers, when, who and why."""
    from secperf.commands.alerts import ago, matchers_text
    from secperf.timefmt import iso_seconds

    table = Table(title=f"{len(silences)} silence(s)", title_justify="left", expand=True)
    table.add_column("id", justify="right", min_width=2)
    table.add_column("matchers", overflow="fold", ratio=2, min_width=12)
    table.add_column("when (UTC)", overflow="fold", min_width=12)
    table.add_column("by / why", overflow="fold", ratio=2, min_width=12)
    for silence in silences:
        if silence.active(now_ms):
            when = f"until {iso_seconds(silence.ends_ms)}\n(ends {ago(silence.ends_ms, now_ms)})"
        elif silence.starts_ms > now_ms:
            when = f"from {iso_seconds(silence.starts_ms)}\nuntil {iso_seconds(silence.ends_ms)}"
        else:
            when = f"ended {iso_seconds(silence.ends_ms)}"
        table.add_row(
            str(silence.id),
            escape(matchers_text(silence.matchers)),
            when,
            escape(f"{silence.author}: {silence.reason}"),
        )
    return table
