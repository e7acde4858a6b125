"""Start-up stays light: what a command imports, read from ``python -X importtime``.

A pre-commit hook or an editor runs secperf on every save, so ``--version``
and ``--help`` must not wait for pydantic, SQLAlchemy, numpy, FastAPI or the
scanners, and a command loads only what it uses. Each case starts a real
interpreter (imports are per process) and fails naming the heavy module a
command loaded and the chain that loaded it.

Every command module must keep heavy imports inside its functions, the ones
other groups own included (alerts, rules, monitor, up, store): their ``--help``
is checked here too.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from secperf import __version__
from secperf.cli.root import COMMANDS
from support.cli import clean_env, run_cli

pytestmark = pytest.mark.slow

#: What no --help or --version may load.
HEAVY = (
    "pydantic",
    "sqlalchemy",
    "numpy",
    "scipy",
    "fastapi",
    "starlette",
    "uvicorn",
    "bandit",
    "detect_secrets",
    "psutil",
    "nats",
    "secperf.config",
    "secperf.store",
    "secperf.runtime",
    "secperf.commands",
)
#: The command groups of other modules' owners: checked for heavy modules only.
OTHERS = {"alerts", "rules", "monitor", "up", "store"}


def imports(*args: str, cwd: Path) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """Run ``python -X importtime -m secperf *args``; its result and every module it imported."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "secperf", *args],
        cwd=cwd,
        env=clean_env({"COLUMNS": "80"}),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    modules = [
        line.rsplit("|", 1)[1].strip()
        for line in proc.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    ]
    return proc, [m for m in modules if m != "imported package"]


def loaded(modules: list[str], forbidden: tuple[str, ...]) -> list[str]:
    """The modules of ``forbidden`` (packages and their submodules) that were imported."""
    return sorted({m for m in modules for f in forbidden if m == f or m.startswith(f + ".")})


def test_version_answers_before_typer(tmp_path: Path) -> None:
    proc, modules = imports("--version", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout == f"secperf {__version__}\n"
    assert loaded(modules, (*HEAVY, "typer", "rich", "secperf.model")) == []


def test_root_help_imports_no_command_module(tmp_path: Path) -> None:
    proc, modules = imports("--help", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    command_modules = tuple(f"secperf.cli.{c.module}" for c in COMMANDS)
    assert loaded(modules, (*HEAVY, "rich", *command_modules)) == []
    # Still Typer's own help, listing every command.
    assert proc.stdout.startswith("Usage: secperf [OPTIONS] COMMAND [ARGS]...")
    for command in COMMANDS:
        assert f"\n  {command.name} " in proc.stdout


@pytest.mark.parametrize("name", [c.name for c in COMMANDS])
def test_group_help_loads_nothing_heavy(tmp_path: Path, name: str) -> None:
    proc, modules = imports(name, "--help", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith(f"Usage: secperf {name} ")
    # Rich is for results; a help page needs none (other owners' groups may still load it).
    forbidden = HEAVY if name in OTHERS else (*HEAVY, "rich")
    assert loaded(modules, forbidden) == [], f"secperf {name} --help"


def test_subcommand_help_loads_nothing_heavy(tmp_path: Path) -> None:
    proc, modules = imports("findings", "list", "--help", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "--state" in proc.stdout
    assert loaded(modules, HEAVY) == []


def test_findings_list_loads_no_scanner_web_statistics_or_sqlalchemy(tmp_path: Path) -> None:
    """Reading stored findings needs the config and the store's file, not what produced them.

    An SQLite store at the latest schema is read through plain sqlite3
    (``store.sqlite_reader``): neither SQLAlchemy nor the store's write path loads.
    """
    (tmp_path / "app.py").write_text("import subprocess\nsubprocess.call('ls', shell=True)\n")
    (tmp_path / "secperf.toml").write_text('[scan]\nscanners = ["bandit"]\n')
    scanned = run_cli(["scan", "--format", "json"], cwd=tmp_path)
    assert scanned.returncode in (0, 1), scanned.stderr
    proc, modules = imports("findings", "list", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "B602" in proc.stdout
    forbidden = (
        # Arrays are for metric samples, psutil for the liveness of running scans.
        "numpy",
        "psutil",
        "scipy",
        "fastapi",
        "starlette",
        "uvicorn",
        "bandit",
        "detect_secrets",
        "nats",
        "secperf.runtime",
        "secperf.commands.scanning",
        "secperf.security.scanners",
        "secperf.security.validator",
        "secperf.web",
        "secperf.analysis",
        "sqlalchemy",
        "secperf.store.store",
        "secperf.store.engine",
        "secperf.store.samples",
        "secperf.store.writer",
        # Nor what only a scan prints or publishes: its progress bar and summary
        # tables (Rich's Progress and Table) and the event classes.
        "rich.progress",
        "rich.table",
        "secperf.cli.scan_progress",
        "secperf.events",
    )
    assert loaded(modules, forbidden) == []
    assert "secperf.store.sqlite_reader" in modules


def test_a_warm_scan_with_nothing_changed_loads_no_scanner_tool(tmp_path: Path) -> None:
    """Every file is a cache hit: bandit's and detect-secrets' plugins stay unloaded."""
    (tmp_path / "app.py").write_text("import subprocess\nsubprocess.call('ls', shell=True)\n")
    (tmp_path / "settings.py").write_text("password = 'hunter2hunter2'  # noqa\n")
    cold = run_cli(["scan", "--format", "json"], cwd=tmp_path)
    assert cold.returncode in (0, 1), cold.stderr
    proc, modules = imports("scan", cwd=tmp_path)
    assert proc.returncode in (0, 1), proc.stderr[-2000:]
    # The cached results are the findings, printed as before.
    assert "B602" in proc.stdout
    assert loaded(modules, ("bandit", "detect_secrets", "stevedore")) == []
    # Nor what only other commands or other inputs need: YAML (semgrep's rule
    # files), the web server, statistics, the alert engine, NATS, HTTP (the OSV
    # API) and the requirement parser (manifests, all cached here).
    others = (
        "yaml",
        "urllib.request",
        "http.client",
        "packaging.requirements",
        "fastapi",
        "starlette",
        "uvicorn",
        "scipy",
        "nats",
        "secperf.web",
        "secperf.analysis",
        "secperf.alerts",
        "secperf.gates",
    )
    assert loaded(modules, others) == []
    # Nor Typer's pydantic coercion: no option was given, so none is needed.
    assert loaded(modules, ("typer._adapters",)) == []
    # Changing a file loads bandit again, for that file.
    (tmp_path / "app.py").write_text("import subprocess\nsubprocess.call('id', shell=True)\n")
    proc, modules = imports("scan", cwd=tmp_path)
    assert proc.returncode in (0, 1), proc.stderr[-2000:]
    assert "bandit" in modules
