"""Six real processes on one store, killed with SIGKILL at random and restarted.

The chaos run: ``secperf serve``, ``secperf monitor`` at 1 s, two scan loops
that overlap (two projects scanned again and again), an import loop
(``secperf import pytest-benchmark``, a new result file each time) and an
operator loop (``secperf triage``, ``secperf alerts ack``, ``secperf alerts
silence`` in turn) all write to one store for ``duration_s``. Meanwhile a
seeded RNG picks a process at a random moment and kills it with SIGKILL
(``serve`` only in the second half), and its loop starts it again.

Each process says what it committed, and only that is checked:

* monitor runs in segments (``--duration``) and prints ``stored N samples``;
  the store must hold exactly N samples of the monitor's series stamped inside
  that segment's lifetime (raw chunks are decoded, so a sample stored twice
  counts twice);
* a scan that exits 0 or 1 printed its JSON: its scan id must be stored once,
  finished, with exactly the findings it printed;
* an import that exits 0 printed ``N new results stored``: each of its
  (uniquely named) results must be stored once;
* a triage or silence that exits 0 must be in the store once (their reason is
  unique); an acknowledgement overwrites the alert, so the stored note must be
  the last one reported or a later one;
* when the store has an event log, the event of each of these is in it once
  (``ScanCompleted`` by scan id, ``FindingTriaged`` and ``SilenceAdded`` by
  reason, ``AlertAcknowledged`` by note, the samples of each monitor segment's
  ``MetricsRecorded`` entries), and its event ids are unique.

Work a process did before it was killed may or may not be stored: it was not
reported, so either is fine, but no monitor sample of the whole run may be
stored twice. At the end: "database is locked" is searched in every output,
``PRAGMA integrity_check`` runs on SQLite and ``secperf store check`` on both
engines, and every process that was not killed must have exited as it should.

``run_chaos`` is shared with ``tests/store/test_many_processes.py`` (a short
run on SQLite). Figures: lost, duplicated, locked errors and integrity
problems per engine (targets 0), beside how many items were checked.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.common import Figure

AREA = "processes"
ROOT = Path(__file__).resolve().parent.parent
PYTEST_BENCHMARK_SAMPLE = ROOT / "tests" / "fixtures" / "benchmarks" / "pytest_benchmark_tiny.json"
POSTGRES_URL = os.environ.get(
    "SECPERF_TEST_POSTGRES", "postgresql+psycopg://root@127.0.0.1:5432/test"
)
LOCKED = "database is locked"
ERROR_LINE = re.compile(r"error|traceback|failed|lost", re.IGNORECASE)
#: The series ``secperf monitor`` writes (system and own-process collectors).
MONITOR_METRICS = frozenset(
    {
        "cpu_percent",
        "disk_read_bytes",
        "disk_read_ops",
        "disk_write_bytes",
        "disk_write_ops",
        "load_15m",
        "load_1m",
        "load_5m",
        "memory_available_bytes",
        "memory_percent",
        "memory_rss_bytes",
        "memory_total_bytes",
        "memory_used_bytes",
        "net_recv_bytes",
        "net_sent_bytes",
        "process_cpu_percent",
        "process_open_files",
        "process_read_bytes",
        "process_read_chars",
        "process_threads",
        "process_write_bytes",
        "process_write_chars",
        "swap_percent",
        "swap_used_bytes",
    }
)
#: The alert the operator loop acknowledges: stored before the run, of a rule
#: no process evaluates, so only acknowledgements change it.
SEED_ALERT = "chaosseed" + "0" * 23
STOPPED_MS = 120_000  # how long a process may take to stop when asked


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


# --------------------------------------------------------------------------- what happened


@dataclass
class MonitorSegment:
    """One ``secperf monitor --duration`` run that ended normally."""

    started_ms: int
    ended_ms: int
    stored: int
    pid: int
    log: Path


@dataclass
class Reported:
    """What the processes reported committed, by kind."""

    scans: dict[str, int] = field(default_factory=dict)  # scan id -> findings printed
    monitor: list[MonitorSegment] = field(default_factory=list)
    imports: list[str] = field(default_factory=list)  # benchmark result names
    triage: list[str] = field(default_factory=list)  # unique reasons
    silences: list[str] = field(default_factory=list)  # unique reasons
    acks: list[int] = field(default_factory=list)  # note numbers, in order
    fingerprints: list[str] = field(default_factory=list)  # findings to triage


@dataclass
class Launch:
    """One process the run started: what it was, how it ended."""

    role: str
    args: list[str]
    out: Path
    err: Path
    pid: int = 0
    returncode: int | None = None
    killed: bool = False
    interrupted: bool = False  # sent SIGINT to stop at the end of the run
    seconds: float = 0.0  # from start to exit


@dataclass
class ChaosReport:
    """What a chaos run checked and found; ``problems`` is empty when all is well."""

    engine: str
    duration_s: float
    launches: int
    kills: Counter[str]
    checked: Counter[str]
    lost: list[str]
    duplicated: list[str]
    locked_errors: int
    integrity: str
    crashes: list[str]
    event_log: str
    #: role -> seconds each run that was neither killed nor stopped took to exit
    run_seconds: dict[str, list[float]] = field(default_factory=dict)
    #: error lines the processes logged (not problems by themselves: a retry may follow)
    logged: Counter[str] = field(default_factory=Counter)

    @property
    def problems(self) -> list[str]:
        """Everything that is not as it must be, one line each."""
        out = [f"lost: {x}" for x in self.lost] + [f"duplicated: {x}" for x in self.duplicated]
        if self.locked_errors:
            out.append(f"{self.locked_errors} '{LOCKED}' error(s) in the processes' output")
        if self.integrity != "ok":
            out.append(f"integrity: {self.integrity}")
        out += [f"crash: {c}" for c in self.crashes]
        return out

    def summary(self) -> str:
        """One paragraph for a log or a figure's note."""
        kills = ", ".join(f"{k} {n}" for k, n in sorted(self.kills.items())) or "none"
        checked = ", ".join(f"{n} {k}" for k, n in sorted(self.checked.items()))
        took = ", ".join(
            f"{role} {len(times)}x {statistics.median(times):.1f} s"
            for role, times in sorted(self.run_seconds.items())
            if times and role != "serve"
        )
        return (
            f"{self.engine}, {self.duration_s:.0f} s, {self.launches} processes started, "
            f"SIGKILL: {kills}; checked {checked}; event log: {self.event_log}; "
            f"runs that ended by themselves, median time: {took or 'none'}"
            + "".join(f"\n  logged {n}x: {line}" for line, n in self.logged.most_common(8))
        )


