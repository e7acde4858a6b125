"""``[[alerts.rules]]`` in the config: the rule-file form, kinds included, checked on load."""

from __future__ import annotations

from pathlib import Path

import pytest

from secperf.alerts.rule_loading import rule_from_dict, rules_from_config
from secperf.config import ConfigError, load_config


def write_config(tmp_path: Path, rules: str) -> Path:
    path = tmp_path / "secperf.toml"
    path.write_text("[alerts]\ndefault_rules = false\n\n" + rules, encoding="utf-8")
    return path


def config_error(tmp_path: Path, rules: str) -> str:
    with pytest.raises(ConfigError) as caught:
        load_config(write_config(tmp_path, rules))
    return str(caught.value)


CORRELATION_RULES = """
[[alerts.rules]]
name = "ScansSlowOrders"
kind = "scan_impact"
metric = "response_time_ms"
matchers = ['quantile="0.95"']
min_effect_pct = 30
max_q = 0.05
direction = "up"
lookback = "2h"
lag = "5s"
severity = "high"

[[alerts.rules]]
name = "OddCpu"
kind = "unexplained_anomaly"
metric = "cpu_percent"
window = "30m"
k = 6
recent = "2m"
min_points = 40
explained_by = ["load_1m"]
"""


def test_correlation_kinds_load_from_the_config_as_from_a_rule_file(tmp_path: Path) -> None:
    loaded = load_config(write_config(tmp_path, CORRELATION_RULES))
    rules = {r.name: r for r in rules_from_config(loaded.config.alerts.rules, defaults=False)}
    impact = rules["ScansSlowOrders"]
    assert impact.kind == "scan_impact"
    assert impact.params == {
        "min_effect_pct": 30.0,
        "max_q": 0.05,
        "direction": "up",
        "lookback": 7_200_000,
        "recompute_every": 600_000,  # the kind's default
        "lag": 5_000,
        "min_scans": 1.0,
    }
    anomaly = rules["OddCpu"]
    assert anomaly.kind == "unexplained_anomaly"
    assert anomaly.params["k"] == 6.0 and anomaly.params["recent"] == 120_000
    assert anomaly.params["explained_by"] == ("load_1m",)
    # The same table read as a rule file's rule gives the same rule.
    assert impact == rule_from_dict(
        {
            "name": "ScansSlowOrders",
            "kind": "scan_impact",
            "metric": "response_time_ms",
            "matchers": ['quantile="0.95"'],
            "min_effect_pct": 30,
            "max_q": 0.05,
            "direction": "up",
            "lookback": "2h",
            "lag": "5s",
            "severity": "high",
        }
    )


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        # The range checks of a rule file, now on load.
        (
            'metric = "cpu_percent"\nthreshold = 1e9',
            "secperf.toml: alerts.rules[0].threshold: 1e+09 is outside the values cpu_percent "
            "can take (0 to 100, percent)",
        ),
        (
            'metric = "error_rate"\nthreshold = 0.05\nresolve_threshold = 3',
            "alerts.rules[0].resolve_threshold: 3 is outside the values error_rate can take",
        ),
        (
            'kind = "scan_impact"\nmetric = "cpu_percent"\nmax_q = 2',
            "alerts.rules[0].max_q: must be between 0 and 1 (exclusive), got 2",
        ),
        (
            'kind = "scan_impact"\nmetric = "cpu_percent"\nmin_effect_pct = 30\n'
            "resolve_threshold = 40",
            "alerts.rules[0].resolve_threshold: must be <= min_effect_pct (30)",
        ),
        (
            'kind = "unexplained_anomaly"\nmetric = "cpu_percent"\nwindow = "1m"\nrecent = "5m"',
            "alerts.rules[0].recent: must be shorter than window (1m), got 5m",
        ),
        (
            'kind = "unexplained_anomaly"\nmetric = "cpu_percent"\nmin_points = 1.5',
            "alerts.rules[0].min_points: must be a whole number of at least 2, got 1.5",
        ),
        (
            'metric = "cpu_percent"\nthreshold = 50\nmin_effect_pct = 20',
            "alerts.rules[0].min_effect_pct: not a parameter of kind 'threshold'",
        ),
        (
            'kind = "scan_impact"\nmetric = "cpu_percent"\ndirection = "sideways"',
            "alerts.rules[0].direction:",
        ),
        (
            'kind = "sometimes"\nmetric = "cpu_percent"\nthreshold = 1',
            "alerts.rules[0].kind:",
        ),
    ],
)
def test_config_rules_get_the_rule_file_checks_on_load(
    tmp_path: Path, rule: str, expected: str
) -> None:
    message = config_error(tmp_path, f'[[alerts.rules]]\nname = "R"\n{rule}\n')
    assert expected in message
