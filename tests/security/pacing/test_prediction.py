"""The cost model: inputs gathered from real files and the real cache's stat memo,
a model fitted on scan history written through the real store API, and real
scans that store their prediction beside their actual cost."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from secperf.commands.scanning import run_scan
from secperf.config import ScanConfig, load_config
from secperf.events import local_host
from secperf.model import SecurityMetrics
from secperf.security import validator as validator_module
from secperf.security.cache import ScanCache
from secperf.security.discovery import FileDiscovery
from secperf.security.factory import ScanOptions, build_discovery, build_scanners, make_validator
from secperf.security.pacing.inputs import (
    ScanInputs,
    ScannerInputs,
    WalkHandedOver,
    gather_inputs,
    hand_over_memo,
)
from secperf.security.pacing.prediction import (
    BATCH_FILES,
    BATCH_KB,
    BUILTIN_MS_PER_KB,
    BUILTIN_WARM_MS,
    BUILTIN_WARM_MS_PER_FILE,
    ScanPrediction,
    batch_work,
    fit_model,
    predict_from_model,
    predict_scan,
    read_history,
    span,
    theil_sen,
    try_predict,
    usable_history,
)
from secperf.security.scanners.bandit import BanditScanner
from secperf.security.scanners.secrets import SecretsScanner
from secperf.store import Store

HOST = "build-host"
TARGET = "/srv/repo"
SCANNERS = ["bandit", "secrets"]
CLEAN = "def add(a, b):\n    return a + b\n"


def _project(root: Path, files: int = 6) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for i in range(files):
        (root / f"mod{i}.py").write_text(CLEAN * (i + 1), encoding="utf-8")
    (root / "notes.txt").write_text("plain text\n", encoding="utf-8")
    return root


def test_inputs_count_what_will_be_read_and_the_cache_misses(tmp_path: Path) -> None:
    root = _project(tmp_path / "proj")
    scan_cfg = ScanConfig(scanners=SCANNERS)
    scanners = build_scanners(scan_cfg, b"salt")
    cache = ScanCache(tmp_path / "cache.db")
    cold = gather_inputs(scanners, build_discovery(scan_cfg), cache, root)
    assert cold.files == 7
    assert cold.bytes == sum(p.stat().st_size for p in root.iterdir())
    assert cold.per_scanner["bandit"].files == 6  # Python files only
    assert cold.per_scanner["secrets"].files == 7
    assert cold.expected_misses == 13  # every (file, scanner) job, nothing cached yet

    validator = make_validator(scan_cfg, ScanOptions(root=root, jobs=1), None, {}, None, None)
    validator.cache = cache
    first = validator.scan(root)
    assert first.metrics.cache_misses == cold.expected_misses
    warm = gather_inputs(scanners, build_discovery(scan_cfg), cache, root)
    assert warm.expected_misses == 0
    assert warm.lines == first.metrics.lines_scanned  # from the memo, no file opened

    (root / "mod2.py").write_text(CLEAN * 40, encoding="utf-8")
    edited = gather_inputs(scanners, build_discovery(scan_cfg), cache, root)
    assert edited.expected_misses == 2  # bandit and secrets read the edited file
    assert edited.per_scanner["bandit"].missed_bytes == len(CLEAN * 40)
    again = validator.scan(root)
    assert again.metrics.cache_misses == edited.expected_misses
    validator.close()
    cache.close()


def _inputs(bandit_kb: float, secrets_kb: float) -> ScanInputs:
    per = {
        "bandit": ScannerInputs(10, 0, 0, 10, round(bandit_kb * 1024), 0),
        "secrets": ScannerInputs(10, 0, 0, 10, round(secrets_kb * 1024), 0),
    }
    return ScanInputs(files=10, expected_misses=20, per_scanner=per, jobs=2)


def _store_scan(
    store: Store,
    scan_id: str,
    started_ms: int,
    inputs: ScanInputs,
    *,
    host: str = HOST,
    target: str = TARGET,
    slow: float = 1.0,
    lasting: Callable[[float, float], float] | None = None,
) -> None:
    """A scan whose bandit costs 4 ms/KB and secrets 0.5 ms/KB; 80 ms + work/2 long.

    ``lasting``: its duration from (bandit work, secrets work) instead.
    """
    bandit = 4.0 * inputs.per_scanner["bandit"].missed_bytes / 1024
    secrets = 0.5 * inputs.per_scanner["secrets"].missed_bytes / 1024
    work = bandit + secrets
    duration = (80.0 + 0.5 * work if lasting is None else lasting(bandit, secrets)) * slow
    _record_scan(
        store,
        scan_id,
        started_ms,
        inputs,
        duration=duration,
        work={"bandit": bandit, "secrets": secrets},
        misses=inputs.expected_misses if work else 0,
        cpu=0.05 + 0.001 * work,
        host=host,
        target=target,
    )


def _record_scan(
    store: Store,
    scan_id: str,
    started_ms: int,
    inputs: ScanInputs,
    *,
    duration: float,
    work: dict[str, float],
    misses: int,
    cpu: float,
    host: str = HOST,
    target: str = TARGET,
) -> None:
    """Store a finished scan with these costs, and ``inputs`` as its prediction's inputs."""
    store.record_scan_started(scan_id, target, started_ms, SCANNERS, owner_pid=1, owner_host=host)
    metrics = SecurityMetrics(
        scan_id=scan_id,
        target=target,
        started_ms=started_ms,
        finished_ms=started_ms + round(duration),
        scan_duration_ms=duration,
        violations_found=0,
        false_positive_rate=0.0,
        vulnerability_severity_counts={},
        scan_coverage_percent=100.0,
        scanner_durations_ms=work,
        cache_misses=misses,
        cpu_seconds=cpu,
    )
    store.record_scan_completed(metrics, "ok", host=host)
    doc = {"duration_ms": 1.0, "cpu_s": 1.0, "inputs": inputs.to_document()}
    store.record_scan_prediction(scan_id, doc, target=target, started_ms=started_ms)


