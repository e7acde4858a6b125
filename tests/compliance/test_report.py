"""The compliance report over a store filled by real scans of the demo sample project.

Two real ``secperf scan`` runs of the sample (bandit, secrets, deps on its
planted weaknesses, fake credentials and old pins), one fix between them,
triage decisions and gate runs through the store API, and stored latency
samples for the objectives; then ``secperf report`` in each format, its
``--verify``, and ``GET /api/v1/report``.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
import zlib
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from secperf.bus.memory import AsyncEventBus
from secperf.compliance.digest import data_sha256, verify_text
from secperf.compliance.mapping import CWE_TOP25_2024, OWASP_2021, owasp_category, top25_rank
from secperf.config.sections.report import ReportConfig
from secperf.demo.sample import _fake_values, write_osv_records, write_sample_project
from secperf.model import ConditionStatus, GateCondition, GateResult, GateVerdict, Sample
from secperf.security.series import is_violation
from secperf.security.triage import TriageState
from secperf.store import Store
from secperf.web.app import create_app
from secperf.web.routes_report import ReportSettings
from support.cli import clean_env, run_cli

MINUTE = 60_000
DAY = 86_400_000

CONFIG = """\
[store]
url = "sqlite:///{store}"

[scan]
scanners = ["bandit", "secrets", "deps"]
respect_gitignore = false

[scan.deps]
osv_db = "{osv}"

[report]
remediation_sla = {{critical = "1ms", high = "30d", medium = "90d", low = "1ms"}}

[[report.objectives]]
metric = "response_time_ms"
matchers = ['job="api"', 'quantile="0.95"']
max = 250
target_pct = 99

[[report.objectives]]
name = "p95 under a second"
metric = "response_time_ms"
matchers = ['job="api"', 'quantile="0.95"']
max = 1000
target_pct = 99
"""


@dataclass(frozen=True)
class Filled:
    """The project, its store and what the fixture planted."""

    root: Path
    store_url: str
    accepted: str  # fingerprint of an accepted risk (in force)
    expired: str  # fingerprint of an acceptance that expired half an hour ago
    false_positive: str
    fixed: str  # the fingerprint the second scan no longer found
    filled_ms: int  # when the fixture ended: no scan, gate run or sample after it


def _findings(root: Path) -> list[dict[str, Any]]:
    listed = run_cli(["findings", "list", "--json", "--limit", "1000"], cwd=root)
    assert listed.returncode == 0, listed.stderr
    found: list[dict[str, Any]] = json.loads(listed.stdout)
    return found


@pytest.fixture(scope="module")
def filled(tmp_path_factory: pytest.TempPathFactory) -> Filled:
    base = tmp_path_factory.mktemp("report")
    project = write_sample_project(base / "shop")
    osv = write_osv_records(base / "osv")
    store_path = base / "store.db"
    root = project.root
    (root / "secperf.toml").write_text(CONFIG.format(store=store_path, osv=osv))
    first = run_cli(["scan", "."], cwd=root)
    assert first.returncode in (0, 1), first.stderr
    # Fix one planted weakness (the assert in security.py, bandit B101), then scan again.
    before = {f["fingerprint"]: f for f in _findings(root)}
    security = root / "shop" / "security.py"
    text = security.read_text()
    planted = '    assert user.get("is_admin"), "admins only"'
    assert planted in text
    fixed_code = '    if not user.get("is_admin"):\n        raise PermissionError("admins only")'
    security.write_text(text.replace(planted, fixed_code))
    second = run_cli(["scan", "."], cwd=root)
    assert second.returncode in (0, 1), second.stderr
    after = {f["fingerprint"]: f for f in _findings(root)}
    gone = sorted(set(before) - set(after))
    assert gone, "the fix removed no finding"
    url = f"sqlite:///{store_path}"
    now = int(time.time() * 1000)
    by_rule: dict[str, str] = {}
    for fp, f in sorted(after.items()):
        by_rule.setdefault(f["rule_id"], fp)
    accepted, expired, false_positive = by_rule["B608"], by_rule["B311"], by_rule["B104"]
    with Store.open(url) as store:
        store.set_triage(
            accepted, "accepted_risk", "alice", "parameterised in the caller", now + 30 * DAY
        )
        store.set_triage(
            expired,
            "accepted_risk",
            "bob",
            "only for the demo",
            now - 30 * MINUTE,
            now_ms=now - 3 * DAY,
        )
        store.set_triage(false_positive, "false_positive", "carol", "binds in a container")
        target = str(root.resolve())
        store.add_gate_run(
            GateResult("gate-pass", target, now - 20 * MINUTE, now - 19 * MINUTE, GateVerdict.PASS)
        )
        for run_id in ("gate-block-1", "gate-block-2"):
            store.add_gate_run(
                GateResult(
                    run_id,
                    target,
                    now - 10 * MINUTE,
                    now - 9 * MINUTE,
                    GateVerdict.BLOCK,
                    (
                        GateCondition("new_findings", "security", ConditionStatus.BLOCK, 3, 0),
                        GateCondition("coverage", "security", ConditionStatus.PASS, 100.0, 80.0),
                    ),
                )
            )
        # 100 one-minute samples of p95 latency: 90 under 250 ms, 10 over it.
        start = now - now % MINUTE - 100 * MINUTE
        store.write_samples(
            [
                Sample(
                    "response_time_ms",
                    {"job": "api", "quantile": "0.95"},
                    start + i * MINUTE,
                    300.0 if i % 10 == 0 else 120.0,
                )
                for i in range(100)
            ]
        )
    return Filled(root, url, accepted, expired, false_positive, gone[0], now)


def _report(filled: Filled, tmp: Path, fmt: str, *extra: str) -> Path:
    out = tmp / f"report.{fmt}"
    done = run_cli(["report", "--since", "2h", "-f", fmt, "-o", str(out), *extra], cwd=filled.root)
    assert done.returncode == 0, done.stderr
    return out


@pytest.fixture(scope="module")
def report_data(filled: Filled, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The JSON report's data over the last two hours (written once for the module)."""
    document = json.loads(_report(filled, tmp_path_factory.mktemp("json"), "json").read_text())
    assert document["sha256"] == data_sha256(document["data"])
    data: dict[str, Any] = document["data"]
    return data


