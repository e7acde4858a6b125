"""The scan progress bar: files per second and ETA, from a driven clock and from a real scan."""

from __future__ import annotations

import asyncio
import io
import re
import sys
from pathlib import Path

import pytest
from rich.console import Console

from secperf.cli.scan_progress import ScanProgressFeed, scan_progress_bar
from secperf.commands.scanning import run_scan
from secperf.config import load_config
from secperf.security.factory import ScanOptions
from support.cli import clean_env
from support.terminal import Terminal


class Clock:
    """A clock the test moves by hand (Rich's progress takes ``get_time``)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def active(feed: ScanProgressFeed) -> bool:
    """Read through a call: the bar changes between reads (mypy would keep a narrowed value)."""
    return feed.active


def rendered(bar_console: Console, renderable: object) -> list[str]:
    """The lines one print of ``renderable`` writes (the console's buffer starts empty)."""
    bar_console.file = io.StringIO()
    bar_console.print(renderable)
    file = bar_console.file
    assert isinstance(file, io.StringIO)
    return file.getvalue().splitlines()


def test_rate_and_eta_follow_the_scanned_files_within_80_columns() -> None:
    out = Console(file=io.StringIO(), width=80, color_system=None)
    clock = Clock()
    bar = scan_progress_bar(out, get_time=clock)
    feed = ScanProgressFeed(bar)
    assert not active(feed)

    # Discovery found 600 files: that is not scanning, so it must not count as a rate.
    feed("discover", 600, 600)
    assert active(feed)
    assert "ETA" not in "\n".join(rendered(out, bar.get_renderable()))  # discovery is done
    feed("scan", 0, 600)
    # Drawn at once, the scan's bar does not keep the finished discovery's blank ETA.
    assert "ETA -:--" in "\n".join(rendered(out, bar.get_renderable()))
    clock.now += 2.0
    for done in (25, 50, 75, 100):
        clock.now += 1.0
        feed("scan", done, 600)
    lines = rendered(out, bar.get_renderable())
    text = "\n".join(lines)
    assert "scanning files" in text
    assert "100/600" in text
    assert "25 files/s" in text
    # 500 files left at 25 files/s: 20 s.
    assert "ETA 0:20" in text
    assert all(len(line) <= 80 for line in lines), lines
    assert active(feed)

    clock.now += 1.0
    feed("scan", 600, 600)
    assert not active(feed)
    # A rescan starts a new bar: the previous scan's rate and count are gone.
    feed("discover", 10, 10)
    feed("scan", 0, 10)
    task = bar.tasks[0]
    assert (task.completed, task.total, task.speed) == (0, 10, None)
    assert "ETA -:--" in "\n".join(rendered(out, bar.get_renderable()))


def test_a_real_scan_feeds_the_bar_to_the_end(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    (root / "pkg").mkdir(parents=True)
    for n in range(40):
        (root / "pkg" / f"m{n}.py").write_text(
            f"import subprocess\n\ndef run{n}(cmd):\n    return subprocess.call(cmd, shell=True)\n"
        )
    (root / "secperf.toml").write_text('[scan]\nscanners = ["bandit"]\ncache = false\n')
    loaded = load_config(None, root)
    bar = scan_progress_bar(Console(file=io.StringIO(), width=80))
    feed = ScanProgressFeed(bar)
    calls: list[tuple[str, int, int]] = []

    def progress(phase: str, done: int, total: int) -> None:
        calls.append((phase, done, total))
        feed(phase, done, total)

    report, _ = asyncio.run(run_scan(loaded, ScanOptions(root=root), progress=progress))
    assert report.metrics.files_scanned >= 40
    assert calls[0][0] == "discover"
    task = bar.tasks[0]
    assert task.description == "scanning files"
    assert task.total is not None and task.completed == task.total >= 40
    assert not active(feed)


@pytest.mark.slow
def test_scan_in_a_terminal_draws_the_rate_and_eta(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    (root / "pkg").mkdir(parents=True)
    # Enough files for the scan to last several of the bar's refreshes (ten a second).
    for n in range(300):
        (root / "pkg" / f"m{n}.py").write_text(f"def f{n}(x):\n    return x + {n}\n")
    (root / "secperf.toml").write_text('[scan]\nscanners = ["bandit"]\ncache = false\njobs = 1\n')
    env = clean_env({"HOME": str(tmp_path), "TERM": "xterm-256color"})
    env.pop("COLUMNS", None)
    term = Terminal([sys.executable, "-m", "secperf", "scan"], root, env)
    shown = term.close()
    assert term.proc.returncode == 0, shown
    # The bar was drawn on the terminal while the scan ran (it is gone afterwards).
    assert re.search(r"scanning files .* \d+/300 +\S+ files/s .*ETA", shown), shown
    assert "no findings" in shown
