"""OSV records: CVSS scoring, version matching, loading, de-duplication and the API client."""

from __future__ import annotations

import json
import shutil
import threading
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from secperf.model import Severity
from secperf.security.osv import (
    OsvApiError,
    OsvClient,
    OsvDatabase,
    OsvRecordError,
    cvss3_base_score,
    database_fingerprint,
    deduplicate,
    fixed_versions,
    is_affected,
    parse_record,
    severity_from_score,
)
from support.paths import FIXTURES as FIXTURES_DIR

FIXTURES = FIXTURES_DIR / "osv"


def record(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    return data


def osv_dir(tmp_path: Path) -> Path:
    target = tmp_path / "osv"
    target.mkdir()
    for file in FIXTURES.glob("*.json"):
        shutil.copy(file, target / file.name)
    return target


# ----------------------------------------------------------------- CVSS


@pytest.mark.parametrize(
    ("vector", "score"),
    [
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8),
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H", 10.0),
        ("CVSS:3.1/AV:N/AC:H/PR:N/UI:R/S:C/C:H/I:N/A:N", 6.1),  # CVE-2023-32681
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:U/C:L/I:L/A:N", 5.4),  # CVE-2024-22195
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N", 6.1),  # classic reflected XSS
        ("CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H", 7.8),
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H", 7.5),
        ("CVSS:3.0/AV:N/AC:L/PR:L/UI:N/S:C/C:L/I:L/A:N", 6.4),
        ("CVSS:3.1/AV:P/AC:H/PR:H/UI:R/S:U/C:L/I:N/A:N", 1.6),
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N", 0.0),
        # temporal metrics are ignored: the base score stays
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/E:U/RL:O/RC:C", 9.8),
    ],
)
def test_cvss3_base_score_matches_the_specification(vector: str, score: float) -> None:
    assert cvss3_base_score(vector) == score


@pytest.mark.parametrize(
    "vector",
    [
        "AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",  # no version prefix
        "CVSS:2.0/AV:N/AC:L/Au:N/C:P/I:P/A:P",
        "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H",  # A missing
        "CVSS:3.1/AV:X/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
        "CVSS:3.1/AV:N/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
        "CVSS:3.1/AVN",
    ],
)
def test_invalid_cvss_vectors_are_refused_with_a_reason(vector: str) -> None:
    with pytest.raises(ValueError, match="CVSS"):
        cvss3_base_score(vector)


def test_score_bands() -> None:
    assert severity_from_score(9.0) is Severity.CRITICAL
    assert severity_from_score(8.9) is Severity.HIGH
    assert severity_from_score(7.0) is Severity.HIGH
    assert severity_from_score(4.0) is Severity.MEDIUM
    assert severity_from_score(0.1) is Severity.LOW
    assert severity_from_score(0.0) is Severity.INFO


# ----------------------------------------------------------------- records and matching


def test_record_fields_and_severity_from_cvss() -> None:
    vuln = parse_record(record("GHSA-j8r2-6x86-q33q"), "GHSA-j8r2-6x86-q33q.json")
    assert vuln is not None
    assert vuln.severity is Severity.MEDIUM and vuln.cvss_score == 6.1
    assert vuln.severity_source == "cvss_v3"
    assert vuln.aliases == ("CVE-2023-32681", "PYSEC-2023-74")
    assert vuln.cwe == 200
    assert vuln.help_url == "https://nvd.nist.gov/vuln/detail/CVE-2023-32681"  # ADVISORY first
    critical = parse_record(record("GHSA-8q59-q68h-6hv4"), "x")
    assert critical is not None and critical.severity is Severity.CRITICAL


def test_severity_falls_back_to_the_database_then_to_medium() -> None:
    database_only = parse_record(record("GHSA-6757-jp84-gxfx"), "x")
    assert database_only is not None
    assert (database_only.severity, database_only.severity_source) == (
        Severity.CRITICAL,
        "database",
    )
    unrated = parse_record(record("PYSEC-2023-74"), "x")
    assert unrated is not None
    assert (unrated.severity, unrated.severity_source) == (Severity.MEDIUM, "default")
    # no summary: the first line of the details stands in; no ADVISORY: the WEB link
    assert unrated.summary.startswith("Requests is a HTTP library.")
    assert unrated.help_url == "https://github.com/psf/requests/releases/tag/v2.31.0"
    bare = parse_record(
        {"id": "PYSEC-0000-1", "affected": record("PYSEC-2023-74")["affected"]}, "x"
    )
    assert bare is not None and bare.help_url == "https://osv.dev/vulnerability/PYSEC-0000-1"