# --------------------------------------------------------------------------- the run


def _environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SECPERF_")}
    env["COLUMNS"] = "200"
    env["NO_COLOR"] = "1"
    env["SECPERF_TOKEN"] = "chaos-" + uuid.uuid4().hex
    return env


def _write_project(root: Path, files: int) -> None:
    """A small Python project with bandit findings (no secret values in it)."""
    pkg = root / "app"
    pkg.mkdir(parents=True, exist_ok=True)
    for i in range(files):
        (pkg / f"mod{i}.py").write_text(
            "import subprocess\n\n\n"
            f"def run_{i}(cmd: str) -> int:\n"
            f"    assert cmd, 'empty command {i}'\n"
            "    return subprocess.call(cmd, shell=True)\n"
            + "\n".join(
                f"\n\ndef helper_{i}_{k}(x: int) -> int:\n    return x * {k}\n" for k in range(30)
            )
        )


def _write_config(root: Path, store: str, extra: str = "") -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / "secperf.toml").write_text(
        f"[store]\nurl = {json.dumps(store)}\n"
        '[scan]\nscanners = ["bandit", "secrets"]\njobs = 1\n' + extra
    )


def _seed(store_url: str) -> None:
    """Migrate the store and add the alert the operator loop acknowledges."""
    from secperf.model import Alert, AlertState, MetricKind, Severity
    from secperf.store import Store

    now = _now_ms()
    with Store.open(store_url) as store:
        store.upsert_alert(
            Alert(
                fingerprint=SEED_ALERT,
                rule="ChaosSeed",
                state=AlertState.FIRING,
                severity=Severity.LOW,
                kind=MetricKind.PERFORMANCE,
                labels={"alertname": "ChaosSeed"},
                annotations={"summary": "acknowledged again and again by the chaos run"},
                value=1.0,
                active_since_ms=now,
                fired_at_ms=now,
                updated_ms=now,
            )
        )