# --------------------------------------------------------------------------- mapping


def test_owasp_and_top25_tables_follow_their_sources() -> None:
    def owasp(cwe: int) -> str | None:
        category = owasp_category(cwe)
        return None if category is None else category.id

    injection = owasp_category(78)
    assert injection is not None and injection.label == "A03:2021 - Injection"
    expected: dict[int, str | None] = {89: "A03", 79: "A03", 798: "A07", 259: "A07", 22: "A01"}
    expected |= {327: "A02", 502: "A08", 1104: "A06", 918: "A10", 703: None}
    assert {cwe: owasp(cwe) for cwe in expected} == expected
    assert owasp_category(None) is None
    # The "CWEs Mapped" count of each category page of the OWASP Top 10 (2021).
    assert [len(c.cwes) for c in OWASP_2021] == [34, 29, 33, 40, 20, 3, 22, 10, 4, 1]
    every = [cwe for c in OWASP_2021 for cwe in c.cwes]
    assert len(every) == len(set(every))
    assert [rank for rank, _, _ in CWE_TOP25_2024] == list(range(1, 26))
    assert top25_rank(79) == 1 and top25_rank(798) == 22 and top25_rank(703) is None


# --------------------------------------------------------------------------- content


def test_json_counts_equal_findings_list(filled: Filled, report_data: dict[str, Any]) -> None:
    data = report_data
    listed = _findings(filled.root)
    findings = data["findings"]
    assert findings["findings"] == len(listed) == len(findings["items"])
    states = Counter(f["state"] for f in listed)
    assert findings["false_positives"] == states["false_positive"] == 1
    assert findings["accepted_risks"] == states["accepted_risk"] == 1  # the expired one is open
    violations = Counter(f["severity"] for f in listed if is_violation(TriageState(f["state"])))
    assert {k: v for k, v in findings["by_severity"].items() if v} == dict(violations)
    assert {i["fingerprint"]: i["state"] for i in findings["items"]} == {
        f["fingerprint"]: f["state"] for f in listed
    }
    assert data["has_data"] is True
    (cadence,) = data["cadence"]
    assert cadence["scans"] == 2 and cadence["days_without_scan"] == 0
    assert cadence["coverage_last_percent"] == 100.0


