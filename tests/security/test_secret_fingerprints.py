"""Secret fingerprints cannot be used to confirm guesses cheaply, and still agree across machines.

The salt is in the committed baseline, so anyone with the repository can test
guesses against a fingerprint. These tests take the attacker's side: an
11-word guess list, every fast hash a tool might use (plain SHA-1 as
detect-secrets' baseline stores, SHA-256, a salted HMAC of the value, and the
HMAC of the preview secperf used before), and check that none of them matches
a stored fingerprint: only the slow scrypt derivation does.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from secperf.model import make_fingerprint
from secperf.security.baseline import (
    BaselineError,
    baseline_from_findings,
    load_baseline,
    save_baseline,
)
from secperf.security.redaction import DEFAULT_SECRET_KDF, SecretKdf, redact, secret_key
from secperf.security.scanners.interface import SourceFile
from secperf.security.scanners.secrets import SecretsScanner
from support.cli import CliResult, run_cli

SALT = bytes.fromhex("00112233445566778899aabbccddeeff")
APP_SECRETS = ["admin123", "password123", "letmein2024", "Summer2024!"]
GUESSES = [
    "123456",
    "admin",
    "admin123",
    "changeme",
    "letmein",
    "letmein2024",
    "password",
    "password123",
    "qwerty",
    "secret",
    "Summer2024!",
]
SETTINGS = "".join(f'password{i} = "{value}"\n' for i, value in enumerate(APP_SECRETS))


def fast_keys(salt: bytes, guess: str) -> dict[str, str]:
    """What a guess gives under each fast hash an attacker would try."""
    data = guess.encode()
    return {
        "sha1": hashlib.sha1(data).hexdigest(),
        "sha256": hashlib.sha256(data).hexdigest(),
        "hmac-value": hmac.new(salt, data, hashlib.sha256).hexdigest(),
        "hmac-preview": hmac.new(salt, redact(guess).encode(), hashlib.sha256).hexdigest(),
    }


def test_a_guess_list_confirms_nothing_through_a_fast_hash(tmp_path: Path) -> None:
    scanner = SecretsScanner(SALT)
    result = scanner.scan_file(tmp_path, SourceFile("settings.py", SETTINGS.encode()))
    assert len(result.findings) == len(APP_SECRETS)
    stored = {f.fingerprint for f in result.findings}
    rule = result.findings[0].rule_id
    confirmed_fast = {
        (guess, how)
        for guess in GUESSES
        for how, key in fast_keys(SALT, guess).items()
        if make_fingerprint(rule, "settings.py", key) in stored
    }
    assert confirmed_fast == set()
    # The slow derivation is what it takes: each guess costs one scrypt with
    # at least 16 MiB of memory.
    kdf = DEFAULT_SECRET_KDF
    assert 128 * kdf.r * kdf.n * kdf.p >= 16 * 1024 * 1024
    confirmed_slow = {
        guess
        for guess in GUESSES
        if make_fingerprint(rule, "settings.py", secret_key(SALT, guess)) in stored
    }
    assert confirmed_slow == set(APP_SECRETS)


def test_a_rotated_secret_with_the_same_preview_is_a_new_finding(tmp_path: Path) -> None:
    scanner = SecretsScanner(SALT)
    old, new = "password123", "pXXXXXXXXX3"
    assert redact(old) == redact(new)
    before = scanner.scan_file(tmp_path, SourceFile("a.py", f'password = "{old}"\n'.encode()))
    after = scanner.scan_file(tmp_path, SourceFile("a.py", f'password = "{new}"\n'.encode()))
    assert before.findings[0].snippet == after.findings[0].snippet
    assert before.findings[0].fingerprint != after.findings[0].fingerprint


def test_the_baseline_records_the_parameters_and_checks_them(tmp_path: Path) -> None:
    path = tmp_path / ".secperf-baseline.json"
    save_baseline(path, baseline_from_findings([], SALT.hex(), 1, SecretKdf(n=2**12, r=8, p=1)))
    data: dict[str, Any] = json.loads(path.read_text())
    assert data["version"] == 2
    assert data["secret_kdf"] == {"name": "scrypt", "n": 4096, "r": 8, "p": 1}
    loaded = load_baseline(path)
    assert loaded is not None and loaded.secret_kdf == SecretKdf(4096, 8, 1)
    assert loaded.notice is None
    for bad, message in [
        ({"name": "sha1"}, "secret_kdf: name: expected 'scrypt', got 'sha1'"),
        ({"name": "scrypt", "n": 5000, "r": 8, "p": 1}, "secret_kdf: n: expected a power of two"),
        ({"name": "scrypt", "n": 2**30, "r": 8, "p": 1}, "secret_kdf: n: expected an integer"),
        ({"name": "scrypt", "n": 4096, "r": 8}, "secret_kdf: p: expected an integer from 1"),
        (None, "secret_kdf: expected an object"),
    ]:
        path.write_text(json.dumps({**data, "secret_kdf": bad}))
        with pytest.raises(BaselineError, match="^" + str(path).replace(".", r"\.")) as caught:
            load_baseline(path)
        assert message in str(caught.value)


def test_a_version_1_baseline_loads_with_a_notice(tmp_path: Path) -> None:
    path = tmp_path / ".secperf-baseline.json"
    entry = {"rule_id": "secret-keyword", "scanner": "secrets", "severity": "medium", "path": "a"}
    path.write_text(json.dumps({"version": 1, "salt": "00ff", "findings": {"ab" * 16: entry}}))
    loaded = load_baseline(path)
    assert loaded is not None and loaded.secret_kdf == DEFAULT_SECRET_KDF
    assert loaded.notice is not None and "secperf baseline update" in loaded.notice


def secperf(cwd: Path, *args: str, check: int | None = None) -> CliResult:
    home = cwd.parent / "home"
    home.mkdir(exist_ok=True)
    result = run_cli(args, cwd=cwd, env={"PATH": "/usr/bin:/bin", "HOME": str(home)})
    if check is not None:
        assert result.returncode == check, result.stdout + result.stderr
    return result


def test_fingerprints_agree_on_another_machine_and_reports_hold_no_key(tmp_path: Path) -> None:
    here = tmp_path / "here"
    here.mkdir()
    (here / "settings.py").write_text(SETTINGS)
    secperf(here, "baseline", "update", check=0)
    baseline = json.loads((here / ".secperf-baseline.json").read_text())
    assert baseline["secret_kdf"] == DEFAULT_SECRET_KDF.as_json()
    # Another machine: a fresh clone with the committed files only.
    there = tmp_path / "there"
    there.mkdir()
    for name in ("settings.py", ".secperf-baseline.json"):
        shutil.copy(here / name, there / name)
    out = secperf(there, "scan", "--scanners", "secrets", "--format", "json", check=0).stdout
    report = json.loads(out)
    assert report["metrics"]["new_findings"] == 0
    assert report["metrics"]["existing_findings"] == len(APP_SECRETS)
    # No value and no key derived from one is printed.
    salt = bytes.fromhex(baseline["salt"])
    for value in APP_SECRETS:
        assert value not in out
        assert secret_key(salt, value) not in out
        assert not any(key in out for key in fast_keys(salt, value).values())
    assert "secret_hash" not in out


def test_a_scan_against_a_version_1_baseline_says_how_to_migrate(tmp_path: Path) -> None:
    root = tmp_path / "old"
    root.mkdir()
    (root / "settings.py").write_text(SETTINGS)
    entry = {"rule_id": "secret-keyword", "scanner": "secrets", "severity": "medium"}
    (root / ".secperf-baseline.json").write_text(
        json.dumps({"version": 1, "salt": SALT.hex(), "findings": {"ab" * 16: entry}})
    )
    args = ("scan", "--scanners", "secrets", "--fail-on", "critical")
    report = json.loads(secperf(root, *args, "--format", "json", check=0).stdout)
    [note] = report["notes"]
    assert "version 1 baseline" in note and "secperf baseline update" in note
    table = secperf(root, *args, check=0).stdout
    assert "secperf baseline update" in " ".join(table.replace("│", " ").split())
    secperf(root, "baseline", "update", check=0)
    after = json.loads(secperf(root, *args, "--format", "json", check=0).stdout)
    assert after["notes"] == [] and after["metrics"]["new_findings"] == 0
