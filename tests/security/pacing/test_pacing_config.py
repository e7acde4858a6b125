"""``[scan.impact]``: selectors parsed as alert rules' matchers, errors exit 2 naming the
file and key, and ``secperf config check`` warns about guards matching nothing stored."""

from __future__ import annotations

from pathlib import Path

import pytest

from secperf.config.sections.impact import HOST_CPU_GUARD, ImpactConfig, parse_selector
from secperf.model import Sample
from secperf.store import Store
from support.cli import CliResult, run_cli


def _check(project: Path, impact: str) -> CliResult:
    (project / "secperf.toml").write_text(
        f'[store]\nurl = "{project / "store.db"}"\n\n[scan.impact]\n{impact}\n'
    )
    return run_cli(["config", "check"], cwd=project)


def test_selectors_take_the_matchers_alert_rules_use() -> None:
    selector = parse_selector('response_time_ms{job="api",quantile="0.95", path=~"/a,b/.*"}')
    assert selector.name == "response_time_ms"
    assert [str(m) for m in selector.matchers] == [
        'job="api"',
        'quantile="0.95"',
        'path=~"/a,b/.*"',
    ]
    assert selector.matches(
        "response_time_ms", {"job": "api", "quantile": "0.95", "path": "/a,b/x"}
    )
    assert not selector.matches("response_time_ms", {"job": "web", "quantile": "0.95"})
    assert selector.equality_labels() == {"job": "api", "quantile": "0.95"}
    assert parse_selector(str(selector)) == selector
    assert ImpactConfig().guard == [parse_selector(HOST_CPU_GUARD)]
    assert ImpactConfig().guard[0].builtin


@pytest.mark.parametrize(
    ("impact", "problem"),
    [
        ("guard = ['latency{job=\"api\"']", "scan.impact.guard[0]"),
        ("guard = ['latency{job=~\"(\"}']", "is not a label matcher"),
        ("guard = ['9latency']", "'9latency' is not a metric name"),
        ("max_increase_pct = 0", "scan.impact.max_increase_pct"),
        ("max_slowdown = 0.5", "scan.impact.max_slowdown"),
        ('priority = "idle"', "scan.impact.priority"),
    ],
)
def test_a_bad_impact_setting_exits_2_naming_file_and_key(
    tmp_path: Path, impact: str, problem: str
) -> None:
    result = _check(tmp_path, impact)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "secperf.toml" in result.stderr
    assert problem in result.stderr


def test_config_check_warns_about_a_guard_matching_nothing_stored(tmp_path: Path) -> None:
    impact = "guard = ['response_time_ms{job=\"api\"}', 'host_cpu_others']"
    nothing_yet = _check(tmp_path, impact)
    assert nothing_yet.returncode == 0, nothing_yet.stderr
    assert "scan.impact.guard[0]" in nothing_yet.stderr
    assert "matches no stored series yet" in nothing_yet.stderr
    assert not (tmp_path / "store.db").exists()  # checking created no store
    with Store.open(tmp_path / "store.db") as store:
        store.write_samples([Sample("response_time_ms", {"job": "web"}, 1_000, 5.0)])
    other_job = _check(tmp_path, impact)
    assert "scan.impact.guard[0]" in other_job.stderr
    with Store.open(tmp_path / "store.db") as store:
        store.write_samples([Sample("response_time_ms", {"job": "api"}, 1_000, 5.0)])
    matched = _check(tmp_path, impact)
    assert matched.returncode == 0
    assert "guard" not in matched.stderr
