"""Dependency manifests read whole: -r includes, -c constraints, lock files, unpinned ranges."""

from __future__ import annotations

import json
from pathlib import Path

from test_scanner_deps import osv_dir, write

from secperf.security.manifests import resolve_manifest
from secperf.security.scanners.deps import DepsScanner

GUNICORN = {
    "schema_version": "1.6.0",
    "id": "GHSA-w3h3-4rj7-4ph4",
    "modified": "2024-06-06T00:00:00Z",
    "published": "2024-04-16T00:00:00Z",
    "aliases": ["CVE-2024-1135"],
    "summary": "Request smuggling leading to endpoint restriction bypass in Gunicorn",
    "affected": [
        {
            "package": {"ecosystem": "PyPI", "name": "gunicorn"},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "22.0.0"}]}],
        }
    ],
    "database_specific": {"severity": "HIGH"},
}


def _database(tmp_path: Path) -> str:
    db = osv_dir(tmp_path)
    (db / "GHSA-w3h3-4rj7-4ph4.json").write_text(json.dumps(GUNICORN))
    return str(db)


def test_includes_and_constraints_are_followed_and_ranges_listed(tmp_path: Path) -> None:
    root = tmp_path / "app"
    source = write(
        root,
        "requirements.txt",
        "-r deploy/other.txt\n--constraint=constraints.txt\njinja2>=3\nrequests~=2.0\n",
    )
    # other.txt includes requirements.txt back: the loop must end.
    write(root, "deploy/other.txt", "gunicorn==21.2.0\n-r ../requirements.txt\n")
    write(root, "constraints.txt", "jinja2==3.1.2\n")
    [result] = DepsScanner(osv_db=_database(tmp_path)).scan_batch(root, [source])
    found = {f.rule_id: f for f in result.findings}
    gunicorn = found["GHSA-w3h3-4rj7-4ph4"]
    assert gunicorn.path == "requirements.txt" and gunicorn.line == 1
    assert gunicorn.properties["origin"] == "deploy/other.txt:1"
    assert "gunicorn 21.2.0 (via deploy/other.txt:1)" in gunicorn.message
    # The range is decided by the constraint's pin.
    jinja2 = found["GHSA-h5c8-rqwp-cp95"]
    assert jinja2.line == 3 and jinja2.properties["installed_version"] == "3.1.2"
    assert jinja2.properties["origin"] == "constraints.txt:1"
    # What stays a range is counted and named, not dropped.
    assert result.skipped == (
        "cannot tell the installed version of 1 requirement(s), not checked:"
        " requests~=2.0 (line 4); pin them (==), constrain them (-c) or commit a lock file"
    )
    assert len(result.findings) == len({f.fingerprint for f in result.findings})
    assert not result.cacheable  # an edit to other.txt must be seen


def test_missing_and_escaping_includes_are_named(tmp_path: Path) -> None:
    root = tmp_path / "app"
    text = "-r missing.txt\n-r ../../etc/passwd\n-c https://example.org/c.txt\nflask==3.0.0\n"
    write(root, "requirements.txt", text)
    parsed = resolve_manifest(root, "requirements.txt", text)
    assert [d.name for d in parsed.dependencies] == ["flask"]
    assert parsed.problems[0].startswith("requirements.txt:1: -r missing.txt: cannot read it")
    assert (
        parsed.problems[1]
        == "requirements.txt:2: -r ../../etc/passwd: outside the scan root, not read"
    )
    assert parsed.problems[2] == (
        "requirements.txt:3: -c https://example.org/c.txt: remote files are not read"
    )


def test_a_lock_file_beside_the_manifest_pins_its_ranges(tmp_path: Path) -> None:
    root = tmp_path / "app"
    pyproject = write(
        root, "pyproject.toml", '[project]\nname = "app"\ndependencies = ["requests>=2"]\n'
    )
    scanner = DepsScanner(osv_db=_database(tmp_path))
    [alone] = scanner.scan_batch(root, [pyproject])
    assert alone.skipped is not None and "requests>=2 (line 3)" in alone.skipped
    lock = write(
        root,
        "uv.lock",
        'version = 1\n\n[[package]]\nname = "requests"\nversion = "2.25.1"\n'
        'source = { registry = "https://pypi.org/simple" }\n',
    )
    manifest, locked = scanner.scan_batch(root, [pyproject, lock])
    # The lock pins requests, and reports it: the manifest has nothing left open.
    assert manifest.skipped is None and manifest.findings == []
    assert "GHSA-j8r2-6x86-q33q" in {f.rule_id for f in locked.findings}
