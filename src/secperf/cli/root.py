"""The root command: global options, ``--version``, one message for an unusable store."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from secperf import __version__
from secperf.cli.common import GlobalOptions, console, fail
from secperf.model import ExitCode


def store_failure(exc: BaseException) -> tuple[str, ExitCode] | None:
    """The message and exit code for a store that cannot be used; None for other errors.

    Used by the root command group for every command, so a damaged store, a
    newer schema or a ``.secperf`` that is a file is one message on stderr and
    exit 2 wherever it is met, never a traceback (nor exit 1, "blocked").
    """
    # The store (SQLAlchemy) loads only when a command has failed with an error.
    from sqlalchemy.exc import SQLAlchemyError

    from secperf.store import SchemaVersionError, StoreCorruptError, StoreError

    check = "`secperf store check`"
    if isinstance(exc, StoreCorruptError):
        return (
            f"{exc}. secperf has not changed it. {check} shows what is wrong; restore the"
            " file from a backup, or move it aside to start an empty store.",
            ExitCode.USAGE,
        )
    if isinstance(exc, SchemaVersionError):
        return (
            f"{exc}, or restore a backup made with this version ({check} shows both versions).",
            ExitCode.USAGE,
        )
    if isinstance(exc, StoreError):
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
    if isinstance(exc, SQLAlchemyError):
        orig = getattr(exc, "orig", None)
        lines = str(orig if orig is not None else exc).strip().splitlines()
        return (
            f"the store failed: {lines[0] if lines else type(exc).__name__}; what was stored"
            f" before is kept. Try again; {check} tests the store.",
            ExitCode.CANNOT_EVALUATE,
        )
    return None


class RootGroup(typer.core.TyperGroup):
    """The root group: turns a store that cannot be used into ``store_failure``'s message."""

    # ctx is Typer's own click Context (a vendored copy), typed loosely on purpose.
    def invoke(self, ctx: Any) -> Any:
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
        raise typer.Exit(int(ExitCode.OK))


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
