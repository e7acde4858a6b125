"""The effective alert rules from the command line: `alerts rules check` without a file,
`config check` over the rule files, and `up` / `serve` refusing a broken rule cleanly."""

from __future__ import annotations

from pathlib import Path

import pytest

from support.cli import run_secperf

BROKEN_RULES = """\
[[rules]]
name = "OrdersSlow"
metric = "response_time_ms"
matchers = ['job="shop"']
aggregation = "p95"
threshold = 250

[[rules]]
name = "CpuMedian"
metric = "cpu_percent"
aggregation = "median"
threshold = 90
"""

GOOD_RULES = """\
[[rules]]
name = "OrdersSlow"
metric = "response_time_ms"
matchers = ['job="shop"']
aggregation = "p95"
threshold = 250

[[rules]]
name = "ScansSlowOrders"
kind = "scan_impact"
metric = "response_time_ms"
min_effect_pct = 25
"""


def project(tmp_path: Path, rules: str, config_extra: str = "") -> Path:
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "shop.toml").write_text(rules, encoding="utf-8")
    (tmp_path / "secperf.toml").write_text(
        f'[store]\nurl = "sqlite:///{tmp_path / "secperf.db"}"\n\n'
        '[alerts]\nrule_files = ["rules/shop.toml"]\n' + config_extra,
        encoding="utf-8",
    )
    return tmp_path


@pytest.mark.slow
@pytest.mark.parametrize(
    "command", [["up", "--no-scan", "--no-monitor", "--port", "0"], ["serve", "--port", "0"]]
)
def test_up_and_serve_refuse_a_broken_rule_with_exit_2_and_no_traceback(
    tmp_path: Path, command: list[str]
) -> None:
    root = project(tmp_path, BROKEN_RULES)
    result = run_secperf(*command, cwd=root, timeout=60)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert (
        "rules/shop.toml: rules[1] ('CpuMedian'): aggregation: unknown aggregation 'median'"
        in result.stderr
    )
    assert "is up" not in result.stdout and "serving on" not in result.stdout