def test_without_history_the_builtin_throughputs_are_used_and_grow_with_the_misses(
    tmp_path: Path,
) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'store.db'}")
    small = predict_scan(store, target=TARGET, host=HOST, inputs=_inputs(10, 10), scanners=SCANNERS)
    large = predict_scan(store, target=TARGET, host=HOST, inputs=_inputs(90, 90), scanners=SCANNERS)
    store.close()
    assert small.basis == large.basis == "builtin"
    assert "built-in throughputs" in small.basis_text
    assert small.per_scanner["bandit"].ms_per_kb == BUILTIN_MS_PER_KB["bandit"]
    assert large.duration_ms > small.duration_ms
    assert large.cpu_s > small.cpu_s
    assert large.per_scanner["bandit"].duration_ms > large.per_scanner["secrets"].duration_ms


def test_the_model_learns_rates_and_lines_from_stored_scans(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'store.db'}")
    sizes = [(0.0, 0.0), (20.0, 30.0), (100.0, 100.0), (5.0, 10.0), (60.0, 40.0)]
    for i, (bandit_kb, secrets_kb) in enumerate(sizes):
        _store_scan(store, f"scan-{i}", 1_000_000 + i * 60_000, _inputs(bandit_kb, secrets_kb))
    # Scans of another target or run on another host teach nothing about this one.
    _store_scan(store, "other-host", 2_000_000, _inputs(50, 50), host="elsewhere", slow=20)
    _store_scan(store, "other-target", 2_100_000, _inputs(50, 50), target="/srv/x", slow=20)
    wanted = _inputs(50.0, 20.0)
    predicted = predict_scan(store, target=TARGET, host=HOST, inputs=wanted, scanners=SCANNERS)
    assert predicted.basis == "history"
    assert predicted.history_scans == 5
    assert predicted.basis_text == "history of 5 scans"
    assert predicted.per_scanner["bandit"].ms_per_kb == pytest.approx(4.0)
    assert predicted.per_scanner["secrets"].ms_per_kb == pytest.approx(0.5)
    work = 4.0 * 50 + 0.5 * 20
    assert predicted.duration_ms == pytest.approx(80.0 + 0.5 * work, rel=0.01)
    # Half the work whatever its batches: the line on the work fits these scans.
    assert predicted.duration_from == "work"
    assert predicted.cpu_s == pytest.approx(0.05 + 0.001 * work, rel=0.01)

    # One scan slowed five times by a busy machine barely moves a robust fit.
    _store_scan(store, "busy", 3_000_000, _inputs(50, 50), slow=5.0)
    robust = predict_scan(store, target=TARGET, host=HOST, inputs=wanted, scanners=SCANNERS)
    store.close()
    assert robust.duration_ms == pytest.approx(predicted.duration_ms, rel=0.1)

    # The light read of the cost columns learns exactly what the full records teach.
    reopened = Store.open(f"sqlite:///{tmp_path / 'store.db'}")
    full = usable_history(reopened.scans(limit=50, target=TARGET, kind="scan"), HOST)
    light, _ = read_history(reopened, target=TARGET, host=HOST)
    reopened.close()
    assert len(light) == len(full) == 6
    assert fit_model(light, 2) == fit_model(full, 2)
    assert predict_from_model(fit_model(full, 2), wanted, SCANNERS, made_ms=1) == replace(
        robust, made_ms=1
    )

    # The document round-trips.
    again = ScanPrediction.from_document(robust.to_document())
    assert again.duration_ms == pytest.approx(robust.duration_ms, abs=0.1)
    assert again.duration_from == robust.duration_from == "work"
    assert again.inputs.per_scanner["bandit"].missed_bytes == 50 * 1024


