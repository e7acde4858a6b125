"""The command line: smoke tests of the real ``python -m secperf``, in-process runs for the rest."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from secperf import __version__
from secperf.cli import app
from support.cli import clean_env, run_cli, run_secperf

TOKEN = "tok-0123456789abcdef-SECRET"


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SECPERF_TOKEN", raising=False)
    monkeypatch.delenv("SECPERF_CONFIG", raising=False)
    return CliRunner()


# --------------------------------------------------------------------------- subprocess


@pytest.mark.slow
def test_version(tmp_path: Path) -> None:
    result = run_secperf("--version", cwd=tmp_path)
    assert result.returncode == 0
    assert result.stdout.strip() == f"secperf {__version__}"


@pytest.mark.slow
def test_console_script_runs(tmp_path: Path) -> None:
    # The `secperf` entry point installed beside this interpreter, not `python -m`.
    script = Path(sys.executable).parent / "secperf"
    if not script.exists():
        pytest.skip(f"no console script at {script} (package not installed)")
    result = subprocess.run(
        [str(script), "--version"],
        cwd=tmp_path,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"secperf {__version__}"


@pytest.mark.slow
def test_help_lists_the_command_groups(tmp_path: Path) -> None:
    result = run_secperf("--help", cwd=tmp_path)
    assert result.returncode == 0
    assert "Usage: secperf" in result.stdout
    for command in (
        "scan",
        "monitor",
        "alerts",
        "gate",
        "serve",
        "up",
        "agent",
        "bench",
        "correlate",
        "config",
    ):
        assert f"  {command} " in result.stdout


# --------------------------------------------------------------------------- in-process


def test_config_check_good_file(tmp_path: Path) -> None:
    (tmp_path / "secperf.toml").write_text(
        '[bus]\nurl = "nats://127.0.0.1:4222"\n[scan]\nscanners = ["bandit", "secrets"]\n'
        "[server]\nport = 9000\n"
    )
    result = run_cli(["config", "check"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "configuration is valid" in result.stdout
    assert "secperf.toml" in result.stdout
    assert "nats://127.0.0.1:4222" in result.stdout
    assert "bandit, secrets" in result.stdout
    assert "127.0.0.1:9000" in result.stdout
    assert result.stderr == ""


def test_config_check_bad_file(tmp_path: Path) -> None:
    (tmp_path / "bad.toml").write_text('[scan]\njobs = "many"\n[server]\nport = 70000\n')
    result = run_cli(["config", "check", "bad.toml"], cwd=tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert lines == [
        "bad.toml: scan.jobs: expected an integer >= 0, got 'many'",
        "bad.toml: server.port: expected an integer from 0 to 65535, got 70000",
    ]


def test_alerts_help_lists_its_commands(tmp_path: Path) -> None:
    result = run_cli(["alerts", "--help"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for command in ("list", "ack", "silence", "unsilence", "rules"):
        assert f"  {command} " in result.stdout


@pytest.mark.parametrize(
    ("group", "commands"),
    [
        (
            [],
            [
                "scan",
                "findings",
                "baseline",
                "monitor",
                "metrics",
                "bench",
                "correlate",
                "alerts",
                "rules",
                "gate",
                "serve",
                "up",
                "agent",
                "config",
            ],
        ),
        (["alerts"], ["list", "ack", "silence", "unsilence", "rules"]),
        (["rules"], ["check"]),
        (["config"], ["check", "show"]),
    ],
)
def test_help_lists_every_command(runner: CliRunner, group: list[str], commands: list[str]) -> None:
    result = runner.invoke(app, [*group, "--help"])
    assert result.exit_code == 0, result.stderr
    for command in commands:
        assert f"  {command} " in result.stdout, command
    assert "not built" not in result.stdout


def test_unknown_command_is_a_usage_error(runner: CliRunner) -> None:
    result = runner.invoke(app, ["frobnicate"])
    assert result.exit_code == 2
    assert "No such command" in result.stderr


def test_config_check_defaults(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(app, ["config", "check"])
    assert result.exit_code == 0, result.stderr
    assert "defaults (no config file)" in result.stdout
    assert "memory://" in result.stdout
    assert ".secperf/secperf.db" in result.stdout


def test_config_check_pyproject_error_uses_prefix(runner: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.secperf.alerts]\ngroup_wait = "soon"\n')
    result = runner.invoke(app, ["config", "check"])
    assert result.exit_code == 2
    assert result.stderr.startswith("pyproject.toml: tool.secperf.alerts.group_wait: expected")


def test_config_check_toml_syntax_error(runner: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "secperf.toml").write_text("[scan\n")
    result = runner.invoke(app, ["config", "check"])
    assert result.exit_code == 2
    assert result.stderr.startswith("secperf.toml: invalid TOML: line 1, column")


def test_global_config_option(runner: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "other.toml").write_text("[server]\nport = 9100\n")
    result = runner.invoke(app, ["--config", "other.toml", "config", "check"])
    assert result.exit_code == 0, result.stderr
    assert "127.0.0.1:9100" in result.stdout


def test_config_show_toml_reloads(runner: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "secperf.toml").write_text('[alerts]\ngroup_wait = "10s"\n')
    result = runner.invoke(app, ["config", "show"])
    assert result.exit_code == 0, result.stderr
    data = tomllib.loads(result.stdout)
    assert data["alerts"]["group_wait"] == "10s"
    assert data["server"]["port"] == 8765
    (tmp_path / "shown.toml").write_text(result.stdout)
    again = runner.invoke(app, ["config", "check", "shown.toml"])
    assert again.exit_code == 0, again.stderr


def test_config_show_json_masks_token(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SECPERF_TOKEN", TOKEN)
    (tmp_path / "secperf.toml").write_text('[server]\nhost = "0.0.0.0"\n')
    result = runner.invoke(app, ["config", "show", "--format", "json"])
    assert result.exit_code == 0, result.stderr
    assert TOKEN not in result.stdout
    assert json.loads(result.stdout)["server"]["token"] == "********"
    check = runner.invoke(app, ["config", "check"])
    assert check.exit_code == 0, check.stderr
    assert "token from env:SECPERF_TOKEN" in check.stdout
    assert TOKEN not in check.stdout