class _Chaos:
    """The processes, their loops and the killer; see the module docstring."""

    def __init__(self, work: Path, store_url: str, duration_s: float, seed: int) -> None:
        self.work = work
        self.store_url = store_url
        self.duration_s = duration_s
        self.rng = random.Random(seed)
        self.env = _environment()
        self.logs = work / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.reported = Reported()
        self.launches: list[Launch] = []
        self.current: dict[str, tuple[subprocess.Popen[bytes], Launch]] = {}
        self.kills: Counter[str] = Counter()
        self.numbered = 0
        self.harness_errors: list[str] = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.started = 0.0
        self.started_ms = 0
        self.monitor_segment_s = max(4.0, min(10.0, duration_s / 4))
        for name in ("scan-a", "scan-b"):
            _write_project(work / name, 12)
            _write_config(work / name, store_url)
        for name in ("serve", "monitor", "import", "ops"):
            _write_config(work / name, store_url)

    # ----------------------------------------------------------------- processes

    def _launch(self, role: str, args: list[str]) -> tuple[subprocess.Popen[bytes], Launch]:
        with self.lock:
            n = self.numbered = self.numbered + 1
        launch = Launch(
            role, args, self.logs / f"{n:04d}-{role}.out", self.logs / f"{n:04d}-{role}.err"
        )
        with launch.out.open("wb") as out, launch.err.open("wb") as err:
            proc = subprocess.Popen(
                [sys.executable, "-m", "secperf", *args],
                cwd=self.work / role,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
            )
        launch.pid = proc.pid
        with self.lock:
            self.launches.append(launch)
            self.current[role] = (proc, launch)
        return proc, launch

    def _run(self, role: str, args: list[str]) -> Launch:
        began = time.monotonic()
        proc, launch = self._launch(role, args)
        launch.returncode = proc.wait()
        launch.seconds = time.monotonic() - began
        with self.lock:
            self.current.pop(role, None)
        return launch

    def _kill_one(self) -> None:
        elapsed = time.monotonic() - self.started
        with self.lock:
            roles = sorted(r for r in self.current if r != "serve" or elapsed > self.duration_s / 2)
            if not roles:
                return
            role = self.rng.choice(roles)
            proc, launch = self.current[role]
            if proc.poll() is not None:
                return
            launch.killed = True
            proc.send_signal(signal.SIGKILL)
            self.kills[role] += 1

    def _interrupt(self, role: str) -> None:
        with self.lock:
            if role not in self.current:
                return
            proc, launch = self.current[role]
            if not launch.interrupted and proc.poll() is None:
                launch.interrupted = True
                proc.send_signal(signal.SIGINT)

    # ----------------------------------------------------------------- loops

    def _loop(self, body: Callable[[int], None]) -> Callable[[], None]:
        def run() -> None:
            n = 0
            while not self.stopping.is_set():
                n += 1
                try:
                    body(n)
                except Exception as exc:  # e.g. a report that is not JSON: a finding
                    with self.lock:
                        self.harness_errors.append(f"{body.__name__} #{n}: {exc!r}")

        return run

    def _serve(self, n: int) -> None:
        self._run("serve", ["serve", "--port", "0", "--store", self.store_url])

    def _monitor(self, n: int) -> None:
        began = _now_ms()
        launch = self._run(
            "monitor",
            ["monitor", "-i", "1s", "-d", f"{self.monitor_segment_s:g}s", "--no-prometheus"],
        )
        ended = _now_ms()
        if launch.returncode == 0:
            found = re.search(r"stored (\d+) samples", launch.out.read_text(errors="replace"))
            if found:
                with self.lock:
                    self.reported.monitor.append(
                        MonitorSegment(began, ended, int(found[1]), launch.pid, launch.out)
                    )

    def _scan(self, role: str) -> Callable[[int], None]:
        def body(n: int) -> None:
            launch = self._run(role, ["scan", "-f", "json"])
            if launch.killed or launch.returncode not in (0, 1):
                return
            report = json.loads(launch.out.read_text())
            with self.lock:
                self.reported.scans[report["scan_id"]] = len(report["findings"])
                if len(self.reported.fingerprints) < 50:
                    self.reported.fingerprints.extend(
                        f["fingerprint"] for f in report["findings"][:5]
                    )

        return body

    def _import(self, n: int) -> None:
        data = json.loads(PYTEST_BENCHMARK_SAMPLE.read_text())
        tag = f"chaos{n}x{uuid.uuid4().hex[:8]}"
        for bench in data["benchmarks"]:
            bench["fullname"] = f"{tag}::{bench['name']}"
        path = self.work / "import" / f"{tag}.json"
        path.write_text(json.dumps(data))
        launch = self._run("import", ["import", "pytest-benchmark", str(path)])
        if launch.returncode == 0 and re.search(
            rf"{len(data['benchmarks'])} new results stored", launch.out.read_text()
        ):
            with self.lock:
                self.reported.imports.extend(b["fullname"] for b in data["benchmarks"])

    def _ops(self, n: int) -> None:
        reason = f"chaos-{n}-{uuid.uuid4().hex[:6]}"
        with self.lock:
            fingerprints = list(self.reported.fingerprints)
            done = {
                "silence": len(self.reported.silences),
                "triage": len(self.reported.triage) if fingerprints else n,
                "ack": len(self.reported.acks),
            }
        # The kind done least so far (a kill may have cut the last try short), so that a
        # slow machine still sees each; triage once a scan has reported findings.
        kind = min(done, key=lambda k: done[k])
        if kind == "triage":
            fp = fingerprints[n % len(fingerprints)]
            args = ["triage", fp, "--false-positive", "--reason", reason, "--author", "chaos"]
        elif kind == "silence":
            matcher = f'alertname="ChaosNever{n}"'
            args = ["alerts", "silence", matcher, "-d", "1h", "-r", reason, "-a", "chaos"]
        else:
            kind = "ack"
            args = ["alerts", "ack", SEED_ALERT, "--author", "chaos", "--note", f"ack {n}"]
        launch = self._run("ops", args)
        if launch.returncode != 0:
            return
        with self.lock:
            if kind == "triage":
                self.reported.triage.append(reason)
            elif kind == "silence":
                self.reported.silences.append(reason)
            else:
                self.reported.acks.append(n)

    def run(self) -> None:
        """Start every loop, kill at random until the time is up, stop them all."""
        loops = {
            "serve": self._serve,
            "monitor": self._monitor,
            "scan-a": self._scan("scan-a"),
            "scan-b": self._scan("scan-b"),
            "import": self._import,
            "ops": self._ops,
        }
        threads = [
            threading.Thread(target=self._loop(body), name=f"chaos-{role}", daemon=True)
            for role, body in loops.items()
        ]
        self.started = time.monotonic()
        self.started_ms = _now_ms()
        for thread in threads:
            thread.start()
        end = self.started + self.duration_s
        while (left := end - time.monotonic()) > 0:
            # Random moments, 1.5 to 4 s apart: each process is hit every ~15 s on
            # average, so most get to finish some work between kills.
            time.sleep(min(left, self.rng.uniform(1.5, 4.0)))
            if time.monotonic() < end:
                self._kill_one()
        self.stopping.set()
        deadline = time.monotonic() + STOPPED_MS / 1000
        for thread in threads:
            while thread.is_alive() and time.monotonic() < deadline:
                # serve runs until told (SIGINT, as Ctrl-C), asked again until it is
                # gone in case it was being started; monitor ends its segment itself.
                self._interrupt("serve")
                thread.join(timeout=0.2)
        stuck = [t.name for t in threads if t.is_alive()]
        if stuck:
            with self.lock:
                for proc, _ in self.current.values():
                    proc.kill()
            raise RuntimeError(f"processes did not stop within {STOPPED_MS // 1000} s: {stuck}")

    def leftovers(self, wait_s: float = 30.0) -> list[str]:
        """Processes still running in the work folders (a killed scan's workers, say).

        Waits up to ``wait_s`` for them to notice their parent is gone.
        """
        import psutil

        deadline = time.monotonic() + wait_s
        while True:
            found = []
            for proc in psutil.process_iter(["pid", "cwd", "cmdline"]):
                cwd = proc.info.get("cwd") or ""
                if proc.pid != os.getpid() and cwd.startswith(str(self.work)):
                    found.append(f"pid {proc.pid}: {' '.join(proc.info.get('cmdline') or [])}")
            if not found or time.monotonic() > deadline:
                return found
            time.sleep(0.5)


