"""The bandit and secrets scanners against the tools they wrap, on the standard library.

Files: the ``.py`` files of the running interpreter's standard library
(``site-packages`` excluded) - all of them, or a spread of 50 in quick mode.
Every figure is measured beside its anchor in the same run, on the same files:

- secrets: ``SecretsScanner`` (prefilter on) versus detect-secrets' own
  ``SecretsCollection.scan_file`` over the same files in this process (the
  unfiltered library path), with the finding sets compared;
- bandit: ``BanditScanner`` file by file in this process versus one
  ``bandit -f json`` subprocess over the same files, sets compared;
- both: the two scanners in one process versus the two CLIs
  (``bandit`` + ``detect-secrets scan --all-files --no-verify``), the issue's
  cold-scan budget of 0.5x the CLIs' time (the validator adds its worker pool
  and cache on top of this).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import sysconfig
import time
from collections.abc import Callable
from pathlib import Path
from typing import cast

from benchmarks.common import Figure
from secperf.security.scanners.bandit import BanditScanner
from secperf.security.scanners.interface import FileResult, SourceFile
from secperf.security.scanners.secrets import SecretsScanner

AREA = "scanners"
QUICK_FILES = 30

Triple = tuple[str, int, str]


def stdlib_files(quick: bool) -> tuple[Path, list[str]]:
    """The stdlib root and the relative paths of the files to scan."""
    root = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(
        p.relative_to(root).as_posix()
        for p in root.rglob("*.py")
        if "site-packages" not in p.parts and "__pycache__" not in p.parts and p.is_file()
    )
    if quick:
        step = max(1, len(files) // QUICK_FILES)
        files = files[::step][:QUICK_FILES]
    return root, files


def _timed(fn: Callable[[], object]) -> tuple[float, object]:
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def _secret_set(results: list[FileResult]) -> set[Triple]:
    return {
        (r.relpath, f.line, str(f.properties["secret_type"])) for r in results for f in r.findings
    }


def _bandit_set(results: list[FileResult]) -> set[Triple]:
    return {(r.relpath, f.line, f.rule_id) for r in results for f in r.findings}


def _detect_secrets_library(root: Path, files: list[str]) -> set[Triple]:
    from detect_secrets.core.secrets_collection import SecretsCollection
    from detect_secrets.settings import default_settings

    with default_settings():
        collection = SecretsCollection(root=str(root))
        for rel in files:
            collection.scan_file(rel)
    return {
        (name, secret.line_number, secret.type)
        for name, secrets in collection.data.items()
        for secret in secrets
    }


def _detect_secrets_cli(root: Path, files: list[str]) -> set[Triple]:
    proc = subprocess.run(
        [sys.executable, "-m", "detect_secrets", "scan", "--all-files", "--no-verify", *files],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    )
    results = json.loads(proc.stdout)["results"]
    return {(name, s["line_number"], s["type"]) for name, items in results.items() for s in items}


def _bandit_cli(root: Path, files: list[str]) -> set[Triple]:
    proc = subprocess.run(
        [sys.executable, "-m", "bandit", "-f", "json", "-q", *files],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )
    results = json.loads(proc.stdout)["results"]
    return {(os.path.normpath(r["filename"]), r["line_number"], r["test_id"]) for r in results}


def run(quick: bool) -> list[Figure]:
    root, files = stdlib_files(quick)
    sources = [SourceFile(rel, (root / rel).read_bytes()) for rel in files]
    lines = sum(s.content.count(b"\n") for s in sources)
    scope = f"{len(files)} stdlib files, {lines:,} lines"

    secrets = SecretsScanner(b"benchmark-salt")
    secrets.scan_batch(root, sources[:2])  # imports and regex compilation out of the timing
    runs = 3 if quick else 1
    secret_times: list[float] = []
    secret_results: list[FileResult] = []
    for _ in range(runs):
        elapsed, value = _timed(lambda: secrets.scan_batch(root, sources))
        secret_times.append(elapsed)
        secret_results = cast(list[FileResult], value)
    secrets_s = statistics.median(secret_times)
    library_s, library_set = _timed(lambda: _detect_secrets_library(root, files))
    secrets_equal = _secret_set(secret_results) == library_set

    bandit = BanditScanner()
    bandit.scan_file(root, sources[0])  # loads bandit's plugins
    bandit_s, bandit_value = _timed(lambda: bandit.scan_batch(root, sources))
    bandit_results = cast(list[FileResult], bandit_value)
    bandit_cli_s, bandit_cli_value = _timed(lambda: _bandit_cli(root, files))
    bandit_cli_set = cast(set[Triple], bandit_cli_value)
    bandit_equal = _bandit_set(bandit_results) == bandit_cli_set

    ds_cli_s, ds_cli_set = _timed(lambda: _detect_secrets_cli(root, files))
    cli_equal = _secret_set(secret_results) == ds_cli_set

    both_s = secrets_s + bandit_s
    clis_s = bandit_cli_s + ds_cli_s
    findings = len(_secret_set(secret_results))
    return [
        Figure(
            area=AREA,
            name="secrets scan with keyword prefilter",
            value=secrets_s,
            unit="s",
            target="findings equal to detect-secrets",
            met=secrets_equal,
            anchor_name="detect-secrets unfiltered, same process",
            anchor_value=library_s,
            note=f"{scope}; {findings} findings, equal: {'yes' if secrets_equal else 'NO'}; "
            f"speedup {library_s / secrets_s:.1f}x",
        ),
        Figure(
            area=AREA,
            name="bandit in-process, per file",
            value=bandit_s,
            unit="s",
            target="findings equal to the bandit CLI",
            met=bandit_equal,
            anchor_name="bandit CLI, one subprocess",
            anchor_value=bandit_cli_s,
            note=f"{scope}; {len(bandit_cli_set)} findings, equal: "
            f"{'yes' if bandit_equal else 'NO'}",
        ),
        Figure(
            area=AREA,
            name="bandit + secrets scanners, one process",
            value=both_s,
            unit="s",
            target="context: the 0.5x target is the parallel cold scan's (area scan)",
            met=None,
            anchor_name="bandit CLI + detect-secrets CLI",
            anchor_value=clis_s,
            note=f"{scope}; no cache, no worker pool (the detect-secrets CLI uses every CPU); "
            f"secrets equal to the CLI: {'yes' if cli_equal else 'NO'}",
        ),
    ]
