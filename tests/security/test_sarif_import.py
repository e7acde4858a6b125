"""SARIF 2.1.0 import: gitleaks, Trivy, CodeQL and Semgrep logs, and malformed ones."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from secperf.model import Severity
from secperf.security.sarif_import import (
    SarifError,
    load_sarif,
    parse_sarif,
    read_sarif,
)
from secperf.security.scanners.interface import FileResult, SourceFile
from secperf.security.scanners.sarif import SarifScanner, skipped_summary
from support.paths import FIXTURES as FIXTURES_DIR
from support.paths import SARIF_SCHEMA

FIXTURES = FIXTURES_DIR / "sarif"
SCHEMA = SARIF_SCHEMA
PLANTED_SECRETS = (
    "AKIAQX3EXAMPLE7TOKEN",
    "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
    "tok_9fQ2xL7vB3nM8kR1",
)


def fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return data


def scan(name: str, root: Path | None = None) -> list[Any]:
    return parse_sarif(fixture(name), root or Path("/nonexistent-root"), f"reports/{name}")


@pytest.mark.parametrize("name", sorted(p.name for p in FIXTURES.glob("*.sarif")))
def test_fixtures_are_valid_sarif(name: str) -> None:
    if not SCHEMA.is_file():
        pytest.skip(f"the official SARIF schema is not at {SCHEMA}")
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(SCHEMA.read_text())
    errors = sorted(
        jsonschema.Draft7Validator(schema).iter_errors(fixture(name)), key=lambda e: list(e.path)
    )
    assert [f"{list(e.absolute_path)}: {e.message}" for e in errors] == []


def test_gitleaks_results_are_secrets_without_their_values() -> None:
    findings = scan("gitleaks.sarif")
    assert [(f.rule_id, f.path, f.line) for f in findings] == [
        ("gitleaks/generic-api-key", "app/client.py", 3),
        ("gitleaks/aws-access-token", "config/settings.py", 12),
    ]
    for finding in findings:
        assert finding.category == "secret" and finding.scanner == "sarif"
        assert finding.snippet is None
        assert finding.severity is Severity.MEDIUM  # level defaults to warning
        assert finding.properties["tool"] == "gitleaks"
        assert finding.properties["tool_version"] == "v8.18.2"
        assert finding.properties["sarif_file"] == "reports/gitleaks.sarif"
    assert (
        findings[0].message
        == "generic-api-key has detected secret 'sk_l****p7dc' for file app/client.py."
    )
    assert findings[1].properties["partial_fingerprints"]["commitSha"].startswith("9f1c0b6d")
    text = repr(findings)
    for secret in PLANTED_SECRETS:
        assert secret not in text


def test_trivy_vulnerabilities_and_secrets() -> None:
    findings = scan("trivy.sarif")
    by_rule = {f.rule_id: f for f in findings}
    assert sorted(by_rule) == [
        "trivy/CVE-2020-14343",
        "trivy/CVE-2023-32681",
        "trivy/aws-access-key-id",
    ]
    requests = by_rule["trivy/CVE-2023-32681"]
    # ROOTPATH is file:/// so the path stays the one Trivy reports relative to its target
    assert (requests.path, requests.line) == ("requirements.txt", 1)
    assert requests.severity is Severity.MEDIUM and requests.properties["security_severity"] == 6.1
    assert requests.confidence == "high"
    assert requests.help_url == "https://avd.aquasec.com/nvd/cve-2023-32681"
    assert requests.category == "imported"
    assert by_rule["trivy/CVE-2020-14343"].severity is Severity.CRITICAL
    secret = by_rule["trivy/aws-access-key-id"]
    assert secret.category == "secret" and secret.snippet is None
    assert secret.severity is Severity.CRITICAL  # security-severity 9.5 outranks the level
    assert "AKIAQX3EXAMPLE7TOKEN" not in repr(findings)
    assert 'AWS_ACCESS_KEY_ID = "AKI****KEN"' in secret.message


def test_codeql_extensions_rule_index_message_strings_and_suppressions() -> None:
    findings = scan("codeql.sarif")
    assert [(f.rule_id, f.line) for f in findings] == [
        ("codeql/py/unused-import", 1),
        ("codeql/py/sql-injection", 42),
        ("codeql/py/reflective-xss", 58),
    ]  # the suppressed unused import on line 2 is not a finding
    unused, sql, xss = findings
    assert unused.message == "Import of 'os' is not used."
    assert unused.path == "app/views.py"  # from artifacts[0] through the location's index
    assert unused.severity is Severity.LOW and unused.cwe is None
    assert sql.severity is Severity.HIGH and sql.cwe == 89
    assert sql.confidence == "high"
    assert sql.help_url == "https://codeql.github.com/codeql-query-help/python/py-sql-injection/"
    assert sql.properties["partial_fingerprints"]["primaryLocationLineHash"] == "e5b1c4b4d5e2a6f1:1"
    assert sql.properties["tags"] == ["security", "external/cwe/cwe-089"]
    assert (sql.column, sql.end_line) == (24, None)
    assert xss.severity is Severity.MEDIUM and xss.cwe == 79
    assert xss.snippet == "return make_response(name)"


def test_file_uris_under_the_root_become_relative(tmp_path: Path) -> None:
    data = fixture("codeql.sarif")
    data["runs"][0]["originalUriBaseIds"]["%SRCROOT%"]["uri"] = tmp_path.as_uri() + "/"
    assert {f.path for f in parse_sarif(data, tmp_path)} == {"app/views.py"}
    location = data["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]
    location.pop("uriBaseId")

    def sql_path() -> str:
        [sql] = [f for f in parse_sarif(data, tmp_path) if f.rule_id == "codeql/py/sql-injection"]
        return sql.path

    location["uri"] = (tmp_path / "app" / "db.py").as_uri()
    assert sql_path() == "app/db.py"
    location["uri"] = "./src/my%20file.py"
    assert sql_path() == "src/my file.py"


def test_semgrep_sarif_from_a_real_run() -> None:
    findings = scan("semgrep.sarif")
    rules = [(f.rule_id, f.path, f.line, f.severity) for f in findings]
    assert rules == [
        ("semgrep-oss/hardcoded-api-token", "app.py", 3, Severity.LOW),
        ("semgrep-oss/python-eval-use", "app.py", 7, Severity.HIGH),
        ("semgrep-oss/subprocess-shell-true", "app.py", 8, Severity.MEDIUM),
        ("semgrep-oss/python-eval-use", "app.py", 9, Severity.HIGH),
        ("semgrep-oss/python-eval-use", "broken.py", 2, Severity.HIGH),
    ]
    by_line = {(f.path, f.line): f for f in findings}
    assert by_line[("app.py", 7)].cwe == 95
    assert by_line[("app.py", 7)].snippet == "    value = eval(user_input)"
    # a rule about tokens keeps no snippet: its matched text may be the secret
    assert by_line[("app.py", 3)].snippet is None
    assert "tok_9fQ2xL7vB3nM8kR1" not in repr(findings)


def test_fingerprints_survive_line_moves_and_tell_duplicates_apart() -> None:
    data = fixture("codeql.sarif")
    moved = copy.deepcopy(data)
    for result in moved["runs"][0]["results"]:
        result["locations"][0]["physicalLocation"]["region"]["startLine"] += 30
    before = {f.rule_id: f.fingerprint for f in parse_sarif(data)}
    after = {f.rule_id: f.fingerprint for f in parse_sarif(moved)}
    assert before == after
    twice = copy.deepcopy(data)
    twice["runs"][0]["results"].append(copy.deepcopy(twice["runs"][0]["results"][1]))
    twice["runs"][0]["results"][-1]["locations"][0]["physicalLocation"]["region"]["startLine"] = 90
    prints = [f.fingerprint for f in parse_sarif(twice) if f.rule_id == "codeql/py/reflective-xss"]
    assert len(prints) == 2 and len(set(prints)) == 2


def test_results_without_rule_metadata_use_the_level_and_the_sarif_path() -> None:
    data = {
        "version": "2.1.0",
        "runs": [
            {
                "tool": {"driver": {"name": "Bandit", "version": "1.7.8"}},
                "results": [
                    {"ruleId": "B602", "level": "error", "message": {"text": "shell=True"}},
                    {"ruleId": "B101", "level": "none", "message": {"text": "assert used"}},
                    {"ruleId": "B999", "kind": "pass", "message": {"text": "fine"}},
                ],
            }
        ],
    }
    findings = parse_sarif(data, None, "out/bandit.sarif")
    assert [(f.rule_id, f.severity, f.path) for f in findings] == [
        ("bandit/B101", Severity.INFO, "out/bandit.sarif"),
        ("bandit/B602", Severity.HIGH, "out/bandit.sarif"),
    ]


MALFORMED: list[tuple[Any, str]] = [
    ([], "$: expected an object"),
    ({"version": "2.0.0", "runs": []}, "version: expected SARIF version '2.1.0'"),
    ({"version": "2.1.0"}, "runs: expected an array, got null"),
    ({"version": "2.1.0", "runs": [{}]}, "runs[0].tool: expected an object"),
    ({"version": "2.1.0", "runs": [{"tool": {"driver": {}}}]}, "runs[0].tool.driver.name"),
    (
        {"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "x"}}, "results": {}}]},
        "runs[0].results: expected an array, got an object",
    ),
    (
        {
            "version": "2.1.0",
            "runs": [
                {
                    "tool": {"driver": {"name": "x"}},
                    "results": [
                        {"ruleId": "a", "message": {"text": "ok"}},
                        {"ruleId": "a", "message": {"text": "ok"}},
                        {"ruleId": "a", "message": {"text": "ok"}},
                        {"ruleId": "a", "message": {"text": "m"}, "locations": {"uri": "a.py"}},
                    ],
                }
            ],
        },
        "runs[0].results[3].locations: expected an array",
    ),
    (
        {
            "version": "2.1.0",
            "runs": [
                {"tool": {"driver": {"name": "x"}}, "results": [{"ruleId": "a", "message": {}}]}
            ],
        },
        "runs[0].results[0].message: a result message needs 'text'",
    ),
    (
        {
            "version": "2.1.0",
            "runs": [
                {
                    "tool": {"driver": {"name": "x", "rules": [{"id": "r"}]}},
                    "results": [{"ruleIndex": 4, "message": {"text": "m"}}],
                }
            ],
        },
        "runs[0].results[0].ruleIndex: rule index 4 is out of range",
    ),
    (
        {
            "version": "2.1.0",
            "runs": [
                {
                    "tool": {"driver": {"name": "x"}},
                    "results": [
                        {
                            "message": {"text": "m"},
                            "locations": [{"physicalLocation": {"region": {"startLine": "12"}}}],
                        }
                    ],
                }
            ],
        },
        "runs[0].results[0].locations[0].physicalLocation.region.startLine: expected an integer",
    ),
    (
        {
            "version": "2.1.0",
            "runs": [
                {
                    "tool": {"driver": {"name": "x"}},
                    "results": [{"level": "fatal", "message": {"text": "m"}}],
                }
            ],
        },
        "runs[0].results[0].level: unknown level 'fatal'",
    ),
]


@pytest.mark.parametrize(("data", "problem"), MALFORMED)
def test_malformed_sarif_names_the_json_path(data: Any, problem: str) -> None:
    with pytest.raises(SarifError) as info:
        parse_sarif(data)
    assert problem in str(info.value)


def test_scanner_globs_and_skips(tmp_path: Path) -> None:
    scanner = SarifScanner()
    assert scanner.applies_to("reports/trivy.sarif")
    assert scanner.applies_to("codeql-results.sarif.json")
    assert not scanner.applies_to("data.json")
    custom = SarifScanner(["reports/*.json"])
    assert custom.applies_to("reports/scan.json") and not custom.applies_to("other/scan.json")
    assert custom.config_hash() != scanner.config_hash()
    assert SarifScanner([]).unavailable_reason() == "no SARIF file globs configured"

    good = SourceFile("reports/codeql.sarif", (FIXTURES / "codeql.sarif").read_bytes())
    result = scanner.scan_file(tmp_path, good)
    assert result.skipped is None and len(result.findings) == 3
    broken = scanner.scan_file(
        tmp_path, SourceFile("reports/x.sarif", b'{"version": "2.1.0", "runs": [')
    )
    assert broken.skipped == (
        "malformed SARIF in reports/x.sarif: invalid JSON at line 1 column 31: Expecting value"
    )
    binary = scanner.scan_file(tmp_path, SourceFile("reports/y.sarif", b"\xff\xfe\x00"))
    assert binary.skipped and "reports/y.sarif: not UTF-8" in binary.skipped
    shape = scanner.scan_file(
        tmp_path, SourceFile("r.sarif", b'{"version": "2.1.0", "runs": [{"tool": 1}]}')
    )
    assert (
        shape.skipped
        == "malformed SARIF in r.sarif: runs[0].tool: expected an object, got a number"
    )


def test_load_sarif_accepts_a_byte_order_mark() -> None:
    content = b"\xef\xbb\xbf" + (FIXTURES / "gitleaks.sarif").read_bytes()
    assert len(load_sarif(content)) == 2


# ----------------------------------------------------------------- nonsense locations


def _result(uri: str | None = "app/ok.py", index: int | None = None, **region: int) -> Any:
    artifact: dict[str, Any] = {}
    if uri is not None:
        artifact["uri"] = uri
    if index is not None:
        artifact["index"] = index
    physical: dict[str, Any] = {"artifactLocation": artifact}
    if region:
        physical["region"] = region
    return {"ruleId": "r", "message": {"text": "m"}, "locations": [{"physicalLocation": physical}]}


def _log(*results: Any, **run: Any) -> dict[str, Any]:
    return {
        "version": "2.1.0",
        "runs": [{"tool": {"driver": {"name": "tool"}}, "results": list(results), **run}],
    }


def test_results_with_nonsense_locations_are_skipped_naming_the_field(tmp_path: Path) -> None:
    data = _log(
        _result(startLine=3),
        _result("../../../../etc/passwd", startLine=1),
        _result(startLine=-5),
        _result(startLine=2, startColumn=0),
        _result(startLine=9, endLine=4),
        _result("file:///etc/passwd"),
        _result("https://example.com/app/x.py"),
        _result("/etc/shadow"),
        _result("src/../../outside.py"),
        _result(None, index=0),
        _result("app/a\x00b.py"),
        _result(startLine=4, endColumn=0),
        _result("app/../app/./fine.py", startLine=1, endLine=1, startColumn=1),
        artifacts=[{"location": {"uri": "../up.py"}}],
    )
    imported = read_sarif(data, tmp_path, "reports/tool.sarif")
    assert [(f.path, f.line) for f in imported.findings] == [("app/fine.py", 1), ("app/ok.py", 3)]
    loc = "locations[0].physicalLocation"
    assert imported.skipped == [
        f"runs[0].results[1].{loc}.artifactLocation.uri: '../../../../etc/passwd' is outside"
        " the project root",
        f"runs[0].results[2].{loc}.region.startLine: -5 is not a line number",
        f"runs[0].results[3].{loc}.region.startColumn: 0 is not a column number",
        f"runs[0].results[4].{loc}.region.endLine: 4 is before startLine 9",
        f"runs[0].results[5].{loc}.artifactLocation.uri: 'file:///etc/passwd' is outside"
        " the project root",
        f"runs[0].results[6].{loc}.artifactLocation.uri: 'https://example.com/app/x.py' is a"
        " https: URI, not a file in the project",
        f"runs[0].results[7].{loc}.artifactLocation.uri: '/etc/shadow' is outside the project root",
        f"runs[0].results[8].{loc}.artifactLocation.uri: 'src/../../outside.py' is outside"
        " the project root",
        "runs[0].artifacts[0].location.uri: '../up.py' is outside the project root",
        f"runs[0].results[10].{loc}.artifactLocation.uri: 'app/a\\x00b.py' holds control"
        " characters",
        f"runs[0].results[11].{loc}.region.endColumn: 0 is not a column number",
    ]
    # The list-only entry points keep the valid results.
    assert [f.path for f in parse_sarif(data, tmp_path)] == ["app/fine.py", "app/ok.py"]


def test_absolute_locations_without_a_root_need_a_base_of_the_log() -> None:
    data = _log(_result("file:///work/repo/app/x.py", startLine=2), _result("/etc/passwd"))
    imported = read_sarif(data)
    assert imported.findings == []
    assert imported.skipped[0].endswith(
        "'file:///work/repo/app/x.py' is an absolute path and no project root is known"
    )
    # An upload's %SRCROOT% base stands for its project root.
    data["runs"][0]["originalUriBaseIds"] = {"%SRCROOT%": {"uri": "file:///work/repo/"}}
    imported = read_sarif(data)
    assert [(f.path, f.line) for f in imported.findings] == [("app/x.py", 2)]
    assert imported.skipped == [
        "runs[0].results[1].locations[0].physicalLocation.artifactLocation.uri: '/etc/passwd'"
        " is outside the project root"
    ]


def test_the_scanner_keeps_valid_results_and_lists_the_skipped_ones(tmp_path: Path) -> None:
    data = _log(*[_result(startLine=n) for n in (1, -1, -2, -3, -4, -5, -6, 7)])
    result = SarifScanner().scan_file(
        tmp_path, SourceFile("reports/tool.sarif", json.dumps(data).encode())
    )
    assert [f.line for f in result.findings] == [1, 7]
    assert result.skipped is not None
    assert result.skipped.startswith(
        "6 SARIF results skipped: runs[0].results[1].locations[0].physicalLocation.region"
        ".startLine: -1 is not a line number; "
    )
    assert result.skipped.endswith("startLine: -5 is not a line number; and 1 more")
    assert skipped_summary([]) is None


def test_a_log_with_some_results_skipped_was_partly_checked(tmp_path: Path) -> None:
    scanner = SarifScanner()

    def result_of(*results: Any) -> FileResult:
        content = json.dumps(_log(*results)).encode()
        return scanner.scan_file(tmp_path, SourceFile("reports/tool.sarif", content))

    imported = read_sarif(_log(_result(startLine=1), _result("../up.py")), tmp_path)
    assert (len(imported.findings), len(imported.skipped), imported.checked) == (1, 1, 1)
    # One result imported, one skipped: the log was checked, if not whole.
    some = result_of(_result(startLine=1), _result("../up.py"))
    assert [f.line for f in some.findings] == [1]
    assert some.skipped is not None and some.skipped.startswith("1 SARIF result skipped: ")
    assert some.partial is True
    # A result read whole that is no finding (a pass) was checked too.
    passed = dict(_result(startLine=2), kind="pass")
    assert result_of(passed, _result("../up.py")).partial is True
    # Every result skipped: nothing in the log was checked.
    none = result_of(_result("../up.py"), _result(startLine=-1))
    assert none.findings == [] and none.skipped is not None and none.partial is False
    # Nothing skipped: no skip to qualify.
    whole = result_of(_result(startLine=1))
    assert whole.skipped is None and whole.partial is False


def test_messages_and_snippets_of_any_tool_are_redacted() -> None:
    token = "ghp_Zq8Xn4Lm2Wv7Rt5Yp1Kb9Hd3Gf6Jc0Ns8Ue2"
    stripe = "sk_live_9Fq2Lx7Vb3Nm8Kr1Tz4Wp6Yd"
    result = _result(startLine=4)
    result["message"] = {"text": "Data logged in clear text: {0}", "arguments": [stripe]}
    result["locations"][0]["physicalLocation"]["region"]["snippet"] = {
        "text": f'requests.get(u, headers={{"Authorization": "token {token}"}}, verify=False)'
    }
    result["partialFingerprints"] = {"primaryLocationLineHash": "abc:1"}
    plain = _log(result)
    plain["runs"][0]["tool"] = {"driver": {"name": "LogAudit"}}
    [finding] = parse_sarif(plain)
    assert finding.category == "imported"
    assert finding.message == "Data logged in clear text: sk_l****p6Yd"
    assert finding.snippet is not None and "token ghp_****8Ue2" in finding.snippet
    assert token not in repr(finding) and stripe not in repr(finding)
    # A non-secret tool's line hash stays; a secret scanner's may hash the secret.
    assert finding.properties["partial_fingerprints"] == {"primaryLocationLineHash": "abc:1"}
    result["partialFingerprints"] = {"commitSha": "9f1c0b6d", "secretHash": "e3b0c442"}
    leaky = _log(result)
    leaky["runs"][0]["tool"] = {"driver": {"name": "gitleaks"}}
    [secret] = parse_sarif(leaky)
    assert secret.category == "secret" and secret.snippet is None
    assert secret.properties["partial_fingerprints"] == {"commitSha": "9f1c0b6d"}