def test_introduced_fixed_range() -> None:
    vuln = parse_record(record("GHSA-j8r2-6x86-q33q"), "x")
    assert vuln is not None
    assert is_affected(vuln, "requests", "2.3.0")
    assert is_affected(vuln, "Requests", "2.30.0")  # names are compared canonically
    assert not is_affected(vuln, "requests", "2.31.0")
    assert not is_affected(vuln, "requests", "2.2.1")
    assert not is_affected(vuln, "urllib3", "2.3.0")
    assert is_affected(vuln, "requests", "2.31.0rc1")  # a pre-release of the fix is before it


def test_last_affected_is_inclusive_and_other_ecosystems_are_ignored() -> None:
    vuln = parse_record(record("GHSA-6757-jp84-gxfx"), "x")
    assert vuln is not None
    assert [a.name for a in vuln.affected] == ["pyyaml"]
    assert is_affected(vuln, "PyYAML", "5.3")
    assert is_affected(vuln, "pyyaml", "5.1")
    assert not is_affected(vuln, "pyyaml", "5.3.1")
    assert not is_affected(vuln, "pyyaml", "5.0")


def test_explicit_versions_list_matches_even_outside_ranges() -> None:
    data = {
        "id": "PYSEC-2099-1",
        "affected": [
            {"package": {"ecosystem": "PyPI", "name": "demo"}, "versions": ["1.0", "1.0.post1"]}
        ],
    }
    vuln = parse_record(data, "x")
    assert vuln is not None
    assert is_affected(vuln, "demo", "1.0")
    assert is_affected(vuln, "demo", "1.0.0")  # equal under PEP 440
    assert is_affected(vuln, "demo", "1.0.post1")
    assert not is_affected(vuln, "demo", "1.1")


def test_fixed_versions_put_the_next_fix_first() -> None:
    data = {
        "id": "GHSA-test-0000-0000",
        "affected": [
            {
                "package": {"ecosystem": "PyPI", "name": "django"},
                "ranges": [
                    {
                        "type": "ECOSYSTEM",
                        "events": [
                            {"introduced": "0"},
                            {"fixed": "3.2.25"},
                            {"introduced": "4.0"},
                            {"fixed": "4.2.11"},
                            {"introduced": "5.0"},
                            {"fixed": "5.0.3"},
                        ],
                    }
                ],
            }
        ],
    }
    vuln = parse_record(data, "x")
    assert vuln is not None
    assert is_affected(vuln, "django", "4.2.10")
    assert not is_affected(vuln, "django", "3.2.25")
    assert is_affected(vuln, "django", "4.0")
    assert fixed_versions(vuln, "django", "4.2.10") == ["4.2.11", "5.0.3", "3.2.25"]


def test_withdrawn_and_foreign_records_are_not_vulnerabilities() -> None:
    withdrawn = dict(record("GHSA-h5c8-rqwp-cp95"), withdrawn="2024-02-01T00:00:00Z")
    assert parse_record(withdrawn, "x") is None
    npm_only = {"id": "GHSA-npm", "affected": [{"package": {"ecosystem": "npm", "name": "x"}}]}
    assert parse_record(npm_only, "x") is None


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ([], "record: expected dict"),
        ({"summary": "no id"}, "id: expected str"),
        ({"id": "X-1", "affected": {"package": {}}}, "affected: expected list"),
        (
            {"id": "X-2", "affected": [{"package": {"ecosystem": "PyPI"}}]},
            r"affected\[0\]\.package\.name: expected str",
        ),
        (
            {
                "id": "X-3",
                "affected": [
                    {
                        "package": {"ecosystem": "PyPI", "name": "a"},
                        "ranges": [{"type": "ECOSYSTEM", "events": [{"fixed": 2}]}],
                    }
                ],
            },
            r"ranges\[0\]\.events\[0\]\.fixed: expected str",
        ),
    ],
)
def test_malformed_records_name_the_source_and_field(data: Any, problem: str) -> None:
    with pytest.raises(OsvRecordError, match=problem) as info:
        parse_record(data, "broken.json")
    assert "broken.json" in str(info.value)


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ({"id": " ", "affected": []}, "broken.json: id: empty"),
        (
            {"id": "X-4", "affected": [{"package": {"ecosystem": "PyPI", "name": ""}}]},
            r"broken.json \(X-4\): affected\[0\]\.package\.name: empty",
        ),
        (
            {
                "id": "X-5",
                "affected": [
                    {"package": {"ecosystem": "PyPI", "name": "a"}, "versions": ["1.0", None]}
                ],
            },
            r"broken.json \(X-5\): affected\[0\]\.versions\[1\]: expected str, got NoneType",
        ),
    ],
)
def test_records_that_would_silently_match_nothing_are_refused(data: Any, problem: str) -> None:
    with pytest.raises(OsvRecordError, match=problem) as info:
        parse_record(data, "broken.json")
    assert "broken.json" in str(info.value)