def test_owasp_mapping_and_unmapped_cwes_in_the_report(
    filled: Filled, report_data: dict[str, Any]
) -> None:
    data = report_data
    items = data["findings"]["items"]
    by_rule = {i["rule_id"]: i for i in items}
    assert by_rule["B602"]["cwe"] == 78 and by_rule["B602"]["owasp"] == "A03"
    assert by_rule["aws-access-key"]["cwe"] == 798 and by_rule["aws-access-key"]["owasp"] == "A07"
    mapping = data["mapping"]
    a03 = next(c for c in mapping["owasp"] if c["id"] == "A03")
    assert {78, 89} <= set(a03["cwes"])
    open_items = [i for i in items if i["state"] not in ("false_positive", "accepted_risk")]
    assert a03["violations"] == sum(1 for i in open_items if i["owasp"] == "A03")
    unmapped = {u["cwe"] for u in mapping["unmapped"]}
    assert unmapped and all(owasp_category(c) is None for c in unmapped)
    rank7 = next(t for t in mapping["cwe_top25"] if t["rank"] == 7)
    assert rank7["cwe"] == 78 and rank7["violations"] == sum(
        1 for i in open_items if i["cwe"] == 78
    )


def test_sla_breaches_triage_gates_objectives_and_cost(
    filled: Filled, report_data: dict[str, Any]
) -> None:
    data = report_data
    breaches = data["remediation"]["breaches"]
    fixed = [b for b in breaches if b["status"] == "fixed late"]
    assert [b["fingerprint"] for b in fixed] == [filled.fixed]  # low: 1 ms allowed
    open_late = {b["fingerprint"] for b in breaches if b["status"] == "open past SLA"}
    critical = {
        i["fingerprint"]
        for i in data["findings"]["items"]
        if i["severity"] in ("critical", "low") and i["state"] == "open"
    }
    assert open_late == critical and critical
    assert data["remediation"]["per_severity"]["low"]["fixed"] == 1
    triage = data["triage"]
    accepted = {a["fingerprint"]: a for a in triage["accepted_risks"]}
    assert (
        accepted[filled.accepted]["owner"] == "alice" and not accepted[filled.accepted]["expired"]
    )
    assert accepted[filled.accepted]["reason"] == "parameterised in the caller"
    assert [a["fingerprint"] for a in triage["expired_in_period"]] == [filled.expired]
    assert triage["false_positive_rate"] == round(1 / data["findings"]["findings"], 4)
    deps = {(d["package"], d["advisory"]): d for d in data["dependencies"]}
    assert deps[("pyyaml", "GHSA-8q59-q68h-6hv4")]["fixed_versions"] == ["5.4"]
    assert {s["state"] for s in data["secrets"]} == {"open"}
    gates = data["gates"]
    assert (gates["runs"], gates["pass"], gates["block"]) == (3, 1, 2)
    assert gates["block_reasons"] == [{"condition": "new_findings", "runs": 2}]
    first, second = data["objectives"]
    assert first["attainment_pct"] == 90.0 and first["met"] is False
    assert second["attainment_pct"] == 100.0 and second["met"] is True
    cost = data["cost"]
    assert len(cost["scans"]) == 2 and all(s["cpu_s"] is not None for s in cost["scans"])
    assert {s["budget"] for s in cost["scans"]} <= {"not recorded", "on", "off", "not_configured"}
    assert set(data["evidence"]["scan_ids"]) >= {s["scan_id"] for s in cost["scans"]}
    assert set(data["evidence"]["scanner_versions"]) == {"bandit", "secrets", "deps"}
    assert re.fullmatch(r"[0-9a-f]{64}", data["evidence"]["config_sha256"])


