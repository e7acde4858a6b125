"""Run the ``secperf`` command line in the test process, as the console script would.

``run_cli`` invokes ``secperf.cli.app`` through Typer's ``CliRunner``: no new
interpreter per case (each one imported the world) and an unexpected exception
fails the test with its traceback instead of ending as "exit 1" and a stderr
dump. It does what ``secperf.cli.main`` does before the app runs (install log
redaction) and puts back the process-wide state a command may change (the
current directory, the environment, the log record factory, the root
logger's handlers, the SIGINT and SIGTERM handlers), so one case cannot leak into the next.

``run_secperf`` is the real thing, ``python -m secperf`` in a subprocess, for
the few tests that need a process of their own (signals, servers, workers) or
that prove the console script itself works.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from typer.testing import CliRunner

from secperf.cli import app
from secperf.security.redaction import install_log_redaction

#: Rich and Click size their output from the terminal; the subprocess tests ran
#: with pipes (80 columns), so the in-process runs are pinned to the same.
COLUMNS = "80"


@dataclass(frozen=True, slots=True)
class CliResult:
    """A finished command: named as ``subprocess.CompletedProcess`` names them."""

    args: list[str]
    returncode: int
    stdout: str
    stderr: str


def clean_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without any ``SECPERF_*`` variable, then ``env`` on top.

    A developer's own ``SECPERF_TOKEN`` or ``SECPERF_CONFIG`` must not change
    what a test sees.
    """
    base = {k: v for k, v in os.environ.items() if not k.startswith("SECPERF_")}
    return {**base, **(env or {})}


@contextmanager
def _process_state_restored() -> Iterator[None]:
    cwd = os.getcwd()
    factory = logging.getLogRecordFactory()
    root = logging.getLogger()
    root_handlers, root_level = list(root.handlers), root.level
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        os.chdir(cwd)
        logging.setLogRecordFactory(factory)
        # `agent` calls logging.basicConfig; its handler would outlive the command.
        root.handlers[:], root.level = root_handlers, root_level
        for sig, handler in handlers.items():
            if handler is not None:
                signal.signal(sig, handler)


def run_cli(
    args: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str] | None = None,
    input: str | None = None,
) -> CliResult:
    """Run ``secperf *args`` in ``cwd`` in this process; ``env`` adds to a ``clean_env``.

    stdout and stderr come back apart, as from a subprocess; the exit code is
    the one the process would have ended with.
    """
    wanted = {"COLUMNS": COLUMNS, **(env or {})}
    # CliRunner overlays its env on os.environ; None removes a variable for the run.
    overlay: dict[str, str | None] = {
        k: None for k in os.environ if k.startswith("SECPERF_") and k not in wanted
    }
    overlay.update(wanted)
    with _process_state_restored():
        os.chdir(cwd)
        install_log_redaction()  # as secperf.cli.main does before the app runs
        result = CliRunner().invoke(
            app,
            list(args),
            input=input,
            env=overlay,
            catch_exceptions=False,
            prog_name="secperf",
        )
    return CliResult(
        args=["secperf", *args],
        returncode=result.exit_code,
        stdout=result.stdout,
        stderr=result.stderr,
    )


def run_secperf(
    *args: str,
    cwd: Path,
    env: Mapping[str, str] | None = None,
    input: str | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m secperf *args`` in ``cwd``, a real process; ``env`` adds to ``clean_env``."""
    return subprocess.run(
        [sys.executable, "-m", "secperf", *args],
        cwd=cwd,
        env=clean_env(env),
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