def _store_warm_scan(
    store: Store, scan_id: str, started_ms: int, inputs: ScanInputs, duration: float, cpu: float
) -> None:
    """A scan that read nothing (every file cached), ``duration`` ms long, ``cpu`` s measured."""
    _record_scan(
        store,
        scan_id,
        started_ms,
        inputs,
        duration=duration,
        work={"bandit": 0.0, "secrets": 0.0},
        misses=0,
        cpu=cpu,
    )


def test_a_warm_scan_is_predicted_per_file_until_warm_scans_teach_it(tmp_path: Path) -> None:
    def warm(files: int) -> ScanInputs:
        per = {sid: ScannerInputs(files, files * 2048, files * 50) for sid in SCANNERS}
        return ScanInputs(files=files, bytes=files * 2048, per_scanner=per, jobs=2)

    store = Store.open(f"sqlite:///{tmp_path / 'store.db'}")

    def predict(files: int) -> ScanPrediction:
        return predict_scan(store, target=TARGET, host=HOST, inputs=warm(files), scanners=SCANNERS)

    # No history: a fixed part and a part per file, its CPU no more than its duration.
    small, large = predict(20), predict(400)
    assert small.duration_ms == pytest.approx(BUILTIN_WARM_MS + 20 * BUILTIN_WARM_MS_PER_FILE)
    assert large.duration_ms == pytest.approx(BUILTIN_WARM_MS + 400 * BUILTIN_WARM_MS_PER_FILE)
    assert large.cpu_s == pytest.approx(large.duration_ms / 1000)
    # Scans that read files teach nothing about one that reads none.
    for i, kb in enumerate((10.0, 60.0, 100.0)):
        _store_scan(store, f"scan-{i}", 1_000_000 + i * 60_000, _inputs(kb, kb))
    assert predict(400).duration_ms == pytest.approx(large.duration_ms)
    # A warm scan whose CPU was below the clock's tick (measured 0) teaches its duration only.
    _store_warm_scan(store, "warm-0", 2_000_000, warm(400), duration=30.0, cpu=0.0)
    taught = predict(400)
    assert taught.duration_ms == pytest.approx(30.0)
    assert taught.cpu_s == pytest.approx(0.03)
    _store_warm_scan(store, "warm-1", 2_060_000, warm(400), duration=34.0, cpu=0.01)
    measured = predict(400)
    store.close()
    assert measured.duration_ms == pytest.approx(32.0)  # the median warm scan
    assert measured.cpu_s == pytest.approx(0.01)


def test_the_work_is_cut_into_the_validators_batches_and_dealt_to_the_workers() -> None:
    assert BATCH_KB * 1024 == validator_module._BATCH_BYTES
    assert BATCH_FILES == validator_module._BATCH_FILES
    # 300 KB of bandit at 2 ms/KB: a full batch and the rest; the start-up goes to the first.
    assert batch_work(100.0, 2.0, 10, 300.0) == pytest.approx([612.0, 88.0])
    assert batch_work(0.0, 1.0, 130, 13.0) == pytest.approx([13 / 3] * 3)  # by file count
    assert batch_work(50.0, 2.0, 0, 0.0) == []
    # Largest first to the least busy worker: one worker waits for the big batch.
    assert span([612.0, 88.0, 10.0], 2) == pytest.approx(612.0)
    assert span([300.0, 300.0, 300.0, 300.0], 2) == pytest.approx(600.0)
    assert span([300.0, 300.0], 1) == pytest.approx(600.0)


