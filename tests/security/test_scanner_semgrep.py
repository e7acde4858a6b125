"""The semgrep scanner: availability, rule files, output parsing and the subprocess."""

from __future__ import annotations

import json
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from secperf.config import ScanConfig
from secperf.model import Severity, make_fingerprint
from secperf.security.scanners.interface import SourceFile
from secperf.security.scanners.registry import BuildContext, get_spec
from secperf.security.scanners.semgrep import ADAPTER_VERSION, SemgrepScanner
from support.paths import FIXTURES as FIXTURES_DIR

FIXTURES = FIXTURES_DIR / "semgrep"
RULES = FIXTURES / "rules.yml"
RULE_TEMPLATE = """\
rules:
  - id: {id}
    pattern: {pattern}
    message: found {pattern}
    languages: [{language}]
    severity: INFO
"""


def installed_semgrep() -> str | None:
    found = shutil.which("semgrep")
    beside = Path(sys.executable).parent / "semgrep"
    return found or (str(beside) if beside.is_file() else None)


def project(tmp_path: Path) -> tuple[Path, list[SourceFile]]:
    root = tmp_path / "project"
    shutil.copytree(FIXTURES / "project", root)
    files = [SourceFile(name, (root / name).read_bytes()) for name in ("app.py", "broken.py")]
    return root, files


def fake_semgrep(tmp_path: Path, body: str) -> str:
    """An executable standing in for semgrep, so the subprocess handling runs for real."""
    script = tmp_path / "fake-semgrep"
    script.write_text(f"#!{sys.executable}\nimport sys, time\n{body}\n")
    script.chmod(0o755)
    return str(script)


