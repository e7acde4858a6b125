"""A bad option value is a usage error (exit 2) that names the option.

The real command line, in a project with a config: `--fail-on` of `scan` and
`gate` (the severity parser they share with `findings list --severity`).
Nothing is scanned: the value is refused first.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from support.cli import run_cli


@pytest.mark.parametrize("command", [["scan"], ["gate"]])
def test_an_unknown_fail_on_severity_names_the_option(tmp_path: Path, command: list[str]) -> None:
    (tmp_path / "secperf.toml").write_text('[scan]\nscanners = ["bandit"]\n')
    result = run_cli([*command, "--fail-on", "bogus"], cwd=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert (
        "--fail-on: unknown severity 'bogus'; expected one of critical, high, medium, low, info"
        in result.stderr
    )
    assert "Traceback" not in result.stderr
    assert not (tmp_path / ".secperf").exists()  # refused before anything ran