def test_a_history_that_follows_the_span_predicts_from_the_span(tmp_path: Path) -> None:
    def span_of(bandit: float, secrets: float) -> float:
        """Bandit's batches (256 KB at 4 ms/KB) and secrets' one, on two workers."""
        full, rest = divmod(bandit, 1024.0)
        batches = [1024.0] * int(full) + ([rest] if rest else []) + [secrets]
        return 50.0 + span(batches, 2)

    store = Store.open(f"sqlite:///{tmp_path / 'store.db'}")
    sizes = [(20.0, 20.0), (200.0, 200.0), (1000.0, 1000.0), (60.0, 60.0), (600.0, 600.0)]
    for i, (bandit_kb, secrets_kb) in enumerate(sizes):
        inputs = _inputs(bandit_kb, secrets_kb)
        _store_scan(store, f"scan-{i}", 1_000_000 + i * 60_000, inputs, lasting=span_of)
    for bandit_kb in (150.0, 800.0):
        wanted = _inputs(bandit_kb, bandit_kb)
        predicted = predict_scan(store, target=TARGET, host=HOST, inputs=wanted, scanners=SCANNERS)
        assert predicted.duration_from == "span"
        assert predicted.duration_ms == pytest.approx(
            span_of(4.0 * bandit_kb, 0.5 * bandit_kb), rel=0.02
        )
    store.close()


def test_theil_sen_ignores_an_outlier_and_refuses_a_vertical_line() -> None:
    xs = [0.0, 1.0, 2.0, 3.0, 4.0]
    ys = [1.0, 3.0, 5.0, 70.0, 9.0]
    fitted = theil_sen(xs, ys)
    assert fitted is not None
    assert fitted[1] == pytest.approx(2.0)
    assert fitted[0] == pytest.approx(1.0)
    assert theil_sen([2.0, 2.0], [1.0, 5.0]) is None


def test_real_scans_store_their_prediction_beside_the_actual_cost(tmp_path: Path) -> None:
    root = _project(tmp_path / "proj", files=8)
    (root / "secperf.toml").write_text(
        f'[store]\nurl = "sqlite:///{tmp_path / "store.db"}"\n'
        '[scan]\nscanners = ["bandit", "secrets"]\njobs = 1\n',
        encoding="utf-8",
    )
    loaded = load_config(root / "secperf.toml")
    options = ScanOptions(root=root, jobs=1)
    first, _ = asyncio.run(run_scan(loaded, options))
    (root / "mod3.py").write_text(CLEAN * 200, encoding="utf-8")
    second, _ = asyncio.run(run_scan(loaded, options))
    third, _ = asyncio.run(run_scan(loaded, options))

    store = Store.open(f"sqlite:///{tmp_path / 'store.db'}")
    records = {r.scan_id: r for r in store.scans(limit=10)}
    store.close()
    docs = [records[r.scan_id].prediction for r in (first, second, third)]
    assert all(doc is not None for doc in docs)
    one, two, three = (ScanPrediction.from_document(doc or {}) for doc in docs)
    assert one.basis == "builtin"
    assert (two.basis, two.history_scans) == ("history", 1)
    assert (three.basis, three.history_scans) == ("history", 2)
    assert records[first.scan_id].owner_host == local_host()
    # What the model expected to miss is what each scan missed.
    for report, predicted in ((first, one), (second, two), (third, three)):
        assert predicted.inputs.expected_misses == report.metrics.cache_misses
    assert two.inputs.expected_misses == 2 and three.inputs.expected_misses == 0
    # A warm scan (nothing to read) is predicted cheaper than one with an edit.
    assert three.duration_ms < two.duration_ms


def test_the_scan_reuses_the_walk_its_prediction_made(tmp_path: Path) -> None:
    root = _project(tmp_path / "proj")
    scan_cfg = ScanConfig(scanners=SCANNERS, cache=False)
    validator = make_validator(scan_cfg, ScanOptions(root=root, jobs=1), None, {}, None, None)
    own = validator.discovery
    predicted = try_predict(None, validator, root, ["."], host=HOST)
    assert predicted is not None and predicted.basis == "builtin"
    assert isinstance(validator.discovery, WalkHandedOver)
    (root / "late.py").write_text(CLEAN, encoding="utf-8")  # after the walk: not in this scan
    report = validator.scan(root)
    assert validator.discovery is own  # handed over once, then the validator walks again
    assert report.metrics.eligible_files == predicted.inputs.files == 7
    assert validator.scan(root).metrics.eligible_files == 8
    validator.close()


