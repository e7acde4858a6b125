"""`secperf monitor` in a real terminal (a pseudo-terminal): the live summary, then Ctrl-C."""

from __future__ import annotations

import io
import re
import sys
from pathlib import Path

import pytest
from rich.console import Console

from secperf.cli.monitor import LiveScreen
from secperf.commands.monitor import LatestFigures, MonitorView
from secperf.commands.summary import build_summary, summary_series
from secperf.config import Config
from secperf.store import Store
from support.cli import clean_env, run_cli
from support.terminal import Terminal

FAR_FUTURE_MS = 2**53


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    root.mkdir()
    (root / "run.py").write_text("import subprocess\nsubprocess.call('ls', shell=True)\n")
    (root / "secperf.toml").write_text(
        '[store]\nurl = "data/secperf.db"\n[scan]\nscanners = ["bandit"]\n'
    )
    return root


@pytest.mark.slow
def test_live_summary_in_a_terminal_and_ctrl_c_keeps_what_was_collected(project: Path) -> None:
    scanned = run_cli(["scan"], cwd=project)
    assert scanned.returncode == 0, scanned.stdout + scanned.stderr
    home = project.parent / "home"
    home.mkdir()
    env = clean_env({"HOME": str(home), "TERM": "xterm-256color"})
    env.pop("COLUMNS", None)  # the terminal's own width (80) counts
    env.pop("NO_COLOR", None)
    args = [sys.executable, "-m", "secperf", "monitor", "--interval", "500ms", "--no-process"]
    term = Terminal(args, project, env)
    try:
        bars = "▁▂▃▄▅▆▇█"

        def summary_with_cpu(shown: str) -> bool:
            cpu = [line for line in shown.splitlines() if line.startswith("host CPU")]
            return any(any(c in bars for c in line) for line in cpu)

        shown = term.wait_for(summary_with_cpu)
        assert "secperf monitor" in shown
        assert re.search(r"last scan\s+proj · ok", shown), shown
        # bandit: subprocess imported (B404), called with shell=True (B602, B607), all low.
        assert re.search(r"findings\s+3: low 3", shown), shown
        assert "none firing" in shown
        assert "samples stored" in shown
        # The live summary redraws in place; plain output would be the table printed at the end.
        assert "collections" not in shown
    finally:
        term.type(b"\x03")  # Ctrl-C
        shown = term.close()
    assert term.proc.returncode == 0, shown
    assert "Traceback" not in shown
    reported = re.search(r"stored (\d+) samples from", shown)
    assert reported is not None, shown
    with Store.open(project / "data" / "secperf.db") as store:
        written = store.sample_count()
        assert store.query("cpu_percent", {}, 0, FAR_FUTURE_MS)
    # Every sample the closing line counts was flushed before exit.
    assert written >= int(reported.group(1)) > 0


def test_not_a_terminal_keeps_the_plain_output(project: Path) -> None:
    # A pipe (and --no-live on a terminal) gets the figures once, at the end, as before.
    result = run_cli(
        ["monitor", "--duration", "2s", "--interval", "500ms", "--no-process", "--no-live"],
        cwd=project,
        env={"COLUMNS": "200"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "collections" in result.stdout and "CPU" in result.stdout
    assert re.search(r"stored \d+ samples from 1 collector", result.stdout)
    assert "last scan" not in result.stdout
    assert "\x1b[" not in result.stdout


@pytest.mark.slow
def test_no_live_on_a_terminal_prints_the_figures_once(project: Path) -> None:
    env = clean_env({"HOME": str(project.parent), "TERM": "xterm-256color"})
    env.pop("COLUMNS", None)
    args = [sys.executable, "-m", "secperf", "monitor", "--duration", "2s", "--no-live"]
    term = Terminal([*args, "--interval", "500ms", "--no-process"], project, env)
    shown = term.close()
    assert term.proc.returncode == 0, shown
    assert "collections" in shown and "stored" in shown
    assert "last scan" not in shown and "Ctrl-C stops" not in shown


def test_the_status_line_names_a_target_that_is_down(tmp_path: Path) -> None:
    config = Config.model_validate(
        {"monitor": {"prometheus": {"targets": [{"name": "gone", "url": "http://127.0.0.1:1/m"}]}}}
    )
    screen = LiveScreen()
    screen.on_view(
        MonitorView(
            figures=LatestFigures(),
            targets=[("gone", "http://127.0.0.1:1/m", "down", "cannot connect")],
            stats={},
            samples_written=240,
            bus_dropped=0,
            elapsed_s=12.0,
        )
    )
    with Store.open(tmp_path / "s.db") as store:
        screen.on_summary(build_summary(store, series=summary_series(config)))
    out = Console(file=io.StringIO(), width=80, color_system=None)
    out.print(screen.render())
    assert isinstance(out.file, io.StringIO)
    lines = out.file.getvalue().splitlines()
    assert lines[-1] == "12 s · 240 samples stored · targets 0 up of 1 (gone down) · Ctrl-C stops"
    assert "latency p95" in "\n".join(lines)  # a scrape target is configured
    assert all(len(line) <= 80 for line in lines)