# --------------------------------------------------------------------------- formats


def test_hash_verifies_and_fails_after_an_edit(filled: Filled, tmp_path: Path) -> None:
    for fmt in ("json", "html"):
        path = _report(filled, tmp_path, fmt)
        ok = run_cli(["report", "--verify", str(path)], cwd=filled.root)
        assert ok.returncode == 0, ok.stderr
        text = path.read_text()
        edited = re.sub(
            r'"violations": (\d+)', lambda m: f'"violations": {int(m[1]) + 1}', text, count=1
        )
        assert edited != text
        path.write_text(edited)
        bad = run_cli(["report", "--verify", str(path)], cwd=filled.root)
        assert bad.returncode == 1 and "EDITED" in bad.stderr
        assert not verify_text(edited).ok


def test_html_is_self_contained_without_script(filled: Filled, tmp_path: Path) -> None:
    text = _report(filled, tmp_path, "html").read_text()
    assert text.startswith("<!DOCTYPE html>")
    assert "<script" not in text.lower()
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", text, re.IGNORECASE)
    assert "<link" not in text.lower() and "@import" not in text
    assert "<svg" in text and "@media print" in text and 'name="viewport"' in text
    assert "A03:2021 - Injection" in text and "open past SLA" in text


def _pdf_pages(pdf: bytes) -> int:
    """Pages of a PDF, counted in its (deflated) object streams and plain objects."""
    pages = len(re.findall(rb"/Type\s*/Page(?![s\w])", pdf))
    for match in re.finditer(rb"stream\r?\n(.*?)\r?\nendstream", pdf, re.DOTALL):
        try:
            pages += len(re.findall(rb"/Type\s*/Page(?![s\w])", zlib.decompress(match.group(1))))
        except zlib.error:
            continue
    return pages


def _pdf_text(pdf: bytes) -> bytes:
    parts = [pdf]
    for match in re.finditer(rb"stream\r?\n(.*?)\r?\nendstream", pdf, re.DOTALL):
        try:
            parts.append(zlib.decompress(match.group(1)))
        except zlib.error:
            continue
    return b"\n".join(parts)


def _require_weasyprint() -> None:
    try:
        import weasyprint  # type: ignore[import-untyped]  # noqa: F401
    except (ImportError, OSError) as exc:
        pytest.skip(f"WeasyPrint cannot load here (install secperf[pdf]): {exc}")


def test_pdf_renders_and_no_secret_value_in_any_format(filled: Filled, tmp_path: Path) -> None:
    _require_weasyprint()
    pdf = _report(filled, tmp_path, "pdf").read_bytes()
    assert pdf.startswith(b"%PDF")
    assert _pdf_pages(pdf) >= 1
    texts = {
        "json": _report(filled, tmp_path, "json").read_bytes(),
        "html": _report(filled, tmp_path, "html").read_bytes(),
        "pdf": _pdf_text(pdf),
    }
    values = _fake_values().values()
    assert values
    settings = (filled.root / "shop" / "settings.py").read_text()
    assert all(v in settings for v in values)  # planted in the scanned project
    for fmt, body in texts.items():
        for value in values:
            assert value.encode() not in body, f"a secret value is in the {fmt} report"
    assert b"AKIA****" in texts["html"] or b"AKI****" in texts["html"]  # previews are shown


def test_empty_period_says_no_data(filled: Filled, tmp_path: Path) -> None:
    args = ["--since", "2001-01-01", "--until", "2001-02-01"]
    html_path = _report(filled, tmp_path, "html", *args)
    assert "No data in this period" in html_path.read_text()
    assert "<svg" not in html_path.read_text()
    data = json.loads(_report(filled, tmp_path, "json", *args).read_text())["data"]
    assert data["has_data"] is False and data["cadence"] == [] and data["gates"]["runs"] == 0


