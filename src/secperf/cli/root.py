"""The root command: global options, ``--version``, the command table, unusable stores.

The command modules are imported when a command is looked up, not when the
root group is built: ``secperf --help`` lists every command from ``COMMANDS``
(name, module, short help) and imports none of them, so one heavy command
module cannot slow every other command down.
"""

from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer._coercion import RuntimeParam, build_runtime_param

from secperf import __version__
from secperf.cli.common import GlobalOptions, console, fail

if TYPE_CHECKING:
    from secperf.model import ExitCode


@dataclass(frozen=True, slots=True)
class LazyCommand:
    """A command or group of the root, imported only when it is run or its help is shown."""

    name: str
    #: Module under ``secperf.cli`` and the attribute there: a function (a
    #: command) or a ``typer.Typer`` (a group).
    module: str
    attribute: str
    #: The first line of its help, for ``secperf --help`` (a test keeps it equal
    #: to the command's own).
    help: str


#: Commands, then groups, in the order `secperf --help` lists them.
COMMANDS: tuple[LazyCommand, ...] = (
    LazyCommand(
        "scan",
        "scan",
        "scan",
        "Scan a codebase with every enabled scanner; new findings at or above --fail-on exit 1.",
    ),
    LazyCommand(
        "triage",
        "triage",
        "triage",
        "Mark a finding a false positive or accept its risk (optionally until a date).",
    ),
    LazyCommand(
        "gate",
        "gate",
        "gate",
        "Run the CI quality gate: exit 0 pass, 1 blocked, 3 cannot evaluate, 2 bad input.",
    ),
    LazyCommand(
        "report",
        "report",
        "report",
        "Write the compliance report of a period: findings, SLAs, gates, objectives, evidence.",
    ),
    LazyCommand(
        "monitor",
        "monitor",
        "monitor",
        "Collect system, process and Prometheus metrics into the store, with a live view.",
    ),
    LazyCommand(
        "correlate",
        "correlate",
        "correlate",
        "Rank the metrics that scans affect, with the evidence; exit 3 without scans or data.",
    ),
    LazyCommand(
        "advice",
        "advice",
        "advice",
        "Recommendations from the stored scans and metrics, each with its evidence and action.",
    ),
    LazyCommand(
        "serve", "serve", "serve", "Serve the API and dashboard (consumes the bus, stores, alerts)."
    ),
    LazyCommand(
        "up", "up", "up", "Scan, watch, monitor, alert and serve the dashboard for this project."
    ),
    LazyCommand(
        "demo",
        "demo",
        "demo",
        "Run a local workload: a service under load, periodic scans, live correlations.",
    ),
    LazyCommand(
        "agent", "agent", "agent", "Collect and scan on this host and publish to a central bus."
    ),
    LazyCommand("config", "config", "app", "Check and show the configuration."),
    LazyCommand("alerts", "alerts", "app", "List, acknowledge and silence alerts."),
    LazyCommand("findings", "findings", "app", "List and show stored findings."),
    LazyCommand(
        "baseline", "baseline", "app", "Accept the current findings, or show the baseline."
    ),
    LazyCommand("metrics", "metrics", "app", "List stored metrics and query their series."),
    LazyCommand(
        "import",
        "import_",
        "app",
        "Import benchmark results: pytest-benchmark JSON or asv results.",
    ),
    LazyCommand(
        "bench",
        "bench",
        "app",
        "Time a command (bench run, or just bench -- CMD), import and list benchmark results.",
    ),
    LazyCommand(
        "rules", "alerts", "rules_app", "Check alert rules: the effective set, or one file."
    ),
    LazyCommand(
        "store",
        "store",
        "app",
        "Check the store (integrity, schema version) and show its tiers (stats).",
    ),
)


def load_command(entry: LazyCommand) -> Any:
    """Import ``entry``'s module and build its click command (a group for a ``typer.Typer``)."""
    import typer.main

    target = getattr(importlib.import_module(f"secperf.cli.{entry.module}"), entry.attribute)
    if isinstance(target, typer.Typer):
        # get_group, not get_command: a group must not grow completion options.
        return typer.main.get_group(target)
    single = typer.Typer(add_completion=False, rich_markup_mode=None)
    single.command(entry.name)(target)
    return typer.main.get_command(single)


