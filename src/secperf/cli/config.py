"""``secperf config check`` and ``secperf config show``."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from secperf.cli.common import console, err_console, load_or_exit

if TYPE_CHECKING:
    from secperf.config import Config
    from secperf.config.sections.impact import SeriesSelector

app = typer.Typer(
    help="Check and show the configuration.", no_args_is_help=True, rich_markup_mode=None
)


class OutputFormat(StrEnum):
    """Formats of ``secperf config show``."""

    TOML = "toml"
    JSON = "json"


ConfigFileArg = Annotated[
    Path | None,
    typer.Argument(help="Config file to read instead of the one found in the project."),
]


@app.command("check")
def config_check(ctx: typer.Context, file: ConfigFileArg = None) -> None:
    """Validate the configuration and summarise it; exit 2 with each problem if invalid."""
    from rich.markup import escape

    from secperf.cli.alerts import rule_problems_or_exit
    from secperf.config import format_duration_ms, mask_url

    loaded = load_or_exit(ctx, file)
    rule_problems_or_exit(loaded)  # the rule files it names must load too
    cfg = loaded.config
    retention = format_duration_ms(cfg.store.retention)
    token = f"token from {loaded.token_source}" if loaded.token_source else "no token"
    rows = {
        "source": str(loaded.source) if loaded.source else "defaults (no config file)",
        "root": str(loaded.root),
        "store": f"{mask_url(cfg.store.url)} (retention {retention})",
        "bus": mask_url(cfg.bus.url),
        "scanners": ", ".join(cfg.scan.scanners) or "none",
        "server": f"http://{cfg.server.bind} ({token})",
    }
    out = console()
    out.print("[green]configuration is valid[/green]")
    # Plain lines rather than a table: paths must never be cut short.
    for label, value in rows.items():
        out.print(f"  [bold]{label:<10}[/bold]{escape(value)}", soft_wrap=True)
    _warn_about_guards(cfg)


@app.command("show")
def config_show(
    ctx: typer.Context,
    file: ConfigFileArg = None,
    output_format: Annotated[
        OutputFormat, typer.Option("--format", "-f", help="Output format.")
    ] = OutputFormat.TOML,
) -> None:
    """Print the effective configuration, defaults included (secrets masked)."""
    import json

    from secperf.config import export_config, to_toml

    loaded = load_or_exit(ctx, file)
    data = export_config(loaded.config)
    if output_format is OutputFormat.JSON:
        typer.echo(json.dumps(data, indent=2))
    else:
        source = loaded.source if loaded.source else "defaults"
        typer.echo(f"# effective secperf configuration (from {source})\n" + to_toml(data))


def _warn_about_guards(cfg: Config) -> None:
    """Warn (exit 0) about impact-budget guards that match nothing stored yet."""
    if all(selector.builtin for selector in cfg.scan.impact.guard):
        return
    from rich.markup import escape

    from secperf.config.checks import guard_warnings

    err = err_console()
    url = cfg.store.url
    try:
        if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).is_file():
            warnings = guard_warnings(cfg, None)  # checking must not create a store
        else:
            from secperf.store import Store

            with Store.open(url) as store:

                def count(selector: SeriesSelector) -> int:
                    infos = store.series(selector.name, selector.equality_labels() or None)
                    return sum(1 for i in infos if selector.matches(i.name, i.labels))

                warnings = guard_warnings(cfg, count)
    except Exception as exc:  # an unreachable store: the config itself is fine
        err.print(f"[yellow]warning[/yellow] scan.impact.guard: not checked: {escape(str(exc))}")
        return
    for key, message in warnings:
        err.print(f"[yellow]warning[/yellow] {key}: {escape(message)}", soft_wrap=True)
