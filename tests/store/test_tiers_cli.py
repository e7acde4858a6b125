"""The tiers from outside: ``[store]`` retention keys, ``secperf store stats``, array writes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from secperf.config import ConfigError, load_config
from secperf.store import Store
from secperf.store.tiers import GRACE_MS, HOUR_MS, TierRetention
from support.cli import run_cli

DAY = 24 * HOUR_MS
T0 = 1_700_000_000_000 - 1_700_000_000_000 % DAY


def config_error(tmp_path: Path, text: str) -> str:
    (tmp_path / "secperf.toml").write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(project_dir=tmp_path)
    return str(info.value)


def test_retention_keys_default_and_follow_each_other(tmp_path: Path) -> None:
    store = load_config(project_dir=tmp_path).config.store
    assert (store.retention_raw, store.retention_1m, store.retention_1h) == (
        7 * DAY,
        90 * DAY,
        730 * DAY,
    )
    (tmp_path / "secperf.toml").write_text('[store]\nretention_raw = "120d"\n')
    store = load_config(project_dir=tmp_path).config.store
    assert (store.retention_raw, store.retention_1m, store.retention_1h) == (
        120 * DAY,
        120 * DAY,
        730 * DAY,
    )
    # A short ``retention`` (which bounded samples before the tiers) still does.
    (tmp_path / "secperf.toml").write_text('[store]\nretention = "2d"\n')
    assert load_config(project_dir=tmp_path).config.store.retention_raw == 2 * DAY


@pytest.mark.parametrize(
    ("text", "key", "says"),
    [
        ('retention_raw = "3d"\nretention_1m = "2d"', "store.retention_1m", "store.retention_raw"),
        ('retention_1h = "30d"', "store.retention_1h", "store.retention_1m (90d)"),
        ('retention_1m = "soon"', "store.retention_1m", "'soon'"),
        ("retention_raw = 7", "store.retention_raw", "7"),
    ],
)
def test_bad_retention_keys_name_file_and_key(
    tmp_path: Path, text: str, key: str, says: str
) -> None:
    message = config_error(tmp_path, f"[store]\n{text}\n")
    assert "secperf.toml" in message and key in message and says in message


def _filled_store(path: Path) -> None:
    with Store.open(path) as store:
        ts = T0 + np.arange(0, 3 * DAY, 10_000, dtype=np.int64)
        for host in ("a", "b"):
            store.write_series_arrays(
                "cpu_percent", {"host": host}, ts, np.round(np.sin(ts / 1e7) * 50 + 50, 1)
            )
        now = T0 + 3 * DAY
        retention = TierRetention(DAY, 30 * DAY, 365 * DAY)
        store.rollup(now + GRACE_MS, retention=retention)
        store.apply_tiered_retention(now, retention)


def test_store_stats_fits_80_columns_and_agrees_with_json(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    _filled_store(path)
    shown = run_cli(["store", "stats", "--store", str(path)], cwd=tmp_path, env={"COLUMNS": "80"})
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0].startswith(f"store {path}")  # a long path may run on
    assert all(len(line) <= 80 for line in lines[1:]), shown.stdout
    rows = {
        line.split()[0]: line.split()
        for line in lines
        if line.split()[:1] in (["raw"], ["1m"], ["1h"])
    }
    assert set(rows) == {"raw", "1m", "1h"}
    assert rows["raw"][1] == "2" and rows["raw"][2] == f"{2 * 8640:,}"
    assert rows["1m"][2] == f"{2 * 3 * 1440:,}"
    assert rows["1h"][-1] == "730d"  # the configured retention (defaults here)
    as_json = run_cli(["store", "stats", "--store", str(path), "--json"], cwd=tmp_path)
    doc = json.loads(as_json.stdout)
    tiers = {t["tier"]: t for t in doc["tiers"]}
    assert tiers["raw"]["points"] == 2 * 8640  # the last day kept
    assert tiers["1m"]["points"] == 2 * 3 * 1440
    assert tiers["1h"]["points"] == 2 * 72
    assert tiers["1m"]["bucket_ms"] == 60_000 and tiers["raw"]["bucket_ms"] is None
    assert tiers["raw"]["oldest_ms"] == T0 + 2 * DAY
    assert doc["file_bytes"] >= sum(t["bytes"] for t in doc["tiers"])


def test_store_stats_of_an_empty_store(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    Store.open(path).close()
    shown = run_cli(["store", "stats", "--store", str(path)], cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "raw" in shown.stdout and " - " in shown.stdout


def test_series_arrays_are_checked(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s.db") as store:
        ts = np.array([T0, T0 + 1000, -5, T0 + 3000], dtype=np.int64)
        vals = np.array([1.0, np.nan, 2.0, 3.0])
        result = store.write_series_arrays("cpu_percent", {"host": "a"}, ts, vals, now_ms=T0)
        assert (result.accepted, result.rejected) == (2, 2)
        assert result.errors[0].startswith("sample 1:")
        bad = store.write_series_arrays("bad name!", {}, ts[:1], vals[:1], now_ms=T0)
        assert bad.accepted == 0 and "metric name" in bad.errors[0]
        with pytest.raises(ValueError, match="equally long"):
            store.write_series_arrays("cpu_percent", {}, ts, vals[:2], now_ms=T0)
        points = store.query("cpu_percent", None, 0, T0 + 10_000)[0]
        assert points.timestamps.tolist() == [T0, T0 + 3000]