def store_failure(exc: BaseException) -> tuple[str, ExitCode] | None:
    """The message and exit code for a store that cannot be used; None for other errors.

    Used by the root command group for every command, so a damaged store, a
    newer schema or a ``.secperf`` that is a file is one message on stderr and
    exit 2 wherever it is met, never a traceback (nor exit 1, "blocked").
    """
    from secperf.model import ExitCode

    check = "`secperf store check`"
    # A store error can only come from a store that was loaded: `--help` (which
    # ends in an exception too) must not load SQLAlchemy to learn that.
    store_loaded = "secperf.store" in sys.modules
    if store_loaded:
        from secperf.store import SchemaVersionError, StoreCorruptError, StoreError
    if store_loaded and isinstance(exc, StoreCorruptError):
        return (
            f"{exc}. secperf has not changed it. {check} shows what is wrong; restore the"
            " file from a backup, or move it aside to start an empty store.",
            ExitCode.USAGE,
        )
    if store_loaded and isinstance(exc, SchemaVersionError):
        return (
            f"{exc}, or restore a backup made with this version ({check} shows both versions).",
            ExitCode.USAGE,
        )
    if store_loaded and isinstance(exc, StoreError):
        return f"{exc} ({check} tests the store).", ExitCode.USAGE
    if isinstance(exc, (FileExistsError, NotADirectoryError)) and exc.filename:
        # Typically `.secperf` is a file: the store, cache and salt live in that directory.
        wanted = Path(str(exc.filename))
        blocker = next((p for p in (wanted, *wanted.parents) if p.is_file()), None)
        if blocker is not None:
            what = "" if blocker == wanted else f"cannot create {wanted}: "
            return (
                f"{what}{blocker} is a file, not a directory; move that file away"
                " (secperf keeps its store, cache and salt there)",
                ExitCode.USAGE,
            )
    if "sqlalchemy" in sys.modules and _is_sqlalchemy_error(exc):
        orig = getattr(exc, "orig", None)
        lines = str(orig if orig is not None else exc).strip().splitlines()
        return (
            f"the store failed: {lines[0] if lines else type(exc).__name__}; what was stored"
            f" before is kept. Try again; {check} tests the store.",
            ExitCode.CANNOT_EVALUATE,
        )
    return None


def _is_sqlalchemy_error(exc: BaseException) -> bool:
    from sqlalchemy.exc import SQLAlchemyError

    return isinstance(exc, SQLAlchemyError)


class _PlainValue(RuntimeParam):
    """A root option's value as a ``Path`` or a flag, without Typer's pydantic adapter.

    Typer coerces option values through a pydantic ``TypeAdapter``; for the
    root's options that would load pydantic (about 40 ms) before ``secperf scan
    --help`` could print a line. The root has only path options and flags.
    """

    def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
        if self.annotation is bool:
            return bool(value)
        return value if isinstance(value, Path) else Path(str(value))


class _BuiltWhenNeeded(RuntimeParam):
    """Typer's own coercion of an option, built the first time a value needs it.

    Typer builds a pydantic ``TypeAdapter`` for every option of a command before
    it looks at the value: eleven for ``secperf scan`` with no option given,
    about a tenth of a warm scan's start-up. An unset option (None) needs no
    coercion, nor does an option left at its declared default when that is
    already of the option's type (``ScanFormat.TABLE``, ``50``); anything else,
    and every value from the command line, gets exactly Typer's coercion
    (``build_runtime_param``).
    """

    def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
        descriptor = param.type_descriptor
        if value is param.default and type(value) is descriptor.annotation:
            return value
        built = build_runtime_param(descriptor)
        param._runtime_param = built
        return built.coerce(value, param=param, ctx=ctx)


