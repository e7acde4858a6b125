"""Usage and configuration problems: exit 2 with the message, never a traceback.

The commands read the config and the store only inside the command (start-up
stays light), so each one is run here against a broken config and an
unusable store to show the error still reaches the user as one message.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from support.cli import run_cli

COMMANDS = [
    ["findings", "list"],
    ["findings", "list", "--new", "--json"],
    ["findings", "show", "abcdef12"],
    ["triage", "abcdef12", "--false-positive", "--reason", "test data"],
    ["metrics", "list", "--json"],
    ["metrics", "query", "cpu_percent", "--step", "10s"],
    ["advice"],
    ["advice", "--json"],
    ["bench", "list", "--json"],
    ["baseline", "show", "--json"],
]

BROKEN = {
    "a wrong type": ('[scan]\nscanners = "bandit"\n', "secperf.toml: scan.scanners"),
    "bad TOML": ("[store\n", "secperf.toml: invalid TOML"),
    "an unknown key": ("[store]\nurll = 'x.db'\n", "store.urll"),
}


@pytest.mark.parametrize("problem", sorted(BROKEN))
@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
def test_a_broken_config_exits_2_with_its_message(
    tmp_path: Path, args: list[str], problem: str
) -> None:
    text, message = BROKEN[problem]
    (tmp_path / "secperf.toml").write_text(text)
    result = run_cli(args, cwd=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
def test_a_store_that_cannot_be_opened_exits_2(tmp_path: Path, args: list[str]) -> None:
    """`.secperf` is a file where the store's directory should be."""
    (tmp_path / "state").write_text("not a directory\n")
    (tmp_path / "secperf.toml").write_text('[store]\nurl = "state/secperf.db"\n')
    result = run_cli(args, cwd=tmp_path)
    if args[:2] == ["baseline", "show"]:
        assert result.returncode == 0  # reads the repository's file, not the store
        return
    assert result.returncode == 2, result.stdout + result.stderr
    assert "is a file, not a directory" in result.stderr or "state" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_missing_config_file_exits_2(tmp_path: Path) -> None:
    result = run_cli(["--config", "absent.toml", "advice"], cwd=tmp_path)
    assert result.returncode == 2
    assert "absent.toml" in result.stderr and "Traceback" not in result.stderr