def test_deduplicate_folds_pysec_and_ghsa_twins() -> None:
    ghsa = parse_record(record("GHSA-j8r2-6x86-q33q"), "x")
    pysec = parse_record(record("PYSEC-2023-74"), "x")
    other = parse_record(record("GHSA-h5c8-rqwp-cp95"), "x")
    assert ghsa and pysec and other
    folded = deduplicate([pysec, other, ghsa])
    assert [(v.id, aliases) for v, aliases in folded] == [
        ("GHSA-h5c8-rqwp-cp95", ("CVE-2024-22195",)),
        ("GHSA-j8r2-6x86-q33q", ("CVE-2023-32681", "PYSEC-2023-74")),
    ]


# ----------------------------------------------------------------- databases


def test_directory_database_skips_bad_records_and_loads_the_rest(tmp_path: Path) -> None:
    target = osv_dir(tmp_path)
    (target / "BROKEN-1.json").write_text("{not json")
    (target / "BROKEN-2.json").write_text(json.dumps({"id": "BROKEN-2", "affected": "requests"}))
    (target / "README.txt").write_text("not a record")
    database = OsvDatabase.load(target)
    assert database.count == 6
    assert len(database.warnings) == 2
    assert any("BROKEN-1.json" in w and "invalid JSON" in w for w in database.warnings)
    assert any("BROKEN-2" in w and "affected: expected list" in w for w in database.warnings)
    assert {v.id for v in database.query("requests", "2.25.1")} == {
        "GHSA-j8r2-6x86-q33q",
        "PYSEC-2023-74",
    }
    assert {v.id for v in database.query("Jinja2", "3.1.3")} == {"GHSA-h75v-3vvj-5mfj"}
    assert database.query("requests", "2.31.0") == []
    assert database.query("not-a-package", "1.0") == []


def test_rejected_records_keep_the_packages_they_name(tmp_path: Path) -> None:
    target = tmp_path / "osv"
    target.mkdir()
    (target / "A.json").write_text("{not json")
    pypi = {"package": {"ecosystem": "PyPI", "name": "Flask_Login"}, "ranges": "x"}
    npm = {"package": {"ecosystem": "npm", "name": "left-pad"}}
    (target / "B.json").write_text(json.dumps({"id": "B", "affected": [pypi, npm]}))
    (target / "C.json").write_text(json.dumps({"affected": [npm]}))  # no id, npm only
    (target / "D.json").write_text(json.dumps({"id": "D", "affected": [{"package": "flask"}]}))
    database = OsvDatabase.load(target)
    assert database.count == 0
    by_source = {r.problem.split(":", 1)[0].rsplit("/", 1)[-1]: r for r in database.rejected}
    assert by_source["A.json"].packages is None  # unreadable: may concern anything
    assert by_source["B.json (B)"].packages == frozenset({"flask-login"})
    assert by_source["C.json"].packages == frozenset()
    assert by_source["D.json (D)"].packages is None
    assert by_source["B.json (B)"].concerns({"flask-login", "requests"})
    assert not by_source["B.json (B)"].concerns({"requests"})
    assert not by_source["C.json"].concerns({"left-pad"})  # not a PyPI package
    assert by_source["A.json"].concerns({"requests"})
    assert database.warnings == [r.problem for r in database.rejected]


def test_zip_database_matches_the_directory(tmp_path: Path) -> None:
    archive = tmp_path / "all.zip"
    with zipfile.ZipFile(archive, "w") as out:
        for file in sorted(FIXTURES.glob("*.json")):
            out.write(file, file.name)
        out.writestr("BAD.json", b"\xff\xfe")
    database = OsvDatabase.load(archive)
    assert database.count == 6
    assert len(database.warnings) == 1 and "all.zip!BAD.json" in database.warnings[0]
    assert {v.id for v in database.query("pyyaml", "5.3")} == {
        "GHSA-8q59-q68h-6hv4",
        "GHSA-6757-jp84-gxfx",
    }