def _coerced_when_needed(command: Any) -> None:
    """``command``'s options (a group's: its commands' too) get ``_BuiltWhenNeeded``.

    Through ``get_params``: click adds ``--help`` there, a new option each time.
    """
    params_of = command.get_params

    def get_params(ctx: Any) -> list[Any]:
        params: list[Any] = params_of(ctx)
        for param in params:
            descriptor = getattr(param, "type_descriptor", None)
            if descriptor is not None and getattr(param, "_runtime_param", True) is None:
                param._runtime_param = _BuiltWhenNeeded(
                    parameter_info=descriptor.parameter_info, annotation=descriptor.annotation
                )
        return params

    command.get_params = get_params
    for sub in getattr(command, "commands", {}).values():
        _coerced_when_needed(sub)


def _plain_values(params: list[Any]) -> list[Any]:
    """``params`` with ``_PlainValue`` coercion where Typer would build a pydantic adapter."""
    for param in params:
        descriptor = getattr(param, "type_descriptor", None)
        if descriptor is None or getattr(param, "_runtime_param", True) is not None:
            continue  # not a Typer parameter, or its coercion is already built
        if descriptor.annotation in (bool, Path):
            param._runtime_param = _PlainValue(
                parameter_info=descriptor.parameter_info, annotation=descriptor.annotation
            )
    return params


class RootGroup(typer.core.TyperGroup):
    """The root group: commands from ``COMMANDS``, imported when used; a store that
    cannot be used becomes ``store_failure``'s message."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _plain_values(super().get_params(ctx))

    # ctx is Typer's own click Context (a vendored copy), typed loosely on purpose.
    def list_commands(self, ctx: Any) -> list[str]:
        return [*self.commands, *(c.name for c in COMMANDS if c.name not in self.commands)]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        found = self.commands.get(cmd_name)
        if found is None:
            entry = next((c for c in COMMANDS if c.name == cmd_name), None)
            if entry is not None:
                found = self.commands[cmd_name] = load_command(entry)
                # Unset options, --help among them, load no pydantic adapter.
                _coerced_when_needed(found)
        return found

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        """Typer's resolution; an unknown name gets suggestions from every command in ``COMMANDS``.

        (Typer suggests from the commands built so far, which here is none.)
        """
        from difflib import get_close_matches

        from typer._click.exceptions import UsageError

        try:
            return self._click_resolve_command(ctx, args)
        except UsageError as exc:
            matches = get_close_matches(args[0], [c.name for c in COMMANDS]) if args else []
            if matches:
                suggestions = ", ".join(repr(m) for m in matches)
                exc.message = f"{exc.message.rstrip('.')}. Did you mean {suggestions}?"
            raise

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        """The command list from ``COMMANDS``: the help of each without importing any."""
        from typer._click.utils import make_default_short_help

        rows = [(c.name, c.help) for c in COMMANDS]
        limit = formatter.width - 6 - max(len(name) for name, _ in rows)
        with formatter.section("Commands"):
            formatter.write_dl([(name, make_default_short_help(h, limit)) for name, h in rows])

    def invoke(self, ctx: Any) -> Any:
        from secperf.security.redaction import install_log_redaction

        install_log_redaction()  # before any command logs: no secret reaches a log line
        try:
            return super().invoke(ctx)
        except Exception as exc:
            failure = store_failure(exc)
            if failure is None:
                raise
            fail(*failure)


def _version_callback(value: bool) -> None:
    if value:
        console().print(f"secperf {__version__}", markup=False)
        raise typer.Exit(0)


def root(
    ctx: typer.Context,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version_callback, is_eager=True, help="Print the version."
        ),
    ] = False,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            envvar="SECPERF_CONFIG",
            help="Config file (default: secperf.toml, else [tool.secperf] in pyproject.toml).",
        ),
    ] = None,
    project_dir: Annotated[
        Path | None,
        typer.Option(
            "--project-dir",
            help="Project root: where the config is searched and relative paths resolve.",
        ),
    ] = None,
) -> None:
    """secperf: security and performance, one view, one gate."""
    ctx.obj = GlobalOptions(config_path=config, project_dir=project_dir)
