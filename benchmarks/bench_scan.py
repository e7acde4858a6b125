"""Scan targets on the CPython standard library, each beside its anchor, in one run.

The corpus is a copy of every .py file of the running interpreter's stdlib
(site-packages excluded; ``--quick`` takes the first 150 files). Anchors are the
bandit and detect-secrets command lines on the same copy, run in the same
process tree, so that machine noise hits both sides alike.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

from benchmarks.common import Figure
from secperf.bus.memory import AsyncEventBus
from secperf.security.cache import ScanCache
from secperf.security.discovery import FileDiscovery
from secperf.security.scanners.bandit import BanditScanner
from secperf.security.scanners.secrets import SecretsScanner
from secperf.security.validator import SecurityValidator
from secperf.store import Store, StoreWriter

AREA = "scan"
BIN = Path(sys.executable).parent


def _corpus(dest: Path, limit: int | None) -> int:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(
        p for p in stdlib.rglob("*.py") if "site-packages" not in p.parts and p.is_file()
    )
    if limit is not None:
        files = files[:limit]
    for src in files:
        target = dest / src.relative_to(stdlib)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, target)
    return len(files)


def _validator(root: Path, cache: ScanCache | None, publish: object = None) -> SecurityValidator:
    return SecurityValidator(
        [BanditScanner(), SecretsScanner(b"benchmark-salt-0")],
        discovery=FileDiscovery(respect_gitignore=False, max_file_size=10 * 1024 * 1024),
        cache=cache,
        jobs=os.cpu_count() or 1,
        publish=publish,  # type: ignore[arg-type]
    )


def _bandit_cli(root: Path) -> tuple[float, set[tuple[str, int, str]]]:
    start = time.perf_counter()
    out = subprocess.run(
        [str(BIN / "bandit"), "-r", ".", "-f", "json", "-q"],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - start
    data = json.loads(out.stdout)
    found = {
        (str(Path(r["filename"]).as_posix()).removeprefix("./"), r["line_number"], r["test_id"])
        for r in data["results"]
    }
    return elapsed, found


def _detect_secrets_cli(root: Path) -> tuple[float, set[tuple[str, int, str]]]:
    start = time.perf_counter()
    out = subprocess.run(
        [str(BIN / "detect-secrets"), "scan", "--all-files"],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - start
    data = json.loads(out.stdout)
    found = {
        (path, item["line_number"], item["type"])
        for path, items in data["results"].items()
        for item in items
    }
    return elapsed, found


def _publish_cost(samples: int, with_store: bool) -> tuple[float, float]:
    """p99 of building a scan's metrics and publishing its events, and of its store write.

    With ``with_store`` the store writer is subscribed in the same process and
    writes in its thread while the scan publishes; otherwise a plain subscriber
    drains the bus.
    """
    from secperf.events import ScanCompleted, ScanStarted, ViolationDetected
    from secperf.model import Finding, SecurityMetrics, Severity

    findings = [
        Finding(
            fingerprint=f"{i:032x}",
            rule_id="B602",
            scanner="bandit",
            severity=Severity.HIGH,
            message="subprocess call with shell=True identified",
            path=f"app/m{i}.py",
            line=i + 1,
        )
        for i in range(5)
    ]

    async def measure() -> tuple[list[float], list[float]]:
        bus = AsyncEventBus()
        await bus.start()
        tmp = Path(tempfile.mkdtemp())
        store = Store.open(tmp / "s.db")
        writer = StoreWriter(store)
        if with_store:
            await writer.attach(bus)
        else:

            async def sink(_: object) -> None:
                return None

            await bus.subscribe(">", sink, name="sink")
        publish_ms: list[float] = []
        store_ms: list[float] = []
        for n in range(samples):
            t0 = time.perf_counter()
            scan_id = f"scan-{n}"
            metrics = SecurityMetrics(
                scan_id=scan_id,
                target="/repo",
                started_ms=n,
                finished_ms=n + 10,
                scan_duration_ms=10.0,
                violations_found=len(findings),
                false_positive_rate=0.0,
                vulnerability_severity_counts={"high": len(findings)},
                scan_coverage_percent=100.0,
                files_scanned=50,
                scanner_durations_ms={"bandit": 5.0, "secrets": 2.0},
            )
            await bus.publish(ScanStarted(scan_id=scan_id, target="/repo"))
            for finding in findings:
                await bus.publish(ViolationDetected(scan_id=scan_id, finding=finding))
            await bus.publish(ScanCompleted(metrics=metrics))
            publish_ms.append((time.perf_counter() - t0) * 1000)
            if not with_store:
                t1 = time.perf_counter()
                store.record_scan_completed(metrics, "ok")
                store_ms.append((time.perf_counter() - t1) * 1000)
            await asyncio.sleep(0)
        await bus.close()
        await writer.close()
        store.close()
        shutil.rmtree(tmp, ignore_errors=True)
        return publish_ms, store_ms

    publish_ms, store_ms = asyncio.run(measure())
    return _p99(publish_ms), (_p99(store_ms) if store_ms else 0.0)


def _cli_scan_memory(root: Path, home: Path) -> tuple[float, float, float]:
    """A cold `secperf scan` in its own process: wall s, peak PSS and peak RSS (MiB).

    PSS shares each page among the processes mapping it, so forked workers are
    not counted twice for the pages they share with their parent; the RSS sum is
    the pessimistic figure.
    """
    import psutil

    (root / "secperf.toml").write_text(
        '[scan]\nscanners = ["bandit", "secrets"]\nrespect_gitignore = false\n'
        'max_file_size = "10MiB"\n'
    )
    start = time.perf_counter()
    proc = subprocess.Popen(
        [str(BIN / "secperf"), "scan", "--no-cache", "--format", "json", "-o", os.devnull],
        cwd=root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={"PATH": os.environ.get("PATH", ""), "HOME": str(home)},
    )
    peak_pss = peak_rss = 0
    parent = psutil.Process(proc.pid)
    while proc.poll() is None:
        pss = rss = 0
        try:
            members = [parent, *parent.children(recursive=True)]
        except psutil.NoSuchProcess:
            break
        for member in members:
            try:
                info = member.memory_full_info()
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
            pss += getattr(info, "pss", info.rss)
            rss += info.rss
        peak_pss, peak_rss = max(peak_pss, pss), max(peak_rss, rss)
        time.sleep(0.1)
    wall = time.perf_counter() - start
    (root / "secperf.toml").unlink()
    shutil.rmtree(root / ".secperf", ignore_errors=True)
    return wall, peak_pss / 2**20, peak_rss / 2**20


def _p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98]


def run(quick: bool) -> list[Figure]:
    work = Path(tempfile.mkdtemp(prefix="secperf-bench-scan-"))
    try:
        root = work / "stdlib"
        files = _corpus(root, 150 if quick else None)
        lines = sum(p.read_bytes().count(b"\n") for p in root.rglob("*.py"))

        bandit_s, bandit_found = _bandit_cli(root)
        secrets_s, secrets_found = _detect_secrets_cli(root)

        cache = ScanCache(work / "cache.db")
        validator = _validator(root, cache)
        t0 = time.perf_counter()
        cold = validator.scan(root)
        cold_s = time.perf_counter() - t0

        ours_bandit = {(f.path, f.line, f.rule_id) for f in cold.findings if f.scanner == "bandit"}
        ours_secrets = {
            (f.path, f.line, str(f.properties.get("secret_type", f.rule_id)))
            for f in cold.findings
            if f.scanner == "secrets"
        }
        bandit_equal = ours_bandit == bandit_found
        secrets_equal = ours_secrets == secrets_found

        warm_runs = []
        for _ in range(3 if quick else 5):
            t0 = time.perf_counter()
            validator.scan(root)
            warm_runs.append(time.perf_counter() - t0)
        warm_s = statistics.median(warm_runs)

        changed_runs = []
        target = sorted(root.rglob("*.py"))[files // 2]
        original = target.read_text(encoding="utf-8", errors="surrogateescape")
        for i in range(3 if quick else 5):
            target.write_text(
                original + f"\nimport subprocess\nsubprocess.call('x{i}', shell=True)\n",
                encoding="utf-8",
                errors="surrogateescape",
            )
            t0 = time.perf_counter()
            result = validator.scan(root)
            changed_runs.append(time.perf_counter() - t0)
            assert result.metrics.cache_misses == 2, result.metrics.cache_misses
        changed_s = statistics.median(changed_runs)
        validator.close()
        cache.close()

        cli_wall, peak_pss, peak_rss = _cli_scan_memory(root, work)
        publish_p99, store_p99 = _publish_cost(300 if quick else 2000, with_store=False)
        publish_store_p99, _ = _publish_cost(300 if quick else 2000, with_store=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    cli_sum = bandit_s + secrets_s
    corpus = f"{files} files, {lines:,} lines"
    equal_note = (
        f"findings equal to the CLIs: bandit {'yes' if bandit_equal else 'NO'}, "
        f"detect-secrets {'yes' if secrets_equal else 'NO'}"
    )
    return [
        Figure(
            AREA,
            "cold scan, bandit + secrets",
            cold_s,
            "s",
            "<= 0.5x (bandit CLI + detect-secrets CLI)",
            cold_s <= 0.5 * cli_sum and bandit_equal and secrets_equal,
            "bandit CLI + detect-secrets CLI",
            cli_sum,
            f"{corpus}; bandit CLI {bandit_s:.1f} s, detect-secrets CLI {secrets_s:.1f} s;"
            f" {equal_note}",
        ),
        Figure(
            AREA,
            "warm rescan, nothing changed",
            warm_s,
            "s",
            "<= 2 % of the cold scan",
            warm_s <= 0.02 * cold_s,
            "cold scan",
            cold_s,
            f"median of {len(warm_runs)}",
        ),
        Figure(
            AREA,
            "rescan with one file changed",
            changed_s,
            "s",
            "<= 1 s end to end",
            changed_s <= 1.0,
            "cold scan",
            cold_s,
            f"median of {len(changed_runs)}",
        ),
        Figure(
            AREA,
            "scan metrics + events published (p99)",
            publish_p99,
            "ms",
            "<= 0.5 ms at p99",
            publish_p99 <= 0.5,
            "store write of the scan's metrics (p99)",
            store_p99,
            "SecurityMetrics + ScanStarted + 5 ViolationDetected + ScanCompleted on the bus;"
            " the store writes them later, off the scan's path",
        ),
        Figure(
            AREA,
            "same, with the store writer writing in this process (p99)",
            publish_store_p99,
            "ms",
            "<= 0.5 ms at p99",
            publish_store_p99 <= 0.5,
            "without the store writer (p99)",
            publish_p99,
            "the store writer runs in this process, in its own thread; a shorter"
            " interpreter switch interval did not change the figure",
        ),
        Figure(
            AREA,
            "peak memory of a cold `secperf scan` (all processes, PSS)",
            peak_pss,
            "MiB",
            "<= 300 MB",
            peak_pss * 2**20 <= 300 * 1000 * 1000,
            "same, RSS summed (shared pages counted twice)",
            peak_rss,
            f"the CLI with bandit + secrets and {os.cpu_count()} workers, sampled every 100 ms;"
            f" took {cli_wall:.1f} s",
        ),
    ]
