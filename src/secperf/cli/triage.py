"""``secperf triage``: mark a finding a false positive or accept its risk."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer

from secperf.cli.common import author_option, console, fail, load_or_exit


def parse_until(until: str | None) -> int | None:
    """``--until`` as UTC milliseconds: a date (end of that day) or an ISO date-time."""
    if until is None:
        return None
    try:
        if len(until) == 10:
            day = datetime.fromisoformat(until).replace(tzinfo=UTC)
            return int((day + timedelta(days=1)).timestamp() * 1000)
        moment = datetime.fromisoformat(until)
    except ValueError:
        raise typer.BadParameter(
            f"{until!r} is not a date (YYYY-MM-DD) or ISO date-time", param_hint="--until"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def triage(
    ctx: typer.Context,
    fingerprint: Annotated[str, typer.Argument(help="Fingerprint or a unique prefix.")],
    false_positive: Annotated[
        bool, typer.Option("--false-positive", help="Mark as a false positive.")
    ] = False,
    accept_risk: Annotated[bool, typer.Option("--accept-risk", help="Accept the risk.")] = False,
    reopen: Annotated[bool, typer.Option("--reopen", help="Undo an earlier decision.")] = False,
    reason: Annotated[str, typer.Option("--reason", help="Why (required).")] = "",
    until: Annotated[
        str | None, typer.Option("--until", help="Expiry: YYYY-MM-DD or an ISO date-time.")
    ] = None,
    author: Annotated[str | None, typer.Option("--author", help="Default: your user name.")] = None,
) -> None:
    """Mark a finding a false positive or accept its risk (optionally until a date)."""
    # The store loads only when a command reads it.
    from rich.markup import escape

    from secperf.commands.scanning import open_store, resolve_fingerprint
    from secperf.events import now_ms

    chosen = [
        name
        for name, on in (
            ("false_positive", false_positive),
            ("accepted_risk", accept_risk),
            ("open", reopen),
        )
        if on
    ]
    if len(chosen) != 1:
        fail("give exactly one of --false-positive, --accept-risk or --reopen")
    if not reason.strip():
        fail("--reason is required: say why, for whoever reads this later")
    expires = parse_until(until)
    if expires is not None and expires <= now_ms():
        fail(f"--until {until}: the date is already past")
    loaded = load_or_exit(ctx)
    with open_store(loaded) as store:
        try:
            finding = resolve_fingerprint(store, fingerprint)
        except ValueError as exc:
            fail(str(exc))
        entry = store.set_triage(
            finding.fingerprint, chosen[0], author_option(author), reason, expires
        )
    console().print(
        f"{escape(finding.rule_id)} at {escape(finding.path)}:{finding.line} is now"
        f" [bold]{entry.state}[/bold]" + (f" until {until}" if until else "")
    )