def test_not_installed_is_a_clear_unavailability(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    scanner = SemgrepScanner(rules=[str(RULES)])
    assert scanner.unavailable_reason() == "semgrep is not installed (pip install semgrep)"
    missing = SemgrepScanner(rules=[str(RULES)], executable=str(tmp_path / "nope"))
    assert missing.unavailable_reason() == f"semgrep executable {tmp_path / 'nope'} not found"
    by_name = SemgrepScanner(rules=[str(RULES)], executable="semgrep-not-here")
    assert by_name.unavailable_reason() == "semgrep executable semgrep-not-here not found"
    # a scan anyway gives skips, never an exception
    root, files = project(tmp_path)
    results = scanner.scan_batch(root, files)
    assert [r.skipped for r in results] == ["semgrep is not installed (pip install semgrep)"] * 2


def test_rule_file_problems_make_it_unavailable(tmp_path: Path) -> None:
    executable = fake_semgrep(tmp_path, "")
    assert (
        SemgrepScanner(executable=executable).unavailable_reason()
        == "no semgrep rule files configured"
    )
    missing = tmp_path / "missing.yml"
    reason = SemgrepScanner([str(missing)], executable=executable).unavailable_reason()
    assert reason == f"semgrep rule file {missing} does not exist"
    bad = tmp_path / "bad.yml"
    bad.write_text("rules: [oops\n")
    assert "bad.yml is unreadable" in (
        SemgrepScanner([str(bad)], executable=executable).unavailable_reason() or ""
    )
    shapeless = tmp_path / "shapeless.yml"
    shapeless.write_text("id: x\n")
    assert "expected a top-level 'rules' list" in (
        SemgrepScanner([str(shapeless)], executable=executable).unavailable_reason() or ""
    )


def test_applies_to_follows_the_rule_languages(tmp_path: Path) -> None:
    scanner = SemgrepScanner([str(RULES)])
    assert scanner.applies_to("src/app.py") and scanner.applies_to("typing/stub.pyi")
    assert not scanner.applies_to("web/app.js") and not scanner.applies_to("README.md")
    generic = tmp_path / "generic.yml"
    generic.write_text(RULE_TEMPLATE.format(id="todo", pattern="TODO", language="generic"))
    docker = tmp_path / "docker.yml"
    docker.write_text(RULE_TEMPLATE.format(id="root", pattern="USER root", language="dockerfile"))
    assert SemgrepScanner([str(generic)]).applies_to("README.md")
    assert SemgrepScanner([str(docker)]).applies_to("deploy/Dockerfile")
    assert not SemgrepScanner([str(docker)]).applies_to("deploy/app.py")


def test_config_hash_follows_rule_content(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yml"
    rules.write_text(RULES.read_text())
    scanner = SemgrepScanner([str(rules)])
    before = scanner.config_hash()
    rules.write_text(RULES.read_text().replace("severity: INFO", "severity: WARNING"))
    assert scanner.config_hash() != before


def test_parse_output_captured_from_a_real_run(tmp_path: Path) -> None:
    _root, files = project(tmp_path)
    output = json.loads((FIXTURES / "output.json").read_text())
    app, broken = SemgrepScanner([str(RULES)]).parse_output(output, files)
    assert [(f.rule_id, f.line, f.severity) for f in app.findings] == [
        ("hardcoded-api-token", 3, Severity.LOW),
        ("python-eval-use", 7, Severity.HIGH),
        ("subprocess-shell-true", 8, Severity.MEDIUM),
        ("python-eval-use", 9, Severity.HIGH),
    ]
    token, first_eval, shell, second_eval = app.findings
    assert first_eval.cwe == 95 and first_eval.confidence == "high"
    assert first_eval.snippet == "value = eval(user_input)"  # from the file: semgrep hides lines
    assert first_eval.help_url == "https://docs.python.org/3/library/ast.html#ast.literal_eval"
    assert first_eval.category == "custom" and first_eval.scanner == "semgrep"
    assert (first_eval.column, first_eval.end_line) == (13, 7)
    assert shell.cwe == 78 and shell.confidence == "medium"
    assert first_eval.fingerprint != second_eval.fingerprint
    # a rule about tokens may match a secret: no snippet, no hash of the matched text
    assert token.snippet is None and "tok_9fQ2xL7vB3nM8kR1" not in repr(app.findings)
    # a syntax warning: semgrep still scanned the rest of the file
    assert broken.skipped is None
    assert [(f.rule_id, f.line) for f in broken.findings] == [("python-eval-use", 2)]


def test_fingerprints_survive_moving_code(tmp_path: Path) -> None:
    _root, files = project(tmp_path)
    output = json.loads((FIXTURES / "output.json").read_text())
    scanner = SemgrepScanner([str(RULES)])
    before = {
        f.rule_id + str(i): f.fingerprint
        for i, f in enumerate(scanner.parse_output(output, files)[0].findings)
    }
    shifted_content = b"\n\n\n" + files[0].content
    for match in output["results"]:
        if match["path"] == "app.py":
            for end in ("start", "end"):
                match[end]["line"] += 3
                match[end]["offset"] += 3
    moved = scanner.parse_output(output, [SourceFile("app.py", shifted_content), files[1]])[0]
    after = {f.rule_id + str(i): f.fingerprint for i, f in enumerate(moved.findings)}
    assert before == after
    assert moved.findings[1].line == 10


def test_error_level_problems_skip_their_file_or_the_batch(tmp_path: Path) -> None:
    _root, files = project(tmp_path)
    scanner = SemgrepScanner([str(RULES)])
    per_file = {
        "results": [],
        "errors": [
            {
                "level": "error",
                "type": "Timeout",
                "path": "broken.py",
                "message": "Timeout when running rules",
            }
        ],
    }
    app, broken = scanner.parse_output(per_file, files)
    assert app.skipped is None and broken.skipped == "semgrep: Timeout when running rules"
    fatal = {
        "results": [],
        "errors": [{"level": "error", "type": "SemgrepError", "message": "invalid configuration"}],
    }
    results = scanner.parse_output(fatal, files, returncode=7)
    assert [r.skipped for r in results] == ["semgrep failed (exit 7): invalid configuration"] * 2


def test_subprocess_failures_are_skips(tmp_path: Path) -> None:
    root, files = project(tmp_path)
    crashing = fake_semgrep(tmp_path, "print('Traceback: boom', file=sys.stderr)\nsys.exit(2)")
    results = SemgrepScanner([str(RULES)], executable=crashing).scan_batch(root, files)
    assert [r.skipped for r in results] == ["semgrep failed (exit 2): Traceback: boom"] * 2
    slow = fake_semgrep(tmp_path, "time.sleep(30)")
    results = SemgrepScanner([str(RULES)], executable=slow, timeout=0.5).scan_batch(root, files)
    assert [r.skipped for r in results] == ["semgrep timed out after 0.5 s"] * 2


def test_command_line_and_missing_files(tmp_path: Path) -> None:
    root, files = project(tmp_path)
    record = tmp_path / "argv.json"
    echo = fake_semgrep(
        tmp_path,
        f"import json, os\njson.dump({{'argv': sys.argv[1:], 'cwd': os.getcwd(), "
        f"'metrics': os.environ.get('SEMGREP_SEND_METRICS')}}, open({str(record)!r}, 'w'))\n"
        "print(json.dumps({'results': [], 'errors': []}))",
    )
    gone = SourceFile("gone.py", b"eval(x)\n")
    results = SemgrepScanner([str(RULES)], executable=echo).scan_batch(root, [files[0], gone])
    assert results[0].skipped is None and results[0].findings == []
    assert results[1].skipped == "file vanished before semgrep ran"
    seen = json.loads(record.read_text())
    assert seen["argv"] == [
        "scan",
        "--metrics=off",
        "--json",
        "--config",
        str(RULES.resolve()),
        "--disable-version-check",
        "--quiet",
        "--",
        "app.py",
    ]
    assert seen["cwd"] == str(root) and seen["metrics"] == "off"


@pytest.mark.skipif(
    installed_semgrep() is None, reason="semgrep is not installed (pip install semgrep)"
)
def test_real_semgrep_run_matches_the_captured_output(tmp_path: Path) -> None:
    root, files = project(tmp_path)
    scanner = SemgrepScanner([str(RULES)], executable=installed_semgrep())
    assert scanner.unavailable_reason() is None
    assert scanner.version().startswith(f"{ADAPTER_VERSION}+semgrep1.")
    copy = pickle.loads(pickle.dumps(scanner))
    results = copy.scan_batch(root, files)
    captured = copy.parse_output(json.loads((FIXTURES / "output.json").read_text()), files)
    assert [r.skipped for r in results] == [None, None]
    assert [[(f.rule_id, f.line, f.fingerprint) for f in r.findings] for r in results] == [
        [(f.rule_id, f.line, f.fingerprint) for f in r.findings] for r in captured
    ]


def test_a_secret_in_a_matched_line_or_message_is_redacted() -> None:
    token = "ghp_Zq8Xn4Lm2Wv7Rt5Yp1Kb9Hd3Gf6Jc0Ns8Ue2"
    line = f'value = eval("{token}")'
    source = SourceFile("app.py", f"{line}\n".encode())
    start = line.index("eval")
    output = {
        "results": [
            {
                "check_id": "rules.python-eval-use",
                "path": "app.py",
                "start": {"line": 1, "col": start + 1, "offset": start},
                "end": {"line": 1, "col": len(line) + 1, "offset": len(line)},
                # semgrep interpolates metavariables: its message can quote the code
                "extra": {"message": f"eval of $X = {token}", "severity": "ERROR"},
            }
        ],
        "errors": [{"level": "error", "path": "other.py", "message": f"cannot parse `{token}`"}],
    }
    scanner = SemgrepScanner([str(RULES)])
    [result] = scanner.parse_output(output, [source])
    [finding] = result.findings
    assert finding.snippet == 'value = eval("ghp_****8Ue2")'
    assert finding.message == "eval of $X = ghp_****8Ue2"
    assert token not in repr(finding) and token[4:-4] not in repr(finding)
    # The fingerprint is taken over the redacted match, so it hashes no secret.
    assert finding.fingerprint == make_fingerprint(
        "python-eval-use", "app.py", 'eval("ghp_****8Ue2")'
    )
    failed = scanner.parse_output(output, [SourceFile("other.py", b"x\n")], returncode=2)
    assert failed[0].skipped is not None and token not in failed[0].skipped


def test_the_memory_limit_is_semgreps_max_memory(tmp_path: Path) -> None:
    root, files = project(tmp_path)
    record = tmp_path / "argv.json"
    echo = fake_semgrep(
        tmp_path,
        f"import json\njson.dump(sys.argv[1:], open({str(record)!r}, 'w'))\n"
        "print(json.dumps({'results': [], 'errors': []}))",
    )
    limited = SemgrepScanner([str(RULES)], executable=echo, memory_limit=2 * 2**30)
    limited.scan_batch(root, files[:1])
    assert json.loads(record.read_text())[:4] == [
        "scan",
        "--metrics=off",
        "--json",
        "--max-memory=2048",
    ]
    # Built from [scan] worker_memory_limit; 0 (no limit) passes no option.
    ctx = BuildContext(scan=ScanConfig(semgrep={"rules": [str(RULES)]}), salt=b"salt")
    assert getattr(get_spec("semgrep").build(ctx), "memory_limit", None) == 2 * 2**30
    unlimited = ScanConfig(worker_memory_limit=0, semgrep={"rules": [str(RULES)]})
    built = get_spec("semgrep").build(BuildContext(scan=unlimited, salt=b"salt"))
    assert getattr(built, "memory_limit", "unset") is None


def test_a_file_semgrep_runs_out_of_memory_on_is_skipped_with_the_limit() -> None:
    source = SourceFile("app.py", b"eval(x)\n")
    output = {
        "results": [],
        "errors": [
            # semgrep's own report: only a warning, and the file has no results
            {
                "code": 2,
                "level": "warn",
                "type": "Out of memory",
                "path": "app.py",
                "message": "Out of memory at line app.py:1:\n Exceeded memory limit",
            }
        ],
    }
    limited = SemgrepScanner([str(RULES)], memory_limit=64 * 2**20)
    [result] = limited.parse_output(output, [source])
    assert result.skipped == "out of memory (limit 64 MiB)"
    [result] = SemgrepScanner([str(RULES)]).parse_output(output, [source])
    assert result.skipped == "out of memory"


@pytest.mark.skipif(
    installed_semgrep() is None, reason="semgrep is not installed (pip install semgrep)"
)
def test_real_semgrep_out_of_its_max_memory_skips_only_that_file(tmp_path: Path) -> None:
    root, files = project(tmp_path)
    # Big enough for semgrep's matching to go well past 64 MiB.
    big = "".join(f"x{i} = eval('a{i}' + str({i}))\n" for i in range(60_000)).encode()
    (root / "big.py").write_bytes(big)
    scanner = SemgrepScanner([str(RULES)], executable=installed_semgrep(), memory_limit=64 * 2**20)
    results = scanner.scan_batch(root, [*files, SourceFile("big.py", big)])
    assert [r.skipped for r in results] == [None, None, "out of memory (limit 64 MiB)"]
    assert results[0].findings


def test_a_program_started_by_a_capped_worker_is_not_under_its_cap(tmp_path: Path) -> None:
    """The worker's cap stays on it; the program it starts gets the limit it had before."""
    script = tmp_path / "worker.py"
    script.write_text(
        "import resource, sys\n"
        "from secperf.security import workers\n"
        "from secperf.security.scanners.semgrep import _run_program\n"
        "before = resource.getrlimit(resource.RLIMIT_AS)\n"
        "workers._limit_memory(128 * 2**20)\n"
        "capped = resource.getrlimit(resource.RLIMIT_AS)\n"
        "assert capped[0] != before[0] and capped[1] == before[1], (before, capped)\n"
        "child = _run_program([sys.executable, '-c', 'import resource; "
        "print(resource.getrlimit(resource.RLIMIT_AS)[0])'], 60)\n"
        "assert int(child.stdout) == before[0], (child.stdout, before)\n"
        "assert resource.getrlimit(resource.RLIMIT_AS) == capped\n"
        "try:\n"
        "    hog = bytearray(512 * 2**20)\n"
        "except MemoryError:\n"
        "    print('capped')\n"
    )
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "capped"
