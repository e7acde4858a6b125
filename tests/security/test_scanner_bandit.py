"""The bandit scanner against the real bandit CLI on a real corpus."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from secperf.model import Severity, make_fingerprint
from secperf.security.scanners.bandit import BanditScanner
from secperf.security.scanners.interface import FileResult, SourceFile
from support.paths import FIXTURES as FIXTURES_DIR

CORPUS = FIXTURES_DIR / "scan_corpus"


def _python_files(root: Path) -> list[str]:
    scanner = BanditScanner()
    return sorted(
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and scanner.applies_to(p.relative_to(root).as_posix())
    )


def _scan(scanner: BanditScanner, root: Path, relpaths: list[str]) -> list[FileResult]:
    sources = [SourceFile(r, (root / r).read_bytes()) for r in relpaths]
    return scanner.scan_batch(root, sources)


def _cli(root: Path, relpaths: list[str], *extra: str) -> dict[str, object]:
    proc = subprocess.run(
        [sys.executable, "-m", "bandit", "-f", "json", "-q", *extra, *relpaths],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode in (0, 1), proc.stderr
    data: dict[str, object] = json.loads(proc.stdout)
    return data


def _cli_set(data: dict[str, object]) -> set[tuple[str, int, str]]:
    results = data["results"]
    assert isinstance(results, list)
    return {(os.path.normpath(r["filename"]), r["line_number"], r["test_id"]) for r in results}


def _mine(results: list[FileResult]) -> set[tuple[str, int, str]]:
    return {(r.relpath, f.line, f.rule_id) for r in results for f in r.findings}


def test_results_equal_the_bandit_cli_on_the_corpus() -> None:
    files = _python_files(CORPUS)
    assert "app/views.py" in files and "app/types_stub.pyi" in files
    results = _scan(BanditScanner(), CORPUS, files)
    cli = _cli(CORPUS, files)
    mine = _mine(results)
    assert mine == _cli_set(cli)
    # The corpus really exercises bandit: shell injection, pickle, yaml, md5, eval...
    rules = {rule for _, _, rule in mine}
    assert {"B602", "B605", "B301", "B506", "B324", "B307", "B101", "B110", "B501"} <= rules
    # Skips are the ones the CLI lists as errors, with bandit's reason.
    errors = cli["errors"]
    assert isinstance(errors, list)
    cli_skips = {os.path.normpath(e["filename"]): e["reason"] for e in errors}
    assert {r.relpath: r.skipped for r in results if r.skipped} == cli_skips
    assert cli_skips == {"app/broken_syntax.py": "syntax error while parsing AST from file"}


def test_options_match_the_cli_options() -> None:
    files = _python_files(CORPUS)
    scanner = BanditScanner(skips=["B101", "B105"], severity="medium", confidence="medium")
    mine = _mine(_scan(scanner, CORPUS, files))
    cli = _cli_set(
        _cli(
            CORPUS,
            files,
            "-s",
            "B101,B105",
            "--severity-level",
            "medium",
            "--confidence-level",
            "medium",
        )
    )
    assert mine == cli
    assert not any(rule in {"B101", "B105"} for _, _, rule in mine)
    only = _mine(_scan(BanditScanner(tests=["B602"]), CORPUS, files))
    assert only == _cli_set(_cli(CORPUS, files, "-t", "B602"))
    assert {rule for _, _, rule in only} == {"B602"}


def test_finding_fields_are_mapped() -> None:
    result = _scan(BanditScanner(), CORPUS, ["app/views.py"])[0]
    by_rule = {f.rule_id: f for f in result.findings}
    shell = by_rule["B602"]
    assert shell.severity is Severity.HIGH
    assert shell.confidence == "high"
    assert shell.cwe == 78
    assert shell.category == "sast"
    assert shell.scanner == "bandit"
    assert shell.line == 17 and shell.column == 5
    assert shell.snippet is not None and "shell=True" in shell.snippet
    assert shell.help_url is not None and "b602" in shell.help_url
    assert "shell=True" in shell.message
    assert by_rule["B101"].severity is Severity.LOW
    # The "# nosec B602" line is not reported, and counted as suppressed.
    assert not any(f.line == 69 for f in result.findings)
    assert result.suppressed == 1
    assert result.skipped is None and result.duration_ms > 0


def test_multi_line_statements_keep_their_range() -> None:
    result = _scan(BanditScanner(), CORPUS, ["app/db.py"])[0]
    popen = next(f for f in result.findings if f.rule_id == "B602")
    # bandit reports the line of shell=True; the snippet is the whole call.
    assert popen.line == 22 and popen.end_line == 23
    assert popen.snippet is not None
    assert popen.snippet.splitlines()[0].strip() == "subprocess.Popen("
    assert "shell=True" in popen.snippet


def test_fingerprints_survive_moving_code(tmp_path: Path) -> None:
    original = (CORPUS / "app" / "views.py").read_bytes()
    moved = b"# a new header comment\n\n\n" + original
    scanner = BanditScanner()
    before = scanner.scan_file(tmp_path, SourceFile("app/views.py", original))
    after = scanner.scan_file(tmp_path, SourceFile("app/views.py", moved))
    assert {f.line + 3 for f in before.findings} == {f.line for f in after.findings}
    assert {f.fingerprint for f in before.findings} == {f.fingerprint for f in after.findings}
    assert len({f.fingerprint for f in before.findings}) == len(before.findings)


def test_bad_files_are_skipped_with_a_reason(tmp_path: Path) -> None:
    scanner = BanditScanner()
    cases = {
        "binary.py": b"\x7fELF\x00\x00\x01import os\n",
        "latin1.py": b"name = '\xe9t\xe9'\nimport pickle\n",
        "broken.py": b"def f(:\n",
        "empty.py": b"",
    }
    results = {
        name: scanner.scan_file(tmp_path, SourceFile(name, content))
        for name, content in cases.items()
    }
    assert results["binary.py"].skipped is not None and "binary" in results["binary.py"].skipped
    assert results["latin1.py"].skipped is not None
    assert results["broken.py"].skipped == "syntax error while parsing AST from file"
    assert results["empty.py"].skipped is None and results["empty.py"].findings == []
    for result in results.values():
        assert result.findings == [] and result.relpath in cases


def test_scanner_is_picklable_and_versioned() -> None:
    scanner = BanditScanner(skips=["B101"])
    scanner.scan_file(CORPUS, SourceFile("x.py", b"import os\n"))  # builds the manager
    clone = pickle.loads(pickle.dumps(scanner))
    assert clone.skips == ("B101",)
    assert len(pickle.dumps(scanner)) < 500
    assert "bandit 1." in scanner.version()
    assert scanner.config_hash() != BanditScanner().config_hash()
    assert scanner.config_hash() == BanditScanner(skips=["B101"]).config_hash()
    assert scanner.applies_to("pkg/mod.py") and scanner.applies_to("pkg/mod.pyi")
    assert not scanner.applies_to("README.md")


def test_bad_options_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown bandit test id"):
        BanditScanner(tests=["B999"])
    with pytest.raises(ValueError, match="severity level 'severe'"):
        BanditScanner(severity="severe")


def test_results_equal_the_cli_on_stdlib_files() -> None:
    import sysconfig

    stdlib = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(p.relative_to(stdlib).as_posix() for p in stdlib.glob("*.py"))[::8][:40]
    assert len(files) >= 20
    mine = _mine(_scan(BanditScanner(), stdlib, files))
    assert mine == _cli_set(_cli(stdlib, files))


def test_hardcoded_password_findings_hold_no_password(tmp_path: Path) -> None:
    from secperf.security.scanners.bandit import BanditScanner
    from secperf.security.scanners.interface import SourceFile

    secret = "correct-horse-battery-staple-42"
    code = f'password = "{secret}"\n\ndef connect(password="{secret}"):\n    return password\n'
    result = BanditScanner().scan_file(tmp_path, SourceFile("app/db.py", code.encode()))
    rules = {f.rule_id for f in result.findings}
    assert {"B105", "B107"} <= rules
    for finding in result.findings:
        assert secret not in repr(finding)
        assert secret[4:-4] not in (finding.message + (finding.snippet or ""))


def test_a_secret_on_a_line_flagged_for_another_reason_is_redacted(tmp_path: Path) -> None:
    token = "ghp_Zq8Xn4Lm2Wv7Rt5Yp1Kb9Hd3Gf6Jc0Ns8Ue2"
    code = (
        "import requests\n\n\ndef f():\n"
        f'    return requests.get("https://x", headers={{"Authorization": "token {token}"}},'
        " verify=False)\n"
    )
    result = BanditScanner().scan_file(tmp_path, SourceFile("app.py", code.encode()))
    b501 = next(f for f in result.findings if f.rule_id == "B501")
    assert b501.snippet is not None and '"token ghp_****8Ue2"}, verify=False)' in b501.snippet
    assert token not in repr(result.findings) and token[4:-4] not in repr(result.findings)
    # The fingerprint is taken over the redacted code: no hash of the token either.
    assert b501.fingerprint == make_fingerprint("B501", "app.py", b501.snippet)


def test_password_findings_keep_their_fingerprints(tmp_path: Path) -> None:
    code = 'password = "correct-horse-battery-staple-42"\n'
    result = BanditScanner().scan_file(tmp_path, SourceFile("db.py", code.encode()))
    [b105] = result.findings
    assert b105.snippet == 'password = "corr****e-42"'
    assert b105.message == "Possible hardcoded password: 'corr****e-42'"
    # Quoted strings are hidden in the fingerprint as they always were: baselines hold.
    assert b105.fingerprint == make_fingerprint("B105", "db.py", 'password = "<redacted>"')


def test_building_and_versioning_loads_no_bandit_plugin() -> None:
    """A scan whose files are all cached builds the scanner and its cache key, nothing more."""
    code = (
        "import sys\n"
        "from secperf.security.scanners.bandit import BanditScanner\n"
        "s = BanditScanner()\n"
        "print(s.version())\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('bandit', 'stevedore')))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr
    version_line, modules = proc.stdout.splitlines()
    import bandit  # type: ignore[import-untyped]

    assert version_line.startswith(f"bandit {bandit.__version__}; adapter ")
    assert modules == "[]"
    # Test ids given in the configuration are still checked when it is built.
    with pytest.raises(ValueError, match="unknown bandit test id"):
        BanditScanner(tests=["B999"])