def test_bad_input_exits_2_naming_what(filled: Filled, tmp_path: Path) -> None:
    out = str(tmp_path / "r.html")
    cases = [
        (["report", "-f", "docx", "-o", out], "--format"),
        (["report", "--since", "ninety days", "-o", out], "--since"),
        (["report", "--until", "yesterday-ish", "-o", out], "--until"),
        (["report", "--since", "2030-01-01", "--until", "2029-01-01", "-o", out], "after"),
        (["report", "-o", str(tmp_path / "missing" / "dir" / "r.html")], "missing/dir/r.html"),
        (["report", "-f", "pdf", "-o", "-"], "PDF"),
        (["report", "--verify", str(tmp_path / "nope.html")], "nope.html"),
    ]
    for args, named in cases:
        done = run_cli(args, cwd=filled.root)
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        assert named in done.stderr, (args, done.stderr)
    bad_config = tmp_path / "bad.toml"
    bad_config.write_text('[[report.objectives]]\nmetric = "response_time_ms"\n')
    done = run_cli(["--config", str(bad_config), "report", "-o", out], cwd=filled.root)
    assert done.returncode == 2 and "report.objectives[0]" in done.stderr


def test_api_serves_the_same_report(filled: Filled, report_data: dict[str, Any]) -> None:
    cli = report_data
    with (
        Store.open(filled.store_url) as store,
        TestClient(create_app(store, AsyncEventBus())) as client,
    ):
        got = client.get("/api/v1/report", params={"since": "2h", "format": "json"})
        assert got.status_code == 200, got.text
        assert "attachment" in got.headers["content-disposition"]
        api = got.json()["data"]
        assert api["findings"]["by_severity"] == cli["findings"]["by_severity"]
        assert api["findings"]["findings"] == cli["findings"]["findings"]
        page = client.get("/api/v1/report", params={"since": "2h", "format": "html"})
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert verify_text(page.text).ok
        bad = client.get("/api/v1/report", params={"since": "soon"})
        assert bad.status_code == 422 and "since" in bad.text
        wrong = client.get("/api/v1/report", params={"format": "docx"})
        assert wrong.status_code == 422


def test_report_on_postgresql_counts_as_findings_list(postgres_url: str, tmp_path: Path) -> None:
    project = write_sample_project(tmp_path / "shop")
    osv = write_osv_records(tmp_path / "osv")
    (project.root / "secperf.toml").write_text(
        CONFIG.replace('"sqlite:///{store}"', '"{store}"').format(store=postgres_url, osv=osv)
    )
    scanned = run_cli(["scan", "."], cwd=project.root)
    assert scanned.returncode in (0, 1), scanned.stderr
    out = tmp_path / "r.json"
    done = run_cli(["report", "--since", "1h", "-f", "json", "-o", str(out)], cwd=project.root)
    assert done.returncode == 0, done.stderr
    data = json.loads(out.read_text())["data"]
    listed = _findings(project.root)
    assert data["findings"]["findings"] == len(listed) > 0
    by_severity = Counter(f["severity"] for f in listed)
    assert {k: v for k, v in data["findings"]["by_severity"].items() if v} == dict(by_severity)
    assert data["cadence"][0]["scans"] == 1


# --------------------------------------------------------------------------- scope and period


def _json_report(filled: Filled, tmp: Path, *args: str) -> dict[str, Any]:
    out = tmp / "scoped.json"
    done = run_cli(["report", "-f", "json", "-o", str(out), *args], cwd=filled.root)
    assert done.returncode == 0, done.stderr
    data: dict[str, Any] = json.loads(out.read_text())["data"]
    return data