# --------------------------------------------------------------------------- the checks


def _raw_samples(
    store_url: str, start_ms: int, end_ms: int, names: dict[int, str] | None = None
) -> Counter[tuple[int, int]]:
    """(series id, timestamp) of every stored monitor sample in the range, repeats counted.

    ``names``, when given, receives each series' name and labels by id.
    """
    from sqlalchemy import select

    from secperf.store import Store, codec
    from secperf.store.schema import chunks, series

    found: Counter[tuple[int, int]] = Counter()
    with Store.open(store_url) as store, store.engine.connect() as conn:
        sids = []
        for row in conn.execute(select(series.c.id, series.c.name, series.c.labels)):
            if row.name in MONITOR_METRICS:
                sids.append(int(row.id))
                if names is not None:
                    names[int(row.id)] = f"{row.name}{row.labels}"
        stmt = (
            select(chunks.c.series_id, chunks.c.data)
            .where(chunks.c.series_id.in_(sids))
            .where(chunks.c.start_ms <= end_ms)
            .where(chunks.c.end_ms >= start_ms)
        )
        for sid, data in conn.execute(stmt):
            ts, _ = codec.decode_chunk(data)
            for t in ts.tolist():
                if start_ms <= t <= end_ms:
                    found[(int(sid), int(t))] += 1
    return found


