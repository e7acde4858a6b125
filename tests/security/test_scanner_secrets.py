"""The secrets scanner against the real detect-secrets CLI, and its secrecy."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from detect_secrets.settings import default_settings, get_plugins

from secperf.events import ViolationDetected, encode_event
from secperf.model import Severity, make_fingerprint
from secperf.security.redaction import secret_key
from secperf.security.scanners import secrets_prefilter
from secperf.security.scanners.interface import FileResult, SourceFile
from secperf.security.scanners.secrets import SecretsScanner
from support.leaks import value_hashes
from support.paths import FIXTURES as FIXTURES_DIR

CORPUS = FIXTURES_DIR / "scan_corpus"
SALT = b"test-project-salt"


def _files(root: Path, pattern: str = "*") -> list[str]:
    return sorted(
        p.relative_to(root).as_posix()
        for p in root.rglob(pattern)
        if p.is_file() and "__pycache__" not in p.parts
    )


def _scan(scanner: SecretsScanner, root: Path, relpaths: list[str]) -> list[FileResult]:
    return scanner.scan_batch(root, [SourceFile(r, (root / r).read_bytes()) for r in relpaths])


def _mine(results: list[FileResult]) -> set[tuple[str, int, str]]:
    return {(r.relpath, f.line, f.properties["secret_type"]) for r in results for f in r.findings}


def _cli(root: Path, relpaths: list[str]) -> set[tuple[str, int, str]]:
    # --no-verify: the scanner never sends found secrets to vendors' APIs; offline the
    # plain CLI gives the same results, online it would post these fake tokens.
    proc = subprocess.run(
        [sys.executable, "-m", "detect_secrets", "scan", "--all-files", "--no-verify", *relpaths],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    )
    results = json.loads(proc.stdout)["results"]
    return {(name, s["line_number"], s["type"]) for name, items in results.items() for s in items}


def test_results_equal_the_detect_secrets_cli_on_the_corpus() -> None:
    files = _files(CORPUS)
    results = _scan(SecretsScanner(SALT), CORPUS, files)
    mine = _mine(results)
    assert mine == _cli(CORPUS, files)
    types = {t for _, _, t in mine}
    assert {
        "AWS Access Key",
        "Private Key",
        "Basic Auth Credentials",
        "Slack Token",
        "Stripe Access Key",
        "GitHub Token",
        "Secret Keyword",
        "Base64 High Entropy String",
        "Hex High Entropy String",
        "JSON Web Token",
    } <= types
    # INI and YAML files go through detect-secrets' transformers.
    assert any(path.endswith(".ini") for path, _, _ in mine)
    assert any(path.endswith(".yaml") for path, _, _ in mine)


def test_prefilter_does_not_change_results_on_stdlib_files() -> None:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    # A spread of small stdlib modules keeps this quick; the benchmark compares
    # the whole standard library.
    files = [
        f
        for f in _files(stdlib, "*.py")
        if not f.startswith("site-packages/") and (stdlib / f).stat().st_size < 40_000
    ][::20][:80]
    assert len(files) >= 60
    filtered = _mine(_scan(SecretsScanner(SALT), stdlib, files))
    unfiltered = _mine(_scan(SecretsScanner(SALT, prefilter=False), stdlib, files))
    assert filtered == unfiltered
    assert filtered == _cli(stdlib, files)


# One line each plugin reports (fake values), to check every plugin's needles.
PLUGIN_SAMPLES = [
    'token = "AKCp5bcdefghijkl"',
    'pw = "AP6xxxxxxxxxxxxxxx"',
    'key_id = "AKIAIOSFODNN7EXAMPLE"',
    'aws_secret_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"',
    "conn = 'DefaultEndpointsProtocol=https;AccountKey=" + "a" * 87 + "='",
    'url = "https://user:fakepass@example.com"',
    'cloudant_password = "' + "a1" * 32 + '"',
    "https://acct:" + "ab" * 32 + "@acct.cloudant.com",
    "M" + "a" * 23 + ".G1a2b3." + "c" * 27,
    "ghp_" + "a" * 36,
    "glpat-" + "a" * 20,
    "GR1348941" + "a" * 20,
    'secret = "' + "Zk9x2LmQ7vR4tW1yB8nC3pD6sF0gH5jK" + '"',
    'digest = "9f8e7d6c5b4a3921"',
    "ibm_cloud_iam_key = " + "a" * 44,
    "ibm_cos_secret_access_key = " + "ab" * 24,
    "server = 8.8.8.8",
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln",
    'password = "FakeTestPassw0rd"',
    "contraseña = 'FakeClave123'",
    "a" * 32 + "-us12",
    "//registry.npmjs.org/:_authToken=npm_fake",
    "sk-" + "a" * 20 + "T3BlbkFJ" + "a" * 20,
    "-----BEGIN OPENSSH PRIVATE KEY-----",
    "PuTTY-User-Key-File-2: ssh-rsa",
    "pypi-AgEIcHlwaS5vcmc" + "a" * 70,
    "SG." + "a" * 22 + "." + "a" * 43,
    "xoxb-1234-abcdef",
    "https://hooks.slack.com/services/TABC/BDEF/ghijk",
    "softlayer_api_key = " + "a" * 64,
    "https://api.softlayer.com/soap/v3/" + "a" * 64,
    "sq0csp-" + "a" * 43,
    "rk_live_" + "a" * 24,
    "123456789:" + "A" * 35,
    "AC" + "a" * 32,
    "PA\u017f\u017fWORD = 'FakeFoldedPassw0rd'",  # long s: re.IGNORECASE folds it to s
]


def test_every_plugin_match_holds_a_needle() -> None:
    with default_settings():
        plugins = list(get_plugins())
        needles = secrets_prefilter.build_needles(plugins)
        assert needles is not None
        hit_types: set[str] = set()
        corpus_lines = [
            line
            for rel in _files(CORPUS)
            for line in (CORPUS / rel).read_text(errors="replace").splitlines()
        ]
        for line in PLUGIN_SAMPLES + corpus_lines:
            for plugin in plugins:
                found = plugin.analyze_line(filename="sample.py", line=line, line_number=1)
                found |= plugin.analyze_line(filename="sample.yaml", line=line, line_number=1)
                if found:
                    hit_types.add(plugin.secret_type)
                    assert needles.search_line(line), (plugin.secret_type, line)
                    numbers = needles.candidate_line_numbers("x = 1\n" + line + "\ny = 2\n")
                    assert numbers == [2], (plugin.secret_type, line)
        # The samples reach every plugin, so every needle was exercised.
        assert hit_types == {p.secret_type for p in plugins}


def test_an_unknown_plugin_turns_the_prefilter_off() -> None:
    class HomeMadeDetector:
        secret_type = "Home made"

    with default_settings():
        plugins = [*get_plugins(), HomeMadeDetector()]
    assert secrets_prefilter.build_needles(plugins) is None


def test_trie_regex_matches_exactly_its_words() -> None:
    pattern = secrets_prefilter.trie_regex(["api_key", "apikey", "pass", "password", "pwd"])
    import re

    compiled = re.compile(pattern)
    for word in ["api_key", "apikey", "pass", "password", "pwd"]:
        assert compiled.search(f"x {word} y")
    assert not compiled.search("apkey pas pw")


def test_findings_hold_no_secret_value() -> None:
    scanner = SecretsScanner(SALT)
    files = _files(CORPUS)
    results = _scan(scanner, CORPUS, files)
    raw_values = {
        raw.value
        for rel in files
        for raw in scanner.find_raw(SourceFile(rel, (CORPUS / rel).read_bytes()))
    }
    assert "AKIAIOSFODNN7EXAMPLE" in raw_values and "FakeTestPassw0rd-not-real" in raw_values
    findings = [f for r in results for f in r.findings]
    assert len(findings) == len(_mine(results))
    # detect-secrets reports a few secrets as short fragments (the GitHub plugin's
    # value is its "ghp" prefix); those may appear by chance in other text.
    checked = {value for value in raw_values if len(value) >= 8}
    # Nor their salted hashes: a fast hash of a secret is as good as the secret to
    # whoever holds the project's salt and a dictionary.
    checked |= {h for value in raw_values for h in value_hashes(SALT, value)}
    for finding in findings:
        event = ViolationDetected(scan_id="scan-1", finding=finding)
        texts = [repr(finding), str(finding), encode_event(event).decode("utf-8"), repr(event)]
        for value in checked:
            for text in texts:
                assert value not in text
        assert "secret_hash" not in texts[2]
        assert finding.snippet is not None and "****" in finding.snippet
    for raw in scanner.find_raw(SourceFile(files[0], (CORPUS / files[0]).read_bytes())):
        assert raw.value not in repr(raw)


def test_finding_fields_are_mapped() -> None:
    rel = "fake_secrets/fake_credentials_for_tests.py"
    result = _scan(SecretsScanner(SALT), CORPUS, [rel])[0]
    aws = next(f for f in result.findings if f.line == 3)
    assert aws.rule_id == "aws-access-key"
    assert aws.severity is Severity.HIGH and aws.confidence == "high"
    assert aws.cwe == 798 and aws.category == "secret" and aws.scanner == "secrets"
    assert aws.snippet == "AKI****PLE"
    # The fingerprint is keyed by the slow derivation of the value (see secret_key).
    assert aws.fingerprint == make_fingerprint(
        "aws-access-key", rel, secret_key(SALT, "AKIAIOSFODNN7EXAMPLE")
    )
    assert secret_key(SALT, "AKIAIOSFODNN7EXAMPLE") != secret_key(SALT, "AKIAXXXXXXXXXXXXXPLE")
    assert aws.column == len('AWS_ACCESS_KEY_ID = "') + 1
    keyword = next(f for f in result.findings if f.line == 6)
    assert keyword.severity is Severity.MEDIUM and keyword.rule_id == "secret-keyword"
    # The same password later in the file is reported once, like detect-secrets does.
    assert keyword.properties["other_lines"] == [27]
    # The allowlisted line and the indirect reference are not reported.
    assert not any(f.line in (18, 29) for f in result.findings)


def test_fingerprints_follow_the_secret_not_the_line() -> None:
    rel = "fake_secrets/fake_credentials_for_tests.py"
    content = (CORPUS / rel).read_bytes()
    scanner = SecretsScanner(SALT)
    before = scanner.scan_file(CORPUS, SourceFile(rel, content))
    after = scanner.scan_file(CORPUS, SourceFile(rel, b"# moved\n\n" + content))
    assert {f.fingerprint for f in before.findings} == {f.fingerprint for f in after.findings}
    other_salt = SecretsScanner(b"another-salt").scan_file(CORPUS, SourceFile(rel, content))
    assert {f.fingerprint for f in before.findings}.isdisjoint(
        f.fingerprint for f in other_salt.findings
    )


def test_bad_files_are_skipped_or_ignored(tmp_path: Path) -> None:
    scanner = SecretsScanner(SALT)
    undecodable = scanner.scan_file(tmp_path, SourceFile("blob.dat", b"\xff\xfe\x00password"))
    assert undecodable.skipped is not None and "not UTF-8" in undecodable.skipped
    # Paths detect-secrets ignores by name are not wanted at all.
    assert not scanner.applies_to("assets/logo.png")
    assert not scanner.applies_to("web/package-lock.json")
    assert scanner.applies_to("app/settings.py")
    empty = scanner.scan_file(tmp_path, SourceFile("empty.py", b""))
    assert empty.skipped is None and empty.findings == []


def test_scanner_is_picklable_and_versioned() -> None:
    scanner = SecretsScanner(SALT)
    clone = pickle.loads(pickle.dumps(scanner))
    assert clone.salt == SALT
    assert "detect-secrets 1." in scanner.version()
    assert scanner.config_hash() == SecretsScanner(SALT, prefilter=False).config_hash()
    assert scanner.config_hash() != SecretsScanner(b"other").config_hash()
    with pytest.raises(TypeError, match="salt must be bytes"):
        SecretsScanner("not-bytes")  # type: ignore[arg-type]


def test_path_decisions_without_detect_secrets_equal_its_filename_filters() -> None:
    """applies_to answers from a copy of the filters; it must agree with detect-secrets' own."""
    from detect_secrets.__version__ import VERSION
    from detect_secrets.core import scan as ds_scan
    from detect_secrets.filters.heuristic import IGNORED_FILE_EXTENSIONS

    from secperf.security.scanners import secrets as secrets_module

    assert secrets_module.detect_secrets_version() == VERSION
    with default_settings():
        filters = [
            f
            for f in ds_scan.get_filters_with_parameter("filename")
            if f.injectable_variables == {"filename"}
        ]
    names = {f.path for f in filters} - {"detect_secrets.filters.common.is_invalid_file"}
    assert names == secrets_module.MIRRORED_FILENAME_FILTERS
    engine = secrets_module._path_filter()
    paths = [
        *(f"dir/file{ext}" for ext in IGNORED_FILE_EXTENSIONS),
        *(f"dir/file{ext.upper()}" for ext in IGNORED_FILE_EXTENSIONS),
        *(f"a/{name}" for name in ("yarn.lock", "Cargo.lock", "poetry.lock", "Pipfile.lock")),
        "package-lock.json",
        "Podfile.lock",
        "packages.lock.json",
        "docs/swagger-ui.html",
        "swagger/app.py",
        "Swagger.py",
        "app/settings.py",
        "x.lock.txt",
        ".png",
        "dir/.gitignore",
        "dir/archive.tar.gz",
        "a.",
        "notes.md",
    ]
    scanner = SecretsScanner(b"s" * 16)
    for path in paths:
        assert scanner.applies_to(path) == (not engine.filename_excluded(path)), path


def test_a_warm_decision_imports_no_detect_secrets(tmp_path: Path) -> None:
    """Building the scanner, its cache key and its path decisions load no plugin."""
    code = (
        "import sys\n"
        "from secperf.security.scanners.secrets import SecretsScanner\n"
        "s = SecretsScanner(b's' * 16)\n"
        "s.version(); s.config_hash()\n"
        "assert not s.applies_to('logo.png') and s.applies_to('app.py')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'detect_secrets'))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "[]\n"