def test_target_resolves_as_scan_names_it_and_unknown_ones_are_refused(
    filled: Filled, tmp_path: Path
) -> None:
    stored = str(filled.root.resolve())
    every = _json_report(filled, tmp_path, "--since", "2h")["findings"]["findings"]
    assert every > 0
    # "." and a relative path name the project as `secperf scan .` stored it.
    for given in (".", "shop/..", stored):
        data = _json_report(filled, tmp_path, "--since", "2h", "--target", given)
        assert data["scope"]["target"] == stored, given
        assert data["findings"]["findings"] == every, given
    for typo in ("/nope", "shop", stored + "x"):
        done = run_cli(
            ["report", "--since", "2h", "--target", typo, "-f", "json", "-o", "-"], cwd=filled.root
        )
        assert done.returncode == 2, (typo, done.stdout[:200])
        assert repr(typo) in done.stderr and f"known targets: {stored}" in done.stderr
        assert done.stdout == ""
    with (
        Store.open(filled.store_url) as store,
        TestClient(create_app(store, AsyncEventBus())) as client,
    ):
        for typo in ("/nope", "."):
            got = client.get("/api/v1/report", params={"target": typo, "format": "json"})
            assert got.status_code == 404, got.text
            error = got.json()["error"]
            assert error["where"] == "query.target" and stored in error["message"]
        ok = client.get("/api/v1/report", params={"since": "2h", "target": stored})
        assert ok.status_code == 200 and ok.json()["data"]["findings"]["findings"] == every


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="milliseconds")


def test_open_findings_carried_into_a_period_without_scans_are_data(
    filled: Filled, tmp_path: Path
) -> None:
    # From after the last scan, gate run and sample: nothing happened in the period,
    # but the findings the last scan left open are still there at its end.
    since = _iso(filled.filled_ms + 1)
    listed = _findings(filled.root)
    for scope in ((), ("--target", ".")):
        data = _json_report(filled, tmp_path, "--since", since, *scope)
        assert data["has_data"] is True, scope
        assert data["cadence"][0]["scans"] == 0
        assert data["findings"]["findings"] == len(listed) > 0
        secrets = {s["fingerprint"]: s["state"] for s in data["secrets"]}
        expected = {f["fingerprint"]: f["state"] for f in listed if f["category"] == "secret"}
        assert secrets == expected and secrets
        deps = {d["fingerprint"] for d in data["dependencies"]}
        assert deps == {f["fingerprint"] for f in listed if f["category"] == "dependency"}
        assert deps
        # The finding fixed before the period is not among them.
        assert filled.fixed not in secrets and filled.fixed not in deps
    page = _report(filled, tmp_path, "html", "--since", since)
    text = page.read_text()
    assert "No data in this period" not in text and "Secrets" in text


def test_until_in_the_future_stops_at_now(filled: Filled, tmp_path: Path) -> None:
    asked = int(time.time() * 1000) + 400 * DAY
    before = int(time.time() * 1000)
    data = _json_report(filled, tmp_path, "--since", "2h", "--until", _iso(asked))
    after = int(time.time() * 1000)
    period = data["period"]
    assert before <= period["until_ms"] <= after
    assert period["requested_until_ms"] == asked
    # High findings are minutes old (30 days allowed): not past their SLA at any real time.
    per_severity = data["remediation"]["per_severity"]
    assert per_severity["high"]["breaches"] == 0 and per_severity["medium"]["breaches"] == 0
    page = _report(filled, tmp_path, "html", "--since", "2h", "--until", _iso(asked))
    assert "was asked for as the end" in page.read_text()
    future = run_cli(
        ["report", "--since", _iso(asked - DAY), "--until", _iso(asked), "-o", "-"],
        cwd=filled.root,
    )
    assert future.returncode == 2 and "cut at now" in future.stderr


def test_dates_past_year_9999_are_refused(filled: Filled, tmp_path: Path) -> None:
    late = "9999-12-31T23:59:59-14:00"  # 10000-01-01 in UTC
    for option in ("--until", "--since"):
        done = run_cli(["report", option, late, "-o", str(tmp_path / "r.html")], cwd=filled.root)
        assert done.returncode == 2, done.stderr
        assert option in done.stderr and "9999" in done.stderr
    with (
        Store.open(filled.store_url) as store,
        TestClient(create_app(store, AsyncEventBus())) as client,
    ):
        got = client.get("/api/v1/report", params={"since": "1d", "until": late, "format": "html"})
        assert got.status_code == 422, got.text
        assert got.json()["error"]["where"] == "query.until"
        # Early in UTC's last day of 9999: valid, and cut at now.
        capped = client.get("/api/v1/report", params={"until": "9999-12-31T23:59:59+14:00"})
        assert capped.status_code == 200, capped.text