def _counts(store_url: str, column: Any, values: list[str]) -> Counter[str]:
    from sqlalchemy import func, select

    from secperf.store import Store

    found: Counter[str] = Counter()
    with Store.open(store_url) as store, store.engine.connect() as conn:
        for i in range(0, len(values), 500):
            part = values[i : i + 500]
            stmt = select(column, func.count()).where(column.in_(part)).group_by(column)
            for value, count in conn.execute(stmt):
                found[str(value)] = int(count)
    return found


def _exactly_once(
    what: str, wanted: list[str], found: Counter[str], lost: list[str], dup: list[str]
) -> None:
    for item in wanted:
        if found[item] == 0:
            lost.append(f"{what} {item} (reported committed, not in the store)")
        elif found[item] > 1:
            dup.append(f"{what} {item} stored {found[item]} times")


def _check_scans(store_url: str, reported: dict[str, int], lost: list[str], dup: list[str]) -> None:
    from sqlalchemy import select

    from secperf.store import Store
    from secperf.store.schema import scans

    ids = sorted(reported)
    _exactly_once("scan", ids, _counts(store_url, scans.c.scan_id, ids), lost, dup)
    with Store.open(store_url) as store, store.engine.connect() as conn:
        rows = {
            r.scan_id: r
            for r in conn.execute(
                select(scans.c.scan_id, scans.c.status, scans.c.finished_ms).where(
                    scans.c.scan_id.in_(ids)
                )
            )
        }
        # Through the store's own read: a scan whose findings equal its previous
        # scan's shares that scan's rows instead of holding copies of them.
        per_scan = {
            scan_id: len(store.findings(scan_id=scan_id, limit=None))
            for scan_id in ids
            if scan_id in rows
        }
    for scan_id in ids:
        row = rows.get(scan_id)
        if row is not None and (row.finished_ms is None or row.status != "ok"):
            lost.append(f"scan {scan_id} reported done, stored as {row.status!r}")
        if row is not None and per_scan[scan_id] != reported[scan_id]:
            what = lost if per_scan[scan_id] < reported[scan_id] else dup
            what.append(
                f"scan {scan_id}: {reported[scan_id]} findings printed, {per_scan[scan_id]} stored"
            )


