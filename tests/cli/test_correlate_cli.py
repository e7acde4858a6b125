"""``secperf correlate`` on a real store: the ranked table, JSON, and the exit codes."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from secperf.cli import app
from secperf.model import Sample, SecurityMetrics
from secperf.store import Store

HOUR = 3_600_000


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SECPERF_CONFIG", raising=False)
    monkeypatch.delenv("SECPERF_TOKEN", raising=False)
    (tmp_path / "secperf.toml").write_text('[store]\nurl = "data/secperf.db"\n')
    return tmp_path


def fill(db: Path, *, scans: bool = True, effect: float = 0.3) -> None:
    """The last two hours: latency up ``effect`` during 8 one-minute scans."""
    now = time.time_ns() // 1_000_000
    start = now - 2 * HOUR
    windows = [(start + i * 900_000 + 300_000, start + i * 900_000 + 360_000) for i in range(8)]
    ts = start + np.arange(2 * 3600) * 1000
    inside = np.zeros(ts.size, dtype=bool)
    for a, b in windows:
        inside |= (ts >= a + 5_000) & (ts < b)
    rng = np.random.default_rng(4)
    latency = 100.0 * np.where(inside, 1 + effect, 1.0) + rng.normal(0, 5, ts.size)
    with Store.open(db) as store:
        store.write_samples(
            [
                Sample("response_time_ms", {"job": "api"}, int(t), float(v))
                for t, v in zip(ts, latency, strict=True)
            ]
            + [
                Sample("memory_percent", {"host": "a"}, int(t), 40.0 + float(rng.normal(0, 1)))
                for t in ts[::5]
            ]
        )
        if scans:
            for i, (a, b) in enumerate(windows):
                store.record_scan_started(f"s{i}", "/repo", a)
                store.record_scan_completed(
                    SecurityMetrics(f"s{i}", "/repo", a, b, float(b - a), 0, 0.0, {}, 100.0), "ok"
                )


def test_ranked_table_and_explanation(project: Path) -> None:
    fill(project / "data" / "secperf.db")
    result = CliRunner().invoke(app, ["correlate", "--since", "24h"])
    assert result.exit_code == 0, result.stderr
    assert "✓" in result.stdout
    assert "in/quiet" in result.stdout and "KS p" in result.stdout
    lines = result.stdout.splitlines()
    explanation = next(line for line in lines if "during scans" in line)
    assert explanation.startswith("response_time_ms{job=api} is ")
    assert "% higher during scans (q=" in explanation
    assert "after a scan begins" in explanation
    with Store.open(project / "data" / "secperf.db") as store:
        assert store.latest_correlation_run() is not None


def test_json_output(project: Path) -> None:
    fill(project / "data" / "secperf.db")
    result = CliRunner().invoke(app, ["correlate", "--json", "--alpha", "0.05"])
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["alpha"] == 0.05 and doc["n_scans"] == 8 and doc["problems"] == []
    top = doc["results"][0]
    assert (top["name"], top["labels"], top["significant"]) == (
        "response_time_ms",
        {"job": "api"},
        True,
    )
    assert doc["explanation"].startswith("response_time_ms{job=api} is ")


def test_metric_filter(project: Path) -> None:
    fill(project / "data" / "secperf.db")
    result = CliRunner().invoke(app, ["correlate", "--json", "--metric", "memory_percent"])
    assert result.exit_code == 0, result.stderr
    assert [r["name"] for r in json.loads(result.stdout)["results"]] == ["memory_percent"]


def test_without_scans_it_cannot_evaluate(project: Path) -> None:
    fill(project / "data" / "secperf.db", scans=False)
    result = CliRunner().invoke(app, ["correlate"])
    assert result.exit_code == 3
    assert result.stdout == ""
    assert "cannot evaluate" in result.stderr
    assert "no scan finished between" in result.stderr


def test_an_empty_store_names_both_missing_parts(project: Path) -> None:
    result = CliRunner().invoke(app, ["correlate", "--since", "1h"])
    assert result.exit_code == 3
    assert "no scan finished between" in result.stderr
    assert "no performance samples between" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--since", "yesterday"], "--since: invalid duration 'yesterday'"),
        (["--since", "0"], "--since: '0' must be a positive duration"),
        (["--alpha", "2"], "--alpha: must be between 0 and 1, got 2.0"),
    ],
)
def test_bad_options_are_usage_errors(project: Path, args: list[str], message: str) -> None:
    result = CliRunner().invoke(app, ["correlate", *args])
    assert result.exit_code == 2
    assert message in result.stderr