def test_unusable_database_paths_are_refused_clearly(tmp_path: Path) -> None:
    with pytest.raises(OSError, match="does not exist"):
        OsvDatabase.load(tmp_path / "missing.zip")
    not_zip = tmp_path / "all.zip"
    not_zip.write_text("hello")
    with pytest.raises(ValueError, match="neither a directory nor a zip"):
        OsvDatabase.load(not_zip)


def test_database_fingerprint_changes_with_the_files(tmp_path: Path) -> None:
    target = osv_dir(tmp_path)
    before = database_fingerprint(str(target))
    assert database_fingerprint(str(target)) == before
    (target / "GHSA-new.json").write_text(json.dumps(record("GHSA-h5c8-rqwp-cp95")))
    assert database_fingerprint(str(target)) != before


# ----------------------------------------------------------------- online client


class FakeOsvApi:
    """A local stand-in for api.osv.dev serving the records a test defines."""

    def __init__(self, records: list[dict[str, Any]], page_size: int = 100) -> None:
        self.records = {r["id"]: r for r in records}
        self.page_size = page_size
        self.batches: list[list[dict[str, Any]]] = []
        self.fetched: list[str] = []
        self.fail_with: int | None = None
        # Records answered by GET /v1/vulns/{id} in place of the good ones
        # (which still decide the matches), as a broken upstream would.
        self.served_instead: dict[str, Any] = {}

    def matches(self, name: str, version: str) -> list[str]:
        found = []
        for vuln_id, data in sorted(self.records.items()):
            parsed = parse_record(data, vuln_id)
            if parsed is not None and is_affected(parsed, name, version):
                found.append(vuln_id)
        return found

    def handler(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def reply(self, status: int, body: Any) -> None:
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def do_POST(self) -> None:
                if api.fail_with:
                    self.reply(api.fail_with, {"code": api.fail_with})
                    return
                if self.path != "/v1/querybatch":
                    self.reply(404, {"message": "not found"})
                    return
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                api.batches.append(body["queries"])
                results = []
                for query in body["queries"]:
                    assert query["package"]["ecosystem"] == "PyPI"
                    ids = api.matches(query["package"]["name"], query["version"])
                    start = int(query.get("page_token") or 0)
                    page = ids[start : start + api.page_size]
                    result: dict[str, Any] = {
                        "vulns": [
                            {"id": i, "modified": api.records[i].get("modified", "")} for i in page
                        ]
                    }
                    if start + api.page_size < len(ids):
                        result["next_page_token"] = str(start + api.page_size)
                    results.append(result)
                self.reply(200, {"results": results})

            def do_GET(self) -> None:
                prefix = "/v1/vulns/"
                vuln_id = self.path[len(prefix) :] if self.path.startswith(prefix) else ""
                if vuln_id in api.records:
                    api.fetched.append(vuln_id)
                    self.reply(200, api.served_instead.get(vuln_id, api.records[vuln_id]))
                else:
                    self.reply(404, {"code": 5, "message": "Bug not found."})

        return Handler


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


def test_client_batches_queries_and_follows_pages(osv_api: tuple[FakeOsvApi, str]) -> None:
    api, url = osv_api
    api.page_size = 1
    client = OsvClient(url, timeout=5)
    answers = client.query_batch([("requests", "2.25.1"), ("jinja2", "3.1.4"), ("pyyaml", "5.3")])
    assert answers == [
        ["GHSA-j8r2-6x86-q33q", "PYSEC-2023-74"],
        [],
        ["GHSA-6757-jp84-gxfx", "GHSA-8q59-q68h-6hv4"],
    ]
    assert len(api.batches) == 2  # the second page of two packages in one more request
    assert [q["package"]["name"] for q in api.batches[1]] == ["requests", "pyyaml"]
    vuln = parse_record(client.get("GHSA-h5c8-rqwp-cp95"), "api")
    assert vuln is not None and vuln.cwe == 79


def test_client_errors_are_clear(osv_api: tuple[FakeOsvApi, str]) -> None:
    api, url = osv_api
    client = OsvClient(url, timeout=5)
    with pytest.raises(OsvApiError, match="HTTP 404"):
        client.get("GHSA-none")
    api.fail_with = 503
    with pytest.raises(OsvApiError, match="HTTP 503"):
        client.query_batch([("requests", "2.0.0")])
    with pytest.raises(ValueError, match="http"):
        OsvClient("file:///etc/passwd")
