"""The deps scanner over real manifest files, offline (directory, all.zip) and online."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import threading
import zipfile
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from test_osv import FIXTURES, FakeOsvApi, record

from secperf.model import Severity
from secperf.security.scanners.deps import DepsScanner
from secperf.security.scanners.interface import FileResult, SourceFile

REQUIREMENTS = """\
# app
requests==2.25.1
jinja2==3.1.2
pyyaml>=5
PyYAML==5.3
flask==3.0.0
"""


def write(root: Path, relpath: str, text: str) -> SourceFile:
    path = root / relpath
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return SourceFile(relpath, text.encode())


def osv_dir(tmp_path: Path) -> Path:
    target = tmp_path / "osv-db"
    target.mkdir()
    for file in FIXTURES.glob("*.json"):
        shutil.copy(file, target / file.name)
    return target


def by_rule(result: FileResult) -> dict[str, Any]:
    return {f.rule_id: f for f in result.findings}


def test_unavailable_without_database_or_network() -> None:
    scanner = DepsScanner()
    reason = scanner.unavailable_reason()
    assert reason is not None and "--osv-db" in reason and "network" in reason
    assert "does not exist" in (
        DepsScanner(osv_db="/nonexistent/all.zip").unavailable_reason() or ""
    )
    assert DepsScanner(network=True).unavailable_reason() is None


def test_applies_to_manifest_names() -> None:
    scanner = DepsScanner()
    for path in (
        "requirements.txt",
        "a/requirements-dev.txt",
        "requirements/prod.txt",
        "pyproject.toml",
        "poetry.lock",
        "uv.lock",
        "Pipfile.lock",
    ):
        assert scanner.applies_to(path), path
    for path in ("setup.py", "requirements.md", "Pipfile", "docs/reqs.txt"):
        assert not scanner.applies_to(path), path


def test_offline_findings_from_a_requirements_file(tmp_path: Path) -> None:
    root = tmp_path / "project"
    source = write(root, "requirements.txt", REQUIREMENTS)
    scanner = DepsScanner(osv_db=str(osv_dir(tmp_path)))
    assert scanner.unavailable_reason() is None
    [result] = scanner.scan_batch(root, [source])
    assert result.skipped is None
    found = by_rule(result)
    # the PYSEC twin of the requests advisory is folded into the GHSA one
    assert sorted(found) == [
        "GHSA-6757-jp84-gxfx",
        "GHSA-8q59-q68h-6hv4",
        "GHSA-h5c8-rqwp-cp95",
        "GHSA-h75v-3vvj-5mfj",
        "GHSA-j8r2-6x86-q33q",
    ]
    requests = found["GHSA-j8r2-6x86-q33q"]
    assert requests.scanner == "deps" and requests.category == "dependency"
    assert requests.severity is Severity.MEDIUM
    assert requests.line == 2 and requests.path == "requirements.txt"
    assert requests.properties["package"] == "requests"
    assert requests.properties["installed_version"] == "2.25.1"
    assert requests.properties["aliases"] == ["CVE-2023-32681", "PYSEC-2023-74"]
    assert requests.properties["cves"] == ["CVE-2023-32681"]
    assert requests.properties["fixed_versions"] == ["2.31.0"]
    assert requests.properties["manifest_line"] == 2
    assert requests.cwe == 200
    assert "requests 2.25.1" in requests.message and "fixed in 2.31.0" in requests.message
    assert "Proxy-Authorization" in requests.message
    assert requests.help_url == "https://nvd.nist.gov/vuln/detail/CVE-2023-32681"
    assert found["GHSA-8q59-q68h-6hv4"].severity is Severity.CRITICAL
    assert found["GHSA-8q59-q68h-6hv4"].line == 5  # the pinned line, not the unpinned one
    last_affected = found["GHSA-6757-jp84-gxfx"]
    assert last_affected.properties["fixed_versions"] == []
    assert "no fixed version" in last_affected.message
    assert len({f.fingerprint for f in result.findings}) == 5


def test_unpinned_requirements_claim_no_finding_and_are_listed(tmp_path: Path) -> None:
    source = write(tmp_path, "requirements.txt", "requests>=2.0\njinja2\npyyaml~=5.3\n")
    [result] = DepsScanner(osv_db=str(osv_dir(tmp_path))).scan_batch(tmp_path, [source])
    assert result.findings == []
    # Not dropped without notice: counted and listed, so coverage says "partly checked".
    assert result.skipped is not None
    assert result.skipped.startswith("cannot tell the installed version of 3 requirement(s)")
    for named in ("requests>=2.0 (line 1)", "jinja2 (any version) (line 2)", "pyyaml~=5.3"):
        assert named in result.skipped
    assert not result.cacheable  # a lock file added later must be seen


def test_fingerprints_do_not_depend_on_lines(tmp_path: Path) -> None:
    db = str(osv_dir(tmp_path))
    first = write(tmp_path / "a", "requirements.txt", "requests==2.25.1\njinja2==3.1.2\n")
    moved = write(
        tmp_path / "b",
        "requirements.txt",
        "# moved around\n\njinja2==3.1.2\nflask==3.0.0\nrequests==2.25.1\n",
    )
    [one] = DepsScanner(osv_db=db).scan_batch(tmp_path / "a", [first])
    [two] = DepsScanner(osv_db=db).scan_batch(tmp_path / "b", [moved])
    assert {f.fingerprint for f in one.findings} == {f.fingerprint for f in two.findings}
    assert {f.line for f in one.findings} != {f.line for f in two.findings}


def test_every_manifest_kind_in_one_batch(tmp_path: Path) -> None:
    root = tmp_path / "project"
    pipfile = {"default": {"requests": {"version": "==2.25.1"}}, "develop": {}}
    sources = [
        write(root, "pyproject.toml", '[project]\nname = "x"\ndependencies = ["jinja2==3.1.2"]\n'),
        write(root, "poetry.lock", '[[package]]\nname = "PyYAML"\nversion = "5.3"\n'),
        write(root, "uv.lock", 'version = 1\n[[package]]\nname = "requests"\nversion = "2.31.0"\n'),
        write(root, "Pipfile.lock", json.dumps(pipfile, indent=2)),
        write(root, "requirements/dev.txt", "jinja2==3.1.4\n"),
    ]
    results = DepsScanner(osv_db=str(osv_dir(tmp_path))).scan_batch(root, sources)
    assert [r.relpath for r in results] == [s.relpath for s in sources]
    assert all(r.skipped is None for r in results)
    assert [sorted(by_rule(r)) for r in results] == [
        ["GHSA-h5c8-rqwp-cp95", "GHSA-h75v-3vvj-5mfj"],
        ["GHSA-6757-jp84-gxfx", "GHSA-8q59-q68h-6hv4"],
        [],
        ["GHSA-j8r2-6x86-q33q"],
        [],
    ]
    assert results[1].findings[0].line == 2


def test_bad_manifests_are_skips_naming_the_file(tmp_path: Path) -> None:
    db = str(osv_dir(tmp_path))
    sources = [
        write(tmp_path, "pyproject.toml", "[project\n"),
        SourceFile("requirements.txt", b"requests==2.25.1\n\xff\xfe\n"),
        write(tmp_path, "dev/requirements.txt", "requests==2.25.1\nnot a requirement!!\n"),
    ]
    results = DepsScanner(osv_db=db).scan_batch(tmp_path, sources)
    assert results[0].skipped and results[0].skipped.startswith("pyproject.toml: invalid TOML")
    assert results[1].skipped and "requirements.txt: not UTF-8" in results[1].skipped
    # the good line is still checked; the skip says the file was only partly read
    assert results[2].skipped and results[2].skipped.startswith("dev/requirements.txt:2:")
    assert [f.rule_id for f in results[2].findings] == ["GHSA-j8r2-6x86-q33q"]


def test_a_bad_osv_record_is_a_listed_skip_and_the_rest_still_match(tmp_path: Path) -> None:
    db = osv_dir(tmp_path)
    (db / "GHSA-bad.json").write_text('{"id": "GHSA-bad", "affected": [{"package": "requests"}]}')
    source = write(tmp_path, "requirements.txt", "requests==2.25.1\n")
    [result] = DepsScanner(osv_db=str(db)).scan_batch(tmp_path, [source])
    # The file was checked against an incomplete database: found, but not "ok".
    assert [f.rule_id for f in result.findings] == ["GHSA-j8r2-6x86-q33q"]
    assert result.skipped is not None
    assert result.skipped.startswith("OSV records rejected: 1 record(s) that may concern")
    assert f"{db / 'GHSA-bad.json'} (GHSA-bad): affected[0].package: expected dict" in (
        result.skipped
    )


def test_a_corrupt_database_is_a_skip_not_a_crash(tmp_path: Path) -> None:
    archive = tmp_path / "all.zip"
    archive.write_bytes(b"PK\x05\x06" + b"\x00" * 10)  # looks like a zip, is not one
    source = write(tmp_path, "requirements.txt", "requests==2.25.1\n")
    [result] = DepsScanner(osv_db=str(archive)).scan_batch(tmp_path, [source])
    assert result.skipped and result.skipped.startswith("OSV lookup failed")


def test_zip_database_and_config_hash_follows_it(tmp_path: Path) -> None:
    archive = tmp_path / "all.zip"
    with zipfile.ZipFile(archive, "w") as out:
        out.writestr("GHSA-j8r2-6x86-q33q.json", json.dumps(record("GHSA-j8r2-6x86-q33q")))
    scanner = DepsScanner(osv_db=str(archive))
    before = scanner.config_hash()
    source = write(tmp_path, "requirements.txt", "requests==2.25.1\njinja2==3.1.2\n")
    [result] = scanner.scan_batch(tmp_path, [source])
    assert [f.rule_id for f in result.findings] == ["GHSA-j8r2-6x86-q33q"]

    with zipfile.ZipFile(archive, "w") as out:  # a new download
        for name in ("GHSA-j8r2-6x86-q33q", "GHSA-h5c8-rqwp-cp95"):
            out.writestr(f"{name}.json", json.dumps(record(name)))
    stat = archive.stat()
    os.utime(archive, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert scanner.config_hash() != before
    [again] = scanner.scan_batch(tmp_path, [source])
    assert sorted(f.rule_id for f in again.findings) == [
        "GHSA-h5c8-rqwp-cp95",
        "GHSA-j8r2-6x86-q33q",
    ]


def test_scanner_pickles_without_its_database(tmp_path: Path) -> None:
    scanner = DepsScanner(osv_db=str(osv_dir(tmp_path)))
    source = write(tmp_path, "requirements.txt", "requests==2.25.1\n")
    scanner.scan_batch(tmp_path, [source])
    copy = pickle.loads(pickle.dumps(scanner))
    assert len(pickle.dumps(scanner)) < 1000
    assert copy.config_hash() == scanner.config_hash()
    [result] = copy.scan_batch(tmp_path, [source])
    assert [f.rule_id for f in result.findings] == ["GHSA-j8r2-6x86-q33q"]


# ----------------------------------------------------------------- online


@pytest.fixture
def osv_api() -> Iterator[tuple[FakeOsvApi, str]]:
    api = FakeOsvApi([record(p.stem) for p in FIXTURES.glob("*.json")])
    server = ThreadingHTTPServer(("127.0.0.1", 0), api.handler())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield api, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_online_lookup_matches_the_offline_one(
    tmp_path: Path, osv_api: tuple[FakeOsvApi, str]
) -> None:
    api, url = osv_api
    root = tmp_path / "project"
    sources = [
        write(root, "requirements.txt", REQUIREMENTS),
        write(root, "poetry.lock", '[[package]]\nname = "requests"\nversion = "2.25.1"\n'),
    ]
    online = DepsScanner(network=True, api_url=url, timeout=5).scan_batch(root, sources)
    offline = DepsScanner(osv_db=str(osv_dir(tmp_path))).scan_batch(root, sources)
    assert [r.skipped for r in online] == [None, None]
    for got, want in zip(online, offline, strict=True):
        assert [(f.rule_id, f.line, f.fingerprint, f.severity) for f in got.findings] == [
            (f.rule_id, f.line, f.fingerprint, f.severity) for f in want.findings
        ]
    assert len(api.batches) == 1  # one batch for every manifest of the batch
    assert len(api.fetched) == len(set(api.fetched))  # each record fetched once


def test_online_failure_skips_manifests_with_pins(
    tmp_path: Path, osv_api: tuple[FakeOsvApi, str]
) -> None:
    api, url = osv_api
    api.fail_with = 500
    sources = [
        write(tmp_path, "requirements.txt", "requests==2.25.1\n"),
        write(tmp_path, "requirements-dev.txt", "pytest>=8\n"),
    ]
    results = DepsScanner(network=True, api_url=url, timeout=5).scan_batch(tmp_path, sources)
    assert results[0].skipped and "HTTP 500" in results[0].skipped
    # Nothing to look up there: not the lookup's failure, only its unpinned requirement.
    assert results[1].findings == [] and results[1].skipped is not None
    assert "HTTP 500" not in results[1].skipped
    assert results[1].skipped.startswith("cannot tell the installed version of 1 requirement")


# ----------------------------------------------------------------- rejected records


def _bad_record(vuln_id: str, package: str, **affected: Any) -> str:
    entry: dict[str, Any] = {"package": {"ecosystem": "PyPI", "name": package}}
    entry.update(affected)
    return json.dumps({"id": vuln_id, "affected": [entry]})


def test_rejected_records_are_skips_only_for_the_pins_they_concern(tmp_path: Path) -> None:
    db = osv_dir(tmp_path)
    (db / "BAD-REQ.json").write_text(_bad_record("BAD-REQ", "Requests", versions=["2.25.1", 7]))
    (db / "BAD-NUMPY.json").write_text(_bad_record("BAD-NUMPY", "numpy", ranges="all"))
    sources = [
        write(tmp_path, "requirements.txt", "requests==2.25.1\n"),
        write(tmp_path, "requirements-docs.txt", "jinja2==3.1.2\n"),
        write(tmp_path, "requirements-dev.txt", "pytest>=8\n"),
    ]
    results = DepsScanner(osv_db=str(db)).scan_batch(tmp_path, sources)
    assert [f.rule_id for f in results[0].findings] == ["GHSA-j8r2-6x86-q33q"]
    assert results[0].skipped == (
        "OSV records rejected: 1 record(s) that may concern these pins could not be used, "
        f"so vulnerabilities may be missing: {db / 'BAD-REQ.json'} (BAD-REQ): "
        "affected[0].versions[1]: expected str, got int"
    )
    # jinja2 is named by neither bad record; an unpinned file is not looked up.
    assert results[1].skipped is None and results[1].findings
    assert results[2].skipped is not None and "OSV records rejected" not in results[2].skipped
    assert results[2].skipped.startswith("cannot tell the installed version")


def test_an_unreadable_record_may_concern_any_pin(tmp_path: Path) -> None:
    db = osv_dir(tmp_path)
    for index in range(5):
        (db / f"BROKEN-{index}.json").write_text("{not json")
    source = write(tmp_path, "requirements.txt", "jinja2==3.1.2\n")
    [result] = DepsScanner(osv_db=str(db)).scan_batch(tmp_path, [source])
    assert result.findings
    assert result.skipped is not None
    assert result.skipped.startswith("OSV records rejected: 5 record(s)")
    assert "BROKEN-0.json: invalid JSON" in result.skipped
    assert result.skipped.endswith("; and 2 more")


def test_the_scan_with_rejected_records_is_partial_not_ok(tmp_path: Path) -> None:
    from secperf.security.validator import SecurityValidator

    db = osv_dir(tmp_path)
    (db / "GHSA-bad.json").write_text(_bad_record("GHSA-bad", "requests", ranges={}))
    project = tmp_path / "project"
    write(project, "requirements.txt", "requests==2.25.1\n")
    validator = SecurityValidator([DepsScanner(osv_db=str(db))], jobs=1)
    try:
        report = validator.scan(project)
    finally:
        validator.close()
    assert report.status == "partial"
    [(path, scanner, reason)] = report.skipped
    assert (path, scanner) == ("requirements.txt", "deps")
    assert "(GHSA-bad): affected[0].ranges: expected list, got dict" in reason
    assert report.metrics.skip_reasons == {"OSV records rejected": 1}
    assert [f.rule_id for f in report.findings] == ["GHSA-j8r2-6x86-q33q"]


def test_a_malformed_record_from_the_api_is_a_skip_of_its_pins(
    tmp_path: Path, osv_api: tuple[FakeOsvApi, str]
) -> None:
    api, url = osv_api
    bad = record("GHSA-j8r2-6x86-q33q")
    bad["affected"][0]["versions"] = [2.25]
    api.served_instead[bad["id"]] = bad
    sources = [
        write(tmp_path, "requirements.txt", "requests==2.25.1\n"),
        write(tmp_path, "requirements-docs.txt", "jinja2==3.1.2\n"),
    ]
    results = DepsScanner(network=True, api_url=url, timeout=5).scan_batch(tmp_path, sources)
    assert results[0].skipped is not None
    assert "OSV API GHSA-j8r2-6x86-q33q (GHSA-j8r2-6x86-q33q): affected[0].versions[0]" in (
        results[0].skipped
    )
    assert results[1].skipped is None


def test_a_problem_quoting_a_line_with_credentials_is_redacted(tmp_path: Path) -> None:
    password = "S3cr3t-Pa55w0rd!x"
    source = write(
        tmp_path,
        "requirements.txt",
        f"requests==2.25.1\nlib == 1.0 https://ci:{password}@git.example.com/lib.git\n",
    )
    [result] = DepsScanner(osv_db=str(osv_dir(tmp_path))).scan_batch(tmp_path, [source])
    assert [f.rule_id for f in result.findings] == ["GHSA-j8r2-6x86-q33q"]
    assert result.skipped is not None
    assert result.skipped.startswith("requirements.txt:2: invalid requirement")
    assert "https://ci:S3****!x@git.example.com" in result.skipped
    assert password not in result.skipped