class _Calls:
    """Counts calls of a few real methods while a scan runs (their behaviour is unchanged)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.counts: dict[str, int] = {}
        self._monkeypatch = monkeypatch

    def count(self, owner: type, name: str) -> None:
        original: Callable[..., Any] = getattr(owner, name)
        label = f"{owner.__name__}.{name}"

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.counts[label] = self.counts.get(label, 0) + 1
            return original(*args, **kwargs)

        self._monkeypatch.setattr(owner, name, counted)


def _count_scan_work(monkeypatch: pytest.MonkeyPatch) -> _Calls:
    """Counts the walks, memo reads and scanner questions from now on."""
    calls = _Calls(monkeypatch)
    calls.count(FileDiscovery, "_walk")
    calls.count(ScanCache, "known_files")
    calls.count(BanditScanner, "applies_to")
    calls.count(SecretsScanner, "applies_to")
    return calls


def test_a_warm_prediction_repeats_none_of_the_scans_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _project(tmp_path / "proj", files=8)
    (root / "secperf.toml").write_text(
        f'[store]\nurl = "sqlite:///{tmp_path / "store.db"}"\n'
        '[scan]\nscanners = ["bandit", "secrets"]\njobs = 1\n',
        encoding="utf-8",
    )
    loaded = load_config(root / "secperf.toml")
    options = ScanOptions(root=root, jobs=1)
    asyncio.run(run_scan(loaded, options))  # cold: fills the cache and the memo
    asyncio.run(run_scan(loaded, options))  # warm: its prediction's fingerprint is stored

    calls = _count_scan_work(monkeypatch)
    report, _ = asyncio.run(run_scan(loaded, options))
    eligible = report.metrics.eligible_files  # 8 modules, notes.txt and secperf.toml
    # One walk and one stat of the tree, made by the prediction and handed to the scan.
    assert calls.counts["FileDiscovery._walk"] == 1
    # The scanners are asked about each file once, by the scan: the prediction
    # reused its totals and asked about no file the cache will hit.
    assert calls.counts["BanditScanner.applies_to"] == eligible
    assert calls.counts["SecretsScanner.applies_to"] == eligible
    assert calls.counts["ScanCache.known_files"] == 1  # read by the prediction, handed over

    store = Store.open(f"sqlite:///{tmp_path / 'store.db'}")
    stored = store.scans(limit=1)[0].prediction
    store.close()
    predicted = ScanPrediction.from_document(stored or {})
    assert predicted.inputs.tree  # the fingerprint the next prediction compares
    assert predicted.inputs.expected_misses == report.metrics.cache_misses == 0
    assert predicted.inputs.files == eligible
    assert predicted.inputs.per_scanner["bandit"].files == 8


def test_reused_totals_equal_a_full_count_and_a_changed_tree_is_counted_again(
    tmp_path: Path,
) -> None:
    root = _project(tmp_path / "proj")
    scan_cfg = ScanConfig(scanners=SCANNERS)
    scanners = build_scanners(scan_cfg, b"salt")
    cache = ScanCache(tmp_path / "cache.db")
    validator = make_validator(scan_cfg, ScanOptions(root=root, jobs=1), None, {}, None, None)
    validator.cache = cache
    validator.scan(root)

    def gather(previous: ScanInputs | None) -> ScanInputs:
        return gather_inputs(scanners, build_discovery(scan_cfg), cache, root, previous=previous)

    full = gather(None)
    assert gather(full) == full
    # A memo handed to a scan that never ran is not what the next gathering reads.
    hand_over_memo(cache, {})
    assert gather(None) == full
    # Totals are reused only under the same fingerprint, whatever they say.
    bogus = replace(full, files=999, per_scanner={}, tree="0" * 32)
    assert gather(bogus) == full

    (root / "mod2.py").write_text(CLEAN * 40, encoding="utf-8")
    edited = gather(full)
    assert edited.tree != full.tree
    assert edited == gather(None)
    assert edited.expected_misses == 2
    assert edited.bytes == full.bytes + len(CLEAN * 40) - len(CLEAN * 3)
    # The scan reads the edit; the next gathering reuses its own totals and misses nothing.
    validator.scan(root)
    after = gather(None)
    assert gather(after) == after and after.expected_misses == 0
    assert after.tree != edited.tree  # the edited file is a cache hit now
    validator.close()
    cache.close()


def test_the_light_history_read_pages_on_postgresql(postgres_url: str) -> None:
    store = Store.open(postgres_url)
    sizes = [(float(5 + 7 * i), float(3 + 5 * i)) for i in range(10)]
    for i, (bandit_kb, secrets_kb) in enumerate(sizes):
        _store_scan(store, f"scan-{i}", 1_000_000 + i * 60_000, _inputs(bandit_kb, secrets_kb))
    # The newest scans ran elsewhere: the usable ten lie across two pages.
    away = replace(_inputs(50, 50), tree="ab" * 16)  # a fingerprinted prediction
    for i in range(6):
        _store_scan(store, f"away-{i}", 2_000_000 + i, away, host="elsewhere", slow=9)
    full = usable_history(store.scans(limit=50, target=TARGET, kind="scan"), HOST)
    light, previous = read_history(store, target=TARGET, host=HOST)
    store.close()
    assert len(light) == len(full) == 10
    assert fit_model(light, 2) == fit_model(full, 2)
    assert previous == away  # the newest prediction's inputs, whichever host


def test_misses_of_empty_files_are_not_a_warm_scan() -> None:
    # Fitted rates with no start-up: 20 misses of empty files predict no work at all.
    model = fit_model([], jobs=2)._replace(
        ms_per_kb={"bandit": 4.0, "secrets": 0.5},
        scanner_startup_ms={"bandit": 0.0, "secrets": 0.0},
        rate_scans={"bandit": 5, "secrets": 5},
    )
    per = {sid: ScannerInputs(10, 0, 0, 10, 0, 0) for sid in SCANNERS}
    empty = ScanInputs(files=10, expected_misses=20, per_scanner=per, jobs=2)
    predicted = predict_from_model(model, empty, SCANNERS)
    # Judged as fit_model judges past scans (by their misses): a scan with misses.
    assert predicted.duration_from == "span"
    assert predicted.startup_ms == pytest.approx(model.startup_ms)
    warm = replace(empty, expected_misses=0, per_scanner={s: ScannerInputs(10, 0, 0) for s in per})
    assert predict_from_model(model, warm, SCANNERS).duration_from == ""


def test_a_warm_scan_costs_the_cpu_warm_scans_measured_even_above_their_duration(
    tmp_path: Path,
) -> None:
    # 3 ms warm scans whose CPU reads one 10 ms clock tick: the actual will read so too.
    per = {sid: ScannerInputs(40, 40 * 2048, 40 * 50) for sid in SCANNERS}
    warm = ScanInputs(files=40, bytes=40 * 2048, per_scanner=per, jobs=2)
    store = Store.open(f"sqlite:///{tmp_path / 'store.db'}")
    _store_warm_scan(store, "warm-a", 1_000_000, warm, duration=3.0, cpu=0.01)
    _store_warm_scan(store, "warm-b", 1_060_000, warm, duration=3.0, cpu=0.01)
    predicted = predict_scan(store, target=TARGET, host=HOST, inputs=warm, scanners=SCANNERS)
    store.close()
    assert predicted.duration_ms == pytest.approx(3.0)
    assert predicted.cpu_s == pytest.approx(0.01)


def test_stored_costs_that_are_not_finite_numbers_are_left_out(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'store.db'}")
    for i, kb in enumerate((10.0, 60.0, 100.0)):
        _store_scan(store, f"scan-{i}", 1_000_000 + i * 60_000, _inputs(kb, kb))
    good = predict_scan(store, target=TARGET, host=HOST, inputs=_inputs(50, 50), scanners=SCANNERS)
    # JSON allows Infinity: a scan whose stored cost or prediction inputs hold it.
    _store_scan(store, "scan-inf", 1_300_000, _inputs(80.0, 80.0))
    with store.engine.begin() as conn:
        metrics, prediction = conn.exec_driver_sql(
            "SELECT metrics, prediction FROM scans WHERE scan_id = 'scan-inf'"
        ).one()
        metrics_doc, prediction_doc = json.loads(metrics), json.loads(prediction)
        metrics_doc["scan_duration_ms"] = float("inf")  # written "Infinity"
        prediction_doc["inputs"]["files"] = float("inf")
        conn.exec_driver_sql(
            "UPDATE scans SET metrics = ?, prediction = ? WHERE scan_id = 'scan-inf'",
            (json.dumps(metrics_doc), json.dumps(prediction_doc)),
        )
    again = predict_scan(store, target=TARGET, host=HOST, inputs=_inputs(50, 50), scanners=SCANNERS)
    history, _ = read_history(store, target=TARGET, host=HOST)
    store.close()
    assert again.duration_ms == pytest.approx(good.duration_ms)
    assert len(history) == 3  # the scan whose cost is infinite teaches nothing
    assert ScanInputs.from_document({"files": float("inf"), "bytes": -1}).files == 0