# --------------------------------------------------------------------------- verify


def test_verify_compares_an_html_page_with_its_data(filled: Filled, tmp_path: Path) -> None:
    path = _report(filled, tmp_path, "html")
    ok = run_cli(["report", "--verify", str(path)], cwd=filled.root)
    assert ok.returncode == 0 and "the page is what that data draws" in ok.stdout, ok.stderr
    text = path.read_text()
    # A visible number edited, the embedded data and its hash left alone.
    edited = re.sub(r"open violations<b>\d+</b>", "open violations<b>0</b>", text, count=1)
    assert edited != text
    assert verify_text(edited).ok  # the data still matches its hash
    path.write_text(edited)
    bad = run_cli(["report", "--verify", str(path)], cwd=filled.root)
    assert bad.returncode == 1, bad.stdout
    assert "EDITED" in bad.stderr and "open violations<b>0</b>" in bad.stderr


def test_verify_says_a_pdf_cannot_be_verified(filled: Filled, tmp_path: Path) -> None:
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n")
    done = run_cli(["report", "--verify", str(pdf)], cwd=filled.root)
    assert done.returncode == 2
    assert "a PDF cannot be verified" in done.stderr and "HTML or JSON report" in done.stderr
    assert "codec" not in done.stderr


# --------------------------------------------------------------------------- the server's settings


def test_report_settings_read_scanner_versions_once_on_first_use(filled: Filled) -> None:
    calls: list[int] = []

    def versions() -> dict[str, str]:
        calls.append(1)
        return {"bandit": "bandit 9.9"}

    settings = ReportSettings(ReportConfig(), versions, "f" * 64)
    with (
        Store.open(filled.store_url) as store,
        TestClient(create_app(store, AsyncEventBus(), report_settings=settings)) as client,
    ):
        assert calls == []  # not at start-up
        for _ in range(2):
            got = client.get("/api/v1/report", params={"since": "2h", "format": "json"})
            assert got.status_code == 200, got.text
            evidence = got.json()["data"]["evidence"]
            assert evidence["scanner_versions"] == {"bandit": "bandit 9.9"}
            assert evidence["config_sha256"] == "f" * 64
    assert calls == [1]


def test_served_report_applies_the_report_config(
    filled: Filled, report_data: dict[str, Any], tmp_path: Path
) -> None:
    stderr_path = tmp_path / "serve.stderr"
    with stderr_path.open("wb") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "secperf", "serve", "--port", "0"],
            cwd=filled.root,
            stdout=subprocess.PIPE,
            stderr=err,
            env=clean_env(),
        )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().decode(errors="replace")
        found = re.search(r"http://127\.0\.0\.1:\d+", line)
        assert found is not None, (line, stderr_path.read_text())
        got = httpx.get(
            f"{found.group(0)}/api/v1/report", params={"since": "2h", "format": "json"}, timeout=60
        )
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    assert got.status_code == 200, got.text
    api = got.json()["data"]
    cli = report_data
    # The configured SLA (critical and low: 1 ms), both objectives, the same configuration.
    assert api["remediation"]["per_severity"]["low"]["sla_days"] == 0.0
    assert api["remediation"]["per_severity"] == cli["remediation"]["per_severity"]
    assert [o["title"] for o in api["objectives"]] == [o["title"] for o in cli["objectives"]]
    assert len(api["objectives"]) == 2
    assert api["evidence"]["config_sha256"] == cli["evidence"]["config_sha256"] is not None
    assert api["evidence"]["scanner_versions"] == cli["evidence"]["scanner_versions"]
    assert "Traceback" not in stderr_path.read_text(errors="replace")