def _check_acks(store_url: str, acks: list[int], lost: list[str]) -> None:
    from secperf.store import Store

    if not acks:
        return
    with Store.open(store_url) as store:
        [alert] = [a for a in store.alerts() if a.fingerprint == SEED_ALERT]
    note = alert.acknowledgement_note or ""
    found = re.fullmatch(r"ack (\d+)", note)
    if found is None or int(found[1]) < acks[-1]:
        lost.append(f"acknowledgement 'ack {acks[-1]}' (reported), the alert holds {note!r}")


def _check_event_log(store_url: str, rep: Reported, lost: list[str], dup: list[str]) -> str:
    """The events of what was reported, each once in the event log; or why not checked.

    ScanCompleted per scan id, FindingTriaged and SilenceAdded per (unique)
    reason, AlertAcknowledged per note, and the samples of each monitor segment's
    MetricsRecorded entries; event ids must be unique.
    """
    from sqlalchemy import func, inspect, select

    from secperf.store import Store
    from secperf.store.schema import event_log

    seen: dict[str, Counter[str]] = {
        kind: Counter()
        for kind in ("ScanCompleted", "FindingTriaged", "SilenceAdded", "AlertAcknowledged")
    }
    sample_ts: list[int] = []
    with Store.open(store_url) as store:
        if not inspect(store.engine).has_table("event_log", schema=_schema(store_url)):
            return "not in this store's schema (not checked)"
        with store.engine.connect() as conn:
            distinct = int(
                conn.execute(select(func.count(func.distinct(event_log.c.event_id)))).scalar() or 0
            )
            total = 0
            for encoding, payload in conn.execute(
                select(event_log.c.encoding, event_log.c.payload)
            ):
                total += 1
                raw = zlib.decompress(payload) if encoding == 1 else bytes(payload)
                body = json.loads(raw)
                kind, event = body.get("type"), body.get("event", {})
                if kind == "ScanCompleted":
                    seen[kind][str(event.get("metrics", {}).get("scan_id"))] += 1
                elif kind in ("FindingTriaged", "SilenceAdded"):
                    seen[kind][str(event.get("reason"))] += 1
                elif kind == "AlertAcknowledged":
                    seen[kind][str(event.get("note"))] += 1
                elif kind == "MetricsRecorded":
                    sample_ts.extend(
                        int(x["timestamp_ms"])
                        for x in event.get("samples", [])
                        if x.get("name") in MONITOR_METRICS
                    )
    if total == 0:
        return "empty (no process appends to it yet)"
    if distinct != total:
        dup.append(f"event log: {total - distinct} repeated event id(s) in {total}")
    before = len(lost) + len(dup)
    wanted = {
        "ScanCompleted": sorted(rep.scans),
        "FindingTriaged": rep.triage,
        "SilenceAdded": rep.silences,
        "AlertAcknowledged": [f"ack {n}" for n in rep.acks],
    }
    for kind, items in wanted.items():
        _exactly_once(f"{kind} event of", items, seen[kind], lost, dup)
    for seg in rep.monitor:
        logged = sum(1 for t in sample_ts if seg.started_ms <= t <= seg.ended_ms)
        if logged != seg.stored:
            (lost if logged < seg.stored else dup).append(
                f"MetricsRecorded events of monitor pid {seg.pid}: {logged} samples in the "
                f"event log, {seg.stored} reported stored"
            )
    checked = sum(len(v) for v in wanted.values()) + len(rep.monitor)
    verdict = "problems (listed)" if len(lost) + len(dup) > before else "each once"
    unique = "unique" if distinct == total else "NOT unique"
    return f"{total} entries, ids {unique}; events of {checked} reported items: {verdict}"


def _schema(store_url: str) -> str | None:
    found = re.search(r"[?&]schema=([^&]+)", store_url)
    return found[1] if found else None


