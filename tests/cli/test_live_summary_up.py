"""`secperf up` with its live summary: the scan's progress inside it, then Ctrl-C in a terminal."""

from __future__ import annotations

import io
import re
import sys
from pathlib import Path

import pytest
from rich.console import Console

from secperf.cli.up import UpScreen
from secperf.commands.summary import LiveSummary
from secperf.events import now_ms
from secperf.store import Store
from support.cli import clean_env
from support.terminal import Terminal

FAKE_AWS_KEY = "AKIAZZZZZZZZEXAMPLE7"
BARS = "▁▂▃▄▅▆▇█"
#: Files for one worker to scan while the summary refreshes (two a second).
FILES = 300
#: Code in each file that bandit parses and finds nothing in: the scan lasts some
#: seconds on a fast machine too (300 four-line files took 0.5 s, one refresh).
FILLER = "".join(f"\ndef calc{i}(a, b):\n    return (a + {i}) * (b - {i})\n" for i in range(60))


def drawn(screen: UpScreen) -> list[str]:
    out = Console(file=io.StringIO(), width=80, color_system=None)
    out.print(screen.render())
    file = out.file
    assert isinstance(file, io.StringIO)
    return file.getvalue().splitlines()


def test_the_running_scan_shows_its_rate_and_eta_in_the_summary() -> None:
    screen = UpScreen()
    assert "starting" in "\n".join(drawn(screen))
    screen.on_summary(LiveSummary(now_ms(), 300_000, None, (), ()))
    assert "files/s" not in "\n".join(drawn(screen))  # no scan running

    screen.progress("discover", 200, 200)
    screen.progress("scan", 0, 200)
    screen.progress("scan", 50, 200)
    lines = drawn(screen)
    text = "\n".join(lines)
    assert "scanning files" in text and "50/200" in text
    assert "files/s" in text and "ETA" in text
    assert "Ctrl-C stops" in text
    assert all(len(line) <= 80 for line in lines), lines

    screen.progress("scan", 200, 200)  # the scan ended: the bar goes
    assert "scanning files" not in "\n".join(drawn(screen))


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    (root / "pkg").mkdir(parents=True)
    for n in range(FILES):
        (root / "pkg" / f"m{n}.py").write_text(
            f"import subprocess\n\ndef run{n}(cmd):\n    return subprocess.call(cmd, shell=True)\n"
            + FILLER
        )
    (root / "settings.py").write_text(f'AWS_ACCESS_KEY_ID = "{FAKE_AWS_KEY}"\n')
    (root / "secperf.toml").write_text(
        '[scan]\nscanners = ["bandit", "secrets"]\ncache = false\njobs = 1\n'
        '[monitor.system]\ninterval = "500ms"\n'
    )
    return root


@pytest.mark.slow
def test_up_in_a_terminal_draws_the_summary_and_stops_on_ctrl_c(project: Path) -> None:
    home = project.parent / "home"
    home.mkdir()
    env = clean_env({"HOME": str(home), "TERM": "xterm-256color"})
    env.pop("COLUMNS", None)
    env.pop("NO_COLOR", None)
    term = Terminal([sys.executable, "-m", "secperf", "up", "--port", "0"], project, env)
    try:

        def scanned_and_alerted(shown: str) -> bool:
            cpu = [line for line in shown.splitlines() if line.startswith("host CPU")]
            return (
                "SecretFound" in shown
                and re.search(r"last scan\s+proj · ok", shown) is not None
                and any(any(c in BARS for c in line) for line in cpu)
            )

        shown = term.wait_for(scanned_and_alerted, timeout=120)
        assert "secperf up ·" in shown
        assert re.search(r"dashboard http://127\.0\.0\.1:\d+/", shown)
        # The scan's progress was drawn inside the summary while it ran.
        assert re.search(r"scanning files .* \d+/\d+ .*files/s", shown), shown
        assert re.search(r"alerts\s+\d+ firing: [1-9]\d* security", shown), shown
        # New findings: the shell calls and the key (high), the imports (low).
        assert re.search(rf"findings\s+\d+: high {FILES + 1}, low {FILES}", shown), shown
    finally:
        term.type(b"\x03")  # Ctrl-C
        shown = term.close()
    assert term.proc.returncode == 0, shown
    assert "Traceback" not in shown
    assert shown.rstrip().endswith("stopped"), shown[-400:]  # the last frame says so
    with Store.open(project / ".secperf" / "secperf.db") as store:
        scans = store.scans()
        assert scans and scans[-1].status == "ok"
