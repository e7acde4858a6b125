"""The effective alert rules from the command line: `alerts rules check` without a file,
`config check` over the rule files, and `up` / `serve` refusing a broken rule cleanly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from support.cli import run_cli, run_secperf

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


# --------------------------------------------------------------------------- rules check


def effective_project(tmp_path: Path) -> Path:
    """A config that replaces a default rule, adds a correlation rule, and names a rule
    file holding one good and one broken rule."""
    return project(
        tmp_path,
        BROKEN_RULES,
        "\n[[alerts.rules]]\n"
        'name = "HostHighCpu"\nmetric = "cpu_percent"\nmatchers = [\'cpu=""\']\n'
        'aggregation = "avg"\nwindow = "2m"\nthreshold = 95\n\n'
        "[[alerts.rules]]\n"
        'name = "ScansSlowOrders"\nkind = "scan_impact"\nmetric = "response_time_ms"\n'
        "min_effect_pct = 25\n",
    )


def test_rules_check_without_a_file_lists_the_effective_rules_with_their_source(
    tmp_path: Path,
) -> None:
    root = effective_project(tmp_path)
    result = run_cli(["alerts", "rules", "check"], cwd=root)
    assert result.returncode == 2
    out = result.stdout
    header = next(line for line in out.splitlines() if "rule" in line and "source" in line)
    assert "status" in header
    # Each rule with where it comes from: default, a config key, a rule file's rule.
    assert rows_with(out, "HostHighMemory")[0].count("default") == 1
    assert "default" in rows_with(out, "HostHighCpu")[0]
    status = column_text(out, "status")
    assert squash("replaced by secperf.toml: alerts.rules[0]") in column_text(out, "rule")
    assert squash("replaced") in status
    assert squash("secperf.toml: alerts.rules[0]") in column_text(out, "source")
    assert squash("scan_impact on response_time_ms: +25 % during scans") in column_text(out, "rule")
    assert squash("rules/shop.toml: rules[0]") in column_text(out, "source")
    # Rule files are named relative to the working directory, as the config is.
    assert squash(str(root)) not in column_text(out, "source")
    # A broken rule's problem is under its name, whole; its status says just that.
    assert squash("CpuMedian aggregation: unknown aggregation 'median'") in column_text(out, "rule")
    assert status.endswith("invalid") and "aggregation" not in status
    assert "1 problem(s);" in result.stderr

    as_json = run_cli(["alerts", "rules", "check", "--json"], cwd=root)
    assert as_json.returncode == 2
    data = json.loads(as_json.stdout)
    assert data["valid"] is False
    by_source = {(r["name"], r["source"]): r for r in data["rules"]}
    assert by_source[("HostHighCpu", "default")]["status"] == "replaced"
    assert by_source[("HostHighCpu", "secperf.toml: alerts.rules[0]")]["status"] == "active"
    impact = by_source[("ScansSlowOrders", "secperf.toml: alerts.rules[1]")]
    assert (impact["kind"], impact["status"]) == ("scan_impact", "active")
    shop = str(root / "rules" / "shop.toml")
    assert by_source[("OrdersSlow", f"{shop}: rules[0]")]["status"] == "active"
    broken = by_source[("CpuMedian", f"{shop}: rules[1]")]
    assert broken["status"] == "invalid" and "unknown aggregation" in broken["problem"]


def test_rules_check_without_a_file_passes_on_valid_rules(tmp_path: Path) -> None:
    root = project(tmp_path, GOOD_RULES)
    result = run_cli(["alerts", "rules", "check", "--json"], cwd=root)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["valid"] is True
    assert {r["status"] for r in data["rules"]} == {"active"}
    plain = run_cli(["alerts", "rules", "check"], cwd=root)
    assert plain.returncode == 0
    assert plain.stdout.strip().splitlines()[-1].endswith("rule(s) in effect, all valid")


def test_config_check_validates_the_rule_files_it_names(tmp_path: Path) -> None:
    root = project(tmp_path, BROKEN_RULES)
    result = run_cli(["config", "check"], cwd=root)
    assert result.returncode == 2
    assert "configuration is valid" not in result.stdout
    assert (
        "rules/shop.toml: rules[1] ('CpuMedian'): aggregation: unknown aggregation 'median'"
        in result.stderr
    )
    (root / "rules" / "shop.toml").write_text(GOOD_RULES, encoding="utf-8")
    fixed = run_cli(["config", "check"], cwd=root)
    assert fixed.returncode == 0, fixed.stderr
    assert "configuration is valid" in fixed.stdout


def test_config_check_names_a_broken_config_rule_by_index(tmp_path: Path) -> None:
    root = project(
        tmp_path,
        GOOD_RULES,
        '\n[[alerts.rules]]\nname = "Cpu"\nmetric = "cpu_percent"\nthreshold = 1e9\n',
    )
    result = run_cli(["config", "check"], cwd=root)
    assert result.returncode == 2
    assert "secperf.toml: alerts.rules[0].threshold: 1e+09 is outside the values" in (result.stderr)
    # The same name in the config and in a rule file is one rule too many.
    (root / "secperf.toml").write_text(
        (root / "secperf.toml").read_text().replace("1e9", "90").replace('"Cpu"', '"OrdersSlow"')
    )
    twice = run_cli(["config", "check"], cwd=root)
    assert twice.returncode == 2
    assert "rules/shop.toml: rules[0] ('OrdersSlow'): the name is used twice" in twice.stderr


# --------------------------------------------------------------------------- helpers


def rows_with(out: str, text: str) -> list[str]:
    return [line for line in out.splitlines() if text in line]


def squash(text: str) -> str:
    """``text`` without white space: a folded cell may break lines where a space was."""
    return "".join(text.split())


def column_text(out: str, header: str) -> str:
    """Everything one column of a Rich table shows, its folded fragments joined (squashed)."""
    lines = out.splitlines()
    head = next(line for line in lines if "┃" in line and f" {header} " in line)
    cells = [c.strip() for c in head.split("┃")]
    index = cells.index(header)
    parts = []
    for line in lines:
        if line.startswith("│"):
            fields = line.split("│")
            if index < len(fields):
                parts.append(squash(fields[index]))
    return "".join(parts)