def _integrity(store_url: str, sqlite_path: Path | None, work: Path, env: dict[str, str]) -> str:
    problems = []
    if sqlite_path is not None:
        with contextlib.closing(sqlite3.connect(sqlite_path)) as conn:
            rows = [r[0] for r in conn.execute("PRAGMA integrity_check")]
        if rows != ["ok"]:
            problems.append("PRAGMA integrity_check: " + "; ".join(rows[:5]))
    check = subprocess.run(
        [sys.executable, "-m", "secperf", "store", "check", "--store", store_url],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if check.returncode != 0:
        problems.append(f"secperf store check exit {check.returncode}: {check.stdout.strip()}")
    return "; ".join(problems) or "ok"


def _check(chaos: _Chaos, sqlite_path: Path | None) -> ChaosReport:
    from secperf.store.schema import benchmark_results, silences, triage_history

    url, rep = chaos.store_url, chaos.reported
    lost: list[str] = []
    dup: list[str] = []
    _check_scans(url, rep.scans, lost, dup)
    # Killed monitors reported nothing, but nothing they stored may be there twice.
    everything = _raw_samples(url, chaos.started_ms, _now_ms())
    repeated = sum(1 for n in everything.values() if n > 1)
    if repeated:
        dup.append(f"{repeated} monitor sample(s) stored more than once over the whole run")
    for seg in rep.monitor:
        found = _raw_samples(url, seg.started_ms, seg.ended_ms)
        stored = sum(found.values())
        twice = sum(1 for n in found.values() if n > 1)
        if twice:
            dup.append(f"monitor segment at {seg.started_ms}: {twice} sample(s) stored twice")
        if len(found) < seg.stored:
            lost.append(
                f"monitor segment {seg.started_ms}..{seg.ended_ms}: reported {seg.stored} "
                f"samples stored, {len(found)} in the store"
            )
        elif stored > seg.stored and not twice:
            # More than it reported and none twice: say where, for a person to look.
            names: dict[int, str] = {}
            found = _raw_samples(url, seg.started_ms, seg.ended_ms, names)
            detail = chaos.work / f"monitor-{seg.started_ms}.txt"
            detail.write_text(
                "\n".join(
                    f"{names[sid]} {ts}" for sid, ts in sorted(found, key=lambda k: (k[1], k[0]))
                )
            )
            dup.append(
                f"monitor segment {seg.started_ms}..{seg.ended_ms} (pid {seg.pid}, output "
                f"{seg.log}): reported {seg.stored} samples stored, {stored} in its time range "
                f"(none twice; every sample listed in {detail})"
            )
    _exactly_once(
        "benchmark result",
        rep.imports,
        _counts(url, benchmark_results.c.name, rep.imports),
        lost,
        dup,
    )
    _exactly_once(
        "triage decision", rep.triage, _counts(url, triage_history.c.note, rep.triage), lost, dup
    )
    _exactly_once("silence", rep.silences, _counts(url, silences.c.reason, rep.silences), lost, dup)
    _check_acks(url, rep.acks, lost)
    locked = 0
    crashes = []
    logged: Counter[str] = Counter()
    for launch in chaos.launches:
        text = launch.out.read_text(errors="replace") + launch.err.read_text(errors="replace")
        locked += text.lower().count(LOCKED)
        for line in launch.err.read_text(errors="replace").splitlines():
            if ERROR_LINE.search(line):
                logged[f"{launch.role}: {line.strip()[:200]}"] += 1
        expected: tuple[int, ...] = (0, 1) if launch.role.startswith("scan") else (0,)
        if launch.interrupted:
            expected = (0, 130, -signal.SIGINT)  # Ctrl-C while it was still starting too
        if not launch.killed and launch.returncode not in expected:
            tail = launch.err.read_text(errors="replace").strip().splitlines()[-3:]
            crashes.append(
                f"{' '.join(launch.args[:2])} (pid {launch.pid}) exit {launch.returncode}: "
                + " | ".join(tail)
            )
    checked = Counter(
        {
            "scans": len(rep.scans),
            "samples": sum(s.stored for s in rep.monitor),
            "samples checked for repeats": sum(everything.values()),
            "benchmark results": len(rep.imports),
            "triage decisions": len(rep.triage),
            "silences": len(rep.silences),
            "acks": len(rep.acks),
        }
    )
    events = _check_event_log(url, rep, lost, dup)
    return ChaosReport(
        engine="SQLite" if sqlite_path is not None else "PostgreSQL",
        duration_s=chaos.duration_s,
        launches=len(chaos.launches),
        kills=chaos.kills,
        checked=checked,
        lost=lost,
        duplicated=dup,
        locked_errors=locked,
        integrity=_integrity(url, sqlite_path, chaos.work, chaos.env),
        crashes=crashes,
        event_log=events,
        logged=logged,
        run_seconds={
            role: [x.seconds for x in chaos.launches if x.role == role and not x.killed]
            for role in sorted({x.role for x in chaos.launches})
        },
    )


# --------------------------------------------------------------------------- entry points


@contextlib.contextmanager
def _postgres_schema(keep: bool = False) -> Iterator[str]:
    """A fresh schema on the PostgreSQL server, dropped afterwards unless ``keep``."""
    import psycopg

    schema = f"secperf_chaos_{uuid.uuid4().hex[:12]}"
    sep = "&" if "?" in POSTGRES_URL else "?"
    try:
        yield f"{POSTGRES_URL}{sep}schema={schema}"
    finally:
        if keep:
            print(f"kept PostgreSQL schema {schema}", file=sys.stderr)
        else:
            dsn = POSTGRES_URL.replace("postgresql+psycopg://", "postgresql://", 1)
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def run_chaos(work: Path, store_url: str | None, duration_s: float, seed: int) -> ChaosReport:
    """The chaos run in ``work`` on ``store_url`` (None: a SQLite file in ``work``)."""
    sqlite_path = None
    if store_url is None:
        sqlite_path = work / "chaos.db"
        store_url = str(sqlite_path)
    _seed(store_url)
    chaos = _Chaos(work, store_url, duration_s, seed)
    chaos.run()
    leftovers = chaos.leftovers()
    report = _check(chaos, sqlite_path)
    report.crashes += [f"still running after the run: {p}" for p in leftovers]
    report.crashes += [f"reading what a process reported: {e}" for e in chaos.harness_errors]
    return report


def _figures(report: ChaosReport) -> list[Figure]:
    items = sum(n for what, n in report.checked.items() if "repeats" not in what)
    note = report.summary()
    lost, dup = len(report.lost), len(report.duplicated)
    integrity = 0 if report.integrity == "ok" else 1
    e = report.engine
    return [
        Figure(AREA, f"{e}: items reported committed but lost", lost, "items", "0", lost == 0,
               "items checked", items, "; ".join(report.lost[:3]) or note),
        Figure(AREA, f"{e}: items stored more than once", dup, "items", "0", dup == 0,
               "items checked", items, "; ".join(report.duplicated[:3])),
        Figure(AREA, f"{e}: '{LOCKED}' errors", report.locked_errors, "errors", "0",
               report.locked_errors == 0, "processes started", report.launches,
               "; ".join(report.crashes[:3])),
        Figure(AREA, f"{e}: integrity problems", integrity, "", "0 (integrity ok)",
               integrity == 0, None, None, report.integrity),
    ]  # fmt: skip


def run(quick: bool) -> list[Figure]:
    """The chaos run on SQLite (60 s, quick: 15 s) and, in full mode, on PostgreSQL."""
    duration = 15.0 if quick else 60.0
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory(prefix="secperf-bench-chaos-") as name:
        report = run_chaos(Path(name), None, duration, seed=20261207)
    print(f"  {report.summary()}", file=sys.stderr)
    for problem in report.problems:
        print(f"  PROBLEM {problem}", file=sys.stderr)
    figures += _figures(report)
    if not quick:
        with (
            tempfile.TemporaryDirectory(prefix="secperf-bench-chaos-pg-") as name,
            _postgres_schema() as url,
        ):
            report = run_chaos(Path(name), url, duration, seed=20261207)
        print(f"  {report.summary()}", file=sys.stderr)
        for problem in report.problems:
            print(f"  PROBLEM {problem}", file=sys.stderr)
        figures += _figures(report)
    return figures


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="the chaos run on its own")
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--postgres", action="store_true")
    parser.add_argument("--keep", type=Path, default=None, help="work here and keep the logs")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="secperf-chaos-"))
    work.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        url = (
            stack.enter_context(_postgres_schema(args.keep is not None)) if args.postgres else None
        )
        result = run_chaos(work, url, args.seconds, seed=20261207)
    print(result.summary())
    print("\n".join(result.problems) or "no problems")
    print(f"logs in {work / 'logs'}")
